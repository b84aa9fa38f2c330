"""Teacher logits: validate the published files, or describe a teacher kdlab trained.

File format (the published one, docs/study.md §2), written under data/teacher/:

    train_test_logits_{raw,final}.npz   logits float16 (N_train + N_test, C), labels int64
    val_logits_final.npz                logits float16 (N_val, C), labels int64, tiers int8
    val_logits_raw.npz                  the same before temperature scaling
    metadata.json                       temperature and where it came from

``final`` = ``raw`` / temperature. Rows follow the prepared splits: train rows
then test rows, and val in its own order.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kdlab.io import load_npz, read_json
from kdlab.validate import REBUILD, PreparedRows, check_arrays


def load_logits(path: str | Path, rows: PreparedRows, with_tiers: bool = False,
                remedy: str = REBUILD) -> dict[str, np.ndarray]:
    """One teacher logits file (published, or data/teacher/ as the stage wrote it) checked against the
    prepared ``rows`` (:func:`kdlab.validate.check_arrays`); ``with_tiers``: the file has val tiers
    (names or codes) to check too. ``remedy``: what the messages tell the user to do."""
    required = {"logits": "f", "labels": "iu", **({"tiers": "iuUS"} if with_tiers else {})}
    return check_arrays(path, load_npz(path, required), rows, remedy, tiers_key="tiers" if with_tiers else None)


def temperature_from_metadata(path: str | Path | None) -> float | None:
    """The first positive number under a key containing 'temperature' in a metadata JSON."""
    if path is None:
        return None

    def search(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if "temperature" in key.lower() and isinstance(value, (int, float)) \
                        and not isinstance(value, bool) and 0 < value < math.inf:
                    return float(value)
            for value in node.values():
                found = search(value)
                if found is not None:
                    return found
        if isinstance(node, list):
            for value in node:
                found = search(value)
                if found is not None:
                    return found
        return None

    return search(read_json(path, "teacher.published.metadata"))


def implied_temperature(raw: np.ndarray, final: np.ndarray) -> float:
    """Median of raw / final over clearly non-zero entries: the scale between the two files."""
    raw32, final32 = raw.astype(np.float32).ravel(), final.astype(np.float32).ravel()
    keep = np.abs(final32) > 0.5
    return float(np.median(raw32[keep] / final32[keep])) if keep.any() else float("nan")
