"""Every metric of the study, defined once (docs/study.md §5).

Conventions: ``probs`` is float (N, C) with rows summing to 1, ``labels`` and
``preds`` are int (N,) class ids in 0..C-1, ``tiers`` is int (N,) with codes
0 head, 1 mid, 2 tail (``kdlab.config.TIERS``), ``class_tiers`` is int (C,).
Calibration metrics use the top-1 confidence ``max(probs)`` and count a row
as correct when ``argmax(probs) == label``. Logarithms are natural (nats).
Scalar results are plain Python floats so they serialise to JSON as they are.

The bootstrap in :mod:`kdlab.stats` computes the same quantities from the
per-example pieces exposed here (``bin_index``, ``f1_from_counts``,
``nll_per_example``, ...), so there is one definition of each metric.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from kdlab.config import TIERS

EPS = 1e-12  # probability floor for logs (NLL, entropy, KL, JS), as in the lab


# --------------------------------------------------------------------------- #
# Probabilities
# --------------------------------------------------------------------------- #
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row softmax of ``logits / temperature`` in float64; (N, C) -> (N, C)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, found {temperature}")
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)  # exp never overflows; the largest term is exp(0) = 1
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def confidence_and_correct(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 confidence (N,) float64 and correctness (N,) float64 (1.0 or 0.0)."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    return conf, correct


# --------------------------------------------------------------------------- #
# Classification
# --------------------------------------------------------------------------- #
def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Share of rows with ``preds == labels``; NaN for N = 0."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    return float(np.mean(labels == preds)) if labels.size else math.nan


def f1_from_counts(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2·tp / (support + predicted), 0 where the denominator is 0.

    Shapes (..., C) -> (..., C). This is scikit-learn's F1 with ``zero_division=0``
    (2·tp + fp + fn = support + predicted).
    """
    tp = np.asarray(tp, dtype=np.float64)
    denom = np.asarray(support, dtype=np.float64) + np.asarray(predicted, dtype=np.float64)
    return np.divide(2.0 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def macro_f1(labels: np.ndarray, preds: np.ndarray, class_ids: Optional[Sequence[int]] = None) -> float:
    """Macro F1, equal to ``sklearn.metrics.f1_score(labels, preds, average="macro",
    zero_division=0, labels=class_ids)``.

    ``class_ids`` None averages over the classes present in ``labels`` or
    ``preds`` (scikit-learn's default); given ids are averaged over even when
    absent (their F1 is 0), and predictions of other classes are ignored.
    NaN when N = 0.
    """
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    if labels.size == 0:
        return math.nan
    ids = None if class_ids is None else np.asarray(class_ids, dtype=np.int64)
    size = 1 + max(labels.max(initial=-1), preds.max(initial=-1), -1 if ids is None else ids.max(initial=-1))
    support = np.bincount(labels, minlength=size)
    predicted = np.bincount(preds, minlength=size)
    tp = np.bincount(labels[labels == preds], minlength=size)
    f1 = f1_from_counts(tp, support, predicted)
    if ids is None:
        ids = np.flatnonzero(support + predicted)
    return float(f1[ids].mean()) if ids.size else math.nan


# --------------------------------------------------------------------------- #
# Calibration
# --------------------------------------------------------------------------- #
def bin_edges(n_bins: int) -> np.ndarray:
    """Equal-width bin edges on [0, 1]: (n_bins + 1,), as ``np.linspace(0, 1, n_bins + 1)``."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, found {n_bins}")
    return np.linspace(0.0, 1.0, n_bins + 1)


def bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: i such that ``edges[i] < conf <= edges[i+1]``; (N,) int64.

    Confidence 0 goes to bin 0 (cannot happen for a softmax output); values a
    rounding error above 1 go to the last bin.
    """
    # searchsorted(side="left") returns the first edge >= conf, i.e. i + 1 for lo < conf <= hi;
    # comparing against the same linspace edges as the lab's loop keeps edge cases identical
    idx = np.searchsorted(bin_edges(n_bins), np.asarray(conf, dtype=np.float64), side="left") - 1
    return np.clip(idx, 0, n_bins - 1)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin statistics for reliability diagrams (equal-width bins).

    Returns ``edges`` (n_bins + 1,), ``count`` (n_bins,) int64, ``accuracy`` and
    ``confidence`` (n_bins,) float64 means over the bin (NaN for empty bins).
    """
    conf, correct = confidence_and_correct(probs, labels)
    b = bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(b, weights=correct, minlength=n_bins) / count
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
    return {"edges": bin_edges(n_bins), "count": count, "accuracy": acc, "confidence": mean_conf}


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error, equal-width bins: Σ_b (n_b / n)·|acc_b − conf_b|.

    Written as Σ_b |Σ_{i∈b} (correct_i − conf_i)| / n, the form the bootstrap uses.
    """
    conf, correct = confidence_and_correct(probs, labels)
    if conf.size == 0:
        return math.nan
    gaps = np.bincount(bin_index(conf, n_bins), weights=correct - conf, minlength=n_bins)
    return float(np.abs(gaps).sum() / conf.size)


def mce(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Maximum calibration error: max over non-empty equal-width bins of |acc_b − conf_b|."""
    rb = reliability_bins(probs, labels, n_bins)
    full = rb["count"] > 0
    return float(np.abs(rb["accuracy"][full] - rb["confidence"][full]).max()) if full.any() else math.nan


def adaptive_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Equal-mass ECE (ACE): rows sorted by confidence (stable sort, ties keep row order)
    and split into ``n_bins`` groups whose sizes differ by at most one
    (``np.array_split``); Σ_b (n_b / n)·|acc_b − conf_b| over those groups.
    """
    return adaptive_ece_from_confidence(*confidence_and_correct(probs, labels), n_bins)


def adaptive_ece_from_confidence(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """:func:`adaptive_ece` from top-1 confidence (N,) and correctness (N,) (the bootstrap resamples these)."""
    if conf.size == 0:
        return math.nan
    order = np.argsort(conf, kind="stable")
    gaps = [np.abs(np.sum(correct[g] - conf[g])) for g in np.array_split(order, n_bins)]
    return float(np.sum(gaps) / conf.size)


def ece_by_bins(probs: np.ndarray, labels: np.ndarray,
                bin_counts: Sequence[int] = (5, 10, 15, 20, 30, 50, 100)) -> dict[int, float]:
    """Binned ECE for several numbers of equal-width bins: {n_bins: ece}."""
    return {int(k): ece(probs, labels, int(k)) for k in bin_counts}


def _reflected_smece(conf: np.ndarray, correct: np.ndarray, sigma: float, grid: int) -> float:
    """∫_0^1 |(1/n) Σ_i (correct_i − conf_i)·K_σ(t, conf_i)| dt with the reflected Gaussian kernel.

    K_σ(t, u) = Σ_k φ_σ(t − u − 2k) + φ_σ(t + u − 2k) (Gaussian mirrored at 0 and 1).
    Each residual is split linearly between the two nearest of ``grid`` nodes
    on [0, 1] (keeps the estimate continuous in the confidences); the images
    make the kernel periodic with period 2, so the sum is a circular
    convolution over 2·(grid − 1) nodes, done by FFT; the integral is a trapezoid.
    """
    h = 1.0 / (grid - 1)
    pos = np.clip(conf, 0.0, 1.0) / h
    lo = np.minimum(np.floor(pos).astype(np.int64), grid - 2)
    w_hi = pos - lo
    r = correct - conf
    mass = (np.bincount(lo, weights=r * (1 - w_hi), minlength=grid)
            + np.bincount(lo + 1, weights=r * w_hi, minlength=grid)) / conf.size
    period = 2 * (grid - 1)
    # mirror image u -> 2 - u; the nodes at 0 and 1 are their own mirror, so their mass counts twice
    ext = np.concatenate([mass, mass[-2:0:-1]])
    ext[0] *= 2.0
    ext[grid - 1] *= 2.0
    d = np.arange(period, dtype=np.float64)
    d = np.minimum(d, period - d) * h  # circular distance in [0, 1]
    n_img = int(np.ceil(8 * sigma / 2.0)) + 1
    kern = sum(np.exp(-0.5 * ((d + 2.0 * k) / sigma) ** 2) for k in range(-n_img, n_img + 1))
    kern /= sigma * math.sqrt(2 * math.pi)
    smooth = np.fft.irfft(np.fft.rfft(ext) * np.fft.rfft(kern), n=period)[:grid]
    a = np.abs(smooth)
    return float(h * (a.sum() - 0.5 * (a[0] + a[-1])))


def smooth_ece(probs: np.ndarray, labels: np.ndarray, bandwidth: Optional[float] = None,
               grid: int = 2049) -> float:
    """Smooth ECE (smECE) of Błasiok & Nakkiran 2023 ("Smooth ECE: principled
    reliability diagrams via kernel smoothing") on top-1 confidence.

    smECE_σ = ∫_0^1 |r̂_σ(t)| dt with r̂_σ(t) = (1/n) Σ_i (correct_i − conf_i)·K_σ(t, conf_i)
    and K_σ the Gaussian kernel of width σ reflected at 0 and 1. With
    ``bandwidth`` None, σ is their automatic choice: the unique fixed point
    σ* = smECE_σ* (smECE_σ decreases in σ), found by bisection on log σ over
    [2/(grid−1), 1]; the value returned is smECE_σ*. If smECE at the smallest
    σ is already below it, that σ is used. A float ``bandwidth`` fixes σ.
    Unlike binned ECE the estimate is continuous in the confidences.
    """
    return smooth_ece_from_confidence(*confidence_and_correct(probs, labels), bandwidth, grid)


def smooth_ece_from_confidence(conf: np.ndarray, correct: np.ndarray, bandwidth: Optional[float] = None,
                               grid: int = 2049) -> float:
    """:func:`smooth_ece` from top-1 confidence (N,) and correctness (N,) (the bootstrap resamples these)."""
    if conf.size == 0:
        return math.nan
    if bandwidth is not None:
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, found {bandwidth}")
        return _reflected_smece(conf, correct, float(bandwidth), grid)
    lo, hi = math.log(2.0 / (grid - 1)), 0.0
    if _reflected_smece(conf, correct, math.exp(lo), grid) <= math.exp(lo):
        return _reflected_smece(conf, correct, math.exp(lo), grid)
    for _ in range(40):  # interval of width ln(1000)/2^40: σ* to ~1e-11 relative
        mid = 0.5 * (lo + hi)
        if _reflected_smece(conf, correct, math.exp(mid), grid) > math.exp(mid):
            lo = mid
        else:
            hi = mid
    return _reflected_smece(conf, correct, math.exp(0.5 * (lo + hi)), grid)


def nll_per_example(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """−log p(true class), probabilities clipped at 1e-12; (N,) float64."""
    probs = np.asarray(probs, dtype=np.float64)
    p_true = probs[np.arange(len(probs)), np.asarray(labels)]
    return -np.log(np.clip(p_true, EPS, None))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (nats), probabilities clipped at 1e-12."""
    return float(nll_per_example(probs, labels).mean()) if len(labels) else math.nan


def brier_per_example(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Multiclass Brier score of each row: Σ_c (p_c − onehot_c)²; (N,) float64 in [0, 2]."""
    probs = np.asarray(probs, dtype=np.float64)
    p_true = probs[np.arange(len(probs)), np.asarray(labels)]
    return np.einsum("ij,ij->i", probs, probs) - 2.0 * p_true + 1.0


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean multiclass Brier score."""
    return float(brier_per_example(probs, labels).mean()) if len(labels) else math.nan


# --------------------------------------------------------------------------- #
# Distributions (per row, nats; both inputs clipped at 1e-12, not renormalised)
# --------------------------------------------------------------------------- #
def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row, −Σ p log p; (N, C) -> (N,) nats."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, None)
    return -np.sum(p * np.log(p), axis=-1)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) of each row, Σ p log(p / q); (N, C), (N, C) -> (N,) nats."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, None)
    q = np.clip(np.asarray(q, dtype=np.float64), EPS, None)
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence of each row, ½KL(p‖m) + ½KL(q‖m) with m = (p + q)/2;
    (N, C), (N, C) -> (N,) nats in [0, ln 2]. The study's JS is the mean over rows."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, None)
    q = np.clip(np.asarray(q, dtype=np.float64), EPS, None)
    log_m = np.log(0.5 * (p + q))
    return 0.5 * np.sum(p * (np.log(p) - log_m), axis=-1) + 0.5 * np.sum(q * (np.log(q) - log_m), axis=-1)


def top1_agreement(p: np.ndarray, q: np.ndarray) -> float:
    """Share of rows whose argmax agrees; (N, C) probabilities or logits."""
    return float(np.mean(np.argmax(p, axis=-1) == np.argmax(q, axis=-1))) if len(p) else math.nan


# --------------------------------------------------------------------------- #
# Rank correlation (the teacher's per-class support vs F1)
# --------------------------------------------------------------------------- #
def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks (N,) float64; tied values share the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two (N,) samples: Pearson's r of their average ranks
    (as ``scipy.stats.spearmanr``); NaN for N < 2 or when either sample is constant."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"expected two (N,) samples of equal length, found {x.shape} and {y.shape}")
    if len(x) < 2:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator > 0 else math.nan


# --------------------------------------------------------------------------- #
# Tiers and the per-arm summary
# --------------------------------------------------------------------------- #
def tier_class_ids(class_tiers: np.ndarray) -> dict[str, np.ndarray]:
    """Class ids of each tier: (C,) tier codes -> {"head": ids, "mid": ids, "tail": ids}."""
    class_tiers = np.asarray(class_tiers)
    return {name: np.flatnonzero(class_tiers == code) for code, name in enumerate(TIERS)}


def _block(probs, labels, preds, class_ids, n_bins) -> dict:
    return {
        "n": int(len(labels)),
        "accuracy": accuracy(labels, preds),
        "macro_f1": macro_f1(labels, preds, class_ids),
        "ece": ece(probs, labels, n_bins),
        "adaptive_ece": adaptive_ece(probs, labels, n_bins),
        "mce": mce(probs, labels, n_bins),
        "brier": brier(probs, labels),
        "nll": nll(probs, labels),
        "smooth_ece": smooth_ece(probs, labels),
        "mean_confidence": float(np.max(probs, axis=1).mean()) if len(labels) else math.nan,
        "mean_entropy": float(entropy(probs).mean()) if len(labels) else math.nan,
    }


def summarize(probs: np.ndarray, labels: np.ndarray, preds: np.ndarray, tiers: np.ndarray,
              class_tiers: np.ndarray, n_bins: int = 15) -> dict[str, dict]:
    """All headline metrics, overall and per tier: {"overall", "head", "mid", "tail"}.

    Each block holds n, accuracy, macro_f1, ece, adaptive_ece, mce, brier, nll,
    smooth_ece, mean_confidence, mean_entropy. ``accuracy`` and ``macro_f1`` use
    the stored ``preds``; the calibration metrics use argmax(probs) (they differ
    only on fp16 ties). Overall macro F1 uses scikit-learn's default class set
    (classes present in labels or preds), as the course does, which reproduces
    the published 0.2638; a tier's macro F1 uses the tier's rows and
    ``class_ids`` = the tier's classes (docs/study.md §5). An empty tier gives NaNs.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels, preds, tiers = np.asarray(labels), np.asarray(preds), np.asarray(tiers)
    out = {"overall": _block(probs, labels, preds, None, n_bins)}
    for code, (name, ids) in enumerate(tier_class_ids(class_tiers).items()):
        rows = tiers == code
        out[name] = _block(probs[rows], labels[rows], preds[rows], ids, n_bins)
    return out
