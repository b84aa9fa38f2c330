"""The one on-disk format every arm (trained or published) is converted to.

``runs/<arm>/predictions.npz`` holds, for the N validation rows in prepared
order:

    row_id  int64   (N,)     row id in data/prepared/val.parquet
    logits  float16 (N, C)   raw student logits (no temperature applied)
    preds   int64   (N,)     predicted class: an argmax of logits (published files may
                             break fp16 ties differently, so preds is stored, not recomputed)
    labels  int64   (N,)     true class ids
    tiers   int8    (N,)     0 head, 1 mid, 2 tail (kdlab.config.TIERS order)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdlab.io import load_npz, save_npz
from kdlab.validate import REBUILD, PreparedRows, as_float16, check_arrays


@dataclass(frozen=True)
class Predictions:
    row_id: np.ndarray
    logits: np.ndarray
    preds: np.ndarray
    labels: np.ndarray
    tiers: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.logits.ndim != 2 or self.logits.shape[0] != n:
            raise ValueError(f"logits must be (N, C) with N={n}, found {self.logits.shape}")
        if self.row_id.shape != (n,) or self.tiers.shape != (n,) or self.preds.shape != (n,):
            raise ValueError("row_id, preds, labels and tiers must all be (N,)")

    @classmethod
    def from_logits(cls, row_id, logits, labels, tiers) -> "Predictions":
        """Build with ``preds`` = argmax of the logits as stored (float16)."""
        logits = np.asarray(logits, dtype=np.float16)
        preds = logits.astype(np.float32).argmax(axis=1).astype(np.int64)
        return cls(np.asarray(row_id, np.int64), logits, preds, np.asarray(labels, np.int64),
                   np.asarray(tiers, np.int8))

    @property
    def n_classes(self) -> int:
        return int(self.logits.shape[1])

    def logits32(self, temperature: float = 1.0) -> np.ndarray:
        """Logits in float32, divided by ``temperature``; shape (N, C)."""
        return self.logits.astype(np.float32) / np.float32(temperature)

    def probs(self, temperature: float = 1.0) -> np.ndarray:
        """Softmax probabilities in float64 (numerically stable); shape (N, C)."""
        z = self.logits.astype(np.float64) / temperature
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def subset(self, index: np.ndarray) -> "Predictions":
        return Predictions(self.row_id[index], self.logits[index], self.preds[index],
                           self.labels[index], self.tiers[index])


def save_predictions(path: str | Path, pred: Predictions) -> None:
    """Write ``pred`` in the format above; logits that are not finite in float16 are never written."""
    save_npz(
        path,
        row_id=pred.row_id.astype(np.int64),
        logits=as_float16(path, pred.logits, "nothing was written: the stage that computed them must refuse first"),
        preds=pred.preds.astype(np.int64),
        labels=pred.labels.astype(np.int64),
        tiers=pred.tiers.astype(np.int8),
    )


def load_predictions(path: str | Path, rows: PreparedRows, remedy: str = REBUILD) -> Predictions:
    """A stored predictions file, checked against the prepared val rows (:func:`kdlab.validate.check_arrays`)."""
    arrays = load_npz(path, {"row_id": "iu", "logits": "f", "preds": "iu", "labels": "iu", "tiers": "iu"})
    out = check_arrays(path, arrays, rows, remedy, tiers_key="tiers", row_id=True, preds=True)
    return Predictions(out["row_id"], out["logits"], out["preds"], out["labels"], out["tiers"])
