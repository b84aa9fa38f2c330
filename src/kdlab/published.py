"""Audit mode: turn a published ``val_predictions.npz`` into kdlab's arm format.

The course's files (docs/study.md §3) hold ``logits`` (N_val, C), ``preds``,
``labels`` and ``val_tiers``. Each is checked against the prepared val split
row by row before anything is written, so every later stage runs unchanged on
published and on trained arms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdlab.io import ArtifactError, load_npz
from kdlab.predictions import Predictions, check_preds_are_argmax
from kdlab.teacher import check_labels, check_logits, tier_codes

REQUIRED = {"logits": "f", "preds": "iu", "labels": "iu", "val_tiers": "iuUS"}


def convert_published_predictions(path: str | Path, val_labels: np.ndarray, val_tiers: np.ndarray,
                                  n_classes: int) -> Predictions:
    """Validate a published predictions file against the prepared val split and convert it."""
    arrays = load_npz(path, REQUIRED)
    check_logits(path, arrays["logits"], len(val_labels), n_classes)
    if arrays["preds"].shape != (len(val_labels),):
        raise ArtifactError(f"{path}: preds have shape {arrays['preds'].shape}; expected ({len(val_labels)},)")
    check_labels(path, arrays["labels"], val_labels)
    tiers = tier_codes(arrays["val_tiers"], path)
    check_labels(path, tiers, val_tiers, what="val_tiers")
    pred = Predictions(
        row_id=np.arange(len(val_labels), dtype=np.int64),
        logits=arrays["logits"].astype(np.float16),
        preds=arrays["preds"].astype(np.int64),
        labels=arrays["labels"].astype(np.int64),
        tiers=tiers,
    )
    check_preds_are_argmax(pred, path)
    return pred
