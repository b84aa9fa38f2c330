"""Post-hoc temperature scaling (Guo et al. 2017) and the study's calibration fold.

One temperature T > 0 divides all logits; it is fitted by minimising the mean
negative log-likelihood on a held-out calibration fold, so argmax (and hence
accuracy and macro F1) is unchanged. T is parametrised as exp(log T) so it can
never reach 0 or go negative (a known pitfall of public implementations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from kdlab.metrics import softmax

GRAD_TOL = 1e-6  # |d NLL / d log T| below this at the end of the fit counts as converged


def calibration_fold(n: int, seed: int = 42 + 999, size: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions 0..n-1 into a calibration and an evaluation fold.

    ``perm = np.random.RandomState(seed).permutation(n)``; ``cal = perm[:size]``,
    ``eval = perm[size:]`` with ``size`` defaulting to ``n // 2`` (the homework's
    fold: seed 1041, 6,430 rows -> 3,215 / 3,215). Returns two int64 arrays in
    permutation order.
    """
    size = n // 2 if size is None else int(size)
    if not 0 <= size <= n:
        raise ValueError(f"calibration fold size must be in [0, {n}], found {size}")
    perm = np.random.RandomState(seed).permutation(n).astype(np.int64)
    return perm[:size], perm[size:]


@dataclass(frozen=True)
class TemperatureFit:
    """Result of :func:`fit_temperature`; NLLs are mean nats on the fitting data."""

    temperature: float
    log_temperature: float
    nll_before: float  # at T = 1
    nll_after: float  # at the fitted T
    converged: bool  # final |gradient w.r.t. log T| < GRAD_TOL and everything finite
    iterations: int  # LBFGS iterations used
    grad_norm: float  # final |d NLL / d log T|


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 200, tol: float = 1e-9,
                    strict: bool = False) -> TemperatureFit:
    """Fit T minimising mean CE(logits / T, labels) over log T with LBFGS.

    ``logits`` (N, C) any float dtype, ``labels`` (N,) ints. Computation in
    float64; ``torch.optim.LBFGS`` with strong-Wolfe line search, starting at
    T = 1, ``tolerance_grad = tol``, at most ``max_iter`` iterations. Converged
    means the final |d NLL / d log T| < GRAD_TOL with finite values. A fit that
    does not converge is returned with ``converged=False`` for the caller to
    report; ``strict=True`` raises ValueError instead. Note: on separable data
    the optimum is T -> 0 and the gradient vanishes there too, so such a fit can
    look converged at a tiny T with NLL near 0; check the fold, not just the flag.
    """
    # torch only here: every stage that merely applies a fitted T (evaluate, analyze@*, report) stays
    # free of its import cost
    import torch
    import torch.nn.functional as F

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[0] == 0:
        raise ValueError(f"expected logits (N, C) and labels (N,) with N > 0, found {tuple(z.shape)} and {tuple(y.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("logits contain NaN or inf")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be class ids in 0..{z.shape[1] - 1}")

    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    # tolerance_change stays 0: a flat loss near the optimum would otherwise stop LBFGS before
    # the gradient is small; the stopping rule is the gradient (or max_iter)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, tolerance_grad=tol,
                            tolerance_change=0.0, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z * torch.exp(-log_t), y)
        loss.backward()
        return loss

    with torch.no_grad():
        nll_before = float(F.cross_entropy(z, y))
    opt.step(closure)
    loss = closure().item()  # loss and gradient at the final point
    grad = abs(log_t.grad.item())
    log_value = float(log_t.detach())
    converged = math.isfinite(loss) and math.isfinite(log_value) and grad < GRAD_TOL
    fit = TemperatureFit(
        temperature=math.exp(log_value),
        log_temperature=log_value,
        nll_before=nll_before,
        nll_after=loss,
        converged=bool(converged),
        iterations=int(opt.state[log_t].get("n_iter", 0)),
        grad_norm=grad,
    )
    if strict and not fit.converged:
        raise ValueError(
            f"temperature scaling did not converge: |grad| = {grad:.3g} after {fit.iterations} LBFGS "
            f"iterations (T = {fit.temperature:.4g}); check the calibration fold (separable data drives T to 0)"
        )
    return fit


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities softmax(logits / T) in float64; (N, C) -> (N, C)."""
    return softmax(logits, temperature)
