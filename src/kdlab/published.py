"""Audit mode: turn a published ``val_predictions.npz`` into kdlab's arm format.

The course's files (docs/study.md §3) hold ``logits`` (N_val, C), ``preds``,
``labels`` and ``val_tiers``. Each is checked against the prepared val split
row by row before anything is written (:func:`kdlab.validate.check_arrays`), so
every later stage runs unchanged on published and on trained arms.
"""

from __future__ import annotations

from pathlib import Path

from kdlab.io import load_npz
from kdlab.predictions import Predictions
from kdlab.validate import DOWNLOAD, PreparedRows, check_arrays

REQUIRED = {"logits": "f", "preds": "iu", "labels": "iu", "val_tiers": "iuUS"}


def convert_published_predictions(path: str | Path, rows: PreparedRows) -> Predictions:
    """Validate a published predictions file against the prepared val rows and convert it."""
    out = check_arrays(path, load_npz(path, REQUIRED), rows, DOWNLOAD, tiers_key="val_tiers", preds=True)
    return Predictions(row_id=rows.row_id.copy(), logits=out["logits"], preds=out["preds"], labels=out["labels"],
                       tiers=out["tiers"])
