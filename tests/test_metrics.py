"""kdlab.metrics against scikit-learn, scipy and plain loops written here."""

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import softmax as scipy_softmax
from scipy.stats import entropy as scipy_entropy
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import accuracy_score, f1_score, log_loss

from kdlab import metrics as m


def random_probs(rng, n, c, scale=2.0):
    return scipy_softmax(rng.normal(0.0, scale, (n, c)), axis=1)


def probs_with_confidence(conf, labels_correct, c=10):
    """Rows whose top-1 is class 0 with probability conf; label 0 if correct else 1."""
    conf = np.asarray(conf, dtype=np.float64)
    probs = np.tile(((1.0 - conf) / (c - 1))[:, None], (1, c))
    probs[:, 0] = conf
    labels = np.where(labels_correct, 0, 1)
    return probs, labels


def loop_ece_bins(probs, labels, n_bins):
    """The lab's definition, literally: lo < conf <= hi; returns (count, acc, conf) per bin."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (conf > lo) & (conf <= hi)
        if i == 0:
            inside |= conf == 0
        out.append((inside.sum(), correct[inside].mean() if inside.any() else np.nan,
                    conf[inside].mean() if inside.any() else np.nan))
    return out


def loop_ece(probs, labels, n_bins=15):
    n = len(labels)
    return sum(k / n * abs(a - c) for k, a, c in loop_ece_bins(probs, labels, n_bins) if k)


# --------------------------------------------------------------------------- #
def test_softmax_matches_scipy_and_is_stable():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 5, (50, 7))
    np.testing.assert_allclose(m.softmax(z), scipy_softmax(z, axis=1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.softmax(z, 2.5), scipy_softmax(z / 2.5, axis=1), rtol=0, atol=1e-15)
    big = np.array([[1000.0, 999.0, -1000.0]], dtype=np.float16).astype(np.float32)
    p = m.softmax(big)
    assert p.dtype == np.float64 and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        m.softmax(z, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    c = 30
    labels = rng.integers(0, c, 200)
    preds = np.where(rng.random(200) < 0.4, labels, rng.integers(0, c, 200))
    ids = np.sort(rng.choice(c + 5, 12, replace=False))  # some ids absent from the data
    for class_ids in (None, ids, np.arange(c)):
        ref = f1_score(labels, preds, average="macro", zero_division=0, labels=class_ids)
        assert abs(m.macro_f1(labels, preds, class_ids) - ref) <= 1e-12


def test_macro_f1_edge_cases():
    y = np.array([3, 3, 3])
    assert m.macro_f1(y, y) == 1.0 == f1_score(y, y, average="macro", zero_division=0)
    p = np.array([1, 1, 1])  # classes 1 and 3 present, both F1 0
    assert m.macro_f1(y, p) == 0.0 == f1_score(y, p, average="macro", zero_division=0)
    assert m.macro_f1(y, y, class_ids=[3, 4]) == 0.5
    assert isinstance(m.macro_f1(y, y), float)


def test_accuracy():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 5, 100), rng.integers(0, 5, 100)
    assert m.accuracy(y, p) == pytest.approx(accuracy_score(y, p), abs=1e-15)


def test_ece_matches_loop_including_bin_edges():
    rng = np.random.default_rng(2)
    probs = random_probs(rng, 500, 8)
    labels = rng.integers(0, 8, 500)
    for n_bins in (1, 5, 15, 30):
        assert m.ece(probs, labels, n_bins) == pytest.approx(loop_ece(probs, labels, n_bins), abs=1e-12)
    # confidences exactly on edges belong to the lower bin (lo < conf <= hi)
    edges = np.linspace(0, 1, 16)
    conf = np.repeat(edges[8:], 3)
    probs, labels = probs_with_confidence(conf, rng.random(conf.size) < 0.5, c=2)
    assert m.ece(probs, labels) == pytest.approx(loop_ece(probs, labels), abs=1e-12)
    assert m.bin_index(edges[8:9], 15)[0] == 7
    assert m.bin_index(np.array([0.0, 1.0]), 15).tolist() == [0, 14]


def test_reliability_bins_and_mce_match_loop():
    rng = np.random.default_rng(3)
    probs = random_probs(rng, 300, 5, scale=3.0)
    labels = rng.integers(0, 5, 300)
    rb = m.reliability_bins(probs, labels, 15)
    ref = loop_ece_bins(probs, labels, 15)
    assert rb["count"].tolist() == [r[0] for r in ref]
    np.testing.assert_allclose(rb["accuracy"], [r[1] for r in ref], rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(rb["confidence"], [r[2] for r in ref], rtol=0, atol=1e-12, equal_nan=True)
    assert np.isnan(rb["accuracy"][0])  # 5 classes: no confidence below 0.2
    assert rb["edges"].shape == (16,)
    ref_mce = max(abs(a - c) for k, a, c in ref if k)
    assert m.mce(probs, labels) == pytest.approx(ref_mce, abs=1e-12)


def test_adaptive_ece_matches_loop():
    rng = np.random.default_rng(4)
    probs = random_probs(rng, 103, 6)
    labels = rng.integers(0, 6, 103)
    conf, correct = probs.max(1), (probs.argmax(1) == labels)
    order = sorted(range(103), key=lambda i: conf[i])
    total, start = 0.0, 0
    for b in range(15):
        size = 103 // 15 + (1 if b < 103 % 15 else 0)
        g = order[start:start + size]
        start += size
        total += len(g) / 103 * abs(np.mean(correct[g]) - np.mean(conf[g]))
    assert m.adaptive_ece(probs, labels, 15) == pytest.approx(total, abs=1e-12)


def test_ece_by_bins():
    rng = np.random.default_rng(5)
    probs, labels = random_probs(rng, 200, 4), rng.integers(0, 4, 200)
    out = m.ece_by_bins(probs, labels, (5, 15))
    assert list(out) == [5, 15] and out[15] == m.ece(probs, labels, 15)


def test_brier_and_nll():
    rng = np.random.default_rng(6)
    probs, labels = random_probs(rng, 120, 7), rng.integers(0, 7, 120)
    onehot = np.eye(7)[labels]
    assert m.brier(probs, labels) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)), abs=1e-12)
    assert m.nll(probs, labels) == pytest.approx(log_loss(labels, probs, labels=range(7)), abs=1e-12)
    zero = np.array([[1.0, 0.0]])
    assert m.nll(zero, np.array([1])) == pytest.approx(-math.log(1e-12))


def test_entropy_kl_js_against_scipy():
    rng = np.random.default_rng(7)
    p, q = random_probs(rng, 40, 9), random_probs(rng, 40, 9)
    np.testing.assert_allclose(m.entropy(p), scipy_entropy(p, axis=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(m.kl_divergence(p, q), scipy_entropy(p, q, axis=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(m.js_divergence(p, q), jensenshannon(p, q, axis=1) ** 2, rtol=0, atol=1e-10)
    np.testing.assert_allclose(m.js_divergence(p, p), 0.0, atol=1e-15)
    disjoint = m.js_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert disjoint[0] == pytest.approx(math.log(2), abs=1e-9) and disjoint[0] <= math.log(2)


def test_top1_agreement():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    q = np.array([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1]])
    assert m.top1_agreement(p, q) == pytest.approx(2 / 3)


def test_tier_class_ids():
    out = m.tier_class_ids(np.array([2, 0, 1, 0, 2], dtype=np.int8))
    assert list(out) == ["head", "mid", "tail"]
    assert [v.tolist() for v in out.values()] == [[1, 3], [2], [0, 4]]


def test_summarize_uses_study_definitions_and_is_json_ready():
    rng = np.random.default_rng(10)
    c, n = 12, 600
    class_tiers = np.array([0] * 3 + [1] * 4 + [2] * 5, dtype=np.int8)
    labels = rng.integers(0, c, n)
    probs = random_probs(rng, n, c)
    preds = probs.argmax(1)
    tiers = class_tiers[labels]
    out = m.summarize(probs, labels, preds, tiers, class_tiers)
    json.dumps(out, allow_nan=False)
    assert list(out) == ["overall", "head", "mid", "tail"]
    assert out["overall"]["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro", zero_division=0),
                                                       abs=1e-12)
    for code, name in enumerate(("head", "mid", "tail")):
        rows = tiers == code
        ref = f1_score(labels[rows], preds[rows], average="macro", zero_division=0,
                       labels=np.flatnonzero(class_tiers == code))
        assert out[name]["macro_f1"] == pytest.approx(ref, abs=1e-12)
        assert out[name]["n"] == rows.sum()
        assert out[name]["ece"] == pytest.approx(loop_ece(probs[rows], labels[rows]), abs=1e-12)
    keys = {"n", "accuracy", "macro_f1", "ece", "adaptive_ece", "mce", "brier", "nll", "smooth_ece",
            "mean_confidence", "mean_entropy"}
    assert all(set(block) == keys for block in out.values())
    assert all(type(v) in (int, float) for block in out.values() for v in block.values())


# --------------------------------------------------------------------------- #
# smooth ECE
# --------------------------------------------------------------------------- #
def direct_smece(conf, correct, sigma):
    """∫_0^1 |(1/n) Σ_i r_i K(t, f_i)| dt with explicit mirror images, fine midpoint grid."""
    t = (np.arange(4000) + 0.5) / 4000
    r = correct - conf
    total = np.zeros_like(t)
    for k in range(-3, 4):
        for img in (conf + 2 * k, -conf + 2 * k):
            total += (np.exp(-0.5 * ((t[:, None] - img[None, :]) / sigma) ** 2) * r).sum(axis=1)
    total /= sigma * math.sqrt(2 * math.pi) * len(conf)
    return np.abs(total).mean()


def test_smooth_ece_fixed_bandwidth_matches_direct_integral():
    rng = np.random.default_rng(11)
    conf = rng.uniform(0.2, 1.0, 300)
    conf[:40] = 1.0  # saturated fp16 logits give confidence exactly 1: mass on the reflecting edge
    correct = (rng.random(300) < conf ** 1.5).astype(float)
    probs, labels = probs_with_confidence(conf, correct > 0)
    for sigma in (0.02, 0.1, 0.4):
        assert m.smooth_ece(probs, labels, bandwidth=sigma) == pytest.approx(
            direct_smece(conf, correct, sigma), rel=2e-3, abs=1e-5)


def test_smooth_ece_automatic_bandwidth_is_a_fixed_point():
    rng = np.random.default_rng(12)
    conf = rng.uniform(0.3, 1.0, 2000)
    probs, labels = probs_with_confidence(conf, rng.random(2000) < conf - 0.1)
    value = m.smooth_ece(probs, labels)
    assert m.smooth_ece(probs, labels, bandwidth=value) == pytest.approx(value, rel=1e-6)


def test_smooth_ece_calibrated_vs_overconfident():
    rng = np.random.default_rng(13)
    conf = rng.uniform(0.3, 1.0, 50_000)
    draw = rng.random(50_000)
    calibrated = m.smooth_ece(*probs_with_confidence(conf, draw < conf))
    overconfident = m.smooth_ece(*probs_with_confidence(conf, draw < conf - 0.15))
    assert calibrated < 0.01
    assert overconfident > 0.1
    # all residuals of one sign: smooth and binned ECE both equal the mean gap
    hopeless = probs_with_confidence(conf, np.zeros(50_000, bool))
    assert m.smooth_ece(*hopeless) == pytest.approx(conf.mean(), rel=1e-9)


def test_smooth_ece_is_continuous_where_binned_ece_jumps():
    n = 400
    edge = np.linspace(0, 1, 16)[12]  # 0.8, the upper edge of bin 11
    at_edge = np.arange(n) < n // 2
    correct = at_edge  # rows at the edge right, rows just above it (0.85, bin 12) wrong
    before = probs_with_confidence(np.where(at_edge, edge, 0.85), correct)
    after = probs_with_confidence(np.where(at_edge, edge + 1e-9, 0.85), correct)
    # moving half the rows by 1e-9 into bin 12 cancels their gaps against the wrong rows
    assert abs(m.ece(*before) - m.ece(*after)) > 0.1
    assert abs(m.smooth_ece(*before) - m.smooth_ece(*after)) < 1e-6
    assert abs(m.smooth_ece(*before, bandwidth=0.05) - m.smooth_ece(*after, bandwidth=0.05)) < 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_spearman_and_ranks_equal_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=40)  # many ties
    y = rng.random(40).round(1)
    np.testing.assert_array_equal(m.average_ranks(x), rankdata(x, method="average"))
    assert m.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_edge_cases():
    assert math.isnan(m.spearman(np.array([1, 1, 1]), np.array([0.1, 0.5, 0.9])))  # constant sample
    assert math.isnan(m.spearman(np.array([3.0]), np.array([1.0])))
    assert m.spearman(np.arange(5), np.arange(5) ** 3) == pytest.approx(1.0)
    assert m.spearman(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equal length"):
        m.spearman(np.arange(3), np.arange(4))
