"""Teacher diagnostics on the FULL val split: the temperature-scaled teacher ("teacher",
the published ``final`` logits) and the raw teacher ("teacher_raw"), overall and per tier:
macro F1, accuracy, ECE (15 bins), NLL, mean entropy and mean confidence, each with a
bootstrap interval; and per class, training support (canonical train split, the tiers'
definition) against the teacher's val F1.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab import metrics, stats
from kdlab.analyses.common import (boot_record, clean, dash, flat, frames, note_text, resample_many,
                                   unstable)
from kdlab.analyses.context import SCOPES, Study
from kdlab.config import TIERS
from kdlab.report import latex


SYSTEMS = ("teacher", "teacher_raw")
LABELS = {"teacher": "", "teacher_raw": ", raw"}
KEYS = ("macro_f1", "accuracy", "ece", "nll", "mean_entropy", "mean_confidence")


def compute(study: Study) -> dict:
    """Rows: full val (every example); systems: teacher and teacher_raw."""
    bins, labels = study.cfg.evaluation.ece_bins, study.labels
    rows_out = []
    for scope in SCOPES:
        rows, ids = study.scope_rows(scope), study.scope_class_ids(scope)
        idx, y = study.bootstrap_indices(len(rows)), labels[rows]
        jobs = []
        for system in SYSTEMS:
            p, pred = study.probs(system)[rows], study.predictions(system).preds[rows]
            jobs += [("macro_f1", dict(labels=y, preds=pred, class_ids=ids)),
                     ("accuracy", dict(labels=y, preds=pred)), ("ece", dict(probs=p, labels=y, n_bins=bins)),
                     ("nll", dict(probs=p, labels=y)), ("mean", dict(values=metrics.entropy(p))),
                     ("mean", dict(values=p.max(axis=1)))]
        got = iter(resample_many(jobs, idx, points=True))
        for system in SYSTEMS:
            rec = {"system": system, "scope": scope, "n": len(rows), "ece_unstable": unstable(study, len(rows))}
            for key in KEYS:
                point, samples = next(got)
                rec.update(flat(key, stats.summarize(point, samples, study.seed)))
            rows_out.append(rec)
    per_class, class_summary, rho = _per_class(study)
    t = {r["scope"]: r for r in rows_out if r["system"] == "teacher"}
    raw = {r["scope"]: r for r in rows_out if r["system"] == "teacher_raw"}
    numbers = {"TeacherDiagMacroFone": t["overall"]["macro_f1"], "TeacherDiagEce": t["overall"]["ece"],
               "TeacherDiagNll": t["overall"]["nll"], "TeacherDiagEntropy": t["overall"]["mean_entropy"],
               "TeacherDiagRawEce": raw["overall"]["ece"], "TeacherDiagRawNll": raw["overall"]["nll"]}
    for tier in TIERS:
        cap = tier.capitalize()
        numbers.update({f"TeacherDiag{cap}Fone": t[tier]["macro_f1"], f"TeacherDiag{cap}Ece": t[tier]["ece"],
                        f"TeacherDiag{cap}Entropy": t[tier]["mean_entropy"]})
    numbers["TeacherDiagSupportSpearman"] = rho
    numbers["TeacherDiagZeroFoneClasses"] = int(sum(r["zero_f1"] for r in class_summary))
    return clean({"name": "teacher_diag", "fold": "full val", "n": study.n,
                  "bootstrap": boot_record(study), "unavailable": {},
                  "ece_bins": bins, "min_tier_examples_per_bin": study.cfg.evaluation.min_tier_examples_per_bin,
                  "tables": {"tiers": rows_out, "classes": class_summary},
                  "per_class": per_class, "per_class_spearman": rho,
                  "numbers": {k: dash(v) for k, v in numbers.items()}})


def _per_class(study: Study) -> tuple[list, list, float]:
    """Per class: train support (card), val support, teacher F1 (full val); Spearman ρ over
    classes present in val; per-tier summary rows."""
    y, pred = study.labels, study.predictions("teacher").preds
    c = len(study.class_tiers)
    support = np.asarray(study.card["train_class_counts"], dtype=np.int64)
    val_n, predicted = np.bincount(y, minlength=c), np.bincount(pred, minlength=c)
    f1 = metrics.f1_from_counts(np.bincount(y[y == pred], minlength=c), val_n, predicted)
    present = val_n > 0
    rho = metrics.spearman(support[present], f1[present]) if present.sum() > 2 else None
    names = study.card.get("labels", [str(i) for i in range(c)])
    per_class = [{"class_id": i, "label": names[i], "tier": TIERS[study.class_tiers[i]],
                  "train_support": int(support[i]),
                  "val_support": int(val_n[i]), "f1": float(f1[i])} for i in range(c)]
    summary = []
    for code, tier in enumerate(TIERS):
        sel = study.class_tiers == code
        ok = sel & present
        r = metrics.spearman(support[ok], f1[ok]) if ok.sum() > 2 else math.nan
        summary.append({"tier": tier, "classes": int(sel.sum()), "absent_from_val": int((sel & ~present).sum()),
                        "median_train_support": float(np.median(support[sel])) if sel.any() else None,
                        "min_train_support": int(support[sel].min()) if sel.any() else None,
                        "zero_f1": int((sel & present & (f1 == 0)).sum()),
                        "spearman": float(r)})
    return per_class, summary, rho


def render(result: dict, out) -> None:
    """reports/tables/teacher_diag_{tiers,classes}.tex, reports/figures/teacher_diag_support_f1.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    b, n = result["bootstrap"], result["n"]
    rows = {f"{r['scope']}{LABELS[r['system']]}": r for r in result["tables"]["tiers"]}
    values, low, high = frames(rows, KEYS[:-1])  # mean confidence: in the JSON only
    values.insert(0, "n", [r["n"] for r in rows.values()])
    low.insert(0, "n", math.nan)
    high.insert(0, "n", math.nan)
    flagged = sorted({r["scope"] for r in rows.values() if r["ece_unstable"]})
    notes = [f"Rows are tiers, not competitors: nothing is marked best. ECE with {result['ece_bins']} bins; "
             f"{', '.join(flagged) or 'no tier'}: fewer than {result['min_tier_examples_per_bin']:g} examples per bin, "
             "so that ECE is descriptive, not a stable estimate.",
             "Rows: the published temperature-scaled teacher logits; ', raw': the raw logits (T = 1). The card "
             "does not say where T was fitted (if on val, the scaled teacher's val ECE is in-sample)."]
    latex.write_table(out.tables / "teacher_diag_tiers.tex", values, low=low, high=high, best_among=[],
                      decimals={"n": 0}, label="tab:teacher_diag_tiers", size=r"\footnotesize", stack=True,
                      headers={**latex.METRIC_LABELS, "mean_confidence": "Mean conf."},
                      caption_tex=latex.caption("Teacher diagnostics per tier", n=n, fold="full validation split",
                                                source=out.source, demo_note=out.profile_note, resamples=b["resamples"],
                                                seed=b["seed"], notes=notes))
    cls = pd.DataFrame(result["tables"]["classes"]).set_index("tier").rename_axis(None).astype(float)
    latex.write_table(out.tables / "teacher_diag_classes.tex", cls, best_among=[], label="tab:teacher_diag_classes",
                      decimals={"spearman": 2, "median_train_support": 0, "classes": 0, "absent_from_val": 0,
                                "min_train_support": 0, "zero_f1": 0},
                      headers={"classes": "Classes", "absent_from_val": "Absent from val",
                               "median_train_support": "Median support", "min_train_support": "Min support",
                               "zero_f1": "F1 $= 0$", "spearman": r"Spearman $\rho$"},
                      caption_tex=latex.caption("Training support (canonical train split) and teacher F1 per class",
                                                n=n, fold="full validation split", source=out.source,
                                                demo_note=out.profile_note,
                                                notes=[f"Spearman rho over classes present in val; overall rho = "
                                                       f"{latex.fixed(result['per_class_spearman'], 2)}."]))
    figures.set_style()
    fig = support_figure(pd.DataFrame(result["per_class"]), note_text(out, "full validation split", n),
                         result["per_class_spearman"])
    figures.save_figure(fig, out.figures / "teacher_diag_support_f1")


def support_figure(df: pd.DataFrame, note: str, rho=None):
    """Per-class teacher F1 against training support, coloured by tier; classes absent from val are left out."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    absent = int((df["val_support"] == 0).sum())
    fig, ax = figures.subplots()
    for tier in TIERS:
        sub = df[(df["tier"] == tier) & (df["val_support"] > 0)]
        ax.scatter(np.maximum(sub["train_support"], 0.8), sub["f1"], s=14, color=figures.colours.tier_color(tier),
                   label=tier, edgecolor="white", lw=0.3, marker={"head": "o", "mid": "s", "tail": "^"}[tier])
    ax.set(xscale="log", ylim=(-0.02, 1.02), xlabel="training examples per class (log)", ylabel="teacher F1 (val)",
           title=f"Spearman $\\rho$ = {latex.fixed(rho, 2).replace(latex.MINUS, '-')}; {absent} classes absent "
                 "from val not shown")
    ax.legend(title="tier", fontsize="small")
    figures.add_note(fig, note)
    return fig
