"""Paired-bootstrap speed: a scikit-learn loop vs kdlab.stats, on data the size of the real val set.

    python benchmarks/bootstrap.py

Synthetic stand-in for the study: 6,430 rows, 113 classes with a Zipf-like
long-tail label distribution (tier shares as in the real val set), tiers by
class frequency (20 head / 40 mid / 53 tail classes), two arms whose
predictions share most errors. Quantity:
the paired macro-F1 delta (arm a − arm b) overall (scikit-learn's default
class set) and per tier (tier rows, ``labels=`` the tier's classes), with the
study's seed 42 and each tier resampled within itself. The loop calls
``f1_score`` for both arms per resample per scope (8 calls per resample).
Times include drawing the indices. The script fails if kdlab's deltas at
1,000 resamples differ from the loop's by more than 1e-12.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_info

from kdlab import stats
from kdlab.config import TIERS

N, C, SEED = 6430, 113, 42
TIER_SIZES = (20, 40, 53)  # classes per tier
VAL_TIER_ROWS = (5155, 1065, 210)  # the real val set's rows per tier (docs/study.md §1)


def synthetic(seed: int = 0):
    """labels (N,), class_tiers (C,), tiers (N,), preds of two correlated arms (N,) each."""
    rng = np.random.default_rng(seed)
    # Zipf-like class frequencies, each tier's block scaled to the real val tier sizes
    freq = 1.0 / np.arange(1, C + 1)
    block = np.repeat(np.arange(3), TIER_SIZES)
    for code, share in enumerate(np.array(VAL_TIER_ROWS) / N):
        freq[block == code] *= share / freq[block == code].sum()
    labels = rng.choice(C, size=N, p=freq)
    rank = np.argsort(np.argsort(-np.bincount(labels, minlength=C), kind="stable"), kind="stable")
    class_tiers = np.repeat(np.arange(3), TIER_SIZES)[rank].astype(np.int8)
    # arm b: right with a probability falling with class rarity; arm a fixes some of b's errors
    p_right = 0.75 - 0.5 * rank / C
    wrong = rng.random(N) > p_right[labels]
    preds_b = np.where(wrong, rng.choice(C, size=N, p=freq), labels)
    fixed = wrong & (rng.random(N) < 0.08)
    preds_a = np.where(fixed, labels, preds_b)
    return labels, class_tiers, class_tiers[labels], preds_a, preds_b


def scopes(labels, tiers, class_tiers, preds_a, preds_b):
    """(name, labels, preds_a, preds_b, class_ids) for overall and each tier."""
    out = [("overall", labels, preds_a, preds_b, None)]
    for code, name in enumerate(TIERS):
        rows = tiers == code
        out.append((name, labels[rows], preds_a[rows], preds_b[rows], np.flatnonzero(class_tiers == code)))
    return out


def sklearn_loop(scope_list, resamples):
    deltas = {}
    for name, y, pa, pb, ids in scope_list:
        idx = stats.draw_indices(len(y), resamples, SEED)
        deltas[name] = np.array([
            f1_score(y[r], pa[r], average="macro", zero_division=0, labels=ids)
            - f1_score(y[r], pb[r], average="macro", zero_division=0, labels=ids)
            for r in idx
        ])
    return deltas


def kdlab_bootstrap(scope_list, resamples):
    """Resampled deltas per scope, and the seconds spent drawing indices (part of the total)."""
    deltas, drawing = {}, 0.0
    for name, y, pa, pb, ids in scope_list:
        start = time.perf_counter()
        idx = stats.draw_indices(len(y), resamples, SEED)
        drawing += time.perf_counter() - start
        deltas[name] = stats.paired_samples("macro_f1", idx, {"preds": pa}, {"preds": pb},
                                            labels=y, class_ids=ids)[1]
    return deltas, drawing


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {platform.python_version()}, numpy {np.__version__}; cpu_count {os.cpu_count()}, "
          f"usable CPUs {affinity}; thread pools {blas}")
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
          + "  (other processes slow the 2-thread BLAS products more than the 1-thread loop)")
    labels, class_tiers, tiers, preds_a, preds_b = synthetic()
    scope_list = scopes(labels, tiers, class_tiers, preds_a, preds_b)
    print("rows per scope: " + ", ".join(f"{s[0]} {len(s[1])}" for s in scope_list))

    t_loop, loop = timed(sklearn_loop, scope_list, 1000)
    t_k1, (k1, _) = timed(kdlab_bootstrap, scope_list, 1000)
    t_k10, (k10, draw10) = timed(kdlab_bootstrap, scope_list, 10_000)

    worst = max(float(np.max(np.abs(loop[name] - k1[name]))) for name in loop)
    print(f"\nmax |kdlab@1000 - loop@1000| over all resampled deltas: {worst:.2e}")
    if worst > 1e-12:
        raise SystemExit("FAIL: kdlab's resampled deltas differ from the scikit-learn loop")

    print(f"\n{'scope':8s} {'loop@1000 median [2.5, 97.5]':>34s} {'kdlab@10000 median [2.5, 97.5]':>34s}")
    for name in loop:
        a, b = stats.summarize(np.nan, loop[name], SEED), stats.summarize(np.nan, k10[name], SEED)
        print(f"{name:8s} {a.median:+.4f} [{a.low:+.4f}, {a.high:+.4f}]{'':9s}"
              f"{b.median:+.4f} [{b.low:+.4f}, {b.high:+.4f}]")

    print(f"\nsklearn loop, 1,000 resamples : {t_loop:8.2f} s  ({8 * 1000} f1_score calls)")
    print(f"kdlab.stats,  1,000 resamples : {t_k1:8.2f} s  ({t_loop / t_k1:.0f}x faster)")
    print(f"kdlab.stats, 10,000 resamples : {t_k10:8.2f} s  (of which drawing the indices "
          f"{draw10:.2f} s for {10_000 * sum(len(sc[1]) for sc in scope_list) / 1e6:.1f}M draws)")
    print(f"ratio loop@1000 / kdlab@10000 : {t_loop / t_k10:8.1f}x  (target >= 10x)")
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
