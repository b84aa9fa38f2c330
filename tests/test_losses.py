"""Tests for kdlab.losses: values, gradients, conventions, the three bugs, dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlab.config import ArmConfig, ConfigError
from kdlab.losses import (BUGS, buggy_kd_loss, ce_loss, kd_loss, make_loss_fn, soft_target_loss,
                          top1_kd_loss, topk_targets)

B, C = 8, 13


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    s = (3 * torch.randn(B, C, generator=g, dtype=torch.float64)).requires_grad_(True)
    t = 3 * torch.randn(B, C, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (B,), generator=g)
    return s, t, y


def _np_log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _np_kd(s, t, y, T, a, ls=0.0):
    """The formula in float64 numpy: α·T²·mean_i Σ_c p(log p − log q) + (1−α)·CE_ls."""
    log_p, log_q = _np_log_softmax(t / T), _np_log_softmax(s / T)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=-1).mean()
    log_s = _np_log_softmax(s)
    nll = -log_s[np.arange(len(y)), y]
    ce = ((1 - ls) * nll - ls * log_s.mean(axis=-1)).mean()
    return a * T * T * kl + (1 - a) * ce


def _grad(loss_fn, s):
    s = s.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(s), s)
    return g


@pytest.mark.parametrize("T,a,ls", [(1.0, 0.7, 0.0), (4.0, 0.7, 0.0), (8.0, 0.9, 0.1), (2.5, 0.3, 0.0)])
def test_kd_value_matches_numpy_reference(batch, T, a, ls):
    s, t, y = batch
    got = kd_loss(s, t, y, temperature=T, alpha=a, label_smoothing=ls).item()
    ref = _np_kd(s.detach().numpy(), t.numpy(), y.numpy(), T, a, ls)
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("T,a", [(1.0, 0.7), (4.0, 0.7), (8.0, 0.9), (16.0, 0.5)])
def test_kd_gradient_matches_analytic(batch, T, a):
    s, t, y = batch
    g = _grad(lambda x: kd_loss(x, t, y, temperature=T, alpha=a), s)
    sd = s.detach()
    onehot = F.one_hot(y, C).double()
    expected = (a * T * (F.softmax(sd / T, -1) - F.softmax(t / T, -1)) / B
                + (1 - a) * (F.softmax(sd, -1) - onehot) / B)
    torch.testing.assert_close(g, expected, rtol=1e-6, atol=1e-12)


def test_alpha_zero_is_cross_entropy_and_alpha_one_ignores_labels(batch):
    s, t, y = batch
    assert torch.equal(kd_loss(s, t, y, temperature=4.0, alpha=0.0), F.cross_entropy(s, y))
    y2 = (y + 1) % C
    l1, l2 = kd_loss(s, t, y, alpha=1.0), kd_loss(s, t, y2, alpha=1.0)
    assert torch.equal(l1, l2)
    g1 = _grad(lambda x: kd_loss(x, t, y, alpha=1.0), s)
    g2 = _grad(lambda x: kd_loss(x, t, y2, alpha=1.0), s)
    assert torch.equal(g1, g2)


def test_no_bugs_equals_kd_loss(batch):
    s, t, y = batch
    for T, a in [(1.0, 0.7), (4.0, 0.9)]:
        assert torch.equal(buggy_kd_loss(s, t, y, T, a, bugs=()), kd_loss(s, t, y, T, a))
    with pytest.raises(ValueError, match="unknown bug"):
        buggy_kd_loss(s, t, y, bugs=("typo",))


@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_alone_changes_value_and_gradient(batch, bug):
    s, t, y = batch
    T, a = 4.0, 0.7
    good, bad = kd_loss(s, t, y, T, a), buggy_kd_loss(s, t, y, T, a, bugs=(bug,))
    assert torch.isfinite(bad)
    assert abs(bad.item() - good.item()) > 0.05 * abs(good.item())
    g_good = _grad(lambda x: kd_loss(x, t, y, T, a), s)
    g_bad = _grad(lambda x: buggy_kd_loss(x, t, y, T, a, bugs=(bug,)), s)
    assert (g_bad - g_good).norm() > 0.05 * g_good.norm()


def test_all_bugs_together_still_finite(batch):
    s, t, y = batch
    loss = buggy_kd_loss(s, t, y)
    assert torch.isfinite(loss) and torch.isfinite(_grad(lambda x: buggy_kd_loss(x, t, y), s)).all()


@pytest.mark.parametrize("k", [1, 2, 5, C - 1])
def test_topk_targets_rows_and_support(batch, k):
    _, t, _ = batch
    p = topk_targets(t, k, temperature=2.0)
    torch.testing.assert_close(p.sum(-1), torch.ones(B, dtype=p.dtype), rtol=0, atol=1e-12)
    assert ((p > 0).sum(-1) == k).all()
    kept = p.argsort(-1, descending=True)[:, :k]
    top = F.softmax(t / 2.0, -1).topk(k, -1).indices
    assert torch.equal(kept.sort(-1).values, top.sort(-1).values)


def test_topk_targets_limits(batch):
    _, t, _ = batch
    assert torch.equal(topk_targets(t, C, 3.0), F.softmax(t / 3.0, -1))
    assert torch.equal(topk_targets(t, C + 5, 3.0), F.softmax(t / 3.0, -1))
    assert torch.equal(topk_targets(t, 1, 3.0), F.one_hot(t.argmax(-1), C).double())
    with pytest.raises(ValueError):
        topk_targets(t, 0, 1.0)


@pytest.mark.parametrize("k", [1, 3])
def test_soft_target_loss_with_topk_is_finite(batch, k):
    s, t, y = batch
    target = topk_targets(t, k, 4.0)
    loss = soft_target_loss(s, target, y, 4.0, 0.7)
    g = _grad(lambda x: soft_target_loss(x, target, y, 4.0, 0.7), s)
    assert torch.isfinite(loss) and torch.isfinite(g).all()
    assert torch.equal(soft_target_loss(s, F.softmax(t / 4.0, -1), y, 4.0, 0.7), kd_loss(s, t, y, 4.0, 0.7))


def test_top1_kd_is_ce_on_teacher_argmax(batch):
    s, t, _ = batch
    assert torch.equal(top1_kd_loss(s, t), F.cross_entropy(s, t.argmax(-1)))
    assert torch.equal(top1_kd_loss(s, t, 0.1), F.cross_entropy(s, t.argmax(-1), label_smoothing=0.1))
    assert torch.equal(ce_loss(s, t.argmax(-1)), top1_kd_loss(s, t))


def test_make_loss_fn_dispatch(batch):
    s, t, y = batch
    fn = make_loss_fn(ArmConfig(name="x", loss="ce", label_smoothing=0.1))
    assert torch.equal(fn(s, None, y), F.cross_entropy(s, y, label_smoothing=0.1))
    fn = make_loss_fn(ArmConfig(name="x", loss="kd", kd_temperature=8.0, alpha=0.9))
    assert torch.equal(fn(s, t, y), kd_loss(s, t, y, 8.0, 0.9))
    fn = make_loss_fn(ArmConfig(name="x", loss="topk_kd", kd_temperature=2.0, alpha=0.7, top_k=3))
    assert torch.equal(fn(s, t, y), soft_target_loss(s, topk_targets(t, 3, 2.0), y, 2.0, 0.7))
    fn = make_loss_fn(ArmConfig(name="x", loss="top1_kd"))
    assert torch.equal(fn(s, t, y), F.cross_entropy(s, t.argmax(-1)))


@pytest.mark.parametrize("loss,extra", [("kd", {}), ("topk_kd", {"top_k": 5}), ("top1_kd", {})])
def test_make_loss_fn_missing_teacher(batch, loss, extra):
    s, _, y = batch
    fn = make_loss_fn(ArmConfig(name="x", loss=loss, **extra))
    with pytest.raises(ValueError, match="needs teacher logits"):
        fn(s, None, y)


@pytest.mark.parametrize("kwargs", [{"loss": "topk_kd"}, {"loss": "kd", "alpha": 1.5},
                                    {"loss": "kd", "kd_temperature": 0.0}, {"loss": "bogus"}])
def test_make_loss_fn_rejects_bad_arm(kwargs):
    with pytest.raises(ConfigError):
        make_loss_fn(ArmConfig(name="x", **kwargs))


@pytest.mark.parametrize("name", ["kd", "topk", "top1", "buggy", "fn_kd", "fn_topk"])
def test_teacher_logits_get_no_gradient(batch, name):
    s, t, y = batch
    t = t.clone().requires_grad_(True)
    loss = {
        "kd": lambda: kd_loss(s, t, y),
        "topk": lambda: soft_target_loss(s, topk_targets(t, 3, 4.0), y, 4.0, 0.7),
        "top1": lambda: top1_kd_loss(s, t),
        "buggy": lambda: buggy_kd_loss(s, t, y),
        "fn_kd": lambda: make_loss_fn(ArmConfig(name="x", loss="kd"))(s, t, y),
        "fn_topk": lambda: make_loss_fn(ArmConfig(name="x", loss="topk_kd", top_k=2))(s, t, y),
    }[name]()
    loss.backward()
    assert t.grad is None
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_shape_mismatch_is_reported(batch):
    s, t, y = batch
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(s, t[:, :-1], y)
