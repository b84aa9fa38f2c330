"""Temperature scaling against the truth of synthetic data and an independent scipy fit."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from kdlab import metrics
from kdlab.calibration import TemperatureFit, apply_temperature, calibration_fold, fit_temperature


def sample_labels(rng, logits, temperature):
    """Labels drawn from softmax(logits / temperature), one per row."""
    p = metrics.softmax(logits, temperature)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


def scipy_nll(logits, labels, t):
    return -log_softmax(logits / t, axis=1)[np.arange(len(labels)), labels].mean()


def test_calibration_fold_is_the_homework_split():
    cal, ev = calibration_fold(6430)
    perm = np.random.RandomState(42 + 999).permutation(6430)
    assert len(cal) == len(ev) == 3215
    np.testing.assert_array_equal(cal, perm[:3215])
    np.testing.assert_array_equal(ev, perm[3215:])
    assert np.union1d(cal, ev).tolist() == list(range(6430))
    cal, ev = calibration_fold(11, seed=3, size=4)
    assert len(cal) == 4 and len(ev) == 7 and not set(cal) & set(ev)
    with pytest.raises(ValueError):
        calibration_fold(10, size=11)


@pytest.mark.parametrize("t_true", [0.6, 1.5, 3.0])
def test_recovers_known_temperature(t_true):
    rng = np.random.default_rng(int(t_true * 10))
    logits = rng.normal(0.0, 3.0, (20_000, 10))
    labels = sample_labels(rng, logits, t_true)
    fit = fit_temperature(logits, labels)
    assert isinstance(fit, TemperatureFit) and fit.converged
    assert fit.temperature == pytest.approx(t_true, rel=0.03)
    assert fit.log_temperature == pytest.approx(np.log(fit.temperature))
    assert fit.nll_after <= fit.nll_before
    assert fit.grad_norm < 1e-6 and 0 < fit.iterations <= 200


def test_matches_independent_scipy_fit_and_keeps_argmax():
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 4.0, (3000, 20)).astype(np.float16)  # fp16 like the stored logits
    labels = sample_labels(rng, logits.astype(np.float64), 2.2)
    fit = fit_temperature(logits, labels)
    ref = minimize_scalar(lambda t: scipy_nll(logits.astype(np.float64), labels, t),
                          bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-10})
    assert fit.temperature == pytest.approx(ref.x, rel=1e-4)
    assert fit.nll_after == pytest.approx(ref.fun, abs=1e-9)
    assert fit.nll_before == pytest.approx(scipy_nll(logits.astype(np.float64), labels, 1.0), abs=1e-12)
    probs = apply_temperature(logits, fit.temperature)
    np.testing.assert_array_equal(probs.argmax(axis=1), logits.astype(np.float64).argmax(axis=1))
    assert metrics.nll(probs, labels) == pytest.approx(fit.nll_after, abs=1e-10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_temperature_stays_positive_when_logits_are_anti_informative():
    # labels deliberately opposite to the logits: the best temperature is large, never negative
    rng = np.random.default_rng(2)
    logits = rng.normal(0.0, 3.0, (2000, 5))
    labels = logits.argmin(axis=1)
    fit = fit_temperature(logits, labels)
    assert fit.temperature > 0 and np.isfinite(fit.log_temperature)
    assert fit.nll_after <= fit.nll_before


def test_not_converged_is_reported_or_raised():
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 3.0, (2000, 10))
    labels = sample_labels(rng, logits, 2.0)
    fit = fit_temperature(logits, labels, max_iter=1)
    assert not fit.converged and fit.iterations == 1
    with pytest.raises(ValueError, match="did not converge"):
        fit_temperature(logits, labels, max_iter=1, strict=True)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        fit_temperature(np.array([[0.0, np.nan]]), np.array([0]))
    with pytest.raises(ValueError):
        apply_temperature(np.zeros((1, 2)), -1.0)
