"""Selective prediction: answer only when confident enough (the study's §3c thresholds).

Coverage and accuracy at confidence thresholds, the lowest threshold that meets an
accuracy SLA, and the risk-coverage curve. Confidence is the top-1 probability
(:func:`kdlab.metrics.confidence_and_correct`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from kdlab.metrics import confidence_and_correct


def coverage_table(probs: np.ndarray, labels: np.ndarray, thresholds: Sequence[float]) -> list[dict]:
    """For each threshold: coverage = share of rows with max prob ≥ threshold, accuracy
    of argmax on those rows (NaN when none), n_covered."""
    conf, correct = confidence_and_correct(probs, labels)
    rows = []
    for t in thresholds:
        covered = conf >= t
        k = int(covered.sum())
        rows.append({
            "threshold": float(t),
            "coverage": float(k / conf.size) if conf.size else math.nan,
            "accuracy": float(correct[covered].mean()) if k else math.nan,
            "n_covered": k,
        })
    return rows


def sla_threshold(table: list[dict], target_accuracy: float = 0.95) -> Optional[float]:
    """Lowest threshold of a :func:`coverage_table` whose accuracy is ≥ the target; None if none."""
    ok = [row["threshold"] for row in table
          if not math.isnan(row["accuracy"]) and row["accuracy"] >= target_accuracy]
    return min(ok) if ok else None


def risk_coverage_curve(probs: np.ndarray, labels: np.ndarray, n_points: int = 101) -> dict[str, np.ndarray]:
    """Selective accuracy against coverage, keeping the most confident rows first.

    Rows are sorted by confidence, descending (stable: ties keep row order).
    At coverage c in ``linspace(0, 1, n_points)`` the ceil(c·N) most confident
    rows are kept. Returns ``coverage`` (n_points,), ``n_covered`` int64,
    ``accuracy`` (NaN where nothing is covered) and ``threshold`` (the lowest
    kept confidence, NaN where nothing is covered).
    """
    conf, correct = confidence_and_correct(probs, labels)
    order = np.argsort(-conf, kind="stable")
    hits = np.concatenate([[0.0], np.cumsum(correct[order])])
    coverage = np.linspace(0.0, 1.0, n_points)
    k = np.ceil(coverage * conf.size - 1e-9).astype(np.int64)  # guard 0.3*10 = 3.0000000000000004
    some = k > 0
    acc = np.full(n_points, np.nan)
    acc[some] = hits[k[some]] / k[some]
    thr = np.full(n_points, np.nan)
    thr[some] = conf[order][k[some] - 1]
    return {"coverage": coverage, "n_covered": k, "accuracy": acc, "threshold": thr}
