"""Threshold / coverage (selective prediction) for every system (docs/study.md §5 coverage table).

Views: full val (every example): the teacher and every arm, raw logits; eval half: every arm
raw and + T (T fitted on the calibration half), so raw and + T share their rows. Per system:
coverage (share with max prob >= threshold), accuracy on the covered rows and n_covered at
the configured thresholds (0.5-0.9), each coverage and accuracy with a bootstrap interval
(accuracy per resample = covered-and-correct / covered on the shared resamples); the SLA
threshold (lowest configured threshold with accuracy >= sla_accuracy) and the same on a
0.01 grid; a 101-point risk-coverage curve (selective.risk_coverage_curve); and at the
headline threshold (0.70) each system minus the baseline arm in the same view (raw vs raw,
+ T vs + T), accuracy and coverage, on the same resamples (paired).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab import metrics, selective, stats
from kdlab.analyses.common import (boot_record, clean, dash, eval_fold, frames, note_text, omitted_note,
                                   resample_many)
from kdlab.analyses.context import Study
from kdlab.report import latex


HEADLINE = 0.7  # docs/study.md §7 quotes accuracy at confidence >= 0.70
FINE = tuple(np.round(np.arange(1, 100) / 100.0, 2))  # 0.01 ... 0.99
VIEWS = {"full": "full validation split", "eval": "evaluation half of val (T fitted on the calibration half)"}


def tag(label: str) -> str:
    """Macro-name piece of a row label: "kd + T" -> "KdTs"."""
    return latex.macro_name(label.replace(" + T", " ts"))


def compute(study: Study) -> dict:
    """Rows: full val (teacher + every arm, raw) and eval half (every arm raw and + T)."""
    ev, arms = study.cfg.evaluation, study.cfg.arm_names
    views = {"full": (np.arange(study.n), [("teacher", "teacher", False)] + [(a, a, False) for a in arms]),
             "eval": (study.fold[1], [(f"{a} + T" if s else a, a, s) for a in arms for s in (False, True)])}
    thresholds, cov_rows, sla_rows, curves, numbers = list(ev.thresholds), [], [], {}, {}
    deltas = []
    for view, (rows, entries) in views.items():
        y, idx, curves[view] = study.labels[rows], study.bootstrap_indices(len(rows)), {}
        ok = [e for e in entries if e[1] not in study.unavailable]
        jobs, pts = [], {}
        for label, system, scaled in ok:
            p = study.probs(system, scaled)[rows]
            conf, correct = metrics.confidence_and_correct(p, y)
            for t in thresholds:
                covered = (conf >= t).astype(np.float64)
                jobs += [("mean", dict(values=covered)), ("mean", dict(values=covered * correct))]
            table = selective.coverage_table(p, y, thresholds)
            fine = selective.coverage_table(p, y, FINE)
            sla, sla_fine = selective.sla_threshold(table, ev.sla_accuracy), selective.sla_threshold(fine, ev.sla_accuracy)
            at = next((r for r in fine if r["threshold"] == sla_fine), {})
            pts[label] = table
            sla_rows.append({"view": view, "system": label, "arm": system, "scaled": scaled, "n": len(rows),
                             "sla_threshold": sla, "sla_threshold_fine": sla_fine,
                             "coverage_at_sla_fine": at.get("coverage"), "accuracy_at_sla_fine": at.get("accuracy"),
                             "n_covered_at_sla_fine": at.get("n_covered")})
            curves[view][label] = {k: v.tolist() for k, v in selective.risk_coverage_curve(p, y, 101).items()}
        samples, at_headline = iter(resample_many(jobs, idx)), {}
        for label, system, scaled in ok:
            for row in pts[label]:
                cov, hit = next(samples), next(samples)
                acc = np.divide(hit, cov, out=np.full_like(cov, np.nan), where=cov > 0)
                if math.isclose(row["threshold"], HEADLINE):
                    at_headline[label] = {"accuracy": (row["accuracy"], acc), "coverage": (row["coverage"], cov)}
                c_iv, a_iv = stats.summarize(row["coverage"], cov, study.seed), \
                    stats.summarize(row["accuracy"], acc, study.seed)
                cov_rows.append({"view": view, "system": label, "arm": system, "scaled": scaled, **row,
                                 "coverage_low": c_iv.low, "coverage_high": c_iv.high, "accuracy_median": a_iv.median,
                                 "accuracy_low": a_iv.low, "accuracy_high": a_iv.high})
        deltas += paired_deltas(study, view, at_headline)
        for r in (r for r in sla_rows if r["view"] == view):
            t, pre = tag(r["system"]), "" if view == "full" else "Eval"
            numbers[f"SlaThreshold{pre}{t}"] = r["sla_threshold"]
            numbers[f"SlaThresholdFine{pre}{t}"] = r["sla_threshold_fine"]
        for r in (r for r in cov_rows if r["view"] == view and math.isclose(r["threshold"], HEADLINE)):
            pre = "" if view == "full" else "Eval"
            numbers[f"SelectiveAccuracy{pre}{tag(r['system'])}"] = r["accuracy"]
            numbers[f"SelectiveCoverage{pre}{tag(r['system'])}"] = r["coverage"]
    unavailable = {a: r for a, r in study.unavailable.items() if a in arms}
    return clean({"name": "coverage", "n": study.n, "n_eval": len(study.fold[1]),
                  "fold": {"full": "full val", "eval": eval_fold(study)},
                  "fold_seed": ev.calibration_fold_seed, "baseline": study.cfg.baseline_arm,
                  "headline": study.cfg.headline_arm,
                  "bootstrap": boot_record(study), "unavailable": unavailable,
                  "thresholds": thresholds, "sla_accuracy": ev.sla_accuracy, "headline_threshold": HEADLINE,
                  "rows": {v: [e[0] for e in entries] for v, (_, entries) in views.items()},
                  "arm_of": {v: {e[0]: e[1] for e in entries} for v, (_, entries) in views.items()},
                  "tables": {"coverage": cov_rows, "sla": sla_rows, "deltas": deltas}, "curves": curves,
                  "numbers": {k: dash(v) for k, v in numbers.items()}})


def paired_deltas(study: Study, view: str, at_headline: dict) -> list[dict]:
    """Each system minus the baseline (its ``+ T`` minus the baseline's ``+ T``) at the headline threshold:
    accuracy and coverage, full-sample difference and the percentile interval of the paired resamples."""
    base, out = study.cfg.baseline_arm, []
    for label, got in at_headline.items():
        ref = base + (" + T" if label.endswith(" + T") else "")
        if label in (ref, "teacher") or ref not in at_headline:
            continue
        for key in ("accuracy", "coverage"):
            (a, sa), (b, sb) = got[key], at_headline[ref][key]
            iv = stats.summarize(a - b if a is not None and b is not None else math.nan, sa - sb, study.seed)
            out.append({"view": view, "system": label, "baseline": ref, "threshold": HEADLINE, "metric": key,
                        "estimate": iv.estimate, "median": iv.median, "low": iv.low, "high": iv.high})
    return out


def render(result: dict, out) -> None:
    """reports/tables/coverage_{full,eval}.tex, coverage_{full,eval}_n.tex, coverage_sla.tex;
    reports/figures/coverage_curves.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    ts, sla_acc = result["thresholds"], result["sla_accuracy"]
    heads = {f"t{t:g}": rf"conf.\ $\geq {t:g}$" for t in ts}
    heads.update({"coverage": "Cov.", "accuracy": "Acc.", "n_covered": "$n$", "sla": rf"SLA {sla_acc:.0%}".replace(
        "%", r"\,\%"), "sla_threshold": "grid", "sla_threshold_fine": "fine"})
    for view, view_text in VIEWS.items():
        names, n = result["rows"][view], result["n"] if view == "full" else result["n_eval"]
        missing = {lab: result["unavailable"][arm] for lab, arm in result["arm_of"][view].items()
                   if arm in result["unavailable"]}
        cov = {(r["system"], r["threshold"]): r for r in result["tables"]["coverage"] if r["view"] == view}
        sla = {r["system"]: r for r in result["tables"]["sla"] if r["view"] == view}
        fold = VIEWS[view] + (f", fold seed {result['fold_seed']}" if view == "eval" else "")
        for suffix, keys in (("", ("coverage", "accuracy")), ("_n", ("n_covered",))):
            cols = [(f"t{t:g}", k) for t in ts for k in keys]
            cols += [("sla", "sla_threshold"), ("sla", "sla_threshold_fine")] if not suffix else []
            values = pd.DataFrame(math.nan, index=names, columns=pd.MultiIndex.from_tuples(cols))
            for name in (x for x in names if x in sla):
                for (top, key) in cols:
                    src = sla[name] if top == "sla" else cov[(name, float(top[1:]))]
                    values.at[name, (top, key)] = math.nan if src.get(key) is None else float(src[key])
            notes = ([f"Coverage: share of rows with top-1 confidence >= threshold; accuracy on those rows (best in "
                      f"bold, -- where nothing is covered). SLA: lowest threshold with accuracy >= {sla_acc:g}, on "
                      "the thresholds shown (grid) and on a 0.01 grid (fine; -- when none meets it). Intervals: "
                      "coverage_sla.tex and results/coverage.json."]
                     if not suffix else ["Examples covered at each threshold."])
            latex.write_table(
                out.tables / f"coverage_{view}{suffix}.tex", values, unavailable=missing, headers=heads,
                best_among=[x for x in names if x != "teacher"], size=r"\scriptsize", compact=True,
                decimals={"n_covered": 0, "sla_threshold": 2, "sla_threshold_fine": 2},
                label=f"tab:coverage_{view}{suffix}",
                caption_tex=latex.caption("Coverage and accuracy by confidence threshold" if not suffix else
                                          "Examples covered by confidence threshold", n=n, fold=fold, notes=notes,
                                          source=out.source, demo_note=out.profile_note))
    _sla_table(result, out)
    figures.set_style()
    figures.save_figure(_figure(result, out), out.figures / "coverage_curves")


def _sla_table(result: dict, out) -> None:
    """Full val: accuracy and coverage at the headline threshold with intervals, SLA thresholds."""
    b, h = result["bootstrap"], result["headline_threshold"]
    names = result["rows"]["full"]
    cov = {r["system"]: r for r in result["tables"]["coverage"]
           if r["view"] == "full" and math.isclose(r["threshold"], h)}
    sla = {r["system"]: r for r in result["tables"]["sla"] if r["view"] == "full"}
    keys = ["accuracy", "coverage"]
    values, low, high = frames(cov, keys)
    extra, _, _ = frames(sla, ["sla_threshold", "sla_threshold_fine", "coverage_at_sla_fine"])
    values = values.join(extra).reindex(names)
    low, high = low.reindex(values.index), high.reindex(values.index)
    missing = {x: result["unavailable"][result["arm_of"]["full"][x]] for x in names
               if result["arm_of"]["full"][x] in result["unavailable"]}
    latex.write_table(
        out.tables / "coverage_sla.tex", values, low=low.reindex(columns=values.columns),
        high=high.reindex(columns=values.columns), unavailable=missing, stack=True,
        best_among=[x for x in names if x != "teacher"], decimals={"sla_threshold": 2, "sla_threshold_fine": 2},
        headers={"accuracy": rf"Acc.\ at $\geq {h:g}$", "coverage": rf"Cov.\ at $\geq {h:g}$",
                 "sla_threshold": "SLA thr.", "sla_threshold_fine": "SLA thr. (0.01 grid)",
                 "coverage_at_sla_fine": "Cov.\\ at SLA thr."}, size=r"\footnotesize", label="tab:coverage_sla",
        caption_tex=latex.caption(
            f"Selective prediction at confidence >= {h:g} and the {result['sla_accuracy']:.0%} accuracy SLA",
            n=result["n"], fold=VIEWS["full"], source=out.source, demo_note=out.profile_note,
            resamples=b["resamples"], seed=b["seed"],
            notes=["Accuracy per resample: covered-and-correct over covered on the same resamples. SLA thr.: "
                   "lowest threshold whose accuracy meets the SLA (-- when none does). Best student in bold."]))


def _figure(result: dict, out):
    """(a) accuracy vs coverage, full val; (b) accuracy and (c) coverage vs threshold, eval half."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    base, kd = result["baseline"], result["headline"]
    full, ev = result["curves"]["full"], result["curves"]["eval"]
    main = [s for s in ("teacher", base, kd) if s in full]
    shown = [s for s in (base, f"{base} + T", kd, f"{kd} + T") if s in ev]
    palette = figures.system_colors(list(dict.fromkeys(main + shown)), out.palette)
    fig, axes = figures.subplots(1, 3)
    for name, c in full.items():
        if name not in main:
            axes[0].plot(c["coverage"], c["accuracy"], color="0.75", lw=0.6, label="other arms" if name == list(
                x for x in full if x not in main)[0] else None)
    for name in main:
        axes[0].plot(full[name]["coverage"], full[name]["accuracy"], color=palette[name], lw=1.5, label=name)
    axes[0].set(xlabel="coverage (most confident first)", ylabel="accuracy on covered", title="full val")
    for name in shown:
        c = ev[name]
        ls = "--" if name.endswith(" + T") else "-"
        axes[1].plot(c["threshold"], c["accuracy"], color=palette[name], ls=ls, label=name)
        axes[2].plot(c["threshold"], c["coverage"], color=palette[name], ls=ls, label=name)
    axes[1].axhline(result["sla_accuracy"], color="0.3", lw=0.8, ls=":", label=f"SLA {result['sla_accuracy']:g}")
    axes[1].set(xlabel="confidence threshold", ylabel="accuracy on covered", title="eval half")
    axes[2].set(xlabel="confidence threshold", ylabel="coverage", title="eval half")
    figures.shared_legend(fig, axes)
    figures.add_note(fig, note_text(out, "full val and eval half", result["n"], omitted_note(result["unavailable"])))
    return fig
