"""Distillation losses (pure torch, batch-mean reduction).

Shapes: student logits ``s`` (B, C) float, teacher logits ``t`` (B, C) float,
labels ``y`` (B,) int64. Teacher logits and target probabilities are data: they
are detached and never receive gradients.

Convention (this study): α weights the SOFT (KL) term and 1 − α the hard-label
CE. torchdistill and Stanton et al. 2021 use the opposite convention (their α
weights the hard term).

    L = α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y)

The T² factor follows Hinton et al. 2015 ("Distilling the Knowledge in a
Neural Network"): the gradients of the soft term scale as 1/T², so multiplying
by T² keeps its contribution comparable to the CE term across temperatures.
The gradient w.r.t. ``s`` is α·T·(softmax(s/T) − softmax(t/T))/B
+ (1 − α)·(softmax(s) − onehot(y))/B (without label smoothing).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from kdlab.config import ArmConfig, ConfigError

BUGS = ("softmax_input", "missing_t2", "swapped_alpha")
LossFn = Callable[[torch.Tensor, Optional[torch.Tensor], torch.Tensor], torch.Tensor]


def _check_pair(student_logits: torch.Tensor, other: torch.Tensor, what: str) -> None:
    if student_logits.dim() != 2 or other.shape != student_logits.shape:
        raise ValueError(f"expected student logits (B, C) and {what} of the same shape, "
                         f"found {tuple(student_logits.shape)} and {tuple(other.shape)}")


def ce_loss(student_logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """CE(s, y) = mean_i −log softmax(s_i)[y_i] (with optional label smoothing); = F.cross_entropy."""
    return F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)


def soft_target_loss(student_logits: torch.Tensor, target_probs: torch.Tensor, labels: torch.Tensor,
                     temperature: float, alpha: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """α·T²·KL(p ‖ softmax(s/T)) + (1 − α)·CE(s, y) for arbitrary target rows p (B, C).

    Rows of ``p`` must sum to 1 and may contain exact zeros (a p = 0 term contributes 0 to the
    KL and to its gradient, as F.kl_div uses xlogy). ``p`` is detached.
    """
    _check_pair(student_logits, target_probs, "target probabilities")
    target = target_probs.detach().to(student_logits.dtype)
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1), target, reduction="batchmean")
    soft = temperature * temperature * kl
    return alpha * soft + (1 - alpha) * ce_loss(student_logits, labels, label_smoothing)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float = 4.0, alpha: float = 0.7, label_smoothing: float = 0.0) -> torch.Tensor:
    """Hinton KD: α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y), batch mean.

    The KL is ``F.kl_div(F.log_softmax(s/T, -1), F.softmax(t/T, -1), reduction="batchmean")``;
    ``label_smoothing`` applies to the CE term only. Teacher logits are detached.
    """
    _check_pair(student_logits, teacher_logits, "teacher logits")
    target = F.softmax(teacher_logits.detach().to(student_logits.dtype) / temperature, dim=-1)
    return soft_target_loss(student_logits, target, labels, temperature, alpha, label_smoothing)


def topk_targets(teacher_logits: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """softmax(t/T) with only the top-k probabilities of each row kept, renormalised to sum 1.

    This is what an API exposing only top-k log-probabilities allows. ``k >= C`` returns the
    full softmax(t/T) unchanged; ``k = 1`` returns the one-hot of the teacher's argmax.
    """
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, found {k}")
    probs = F.softmax(teacher_logits.detach() / temperature, dim=-1)
    if k >= probs.shape[-1]:
        return probs
    values, indices = probs.topk(k, dim=-1)
    kept = torch.zeros_like(probs).scatter_(-1, indices, values)
    return kept / kept.sum(dim=-1, keepdim=True)


def top1_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Hard-label distillation (Busbridge et al. 2025): CE(s, argmax t). No soft targets, no y."""
    _check_pair(student_logits, teacher_logits, "teacher logits")
    return ce_loss(student_logits, teacher_logits.detach().argmax(dim=-1), label_smoothing)


def buggy_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                  temperature: float = 4.0, alpha: float = 0.7, bugs: tuple[str, ...] = BUGS) -> torch.Tensor:
    """The lab colleague's KD loss with any subset of its three silent bugs; ``bugs=()`` == kd_loss.

    - ``"softmax_input"``: F.kl_div gets softmax(s/T) where it expects log-probabilities, so it
      computes Σ p_t·(log p_t − q_s): minimising it maximises the overlap Σ p_t·q_s. That still
      moves student mass onto the teacher's likely classes (and the loss decreases), but it is not
      a KL: the value can be negative and the gradient is bounded and vanishes as q_s saturates.
    - ``"missing_t2"``: no T² factor, so the soft gradient shrinks by 1/T² (Hinton et al. 2015);
      at T = 4 the soft term weighs α/16 and training is nearly plain CE. Harmless at T = 1.
    - ``"swapped_alpha"``: alpha·CE + (1 − alpha)·KL. Still a valid KD mixture, just at weight
      1 − α on the soft term (0.3 instead of 0.7). Harmless at α = 0.5.
    """
    unknown = set(bugs) - set(BUGS)
    if unknown:
        raise ValueError(f"unknown bug(s) {sorted(unknown)}; expected some of {list(BUGS)}")
    _check_pair(student_logits, teacher_logits, "teacher logits")
    target = F.softmax(teacher_logits.detach().to(student_logits.dtype) / temperature, dim=-1)
    scaled = student_logits / temperature
    student_in = F.softmax(scaled, dim=-1) if "softmax_input" in bugs else F.log_softmax(scaled, dim=-1)
    kl = F.kl_div(student_in, target, reduction="batchmean")
    soft = kl if "missing_t2" in bugs else temperature * temperature * kl
    ce = ce_loss(student_logits, labels)
    if "swapped_alpha" in bugs:
        return alpha * ce + (1 - alpha) * soft
    return alpha * soft + (1 - alpha) * ce


def make_loss_fn(arm: ArmConfig) -> LossFn:
    """Return ``fn(student_logits, teacher_logits_or_None, labels) -> scalar`` for ``arm.loss``.

    "ce": CE with ``label_smoothing`` (teacher ignored); "kd": kd_loss(T, α); "topk_kd":
    soft_target_loss on topk_targets(t, top_k, T); "top1_kd": CE on the teacher's argmax.
    ``label_smoothing`` applies to every CE term. The arm is validated here, once.
    """
    where = f"arm {arm.name!r}"
    if arm.loss not in ("ce", "kd", "top1_kd", "topk_kd"):
        raise ConfigError(f"{where}: unknown loss {arm.loss!r}; expected ce, kd, top1_kd or topk_kd")
    if not 0.0 <= arm.label_smoothing < 1.0:
        raise ConfigError(f"{where}: label_smoothing must be in [0, 1), found {arm.label_smoothing}")
    if arm.loss in ("kd", "topk_kd"):
        if not arm.kd_temperature > 0:
            raise ConfigError(f"{where}: kd_temperature must be > 0, found {arm.kd_temperature}")
        if not 0.0 <= arm.alpha <= 1.0:
            raise ConfigError(f"{where}: alpha must be in [0, 1], found {arm.alpha}")
    if arm.loss == "topk_kd" and (arm.top_k is None or arm.top_k < 1):
        raise ConfigError(f"{where}: loss 'topk_kd' needs top_k >= 1, found {arm.top_k}")
    T, a, ls, k = arm.kd_temperature, arm.alpha, arm.label_smoothing, arm.top_k

    def teacher(t: Optional[torch.Tensor]) -> torch.Tensor:
        if t is None:
            raise ValueError(f"{where}: loss {arm.loss!r} needs teacher logits, got None")
        return t

    if arm.loss == "ce":
        def fn(s, t, y):
            return ce_loss(s, y, ls)
    elif arm.loss == "kd":
        def fn(s, t, y):
            return kd_loss(s, teacher(t), y, T, a, ls)
    elif arm.loss == "topk_kd":
        def fn(s, t, y):
            return soft_target_loss(s, topk_targets(teacher(t), k, T), y, T, a, ls)
    else:
        def fn(s, t, y):
            return top1_kd_loss(s, teacher(t), ls)
    fn.__name__ = fn.__qualname__ = f"{arm.loss}_loss[{arm.name}]"
    return fn
