"""Analysis 2: every arm against the baseline arm (``cfg.baseline_arm``), per tier and overall.

Compared: macro F1, accuracy, ECE and NLL of each available arm (and the
temperature-scaled teacher, for reference) on the full validation split
("full val", all rows of each scope: overall, head, mid, tail). Deltas are
arm − baseline on the same bootstrap resamples of the scope's rows (paired,
indices from ``study.bootstrap_indices``). Every interval carries the
full-sample estimate, the resamples' median and 2.5/97.5 percentiles. Each delta
also carries ``course``: the statistic the course publishes (docs/study.md section 5), the
median and 2.5/97.5 percentiles of the first 1,000 of the same paired resamples
(the first 1,000 rows of a 10,000-resample draw are a 1,000-resample draw with the
same seed), so the published-numbers check compares like with like.
"""

from __future__ import annotations

import pandas as pd

from kdlab import stats
from kdlab.analyses.common import (LABEL, add_numbers, ci_record, delta, excludes_zero, figure_arms, figure_note,
                                   header, macro, measure, num, scope_bars, scope_table, unavailable_rows)
from kdlab.analyses.context import SCOPES, Study

METRICS = ("macro_f1", "accuracy", "ece", "nll")
COURSE_RESAMPLES = 1000  # the course's paired bootstrap (docs/study.md section 5): median of 1,000 resamples
F1_NOTE = ("A single system's macro F1 interval can sit below its full-sample value: a resample repeats some "
           "rows and misses others, and a tier class missed scores 0 (the JSON flags estimate_in_interval); "
           "paired deltas are far less affected.")


# --- the analysis -----------------------------------------------------------
def course_record(a: tuple, b: tuple, study: Study) -> dict:
    """The course's statistic of a − b: median and percentiles of the first 1,000 paired resamples."""
    iv = stats.summarize(a[0] - b[0], (a[1] - b[1])[:COURSE_RESAMPLES], study.seed)
    return {"median": num(iv.median), "low": num(iv.low), "high": num(iv.high), "resamples": iv.resamples}


def compute(study: Study) -> dict:
    """Each arm's values and its delta vs the baseline, per scope and metric, with paired CIs."""
    base, arms = study.cfg.baseline_arm, study.available
    systems = ["teacher"] + arms
    values, deltas = [], []
    for scope in SCOPES:
        got = measure(study, scope, systems, METRICS)
        for s in systems:
            for m in METRICS:
                values.append({"system": s, "scope": scope, "metric": m, **ci_record(*got[s][m], study)})
                if base in got and s not in ("teacher", base):
                    rec = delta(got[s][m], got[base][m], study)
                    deltas.append({"arm": s, "baseline": base, "scope": scope, "metric": m, **rec,
                                   "excludes_zero": excludes_zero(rec),
                                   "course": course_record(got[s][m], got[base][m], study)})
    result = {"name": "tiers", **header(study)}
    for r in values + deltas:
        r["n"] = result["n"][r["scope"]]
        r["unstable"] = r["metric"] == "ece" and result["ece_unstable"][r["scope"]]
    missing = unavailable_rows(result["unavailable"])
    result["tables"] = {"values": values + missing, "deltas": deltas + missing}
    numbers: dict = {}
    tags = {"macro_f1": "FoneLift", "accuracy": "AccuracyLift", "ece": "EceDelta", "nll": "NllDelta"}
    kd = study.cfg.headline_arm
    for scope in SCOPES:
        for m, tag in tags.items():
            rec = next((d for d in deltas if (d["arm"], d["scope"], d["metric"]) == (kd, scope, m)), None)
            add_numbers(numbers, f"{macro(kd)}{scope.capitalize()}{tag}", rec)
    result["numbers"] = numbers
    return result


def render(result: dict, out) -> None:
    """reports/tables/tiers_{delta,value}_<metric>.tex and reports/figures/tiers_deltas.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    base, gone = result["baseline"], result["unavailable"]
    students = list(dict.fromkeys(r["system"] for r in result["tables"]["values"] if r.get("metric")))[1:]
    for m in METRICS:
        scope_table(out.tables / f"tiers_delta_{m}.tex", result["tables"]["deltas"], m, "arm", result, out,
                    title=f"Change in {LABEL[m]}, arm minus {base}, overall and per frequency tier",
                    notes=["Bold: the largest improvement per column."], unstable_ece=m == "ece", signed=True,
                    unavailable={a: why for a, why in gone.items() if a != base})
        scope_table(out.tables / f"tiers_value_{m}.tex", result["tables"]["values"], m, "system", result, out,
                    title=f"{LABEL[m]} of each system, overall and per frequency tier", best_among=students,
                    notes=["The temperature-scaled teacher is shown for reference; bold: best student.", *(
                        [F1_NOTE] if m == "macro_f1" else [])],
                    unstable_ece=m == "ece", unavailable=gone)
    shown = [a for a in figure_arms(result) if a != base]
    tidy = pd.DataFrame([{**d, "system": d["arm"]} for d in result["tables"]["deltas"] if d.get("arm") in shown],
                        columns=["system", "scope", "metric", "estimate", "low", "high"])
    tidy[["estimate", "low", "high"]] = tidy[["estimate", "low", "high"]].astype(float)
    figures.set_style()
    fig = scope_bars(tidy, ("macro_f1", "ece"), result["n"], figure_note(result, out, shown), f"arm minus {base}",
                     palette=out.palette, shaky=[t for t, f in result["ece_unstable"].items() if f])
    figures.save_figure(fig, out.figures / "tiers_deltas")
