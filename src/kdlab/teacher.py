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

from pathlib import Path

import numpy as np

from kdlab.config import TIERS
from kdlab.io import ArtifactError, load_npz, read_json


def tier_codes(values: np.ndarray, path: str | Path) -> np.ndarray:
    """Tiers stored as names (head/mid/tail, any case) or codes 0-2 -> int8 codes."""
    if values.dtype.kind in "US":
        names = np.char.lower(values.astype(str))
        unknown = sorted(set(names.tolist()) - set(TIERS))
        if unknown:
            raise ArtifactError(f"{path}: unknown tier names {unknown[:5]}; expected {list(TIERS)}")
        return np.array([TIERS.index(n) for n in names], dtype=np.int8)
    if values.dtype.kind in "iu":
        if values.size and (values.min() < 0 or values.max() >= len(TIERS)):
            raise ArtifactError(f"{path}: tier codes must be 0..{len(TIERS) - 1}, found {values.min()}..{values.max()}")
        return values.astype(np.int8)
    raise ArtifactError(f"{path}: tiers have dtype {values.dtype}; expected names or integer codes")


def check_logits(path: str | Path, logits: np.ndarray, n_rows: int, n_classes: int) -> None:
    if logits.shape != (n_rows, n_classes):
        raise ArtifactError(
            f"{path}: logits have shape {logits.shape}; expected ({n_rows:,}, {n_classes}) to match the "
            "prepared data; the file belongs to another data version"
        )
    if not np.isfinite(logits.astype(np.float32)).all():
        bad = int((~np.isfinite(logits.astype(np.float32))).any(axis=1).sum())
        raise ArtifactError(f"{path}: logits contain NaN or inf in {bad} rows; the file is corrupt, download it again")


def check_labels(path: str | Path, stored: np.ndarray, prepared: np.ndarray, what: str = "labels") -> None:
    """Stored labels (or tiers) must equal the prepared ones row by row."""
    stored = np.asarray(stored)
    if stored.shape != prepared.shape:
        raise ArtifactError(f"{path}: {what} have shape {stored.shape}; expected {prepared.shape}")
    mismatch = np.flatnonzero(stored.astype(np.int64) != prepared.astype(np.int64))
    if mismatch.size:
        i = int(mismatch[0])
        raise ArtifactError(
            f"{path}: {what} differ from the prepared data in {mismatch.size:,} rows (first: row {i}, "
            f"expected {int(prepared[i])}, found {int(stored[i])}); the rows are misaligned or from another "
            "split: check the dataset revision and course files"
        )


def load_published_logits(path: str | Path, labels: np.ndarray, n_classes: int,
                          tiers: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Load and validate one published logits file against the prepared labels (and tiers)."""
    required = {"logits": "f", "labels": "iu"}
    if tiers is not None:
        required["tiers"] = "iuUS"
    arrays = load_npz(path, required)
    check_logits(path, arrays["logits"], len(labels), n_classes)
    check_labels(path, arrays["labels"], labels)
    out = {"logits": arrays["logits"].astype(np.float16), "labels": arrays["labels"].astype(np.int64)}
    if tiers is not None:
        out["tiers"] = tier_codes(arrays["tiers"], path)
        check_labels(path, out["tiers"], tiers, what="tiers")
    return out


def temperature_from_metadata(path: str | Path | None) -> float | None:
    """The first positive number under a key containing 'temperature' in a metadata JSON."""
    if path is None:
        return None

    def search(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if "temperature" in key.lower() and isinstance(value, (int, float)) \
                        and not isinstance(value, bool) and value > 0:
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

    return search(read_json(path))


def implied_temperature(raw: np.ndarray, final: np.ndarray) -> float:
    """Median of raw / final over clearly non-zero entries: the scale between the two files."""
    raw32, final32 = raw.astype(np.float32).ravel(), final.astype(np.float32).ravel()
    keep = np.abs(final32) > 0.5
    return float(np.median(raw32[keep] / final32[keep])) if keep.any() else float("nan")
