# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Week 6 lab: what does distillation actually transfer?
#
# A large teacher (Qwen3-32B + LoRA, temperature-scaled) has been distilled into a
# ModernBERT-base student on a 113-class complaint classifier with a long tail
# (head, mid and tail classes by training frequency). Today we take the pipeline's
# outputs apart in three acts:
#
# 1. **The teacher**: how good is it per tier, and what do its probabilities look like?
# 2. **The KD loss and the bug hunt**: the loss, and three bugs that train silently.
# 3. **Vanilla vs distilled**: per-tier F1, ECE and NLL with a paired bootstrap, the data
#    confound, calibration, and a deployment decision at a confidence threshold.
#
# **How to work.** Before each result there is a *Predict* prompt. Write your
# prediction down (a number, a sign, a ranking) *before* you run the next cell, then
# compare. Cells marked as exercises are yours to complete; folded *Reveal* blocks hold
# the discussion: open them after you have committed to an answer.
#
# **Where the numbers come from.** This notebook computes no metric of its own. Every
# number is read from the pipeline's outputs (`metrics/evaluate.json`,
# `results/<analysis>.json`) or computed by calling `kdlab` (`kdlab.metrics`,
# `kdlab.stats`, `kdlab.losses`), the same code that writes the paper's tables, so the
# notebook and the LaTeX tables cannot disagree.

# %% [markdown]
# ## Setup
#
# The next cell finds the repository root (the folder holding `dvc.yaml`, or
# `$KDLAB_ROOT` if you set it), loads `params.yaml` and the pipeline's outputs, and says
# which profile produced them. Run `dvc repro` (or `dvc exp run -S profile=demo`) first
# if it complains about a missing file.

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from kdlab import losses, metrics, stats
from kdlab.config import TIERS
from kdlab.outputs import open_outputs, with_ci


outputs = open_outputs()                 # the repository at or above the cwd, or $KDLAB_ROOT
root, cfg, layout = outputs.root, outputs.cfg, outputs.layout
evaluation = outputs.evaluation          # stage `evaluate`: metrics/evaluate.json
card = outputs.card                      # stage `prepare`: the data card
study = outputs.study                    # the stored predictions, for kdlab calls

BASE = cfg.baseline_arm  # the vanilla student (CE on hard labels)
KD = cfg.headline_arm    # the study's distilled student (params.yaml headline_arm)
SCOPES = ("overall", *TIERS)
pd.set_option("display.precision", 3)

print(outputs.describe(demo_advice="only the code paths and the reading of each table carry over."))

# %% [markdown]
# Three small helpers read the analyses' results (`results/<name>.json`, one per
# `analyze@<name>` stage) and turn their tables into data frames. Arms that are not
# available in this mode (in audit mode: arms the course never published) are left out
# of the frames and listed by `missing`, with the reason.

# %%
result, table, missing = outputs.result, outputs.table, outputs.missing


# %% [markdown]
# ---
# # Act 1: the teacher
#
# The teacher saw every class during training, but not equally often: a typical head
# class has many times more training examples than a typical tail class (the first line
# below says how many).
#
# **Predict.** Write down three numbers: the teacher's macro F1 on the head, the mid and
# the tail tier. Then: will the teacher be *more* or *less* certain (lower or higher
# entropy) on tail examples than on head examples?

# %%
support = pd.Series(card["train_class_counts"]).groupby(pd.Series(card["class_tiers"])).median()
print("median training examples per class: " + ", ".join(f"{t} {support[t]:,.0f}" for t in TIERS))
teacher_tiers = table("teacher_diag", "tiers")
teacher_tiers = teacher_tiers[teacher_tiers["system"] == "teacher"].set_index("scope").loc[list(SCOPES)]
display(pd.DataFrame({
    "n": teacher_tiers["n"],
    "macro F1": with_ci(teacher_tiers, "macro_f1", "macro_f1_low", "macro_f1_high"),
    "ECE": with_ci(teacher_tiers, "ece", "ece_low", "ece_high"),
    "NLL": with_ci(teacher_tiers, "nll", "nll_low", "nll_high"),
    "mean entropy (nats)": teacher_tiers["mean_entropy"],
    "mean top-1 prob.": teacher_tiers["mean_confidence"],
    "ECE unstable": teacher_tiers["ece_unstable"],
}))

# %% [markdown]
# "ECE unstable" marks a tier with fewer than
# `cfg.evaluation.min_tier_examples_per_bin` examples per ECE bin: its ECE is descriptive,
# not a stable estimate (a few hundred examples, or fewer, spread over
# `cfg.evaluation.ece_bins` bins).
#
# **The shape of the probabilities.** Averages hide the shape. Below: the mean of the
# teacher's five largest probabilities per example (sorted), per tier, and the
# distribution of the per-example entropy (`kdlab.metrics.entropy`).

# %%
p_teacher = study.probs("teacher")
entropy = metrics.entropy(p_teacher)
top5 = np.sort(p_teacher, axis=1)[:, ::-1][:, :5]  # each row's five largest probabilities, largest first

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for code, tier in enumerate(TIERS):
    rows = study.teacher.tiers == code
    ax1.plot(range(1, 6), top5[rows].mean(axis=0), marker="o", label=f"{tier} (n={rows.sum():,})")
    ax2.hist(entropy[rows], bins=30, alpha=0.5, density=True, label=tier)
ax1.set(xlabel="rank of the probability", ylabel="mean probability", xticks=range(1, 6),
        title="teacher: mean top-5 probabilities per tier")
ax2.set(xlabel="entropy of the teacher's distribution (nats)", ylabel="density", title="teacher: entropy per example")
ax1.legend()
ax2.legend()
fig.suptitle(f"profile {evaluation['profile']}: val split, temperature-scaled teacher", fontsize="small")
plt.show()

pd.DataFrame({tier: top5[study.teacher.tiers == code].mean(axis=0) for code, tier in enumerate(TIERS)},
             index=[f"top-{k}" for k in range(1, 6)]).T

# %% [markdown] tags=["reveal"] summary="Reveal: what the teacher's tiers tell us"
# The teacher is a long-tail model like any other: F1 falls steeply from head to tail,
# and its uncertainty rises with it. On tail examples the top-1 probability is lower and
# the mass is spread over the next few classes: that spread is exactly the "dark
# knowledge" distillation hopes to pass on (which wrong classes are *plausible*).
#
# Two cautions before we lean on it. A teacher that is itself weak on the tail can only
# hand over a weak tail signal. And the tail's ECE rests on very few examples per bin, so
# treat it as a description, not a measurement.

# %% tags=["solution"]
# Exercise 1. Recompute the teacher's tail macro F1 yourself with kdlab.metrics.macro_f1:
# restrict to the tail rows (study.scope_rows("tail")), use the teacher's predictions
# (study.teacher.preds) and pass the tail's class ids (study.scope_class_ids("tail")).
# Store it in `tail_f1`.
tail_rows = study.scope_rows("tail")
tail_f1 = metrics.macro_f1(study.labels[tail_rows], study.teacher.preds[tail_rows], study.scope_class_ids("tail"))

# %%
stored_tail_f1 = teacher_tiers.loc["tail", "macro_f1"]  # the value in results/teacher_diag.json
print(f"tail macro F1: recomputed {tail_f1:.4f}, stored by the pipeline {stored_tail_f1:.4f}")
assert np.isclose(tail_f1, stored_tail_f1), "the class ids of the tier matter: see docs/study.md section 5"

# %% [markdown]
# ---
# # Act 2: the KD loss and the bug hunt
#
# The distilled student minimises
#
# $$L = \alpha\,T^2\,\mathrm{KL}\big(\mathrm{softmax}(t/T)\,\|\,\mathrm{softmax}(s/T)\big) + (1-\alpha)\,\mathrm{CE}(s, y)$$
#
# with teacher logits $t$, student logits $s$, label $y$. In this study $\alpha$ weights
# the **soft** term (some libraries and papers use the opposite convention). In PyTorch the
# KL term is `F.kl_div(F.log_softmax(s/T), F.softmax(t/T), reduction="batchmean")`:
# `kl_div` wants *log*-probabilities as its first argument.
#
# A colleague's version, `kdlab.losses.buggy_kd_loss`, has three bugs, each of which still
# trains and still shows a decreasing loss curve:
#
# 1. `softmax_input`: `F.softmax` instead of `F.log_softmax` for the student;
# 2. `missing_t2`: the $T^2$ factor is gone;
# 3. `swapped_alpha`: `alpha * ce + (1 - alpha) * kl`.
#
# **Predict.** For each bug, at the study's $T$ and $\alpha$: (a) is the loss value still
# non-negative? (b) is the gradient with respect to the student logits larger, smaller or
# about the same as the correct one? (c) does it still point roughly the same way?

# %%
kd_arm = cfg.arm(KD)
T, ALPHA = kd_arm.kd_temperature, kd_arm.alpha
rows = np.random.default_rng(cfg.seed).choice(study.n, size=64, replace=False)
s0 = torch.tensor(study.predictions(BASE).logits32()[rows], dtype=torch.float64)  # the vanilla student's logits
t = torch.tensor(study.teacher.logits32()[rows], dtype=torch.float64)              # the teacher's logits
y = torch.tensor(study.labels[rows])
print(f"a batch of {len(rows)} val rows; T = {T}, alpha = {ALPHA}")


def value_and_grad(bugs=(), temperature=T, alpha=ALPHA):
    """The buggy loss at s0 with `bugs` switched on, and its gradient w.r.t. the student logits."""
    s = s0.clone().requires_grad_(True)
    loss = losses.buggy_kd_loss(s, t, y, temperature, alpha, bugs=tuple(bugs))
    loss.backward()
    return loss.detach(), s.grad


ref_value, ref_grad = value_and_grad(())
assert torch.isclose(ref_value, losses.kd_loss(s0, t, y, T, ALPHA))  # no bugs == the real kd_loss

variants = {"correct": (), **{bug: (bug,) for bug in losses.BUGS}, "all three": losses.BUGS}
rows_out = []
for name, bugs in variants.items():
    value, grad = value_and_grad(bugs)
    step = s0 - 1e-2 * grad / grad.norm()  # a small step down the variant's own gradient
    after = losses.buggy_kd_loss(step, t, y, T, ALPHA, bugs=tuple(bugs))
    rows_out.append({
        "variant": name,
        "loss value": value.item(),
        "|grad| / |correct grad|": (grad.norm() / ref_grad.norm()).item(),
        "cosine with correct grad": torch.nn.functional.cosine_similarity(grad.flatten(), ref_grad.flatten(), dim=0).item(),
        "decreases after a step": bool(after < value),
    })
bug_table = pd.DataFrame(rows_out).set_index("variant")
bug_table

# %% [markdown]
# Every variant decreases along its own gradient: a falling training curve proves
# nothing. The table shows what *does* differ: the scale of the value, the size of the
# gradient and its direction.
#
# **Why $T^2$?** The soft term's gradient shrinks like $1/T^2$ as the temperature grows
# (Hinton et al., 2015); the $T^2$ factor undoes that, so the soft and hard terms stay
# comparable whatever $T$ is. Let us see it on the same batch: the gradient size of the
# soft term alone ($\alpha = 1$) with and without the factor, against the CE term alone
# ($\alpha = 0$).

# %%
temps = [1.0, 2.0, 4.0, 8.0, 16.0]
soft = [value_and_grad((), temperature=tt, alpha=1.0)[1].norm().item() for tt in temps]
soft_no_t2 = [value_and_grad(("missing_t2",), temperature=tt, alpha=1.0)[1].norm().item() for tt in temps]
hard = value_and_grad((), alpha=0.0)[1].norm().item()

fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.plot(temps, soft, marker="o", label=r"soft term with $T^2$ (correct)")
ax.plot(temps, soft_no_t2, marker="s", label=r"soft term without $T^2$ (bug 2)")
ax.axhline(hard, color="0.4", ls="--", label="CE term")
ax.set(xscale="log", yscale="log", xlabel="distillation temperature T", ylabel="|gradient| on the batch",
       xticks=temps, xticklabels=[f"{tt:g}" for tt in temps])
ax.legend(fontsize="small")
plt.show()
pd.DataFrame({"T": temps, "with T^2": soft, "without T^2": soft_no_t2}).set_index("T")

# %% [markdown] tags=["reveal"] summary="Reveal: each bug's signature"
# * **`softmax_input`** is the nastiest. `kl_div` then computes
#   $\sum p_t(\log p_t - q_s)$ with *probabilities* $q_s$ where log-probabilities belong.
#   That is not a KL at all: its value can be negative, its gradient is bounded and it
#   fades as the student grows confident, and it points somewhere else than the true
#   KL gradient. It still rewards putting mass on the teacher's likely classes, which is
#   why the loss still falls.
# * **`missing_t2`** leaves the direction of the soft gradient alone but divides its size
#   by $T^2$: at $T = 4$ the soft term counts sixteen times less and training is nearly
#   plain cross-entropy. Harmless at $T = 1$.
# * **`swapped_alpha`** is still a perfectly valid KD mixture, just with weight
#   $1-\alpha$ on the soft term instead of $\alpha$. Harmless at $\alpha = 0.5$.
#
# The lesson for code review: a loss that decreases is not a loss that is right. Check
# the value on a case you can work out by hand (identical logits give KL = 0), and check
# the gradient's size as $T$ changes.

# %% tags=["solution"]
# Exercise 2. Two of the bugs are harmless at special settings. Use value_and_grad to
# compute the loss value of `missing_t2` at temperature 1 (`no_t2_at_1`) and of
# `swapped_alpha` at alpha 0.5 (`swapped_at_half`), and the correct loss at the same
# settings (`correct_at_1`, `correct_at_half`).
no_t2_at_1 = value_and_grad(("missing_t2",), temperature=1.0)[0]
correct_at_1 = value_and_grad((), temperature=1.0)[0]
swapped_at_half = value_and_grad(("swapped_alpha",), alpha=0.5)[0]
correct_at_half = value_and_grad((), alpha=0.5)[0]

# %%
print(f"missing_t2 at T=1: {no_t2_at_1.item():.6f} vs correct {correct_at_1.item():.6f}")
print(f"swapped_alpha at alpha=0.5: {swapped_at_half.item():.6f} vs correct {correct_at_half.item():.6f}")
assert torch.isclose(no_t2_at_1, correct_at_1) and torch.isclose(swapped_at_half, correct_at_half)

# %% [markdown]
# ---
# # Act 3: vanilla vs distilled, tier by tier
#
# Both students share data, seed, batches and recipe; only the loss differs. So any
# difference is the loss's doing, up to sampling noise in the *evaluation* set, which the
# paired bootstrap measures: resample the val examples, score both students on the same
# resample, look at the spread of the difference.
#
# **Predict.** For macro F1, ECE and NLL, write down the sign of (distilled − vanilla) on
# the head, the mid and the tail. Which tier's F1 interval will include zero? Will the
# calibration gain be larger or smaller than the F1 gain, relatively?

# %%
values = table("tiers", "values")
deltas = table("tiers", "deltas")
missing("tiers")
print(f"bootstrap: {result('tiers')['bootstrap']['resamples']:,} paired resamples, seed {result('tiers')['bootstrap']['seed']}")

shown = values[values["system"].isin(["teacher", BASE, KD]) & values["metric"].isin(["macro_f1", "ece", "nll"])]
shown.assign(value=with_ci(shown)).pivot(index=["metric", "system"], columns="scope", values="value")[list(SCOPES)]

# %%
kd_delta = deltas[(deltas["arm"] == KD) & deltas["metric"].isin(["macro_f1", "ece", "nll"])]
kd_delta.assign(delta=with_ci(kd_delta)).pivot(index="metric", columns="scope", values="delta")[list(SCOPES)]

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
for ax, metric in zip(axes, ["macro_f1", "ece", "nll"]):
    d = kd_delta[kd_delta["metric"] == metric].set_index("scope").loc[list(SCOPES)]
    err = np.vstack([d["estimate"] - d["low"], d["high"] - d["estimate"]])
    ax.errorbar(range(len(SCOPES)), d["estimate"], yerr=err, fmt="o", capsize=4)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set(xticks=range(len(SCOPES)), xticklabels=[f"{s}\nn={d.loc[s, 'n']:,}" for s in SCOPES],
           title=f"{KD} minus {BASE}: {metric}")
fig.suptitle(f"profile {evaluation['profile']}: paired bootstrap, 95% percentile intervals", fontsize="small")
plt.show()

# %% [markdown]
# **The bootstrap by hand.** The pipeline used many resamples; a few hundred show the
# idea. `kdlab.stats.draw_indices` draws resamples of row positions, and
# `kdlab.stats.paired_delta` scores both students on the *same* resamples.

# %% tags=["solution"]
# Exercise 3. On the tail rows only, draw 300 resamples (kdlab.stats.draw_indices with
# seed cfg.seed) and compute the paired interval of macro F1, distilled minus vanilla,
# with kdlab.stats.paired_delta (pass each student's preds in `a` and `b`, and the tail's
# labels and class ids as shared inputs). Store the Interval in `tail_interval`.
tail_rows = study.scope_rows("tail")
idx = stats.draw_indices(len(tail_rows), 300, cfg.seed)
tail_interval = stats.paired_delta(
    "macro_f1", idx,
    a={"preds": study.predictions(KD).preds[tail_rows]},
    b={"preds": study.predictions(BASE).preds[tail_rows]},
    labels=study.labels[tail_rows], class_ids=study.scope_class_ids("tail"), seed=cfg.seed)

# %%
stored = kd_delta[(kd_delta["metric"] == "macro_f1") & (kd_delta["scope"] == "tail")].iloc[0]
print(f"tail macro F1, {KD} - {BASE}: 300 resamples: {tail_interval.estimate:+.3f} "
      f"[{tail_interval.low:+.3f}, {tail_interval.high:+.3f}]")
print(f"                 pipeline ({result('tiers')['bootstrap']['resamples']:,} resamples): "
      f"{stored['estimate']:+.3f} [{stored['low']:+.3f}, {stored['high']:+.3f}]")

# %% [markdown] tags=["reveal"] summary="Reveal: where distillation helps"
# Read the F1 row first and the calibration rows second. In the published study the F1
# gain is small and concentrated where the data are: only the head's interval clears
# zero, while the mid and tail intervals straddle it, the tail's widely, because a
# couple of hundred examples spread over fifty-odd classes make every tail F1 noisy.
# The calibration rows tell a different story: ECE and NLL improve on *every* tier,
# and by much more, relatively, than F1 does. Distillation transfers the teacher's
# *uncertainty* far more reliably than its *accuracy*.
#
# Your 300-resample interval should sit close to the pipeline's: the estimate is the
# same, only the percentiles wobble. Few resamples are fine to see the idea; the paper's
# tables use the pipeline's count.

# %% [markdown]
# ## The data confound
#
# The course's week-1 vanilla student trained on the canonical train split only; both
# week-6 students train on train + test. Compare like with like before crediting KD.
#
# **Predict.** Which is larger: the macro-F1 gain from adding the test split to the
# training data (data lift), or the gain from distillation (KD lift)? By what factor?

# %%
lifts = table("confound", "lifts")
missing("confound")
print("roles:", result("confound")["roles"])
if lifts.empty:
    print("not computed in this mode: the train-only arm has no predictions (see above)")
else:
    display(lifts.assign(value=with_ci(lifts)).pivot(index="quantity", columns="scope", values="value")
            .reindex(index=["data_lift", "kd_lift", "ratio"], columns=list(SCOPES)).dropna(how="all"))

# %% [markdown] tags=["reveal"] summary="Reveal: data first, then distillation"
# In the published study the data lift is several times the KD lift. A comparison of
# "week-1 vanilla" against "week-6 distilled" would have credited distillation with
# gains that came from more training data. The ratio's interval can be very wide where
# the KD lift's interval reaches zero: dividing by a number near zero is unstable.

# %% [markdown]
# ## Calibration: is distillation the cheapest way to get it?
#
# Post-hoc temperature scaling fits a single number $T$ on half of val (the calibration
# half) and divides the logits by it; the argmax, and so F1, does not move. The table
# reads `metrics/evaluate.json` on the other half (the evaluation half).
#
# **Predict.** Rank the four rows (vanilla, vanilla + T, distilled, distilled + T) by ECE
# and by NLL.

# %%
def eval_half_row(system: str, record: dict, view: str) -> dict:
    o = record[view]["overall"]
    return {"system": system, "ECE": o["ece"], "NLL": o["nll"], "macro F1": o["macro_f1"],
            "fitted T": record["temperature"] if view == "eval_half_ts" else np.nan}


cal_rows = []
for arm in (BASE, KD):
    rec = evaluation["arms"][arm]
    if not rec["available"]:
        cal_rows.append({"system": arm, "ECE": rec["reason"]})
        continue
    cal_rows += [eval_half_row(arm, rec, "eval_half"), eval_half_row(f"{arm} + T", rec, "eval_half_ts")]
print(f"evaluation half: n = {evaluation['eval_half_size']:,} (fold seed {cfg.evaluation.calibration_fold_seed})")
pd.DataFrame(cal_rows).set_index("system")

# %% [markdown]
# The course condenses the table into one number: the share of distillation's ECE gain
# that temperature scaling reproduces on the vanilla student,
# (ECE(vanilla) − ECE(vanilla + T)) / (ECE(vanilla) − ECE(distilled)), and the same for NLL.
# Above 100% means the temperature beats distillation on that measure.
#
# **Predict.** Above or below 100% for ECE? For NLL?

# %%
shares = table("han_guo", "course_shares")
missing("han_guo")
if shares.empty:
    print("not computed in this mode (see above)")
else:
    display(shares.assign(share=with_ci(shares, "share", "share_low", "share_high"))
            .set_index("metric")[["quantity", "share", "denominator_nonpositive"]])
print("denominator_nonpositive: share of resamples in which distillation did not improve on vanilla at all;"
      " when it is large the ratio's interval is meaningless.")

# %% [markdown]
# Per tier, with the wider family of calibration measures (adaptive ECE, smooth ECE,
# Brier) and intervals, from `results/calibration_suite.json`:

# %%
suite = table("calibration_suite", "suite")
missing("calibration_suite")
ev = suite[suite["view"] == "eval"]
ev.pivot(index="system", columns="scope", values="ece").reindex(columns=list(SCOPES))

# %% [markdown] tags=["reveal"] summary="Reveal: one number does most of the job"
# A single temperature fitted on a few thousand held-out examples removes most of the
# vanilla student's miscalibration: in the published study vanilla + T ends up *better*
# calibrated than the distilled student (the share of KD's ECE gain that temperature
# scaling reproduces is above 100%). What temperature scaling cannot do is move the
# argmax: F1 is identical by construction, and NLL improves less than with distillation.
# If calibration is all you need, distillation is an expensive way to buy it.

# %% [markdown]
# ---
# ## Thresholds and coverage
#
# A deployed classifier does not have to answer every complaint: it can route the
# confident ones automatically and send the rest to a person. At a threshold $\tau$,
# *coverage* is the share of examples with top-1 probability $\ge \tau$, and the
# accuracy that matters is the accuracy on those covered examples.
#
# **Predict.** At $\tau = 0.7$: which student covers more examples, and which is more
# accurate on what it covers?

# %%
coverage = table("coverage", "coverage")
missing("coverage")
full = coverage[(coverage["view"] == "full") & coverage["system"].isin(["teacher", BASE, KD])]
full = full.assign(**{
    "coverage": with_ci(full, "coverage", "coverage_low", "coverage_high"),
    "accuracy on covered": with_ci(full, "accuracy", "accuracy_low", "accuracy_high"),
})
full.pivot(index="threshold", columns="system", values=["coverage", "accuracy on covered", "n_covered"])

# %% [markdown]
# The whole trade-off at once: the risk-coverage curve keeps the most confident
# examples first and reports the accuracy on what is kept. A curve that stays high for
# longer ranks its examples better by confidence.

# %%
curves = result("coverage")["curves"]["full"]
fig, ax = plt.subplots(figsize=(6, 3.8))
for system in ("teacher", BASE, KD):
    if system in curves:
        ax.plot(curves[system]["coverage"], curves[system]["accuracy"], label=system)
ax.axhline(cfg.evaluation.sla_accuracy, color="0.4", ls="--", lw=0.8, label="SLA accuracy")
ax.set(xlabel="coverage (share of examples answered)", ylabel="accuracy on answered examples",
       title=f"risk-coverage, full val (profile {evaluation['profile']})")
ax.legend()
plt.show()

# %% [markdown] tags=["reveal"] summary="Reveal: confidence that means something"
# A threshold on a badly calibrated model covers examples it should not: an
# overconfident student pushes many wrong answers above 0.7, so it covers *more* but is
# *less* accurate on what it covers. The distilled student's confidence is closer to its
# accuracy, so the same threshold buys a cleaner set. Read the intervals: above a high
# threshold only a few examples remain, and the covered accuracy is then a noisy number.

# %% [markdown]
# ## §3d The deployment decision
#
# The operations team asks for an automatic-routing rule with at least
# `cfg.evaluation.sla_accuracy` accuracy on routed complaints (the SLA). For each
# candidate, the SLA threshold is the lowest threshold that meets it; the pipeline
# reports it on the configured grid and on a fine grid of 0.01 steps, on the evaluation
# half (so that "+ T", whose temperature was fitted on the other half, competes fairly).
#
# **Predict.** Which model would you deploy: vanilla, vanilla + T, distilled or
# distilled + T? At which threshold, and what share of complaints would it route without
# a person? Write down your answer and one sentence of justification first.

# %%
print(f"SLA: accuracy >= {cfg.evaluation.sla_accuracy} on covered examples; grid {list(cfg.evaluation.thresholds)}")
sla = table("coverage", "sla")
candidates = [BASE, f"{BASE} + T", KD, f"{KD} + T"]
sla = sla[(sla["view"] == "eval") & sla["system"].isin(candidates)].set_index("system")
sla = sla[["sla_threshold", "sla_threshold_fine", "coverage_at_sla_fine", "accuracy_at_sla_fine", "n_covered_at_sla_fine"]]
for system in candidates:
    if system not in sla.index:
        print(f"{system}: {evaluation['arms'][system.split(' + ')[0]].get('reason', 'not available')}")
sla

# %% tags=["solution"]
# Exercise 4. Among the candidates in `sla` that reach the SLA at all (sla_threshold_fine
# is not missing), pick the one that routes the largest share of complaints at its own
# fine-grid SLA threshold (coverage_at_sla_fine). Store its name in `deploy` (None if
# no candidate reaches the SLA).
reaching = sla.dropna(subset=["sla_threshold_fine"])
deploy = reaching["coverage_at_sla_fine"].astype(float).idxmax() if len(reaching) else None

# %%
if deploy is None:
    print("No candidate reaches the SLA on this fold: route everything to a person, or renegotiate the SLA.")
else:
    pick = sla.loc[deploy]
    print(f"Deploy {deploy} at threshold {pick['sla_threshold_fine']:.2f}: it routes "
          f"{pick['coverage_at_sla_fine']:.1%} of complaints ({int(pick['n_covered_at_sla_fine'])} of "
          f"{result('coverage')['n_eval']}) at {pick['accuracy_at_sla_fine']:.1%} accuracy on the evaluation half.")

# %% [markdown] tags=["reveal"] summary="Reveal: how to decide"
# Compare models *at their own SLA threshold*, not at a common one: the question is how
# much traffic each can route at the required accuracy. A better-calibrated model makes
# the threshold mean what it says (routed accuracy close to the threshold), so the
# threshold you pick on validation data is more likely to hold in production. Two
# things to say in the decision memo: the interval around the covered accuracy (few
# examples sit above a high threshold), and that the tail classes are the ones most
# often sent to a person, which is the right failure mode for rare complaint types.

# %% [markdown]
# ---
# ## What to take away
#
# * Distillation moved the student's *probabilities* towards the teacher's much more than
#   it moved its *accuracy*; the F1 gain is small, tier-dependent and must be read with
#   its interval.
# * Check what else changed (here: the training data) before crediting the method.
# * A loss that trains is not a loss that is right: check values and gradients.
# * For calibration alone, a post-hoc temperature is the cheap baseline to beat.
