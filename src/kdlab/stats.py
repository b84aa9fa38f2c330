"""One paired bootstrap for every metric, vectorised over resamples.

A resample is a row of ``indices`` (B, n): n example positions drawn with
replacement. Each chunk of rows becomes a count matrix ``counts`` (b, n)
(how often each example was drawn), and every metric with a vectorised form
is a function of matrix products ``counts @ features``:

* per-example means (nll, brier, accuracy, js, kl, agreement, mean):
  ``counts @ x / n``;
* binned ECE: ``Σ_bins |counts @ (onehot_bin · (correct − conf))| / n``;
  MCE divides each bin's sum by its count ``counts @ onehot_bin``;
* macro F1 from per-resample confusion counts: ``tp = counts @ (onehot(label) · correct)``
  and ``support + predicted = counts @ (onehot(label) + onehot(pred))`` (all F1 needs),
  then :func:`kdlab.metrics.f1_from_counts`, averaged over ``class_ids`` or,
  when None, over the classes present in that resample's labels or preds
  (scikit-learn's default, decided per resample).

Examples with identical feature rows are merged first (exact; see
``_merge_identical``). Counts and integer-valued products (macro F1) are
float32, which is exact while n < 2**23 (every partial sum is an integer
below 2**24) and twice as fast; real-valued ones run in float64.
adaptive_ece and smooth_ece have no such form and loop over the same
indices with :mod:`kdlab.metrics`.

Paired comparisons use the same indices for both systems; a tier is
bootstrapped by passing that tier's rows and drawing indices of its size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np

from kdlab import metrics

CHUNK_ELEMENTS = 1 << 23  # counts entries per chunk (32 MiB as float32): bounds memory for any B


def draw_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap indices (resamples, n) int32, deterministic by seed.

    ``np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.int32)``;
    the values equal those of the default int64 call with the same seed
    (and of ``resamples`` successive ``rng.integers(0, n, n)`` calls).
    """
    if n < 1 or resamples < 1:
        raise ValueError(f"need n >= 1 and resamples >= 1, found n={n}, resamples={resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.int32)


@dataclass(frozen=True)
class _Spec:
    """A metric ready to resample: ``finish(exact, real, rows) -> (b,)`` receives
    ``counts @ block`` for each of its ``exact`` (integer-valued, float32) and
    ``real`` (float64) feature blocks (n, k), and the chunk's index rows."""

    n: int
    exact: tuple[np.ndarray, ...]
    real: tuple[np.ndarray, ...]
    finish: Callable[[list, list, np.ndarray], np.ndarray]


def _linear(x: np.ndarray) -> _Spec:
    x = np.asarray(x, dtype=np.float64)[:, None]
    return _Spec(len(x), (), (x,), lambda e, r, rows: r[0][:, 0] / len(x))


def _prep_macro_f1(labels, preds, class_ids=None) -> _Spec:
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    # a class absent from the full sample is absent from every resample
    cols = np.union1d(labels, preds) if class_ids is None else np.asarray(class_ids, dtype=np.int64)
    lab = labels[:, None] == cols[None, :]
    tp = lab & (labels == preds)[:, None]
    # F1 needs only tp and support + predicted, so one block holds onehot(label) + onehot(pred)
    both = lab.astype(np.float32) + (preds[:, None] == cols[None, :])

    def finish(e, r, rows):
        tp_c, denom = e
        f1 = metrics.f1_from_counts(tp_c, denom, np.zeros_like(denom))
        if class_ids is not None:
            return f1.mean(axis=1) if len(cols) else np.full(len(rows), np.nan)
        present = denom > 0
        return (f1 * present).sum(axis=1) / present.sum(axis=1)

    return _Spec(len(labels), (tp.astype(np.float32), both), (), finish)


def _bins(probs, labels, n_bins) -> tuple[np.ndarray, np.ndarray]:
    conf, correct = metrics.confidence_and_correct(probs, labels)
    onehot = (metrics.bin_index(conf, n_bins)[:, None] == np.arange(n_bins)[None, :]).astype(np.float64)
    return onehot, onehot * (correct - conf)[:, None]


def _prep_ece(probs, labels, n_bins=15) -> _Spec:
    _, gap = _bins(probs, labels, n_bins)
    return _Spec(len(gap), (), (gap,), lambda e, r, rows: np.abs(r[0]).sum(axis=1) / len(gap))


def _prep_mce(probs, labels, n_bins=15) -> _Spec:
    onehot, gap = _bins(probs, labels, n_bins)

    def finish(e, r, rows):
        count, total = r
        g = np.abs(total) / np.where(count > 0, count, 1.0)
        return np.where(count > 0, g, -np.inf).max(axis=1)

    return _Spec(len(gap), (), (onehot, gap), finish)


def _prep_confidence_loop(fn: Callable[..., float], probs, labels, **kwargs) -> _Spec:
    """A metric of (top-1 confidence, correctness) only, looped over the resamples: the (N,)
    pair is computed once and gathered per resample, never the (N, C) probabilities."""
    conf, correct = metrics.confidence_and_correct(probs, labels)
    return _Spec(len(conf), (), (),
                 lambda e, r, rows: np.array([fn(conf[i], correct[i], **kwargs) for i in rows]))


def _argmax_agree(p, q) -> np.ndarray:
    return (np.argmax(p, axis=-1) == np.argmax(q, axis=-1)).astype(np.float64)


_SPECS: dict[str, Callable[..., _Spec]] = {
    "macro_f1": _prep_macro_f1,
    "accuracy": lambda labels, preds: _linear(np.asarray(labels) == np.asarray(preds)),
    "ece": _prep_ece,
    "mce": _prep_mce,
    "nll": lambda probs, labels: _linear(metrics.nll_per_example(probs, labels)),
    "brier": lambda probs, labels: _linear(metrics.brier_per_example(probs, labels)),
    "js": lambda p, q: _linear(metrics.js_divergence(p, q)),
    "kl": lambda p, q: _linear(metrics.kl_divergence(p, q)),
    "agreement": lambda p, q: _linear(_argmax_agree(p, q)),
    "mean": lambda values: _linear(values),
    # no matrix form: loop over the same indices (seconds per 1,000 resamples, not milliseconds)
    "adaptive_ece": lambda probs, labels, n_bins=15: _prep_confidence_loop(
        metrics.adaptive_ece_from_confidence, probs, labels, n_bins=n_bins),
    "smooth_ece": lambda probs, labels, bandwidth=None: _prep_confidence_loop(
        metrics.smooth_ece_from_confidence, probs, labels, bandwidth=bandwidth),
}
METRICS = tuple(_SPECS)


def _prepare(metric: str, inputs: dict) -> _Spec:
    if metric not in _SPECS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    return _SPECS[metric](**inputs)


def _stack(blocks: list[np.ndarray]) -> tuple[Optional[np.ndarray], list[slice]]:
    """Concatenate feature blocks column-wise (one product per chunk for all of them);
    returns the matrix (None if there are no blocks) and each block's columns."""
    ends = np.cumsum([0] + [blk.shape[1] for blk in blocks])
    where = [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]
    return (np.concatenate(blocks, axis=1) if blocks else None), where


def _merge_identical(*mats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group examples whose feature rows are identical in every matrix.

    Returns ``group`` (n,) int64 ids and ``first`` (G,), one example of each group.
    counts @ F equals group_counts @ F[first] with group_counts[g] the draws of
    group g, so the products shrink from n rows to G (macro F1 features depend
    only on (label, pred) pairs: G is far below n).
    """
    # exact grouping by the rows' bytes (np.unique(axis=0) sorts rows and is ~30x slower)
    raw = np.concatenate([np.ascontiguousarray(m).view(np.uint8) for m in mats], axis=1)
    ids: dict[bytes, int] = {}
    group = np.array([ids.setdefault(row.tobytes(), len(ids)) for row in raw], dtype=np.int64)
    first = np.zeros(len(ids), dtype=np.int64)
    first[group] = np.arange(len(group))  # any member represents its group: their rows are equal
    return group, first


def _run(specs: list[_Spec], indices: np.ndarray) -> list[np.ndarray]:
    """Every spec's metric on every resample (row of ``indices``): one (B,) array per spec."""
    n = specs[0].n
    indices = np.asarray(indices)
    if any(s.n != n for s in specs) or indices.ndim != 2 or indices.shape[1] != n:
        raise ValueError(f"indices must be (B, n) with n the rows of every input ({[s.n for s in specs]}), "
                         f"found {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"indices must lie in 0..{n - 1}")
    if n >= 1 << 23:
        raise ValueError("counts are float32, exact only for n < 2**23")
    f32, cols32 = _stack([b for s in specs for b in s.exact])
    f64, cols64 = _stack([b for s in specs for b in s.real])
    group, width = None, n
    mats = [m for m in (f32, f64) if m is not None]
    if mats and len(indices) > 1:
        merged, first = _merge_identical(*mats)
        if len(first) < 0.9 * n:  # merging costs a gather per draw: only when it pays
            group, width = merged, len(first)
            f32 = f32[first] if f32 is not None else None
            f64 = f64[first] if f64 is not None else None
    step = max(1, min(len(indices), CHUNK_ELEMENTS // n))
    counts = np.empty((step, width), dtype=np.float32)
    out: list[list[np.ndarray]] = [[] for _ in specs]
    for start in range(0, len(indices), step):
        rows = indices[start:start + step]
        b = len(rows)
        for i, row in enumerate(rows):  # a bincount per row beats one over offset rows (cache)
            counts[i] = np.bincount(row if group is None else group.take(row), minlength=width)
        p32 = counts[:b] @ f32 if f32 is not None else None
        p64 = counts[:b].astype(np.float64) @ f64 if f64 is not None else None
        i32 = i64 = 0
        for acc, spec in zip(out, specs):
            e = [p32[:, cols32[i32 + j]] for j in range(len(spec.exact))]
            r = [p64[:, cols64[i64 + j]] for j in range(len(spec.real))]
            i32, i64 = i32 + len(spec.exact), i64 + len(spec.real)
            acc.append(spec.finish(e, r, rows))
    return [np.concatenate(parts) if parts else np.empty(0) for parts in out]


def resampled(metric: str, indices: np.ndarray, **inputs) -> np.ndarray:
    """The metric on every resample: (B,) float64.

    Inputs by metric: macro_f1 (labels, preds, class_ids=None); accuracy
    (labels, preds); ece, mce, adaptive_ece (probs, labels, n_bins=15);
    smooth_ece (probs, labels, bandwidth=None); nll, brier (probs, labels);
    js, kl, agreement (p, q); mean (values). Definitions as in kdlab.metrics.
    """
    return _run([_prepare(metric, inputs)], indices)[0]


def resampled_many(requests: list[tuple[str, dict]], indices: np.ndarray) -> list[np.ndarray]:
    """Several (metric, inputs) requests on the same resamples in one pass: a (B,) array each.

    Equal to ``[resampled(m, indices, **inputs) for m, inputs in requests]``,
    but each resample's counts are built once and shared by every request,
    which is what makes many systems x metrics x tiers affordable.
    """
    if not requests:
        return []
    return _run([_prepare(metric, inputs) for metric, inputs in requests], indices)


def _full(spec: _Spec) -> float:
    """The metric on the full sample: every example counted once, same code path."""
    return float(_run([spec], np.arange(spec.n)[None, :])[0][0])


def point_estimate(metric: str, **inputs) -> float:
    """The metric on the full sample (every example counted once), through the bootstrap's code."""
    return _full(_prepare(metric, inputs))


# --------------------------------------------------------------------------- #
# Intervals
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Interval:
    """A bootstrap result: the full-sample estimate, the resamples' median and
    percentile interval [low, high] at ``level``."""

    estimate: float
    median: float
    low: float
    high: float
    resamples: int
    seed: Optional[int]
    level: float = 0.95

    def contains(self, x: float) -> bool:
        return bool(self.low <= x <= self.high)

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(estimate: float, samples: np.ndarray, seed: Optional[int], level: float = 0.95) -> Interval:
    """Median and the (1 − level)/2, (1 + level)/2 percentiles of ``samples``
    (numpy's linear interpolation), ignoring NaN resamples; all NaN if none is finite."""
    samples = np.asarray(samples, dtype=np.float64)
    finite = samples[~np.isnan(samples)]
    if finite.size:
        q = 100.0 * (1.0 - level) / 2.0
        low, median, high = np.percentile(finite, [q, 50.0, 100.0 - q])
    else:
        low = median = high = math.nan
    return Interval(float(estimate), float(median), float(low), float(high), int(samples.size),
                    None if seed is None else int(seed), float(level))


def bootstrap(metric: str, indices: np.ndarray, *, seed: Optional[int] = None, level: float = 0.95,
              **inputs) -> Interval:
    """Interval of one system's metric; ``seed`` is only recorded (it drew ``indices``)."""
    spec = _prepare(metric, inputs)
    return summarize(_full(spec), _run([spec], indices)[0], seed, level)


def paired_samples(metric: str, indices: np.ndarray, a: dict, b: dict, **shared) -> tuple[float, np.ndarray]:
    """Full-sample delta a − b and its (B,) resampled deltas on the same indices."""
    sa, sb = _prepare(metric, {**shared, **a}), _prepare(metric, {**shared, **b})
    if sa.n != sb.n:
        raise ValueError(f"systems a and b have {sa.n} and {sb.n} rows; a paired bootstrap needs the same rows")
    ra, rb = _run([sa, sb], indices)
    return _full(sa) - _full(sb), ra - rb


def paired_delta(metric: str, indices: np.ndarray, a: dict, b: dict, *, seed: Optional[int] = None,
                 level: float = 0.95, **shared) -> Interval:
    """Interval of metric(a) − metric(b), both systems on the same resamples.

    ``a`` and ``b`` hold each system's own inputs (e.g. ``{"probs": ..., "preds": ...}``),
    ``shared`` the common ones (e.g. ``labels=``, ``class_ids=``).
    """
    estimate, deltas = paired_samples(metric, indices, a, b, **shared)
    return summarize(estimate, deltas, seed, level)


def ratio_of_deltas(num_a: np.ndarray, num_b: np.ndarray, den_a: np.ndarray, den_b: np.ndarray) -> np.ndarray:
    """(num_a − num_b) / (den_a − den_b) per resample; NaN where the denominator is 0.

    Arrays (B,) from :func:`resampled` on the same indices, e.g. the share of
    KD's ECE gain reproduced by temperature scaling,
    (ECE_v − ECE_vT) / (ECE_v − ECE_kd). Heavy-tailed when the denominator's
    interval reaches 0; summarise with :func:`summarize` (NaN-aware).
    """
    num = np.asarray(num_a, dtype=np.float64) - np.asarray(num_b, dtype=np.float64)
    den = np.asarray(den_a, dtype=np.float64) - np.asarray(den_b, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den != 0)
