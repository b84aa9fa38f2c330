"""The vectorised bootstrap against a plain loop over the same resamples."""

import math

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import f1_score

from kdlab import metrics, stats


@pytest.fixture
def data():
    """Small classification problem: 25 classes, 150 rows, so resamples miss some classes."""
    rng = np.random.default_rng(0)
    n, c = 150, 25
    labels = rng.integers(0, c, n)
    probs_a = softmax(rng.normal(0, 2, (n, c)) + 3 * np.eye(c)[labels] * (rng.random((n, 1)) < 0.5), axis=1)
    probs_b = softmax(rng.normal(0, 2, (n, c)) + 2 * np.eye(c)[labels] * (rng.random((n, 1)) < 0.5), axis=1)
    return {"labels": labels, "a": probs_a, "b": probs_b, "teacher": softmax(rng.normal(0, 1, (n, c)), axis=1),
            "indices": stats.draw_indices(n, 200, seed=42)}


def test_draw_indices_deterministic_by_seed():
    idx = stats.draw_indices(50, 7, seed=42)
    assert idx.shape == (7, 50) and idx.dtype == np.int32
    np.testing.assert_array_equal(idx, stats.draw_indices(50, 7, seed=42))
    np.testing.assert_array_equal(idx, np.random.default_rng(42).integers(0, 50, (7, 50)))
    assert not np.array_equal(idx, stats.draw_indices(50, 7, seed=43))
    assert idx.min() >= 0 and idx.max() < 50


@pytest.mark.parametrize("class_ids", [None, np.arange(5, 20), np.arange(30)])
def test_macro_f1_equals_sklearn_on_every_resample(data, class_ids):
    y, preds = data["labels"], data["a"].argmax(1)
    got = stats.resampled("macro_f1", data["indices"], labels=y, preds=preds, class_ids=class_ids)
    ref = [f1_score(y[r], preds[r], average="macro", zero_division=0, labels=class_ids) for r in data["indices"]]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_macro_f1_presence_is_decided_per_resample():
    # tiny sample: resamples regularly miss whole classes, changing sklearn's default label set
    y = np.array([0, 1, 2, 3, 4, 4])
    p = np.array([0, 2, 2, 3, 0, 4])
    idx = stats.draw_indices(6, 150, seed=1)
    got = stats.resampled("macro_f1", idx, labels=y, preds=p)
    ref = [f1_score(y[r], p[r], average="macro", zero_division=0) for r in idx]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("metric, fn", [
    ("ece", metrics.ece), ("mce", metrics.mce), ("nll", metrics.nll), ("brier", metrics.brier),
    ("adaptive_ece", metrics.adaptive_ece),
])
def test_probability_metrics_equal_kdlab_metrics_on_every_resample(data, metric, fn):
    y, probs, idx = data["labels"], data["a"], data["indices"]
    got = stats.resampled(metric, idx, probs=probs, labels=y)
    np.testing.assert_allclose(got, [fn(probs[r], y[r]) for r in idx], rtol=0, atol=1e-12)
    assert stats.point_estimate(metric, probs=probs, labels=y) == pytest.approx(fn(probs, y), abs=1e-12)


def test_smooth_ece_loop_fallback(data):
    y, probs, idx = data["labels"], data["a"], data["indices"][:5]
    got = stats.resampled("smooth_ece", idx, probs=probs, labels=y)
    np.testing.assert_array_equal(got, [metrics.smooth_ece(probs[r], y[r]) for r in idx])


def test_ece_with_repeated_rows_goes_through_the_merged_path(data):
    # 150 rows built from 10 distinct probability vectors: examples get merged before the products
    rng = np.random.default_rng(5)
    probs = data["a"][rng.integers(0, 10, 150)]
    y = np.where(rng.random(150) < 0.5, probs.argmax(1), 0)
    idx = data["indices"]
    for metric, fn in (("ece", metrics.ece), ("mce", metrics.mce), ("nll", metrics.nll)):
        got = stats.resampled(metric, idx, probs=probs, labels=y)
        np.testing.assert_allclose(got, [fn(probs[r], y[r]) for r in idx], rtol=0, atol=1e-12)


def test_pairwise_and_mean_metrics(data):
    p, q, y, idx = data["teacher"], data["a"], data["labels"], data["indices"]
    preds = q.argmax(1)
    cases = {
        "js": (dict(p=p, q=q), lambda r: metrics.js_divergence(p[r], q[r]).mean()),
        "kl": (dict(p=p, q=q), lambda r: metrics.kl_divergence(p[r], q[r]).mean()),
        "agreement": (dict(p=p, q=q), lambda r: metrics.top1_agreement(p[r], q[r])),
        "accuracy": (dict(labels=y, preds=preds), lambda r: metrics.accuracy(y[r], preds[r])),
        "mean": (dict(values=metrics.entropy(q)), lambda r: metrics.entropy(q[r]).mean()),
    }
    for metric, (inputs, fn) in cases.items():
        np.testing.assert_allclose(stats.resampled(metric, idx, **inputs), [fn(r) for r in idx],
                                   rtol=0, atol=1e-12, err_msg=metric)


def test_chunking_does_not_change_results(data, monkeypatch):
    y, preds, idx = data["labels"], data["a"].argmax(1), data["indices"]
    whole = stats.resampled("macro_f1", idx, labels=y, preds=preds)
    ece = stats.resampled("ece", idx, probs=data["a"], labels=y)
    monkeypatch.setattr(stats, "CHUNK_ELEMENTS", 7 * 150)  # 7 resamples per chunk
    np.testing.assert_array_equal(stats.resampled("macro_f1", idx, labels=y, preds=preds), whole)
    np.testing.assert_allclose(stats.resampled("ece", idx, probs=data["a"], labels=y), ece, rtol=0, atol=1e-15)


def test_paired_delta_of_identical_systems_is_exactly_zero(data):
    y, preds = data["labels"], data["a"].argmax(1)
    for metric, a in (("macro_f1", {"preds": preds}), ("ece", {"probs": data["a"]})):
        iv = stats.paired_delta(metric, data["indices"], a, dict(a), seed=42, labels=y)
        assert (iv.estimate, iv.median, iv.low, iv.high) == (0.0, 0.0, 0.0, 0.0)


def test_paired_delta_uses_the_same_resamples(data):
    y, idx = data["labels"], data["indices"][:100]
    pa, pb = data["a"].argmax(1), data["b"].argmax(1)
    ids = np.arange(10)
    est, deltas = stats.paired_samples("macro_f1", idx, {"preds": pa}, {"preds": pb}, labels=y, class_ids=ids)
    ref = [f1_score(y[r], pa[r], average="macro", zero_division=0, labels=ids)
           - f1_score(y[r], pb[r], average="macro", zero_division=0, labels=ids) for r in idx]
    np.testing.assert_allclose(deltas, ref, rtol=0, atol=1e-12)
    assert est == pytest.approx(metrics.macro_f1(y, pa, ids) - metrics.macro_f1(y, pb, ids), abs=1e-12)
    iv = stats.paired_delta("macro_f1", idx, {"preds": pa}, {"preds": pb}, seed=42, labels=y, class_ids=ids)
    assert iv.median == pytest.approx(np.median(ref)) and iv.resamples == 100 and iv.seed == 42


def test_interval_contains_point_estimate_and_is_reproducible(data):
    y, probs = data["labels"], data["a"]
    idx = stats.draw_indices(len(y), 500, seed=7)
    iv = stats.bootstrap("nll", idx, seed=7, probs=probs, labels=y)
    assert iv.contains(iv.estimate) and iv.low < iv.median < iv.high
    assert iv.estimate == pytest.approx(metrics.nll(probs, y), abs=1e-12)
    again = stats.bootstrap("nll", stats.draw_indices(len(y), 500, seed=7), seed=7, probs=probs, labels=y)
    assert again == iv
    assert set(iv.as_dict()) == {"estimate", "median", "low", "high", "resamples", "seed", "level"}


def test_summarize_percentiles_and_nan():
    rng = np.random.default_rng(3)
    x = rng.normal(size=1000)
    iv = stats.summarize(0.1, x, seed=1)
    assert (iv.low, iv.median, iv.high) == tuple(np.percentile(x, [2.5, 50, 97.5]))
    with_nan = np.concatenate([x, [np.nan] * 10])
    assert stats.summarize(0.1, with_nan, seed=1).median == iv.median
    assert stats.summarize(0.1, with_nan, seed=1).resamples == 1010
    assert math.isnan(stats.summarize(0.0, np.full(5, np.nan), seed=None).median)
    assert not iv.contains(10.0)


def test_ratio_of_deltas():
    out = stats.ratio_of_deltas(np.array([0.13, 0.10, 0.2]), np.array([0.03, 0.05, 0.1]),
                                np.array([0.13, 0.10, 0.2]), np.array([0.05, 0.10, 0.15]))
    np.testing.assert_allclose(out[[0, 2]], [0.10 / 0.08, 2.0])
    assert math.isnan(out[1])


def test_bad_requests_raise(data):
    with pytest.raises(ValueError, match="unknown metric"):
        stats.resampled("f2", data["indices"], labels=data["labels"], preds=data["labels"])
    with pytest.raises(ValueError):
        stats.resampled("accuracy", data["indices"][:, :10], labels=data["labels"], preds=data["labels"])
    with pytest.raises(ValueError):
        stats.resampled("accuracy", data["indices"] + 1, labels=data["labels"], preds=data["labels"])
    with pytest.raises(ValueError, match="same rows"):
        stats.paired_delta("mean", data["indices"], {"values": np.ones(10)}, {"values": np.ones(150)})


def test_resampled_many_equals_one_call_per_request():
    rng = np.random.default_rng(7)
    n, c = 300, 6
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    preds = probs.argmax(1)
    idx = stats.draw_indices(n, 50, 3)
    requests = [("macro_f1", {"labels": labels, "preds": preds}), ("ece", {"probs": probs, "labels": labels}),
                ("nll", {"probs": probs, "labels": labels})]
    together = stats.resampled_many(requests, idx)
    for (metric, inputs), values in zip(requests, together):
        np.testing.assert_allclose(values, stats.resampled(metric, idx, **inputs), rtol=0, atol=1e-12)
