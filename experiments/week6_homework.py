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
# # Week 6 homework: diagnose, shortlist, test, decide
#
# The lab showed *that* distillation changed the student. This homework asks you to argue
# from the measurements like a reviewer would:
#
# * **Part 0** diagnoses the teacher: what can it hand over, and where is it weak?
# * **Part 1** shortlists a recipe among every arm the pipeline measured, including the
#   course's four *wildcards* (which the course could only predict; here they were trained).
# * **Part 2** runs two published claims against our numbers: Stanton et al. (2021) on
#   fidelity and Han Guo et al. (2021) on calibration transfer.
# * **Part 3** answers the coverage questions for a deployment.
# * **Part 4** is the memo.
#
# As in the lab: **predict, then observe.** Write your prediction in the markdown cell
# *before* running the cell that answers it. Exercise cells ask for a few lines of code;
# everything they need is already loaded. No metric is computed here by hand: the
# numbers come from the pipeline's outputs or from `kdlab` functions.

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from kdlab import io, stats
from kdlab.config import TIERS
from kdlab.outputs import open_outputs, with_ci


outputs = open_outputs()                 # the repository at or above the cwd, or $KDLAB_ROOT
root, cfg, layout = outputs.root, outputs.cfg, outputs.layout
evaluation = outputs.evaluation          # stage `evaluate`: metrics/evaluate.json
card = outputs.card                      # stage `prepare`: the data card
teacher_card = io.read_json(layout.teacher_card)              # stage `teacher`
study = outputs.study                    # the stored predictions, for kdlab calls

BASE = cfg.baseline_arm  # the vanilla student
KD = cfg.headline_arm    # the study's distilled student (params.yaml headline_arm)
SCOPES = ("overall", *TIERS)
pd.set_option("display.precision", 3)

print(outputs.describe(demo_advice="answer the questions for the numbers you see, and for the real ones in "
                                  "train or audit mode."))

result, table, missing = outputs.result, outputs.table, outputs.missing


# %% [markdown]
# ---
# ## Part 0: diagnose the teacher
#
# A student can only learn what the teacher knows. Two questions: how does the
# temperature-scaled teacher (the one the students learn from) differ from the raw one,
# and how does the teacher's per-class F1 depend on how many training examples the class
# had?
#
# **Predict.** (a) Temperature scaling divides the logits by one number $T$. Which of
# macro F1, ECE, NLL and entropy can it change? (b) Will the teacher's per-class F1 rise
# smoothly with training support, or is there a cliff?

# %%
diag = table("teacher_diag", "tiers").set_index(["system", "scope"])
cols = ["macro_f1", "ece", "nll", "mean_entropy", "mean_confidence"]
print(f"fitted temperature of the teacher (teacher card): {teacher_card['temperature']:.4f}")
diag[cols].unstack("system").loc[list(SCOPES)]

# %%
per_class = pd.DataFrame(result("teacher_diag")["per_class"])
fig, ax = plt.subplots(figsize=(6, 3.8))
for tier in TIERS:
    sub = per_class[per_class["tier"] == tier]
    ax.scatter(sub["train_support"].clip(lower=1), sub["f1"], s=16, label=tier)
ax.set(xscale="log", xlabel="training examples of the class (log scale)", ylabel="teacher F1 on val",
       title=f"per-class teacher F1 vs support (Spearman {result('teacher_diag')['per_class_spearman']:.2f})")
ax.legend(title="tier")
plt.show()
table("teacher_diag", "classes").set_index("tier")

# %% tags=["solution"]
# Exercise 0. From `per_class`, list the tail classes the teacher never gets right
# (F1 = 0) although they appear in val (val_support > 0), sorted by training support,
# largest first, with columns label, train_support, val_support. Store the frame in
# `blind_spots`.
blind_spots = (per_class[(per_class["tier"] == "tail") & (per_class["f1"] == 0) & (per_class["val_support"] > 0)]
               .sort_values("train_support", ascending=False)[["label", "train_support", "val_support"]])

# %%
print(f"{len(blind_spots)} tail classes with F1 = 0 on val")
blind_spots.head(10)

# %% [markdown]
# **Q0.** In three sentences: what is this teacher good at, what is it bad at, and what
# does that predict for a distilled student's tail F1? Is the teacher's own val ECE a
# fair number, given what you know about where its temperature was fitted?

# %% [markdown] tags=["solution"]
# ### Answer to Q0
# The teacher is strong on the head and weak on the tail, and its per-class F1 tracks
# training support: a student that imitates it inherits the same ordering, so expect
# little tail F1 to cross. Temperature scaling leaves F1 and accuracy untouched and
# changes ECE, NLL and entropy only. If the temperature was fitted on the validation
# split, the teacher's val ECE is in-sample and flatters the teacher.

# %% [markdown]
# ---
# ## Part 1: a recipe shortlist over the measured arms
#
# The course could train only a few students; the pipeline trained (or, in audit mode,
# downloaded) every arm of `params.yaml`: the $T_d \times \alpha$ grid, the ablations,
# and the course's four **wildcards**, which the course could only predict: $T_d = 16$,
# $\alpha = 0.5$, the distilled student with a post-hoc temperature, and vanilla with
# label smoothing.
#
# **Predict, before looking.** (a) Across the grid $T_d \in \{1, 4, 8\}$,
# $\alpha \in \{0.7, 0.9\}$: how far apart (in macro F1 points) are the best and the
# worst cell? (b) For each wildcard, will its macro F1 be above or below the `kd` arm
# ($T_d = 4$, $\alpha = 0.7$), and its ECE better or worse? One line each, with a reason.

# %%
def arm_row(arm: str) -> dict:
    """One arm's headline numbers from metrics/evaluate.json (full val, and eval half + T)."""
    rec = evaluation["arms"][arm]
    spec = cfg.arm(arm)
    soft = spec.loss in ("kd", "topk_kd")
    row = {"arm": arm, "loss": spec.loss, "T_d": spec.kd_temperature if soft else np.nan,
           "alpha": spec.alpha if soft else np.nan}
    if not rec["available"]:
        return {**row, "status": rec["reason"]}
    full = rec["full_val"]
    return {**row, "status": "measured", "macro F1": full["overall"]["macro_f1"],
            **{f"{t} F1": full[t]["macro_f1"] for t in TIERS},
            "ECE": full["overall"]["ece"], "NLL": full["overall"]["nll"],
            "ECE + T (eval half)": rec["eval_half_ts"]["overall"]["ece"]}


arms = pd.DataFrame([arm_row(a) for a in cfg.arm_names]).set_index("arm")
arms

# %% [markdown]
# The grid, as heat maps (`results/sweep.json`; the outlined cell is the study's recipe,
# each number is the cell's value and, below it, its rank among the measured cells):

# %%
sweep = result("sweep")
missing("sweep")
keys = ["macro_f1", "ece", "nll", "tail_f1"]
grid = pd.DataFrame([r for r in sweep["tables"]["grid"] if r.get("available")])
fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), layout="constrained")
for ax, key in zip(axes, keys):
    values = pd.DataFrame(sweep["grids"][key], index=sweep["grid_t"], columns=sweep["grid_alpha"], dtype=float)
    ranks = grid.pivot(index="kd_temperature", columns="alpha", values=f"rank_{key}") if len(grid) else None
    ax.imshow(values.to_numpy(), cmap="viridis_r" if key in ("ece", "nll") else "viridis", aspect="auto")
    for i, t_d in enumerate(values.index):
        for j, a in enumerate(values.columns):
            v = values.iat[i, j]
            rank = "" if ranks is None or pd.isna(ranks.loc[t_d, a]) else f"\n#{int(ranks.loc[t_d, a])}"
            ax.text(j, i, "n/a" if pd.isna(v) else f"{v:.3f}{rank}", ha="center", va="center", color="white")
            if [t_d, a] == list(sweep["default_cell"]):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, ec="red"))
    ax.set(xticks=range(len(values.columns)), xticklabels=[f"{a:g}" for a in values.columns],
           yticks=range(len(values.index)), yticklabels=[f"{t:g}" for t in values.index],
           xlabel="alpha", ylabel="T_d", title=f"{key} ({'lower' if key in ('ece', 'nll') else 'higher'} is better)")
fig.suptitle(f"T_d x alpha sweep, full val (profile {evaluation['profile']})", fontsize="small")
plt.show()
for key, tag in (("macro F1", "MacroFone"), ("ECE", "Ece"), ("NLL", "Nll"), ("tail F1", "TailFone")):
    spread = sweep["numbers"].get(f"SweepSpread{tag}")
    if isinstance(spread, float):
        print(f"{key}: best minus worst measured cell = {spread:.3f}; the recipe's cell ranks "
              f"#{sweep['numbers'][f'SweepDefaultRank{tag}']} of {sweep['numbers']['SweepCells']}")

# %% [markdown]
# **The wildcards, measured.** Each wildcard against the `kd` arm on the same
# resamples of the full val split, with a paired bootstrap of a few hundred resamples
# (`kdlab.stats`); "kd + T" is compared on the evaluation half, where its temperature was
# not fitted.

# %%
WILDCARDS = {"kd_t16_a70": "T_d = 16", "kd_t4_a50": "alpha = 0.5", "vanilla_ls": "vanilla + label smoothing"}
idx_full = stats.draw_indices(study.n, 300, cfg.seed)
cal_idx, eval_idx = study.fold
idx_eval = stats.draw_indices(len(eval_idx), 300, cfg.seed)
y_eval = study.labels[eval_idx]
bins = cfg.evaluation.ece_bins
rows_out = []
for arm, label in WILDCARDS.items():
    if arm not in cfg.arm_names or arm not in study.available or KD not in study.available:
        why = study.unavailable.get(arm, study.unavailable.get(KD, "not in params.yaml"))
        rows_out.append({"wildcard": label, "arm": arm, "status": why})
        continue
    f1 = stats.paired_delta("macro_f1", idx_full, {"preds": study.predictions(arm).preds},
                            {"preds": study.predictions(KD).preds}, labels=study.labels, seed=cfg.seed)
    ece = stats.paired_delta("ece", idx_full, {"probs": study.probs(arm)}, {"probs": study.probs(KD)},
                             labels=study.labels, n_bins=bins, seed=cfg.seed)
    rows_out.append({"wildcard": label, "arm": arm, "status": "measured, full val",
                     "macro F1 vs kd": f"{f1.estimate:+.3f} [{f1.low:+.3f}, {f1.high:+.3f}]",
                     "ECE vs kd": f"{ece.estimate:+.3f} [{ece.low:+.3f}, {ece.high:+.3f}]"})
if KD in study.available:
    ece = stats.paired_delta("ece", idx_eval, {"probs": study.probs(KD, scaled=True)[eval_idx]},
                             {"probs": study.probs(KD)[eval_idx]}, labels=y_eval, n_bins=bins, seed=cfg.seed)
    rows_out.append({"wildcard": "distilled + post-hoc T", "arm": f"{KD} + T", "status": "measured, eval half",
                     "macro F1 vs kd": "+0.000 (T never moves the argmax)",
                     "ECE vs kd": f"{ece.estimate:+.3f} [{ece.low:+.3f}, {ece.high:+.3f}]"})
pd.DataFrame(rows_out).set_index("wildcard")

# %%
f1_delta = table("tiers", "deltas")
f1_delta = f1_delta[(f1_delta["metric"] == "macro_f1") & (f1_delta["scope"] == "overall")].set_index("arm")
missing("tiers")
f1_delta.assign(delta=with_ci(f1_delta))[["delta", "excludes_zero"]].sort_values("delta", ascending=False)

# %% tags=["solution"]
# Exercise 1. Build the shortlist: the arms whose overall macro-F1 change vs the baseline
# (`f1_delta`, from results/tiers.json) has an interval entirely above zero (low > 0),
# sorted by that change, largest first. Keep the `arms` columns macro F1, ECE, NLL and
# "ECE + T (eval half)". Store the frame in `shortlist`.
winners = f1_delta[f1_delta["low"] > 0].sort_values("estimate", ascending=False).index
shortlist = arms.loc[list(winners), ["macro F1", "ECE", "NLL", "ECE + T (eval half)"]]

# %%
print(f"{len(shortlist)} of {len(study.available) - 1} measured arms beat {BASE} on macro F1 with an interval above 0")
shortlist

# %% [markdown] tags=["reveal"] summary="Reveal: reading the shortlist"
# Three things usually stand out. First, the spread of macro F1 across the grid is small
# next to the width of each interval: many recipes are statistically indistinguishable,
# so choose on cost and calibration, not on the third decimal, and be suspicious of a
# "best cell". Second, "ECE + T" flattens the calibration differences: after one fitted
# temperature most arms land close together, which is the Han Guo test of Part 2 in
# miniature. Third, the wildcards work as *controls*: label smoothing changes
# calibration without any teacher; a very high $T_d$ flattens the targets until they say
# little beyond "probably not a head class"; a lower $\alpha$ puts more weight on the
# hard labels and moves the student away from the teacher.

# %% [markdown]
# ---
# ## Part 2a: the Stanton test (fidelity)
#
# Stanton et al. (2021) asked whether the student actually *matches* its teacher. They
# measure top-1 agreement and KL(teacher ‖ student); the course used the JS divergence.
# All three are here, per tier, with the share of vanilla's gap to the teacher that
# distillation closes (1 = no gap left).
#
# **Predict.** Share of the gap closed in top-1 agreement: above or below one half?
# Larger on the head or on the tail?

# %%
fid = table("stanton", "values")
missing("stanton")
fid = fid[fid["system"].isin([BASE, KD])]
fid.assign(value=with_ci(fid)).pivot(index=["metric", "system"], columns="scope", values="value")[list(SCOPES)]

# %%
gap = table("stanton", "gap_closed")
gap = gap[gap["arm"] == KD]
gap.assign(share=with_ci(gap)).pivot(index="metric", columns="scope", values="share")[list(SCOPES)]

# %% [markdown] tags=["reveal"] summary="Reveal: reduced, not closed"
# Distillation moves the student towards the teacher on every measure and every tier,
# and still leaves a large part of the gap open, which is Stanton et al.'s finding: a student
# with the capacity to match its teacher does not, in practice, match it. KL and JS agree
# on the direction; they differ in scale because KL punishes the student for putting
# (near) zero probability where the teacher puts some.

# %% [markdown]
# ---
# ## Part 2b: the Han Guo test (calibration transfer)
#
# Two different quantities share a name in the course materials; keep them apart.
#
# * **The course's test** (evaluation half; $T$ fitted on the calibration half): the share
#   of distillation's gain that post-hoc temperature scaling reproduces on the vanilla
#   student, $(M_v - M_{v+T}) / (M_v - M_{kd})$, for $M$ = ECE and NLL.
# * **Han Guo et al. (2021)'s quantity** (full val): calibrate the *teacher*, distil from the
#   calibrated and from the raw teacher, and ask what share of the teacher's improvement
#   shows up in the student: $(M(\text{kd from raw}) - M(\text{kd})) / (M(\text{raw teacher}) - M(\text{teacher}))$.
#
# **Predict.** (a) The course's ECE share: below 50%, between 50% and 100%, or above 100%?
# (b) Han Guo's share for ECE: does most of the teacher's calibration gain reach the
# student, or little of it?

# %%
missing("han_guo")
course = table("han_guo", "course").set_index("system")
print(f"course test: {result('han_guo')['fold']['course']}")
display(course[["ece", "nll", "macro_f1", "temperature"]])
print("argmax unchanged by T (so macro F1 is too):", result("han_guo")["argmax_unchanged_by_T"])

# %%
shares = pd.concat([table("han_guo", "course_shares"), table("han_guo", "paper_shares")], ignore_index=True)
if shares.empty:
    print("neither share can be computed in this mode (see above)")
else:
    display(shares.assign(share=with_ci(shares, "share", "share_low", "share_high"))
            [["quantity", "metric", "share", "denominator_nonpositive"]])
print("A share of 1.00 is 100%. denominator_nonpositive: the share of resamples whose denominator is <= 0; "
      "if it is not small, the ratio is unstable and its interval should not be read.")

# %%
paper = table("han_guo", "paper")
if paper.empty:
    print("the paper's quantity needs the raw-teacher arm (see above)")
else:
    display(paper.set_index("system")[["ece", "nll", "macro_f1"]])

# %% tags=["solution"]
# Exercise 2. From `course` (the course test's rows, indexed by system), take the
# vanilla student's ECE before and after temperature scaling and the distilled
# student's ECE, and decide: does temperature scaling alone reach a lower ECE than
# distillation? Store the answer as a bool in `t_beats_kd`.
t_beats_kd = bool(course.loc[f"{BASE} + T", "ece"] < course.loc[KD, "ece"])

# %%
print(f"vanilla + T has a lower ECE than {KD} on the evaluation half: {t_beats_kd}")

# %% [markdown] tags=["reveal"] summary="Reveal: two shares, two questions"
# The course's share asks "could I have skipped distillation for calibration?"; in the
# published study it is above 100%: one temperature fitted on a few thousand examples
# beats distillation on ECE (not on NLL, and never on F1). Han Guo's share asks "if I
# improve the teacher's calibration, does the student inherit it?"; it is a ratio of two
# *differences*, so it is only as stable as its denominator. At a high $T_d$ the two
# distillation targets differ only a little (dividing by the teacher's $T$ and then by
# $T_d$ is the raw teacher at a slightly higher effective temperature), so the student
# can inherit at most that little.

# %% [markdown]
# ---
# ## Part 3: coverage questions
#
# Answer from the tables below; each question asks for a number and one sentence.
#
# 1. At threshold 0.7 on the full val split, what is the accuracy on covered examples of
#    vanilla and of the distilled student? What share of examples does each cover?
# 2. On the evaluation half, temperature scaling changes the confidences but not the
#    argmax. At a fixed threshold, does vanilla + T cover more or fewer examples than
#    vanilla? Is it more accurate on them?
# 3. Which system covers the most examples at the SLA accuracy? At which threshold?
# 4. From the risk-coverage curves: if the team must answer exactly half of the
#    complaints automatically, which system is most accurate on that half?

# %%
coverage = table("coverage", "coverage")
missing("coverage")
headline = result("coverage")["headline_threshold"]
at = coverage[np.isclose(coverage["threshold"], headline)]
at = at.assign(coverage_ci=with_ci(at, "coverage", "coverage_low", "coverage_high"),
               accuracy_ci=with_ci(at, "accuracy", "accuracy_low", "accuracy_high"))
print(f"threshold {headline}")
at.set_index(["view", "system"])[["coverage_ci", "accuracy_ci", "n_covered"]]

# %%
sla = table("coverage", "sla").set_index(["view", "system"])
sla[["sla_threshold", "sla_threshold_fine", "coverage_at_sla_fine", "accuracy_at_sla_fine"]]

# %% tags=["solution"]
# Exercise 3 (question 4). The pipeline stored a risk-coverage curve per system in
# result("coverage")["curves"][view][system], with lists "coverage" and "accuracy" on a
# common grid. For the full view, read each system's accuracy at coverage 0.5 and store
# a Series `half_coverage_accuracy` indexed by system, sorted from best to worst.
curves = result("coverage")["curves"]["full"]
half_coverage_accuracy = pd.Series(
    {system: c["accuracy"][int(np.argmin(np.abs(np.asarray(c["coverage"]) - 0.5)))] for system, c in curves.items()}
).sort_values(ascending=False)

# %%
print("accuracy when answering the most confident half of the val split:")
half_coverage_accuracy

# %% [markdown] tags=["reveal"] summary="Reveal: what the coverage tables say"
# Better calibration shows up as confidence you can threshold: the distilled student is
# more accurate above 0.7 than vanilla, and temperature scaling moves vanilla in the
# same direction by lowering its overconfident probabilities, which reduces coverage at
# a fixed threshold. The fair comparison is at equal accuracy (the SLA) or at equal
# coverage (the curves), not at an equal threshold: thresholds mean different things
# for differently calibrated models.

# %% [markdown]
# ---
# ## Part 4: the memo
#
# Write a one-page memo to a product lead who must decide whether to ship the distilled
# student. Use the numbers printed below (they are the pipeline's, and they match the
# paper's tables), and cite each with its interval.
#
# 1. **What distillation bought**: macro F1 overall and per tier, with intervals. Which
#    tier gains are distinguishable from zero?
# 2. **What it cost and what else could buy it**: the data confound; the calibration a
#    single temperature gives for free.
# 3. **How faithful the student is** to the teacher (Part 2a), and why that matters if the
#    teacher is later replaced.
# 4. **The deployment rule**: model, threshold, share routed automatically, expected
#    accuracy, and what happens to tail complaints.
# 5. **What you would test next**, given the shortlist of Part 1.

# %%
memo_numbers = {name: result(name)["numbers"] for name in ("tiers", "confound", "han_guo", "stanton", "coverage")}
for name, numbers in memo_numbers.items():
    print(f"--- results/{name}.json ({len(numbers)} numbers; the same values as reports/numbers.tex)")
    for key in [k for k in numbers if not k.endswith(("Low", "High", "Median"))][:8]:
        value, low, high = numbers[key], numbers.get(key + "Low"), numbers.get(key + "High")
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if isinstance(low, float) and isinstance(high, float):
            text += f" [{low:.3f}, {high:.3f}]"
        print(f"  {key}: {text}")

# %% [markdown] tags=["solution"]
# ### Answer to Part 4 (outline)
# Lead with the decision, then the evidence. Distillation improved macro F1 modestly and
# mostly on the head; the tail gain is within noise. Most of the apparent improvement
# over the course's week-1 baseline came from training on more data, not from the teacher.
# Calibration improved on every tier, but a post-hoc temperature reaches comparable ECE
# at almost no cost, so calibration alone does not justify the teacher. The student
# remains far from its teacher (fidelity gap reduced, not closed). Ship the model whose
# SLA threshold routes the most complaints at the required accuracy, monitor covered
# accuracy per tier, and send tail complaints to people by default. Next: retrain the
# shortlisted recipes with several seeds before trusting differences of a point of F1.

# %% [markdown]
# **Before you submit**: every number in your memo should be traceable to a cell above
# (or to `results/<name>.json` and `metrics/evaluate.json`), with its interval where one
# exists. Say which profile produced the numbers.
