"""Selective prediction: coverage, accuracy at thresholds, the SLA threshold, the risk-coverage curve."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from kdlab import selective as m


def random_probs(rng, n, c, scale=2.0):
    return scipy_softmax(rng.normal(0.0, scale, (n, c)), axis=1)


def test_coverage_table_and_sla():
    rng = np.random.default_rng(8)
    probs, labels = random_probs(rng, 400, 3, scale=3.0), rng.integers(0, 3, 400)
    table = m.coverage_table(probs, labels, (0.5, 0.7, 0.9, 0.999999))
    conf, correct = probs.max(1), probs.argmax(1) == labels
    for row in table:
        covered = [i for i in range(400) if conf[i] >= row["threshold"]]
        assert row["n_covered"] == len(covered)
        assert row["coverage"] == pytest.approx(len(covered) / 400)
        if covered:
            assert row["accuracy"] == pytest.approx(np.mean(correct[covered]))
        else:
            assert math.isnan(row["accuracy"])
    fake = [{"threshold": t, "accuracy": a} for t, a in [(0.5, 0.9), (0.6, 0.96), (0.7, 0.94), (0.8, 0.97)]]
    assert m.sla_threshold(fake, 0.95) == 0.6
    assert m.sla_threshold(fake, 0.99) is None
    json.dumps(table)


def test_risk_coverage_curve():
    rng = np.random.default_rng(9)
    probs, labels = random_probs(rng, 50, 4), rng.integers(0, 4, 50)
    curve = m.risk_coverage_curve(probs, labels, n_points=11)
    conf, correct = probs.max(1), probs.argmax(1) == labels
    order = sorted(range(50), key=lambda i: -conf[i])
    assert math.isnan(curve["accuracy"][0]) and curve["n_covered"][0] == 0
    for c, k, acc in zip(curve["coverage"][1:], curve["n_covered"][1:], curve["accuracy"][1:]):
        assert k == math.ceil(round(c * 50, 9))
        assert acc == pytest.approx(np.mean(correct[order[:k]]))
    assert curve["accuracy"][-1] == pytest.approx(correct.mean())
