"""Calibration reported the way the field's best reports do, overall and per tier.

Views: full val (every example; teacher, vanilla, kd, raw) and the eval half (vanilla,
vanilla + T, kd, kd + T; T fitted on the calibration half). Metrics: 15-bin ECE (the
course's headline), equal-mass ACE, MCE, smECE (Błasiok & Nakkiran 2023), Brier, NLL, ECE at
5-100 bins; paired-bootstrap intervals of every level and of every delta vs vanilla in the
same view. ACE and smECE only loop: they use the first ``evaluation.bootstrap.loop_resamples`` shared resamples,
smECE at each system's full-sample bandwidth σ* (= its smECE, the fixed point). Also the
eval-half reliability bins with counts (teacher, vanilla, vanilla + T, kd). Fitted T: han_guo.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab import metrics, stats
from kdlab.analyses.common import (boot_record, clean, dash, eval_fold, flat, frames, note_text, omitted_note,
                                   resample_many, unstable)
from kdlab.analyses.context import SCOPES, Study
from kdlab.config import TIERS
from kdlab.report import latex


METRICS = ("ece", "adaptive_ece", "mce", "smooth_ece", "brier", "nll")
BINNED = ("ece", "adaptive_ece", "mce")
FILE = {"ece": "ece", "adaptive_ece": "ace", "mce": "mce", "smooth_ece": "smece", "brier": "brier", "nll": "nll"}
SHORT = {"ece": "Ece", "adaptive_ece": "Ace", "mce": "Mce", "smooth_ece": "Smece", "brier": "Brier", "nll": "Nll"}
BIN_COUNTS = (5, 10, 15, 20, 30, 50, 100)
LABELLED_BINS = (5, 15, 50, 100)  # tick labels of the ECE-vs-bins figure (15: the course's bins)
CURVE_RESAMPLES = 1000  # the ECE-vs-bins curve (230 bin columns per system) uses the first 1,000 resamples
VIEWS = {"full": "full validation split", "eval": "evaluation half of val (T fitted on the calibration half)"}
SMECE_MIN_BANDWIDTH = 2.0 / 2048  # smooth_ece's smallest σ on its default grid


def systems(study: Study) -> dict[str, list[tuple[str, str, bool]]]:
    """{view: [(label, system, scaled)]}."""
    base = study.cfg.baseline_arm
    arms = [a for a in (base, study.cfg.headline_arm) if a in study.arms]
    return {"full": [("teacher", "teacher", False)] + [(a, a, False) for a in arms],
            "eval": [(f"{a} + T" if s else a, a, s) for a in arms for s in (False, True)]}


def _rows(study: Study, view: str, scope: str) -> np.ndarray:
    rows = np.arange(study.n) if view == "full" else study.fold[1]
    return rows if scope == "overall" else rows[study.teacher.tiers[rows] == TIERS.index(scope)]


def _scope(study: Study, view: str, scope: str, entries) -> list[dict]:
    """Every metric of every available system in one (view, scope), with intervals and deltas."""
    bins, base, seed = study.cfg.evaluation.ece_bins, study.cfg.baseline_arm, study.seed
    rows = _rows(study, view, scope)
    y, idx = study.labels[rows], study.bootstrap_indices(len(rows))
    vec_keys, curve_keys = ["ece", "mce", "brier", "nll"], [f"ece_{k}" for k in BIN_COUNTS]
    pts, vec, curve, loop = {}, [], [], []
    for label, system, scaled in entries:
        p = study.probs(system, scaled)[rows]
        conf, correct = metrics.confidence_and_correct(p, y)
        # exact two-column stand-in for the loops: max = conf, argmax == label <=> correct
        p2, y2 = np.stack([conf, np.zeros_like(conf)], axis=1), (correct == 0).astype(np.int64)
        sm = metrics.smooth_ece(p, y)
        vec += [("ece", dict(probs=p, labels=y, n_bins=bins)), ("mce", dict(probs=p, labels=y, n_bins=bins)),
                ("brier", dict(probs=p, labels=y)), ("nll", dict(probs=p, labels=y))]
        curve += [("ece", dict(probs=p, labels=y, n_bins=k)) for k in BIN_COUNTS]
        loop += [("adaptive_ece", dict(probs=p2, labels=y2, n_bins=bins)),
                 ("smooth_ece", dict(probs=p2, labels=y2, bandwidth=max(sm, SMECE_MIN_BANDWIDTH)))]
        pts[label] = {"ece": metrics.ece(p, y, bins), "mce": metrics.mce(p, y, bins), "brier": metrics.brier(p, y),
                      "nll": metrics.nll(p, y), **{f"ece_{k}": metrics.ece(p, y, k) for k in BIN_COUNTS},
                      "adaptive_ece": metrics.adaptive_ece(p, y, bins), "smooth_ece": sm}
    samples = iter(resample_many(vec, idx) + resample_many(curve, idx[:CURVE_RESAMPLES])
                   + resample_many(loop, idx[:study.loop_resamples]))
    smp = {label: {k: next(samples) for k in vec_keys} for label, _, _ in entries}
    for keys in (curve_keys, ["adaptive_ece", "smooth_ece"]):
        for label, _, _ in entries:
            smp[label].update({k: next(samples) for k in keys})
    out = []
    for label, system, scaled in entries:
        rec = {"view": view, "scope": scope, "system": label, "arm": system, "scaled": scaled, "n": len(rows),
               "ece_unstable": unstable(study, len(rows)),
               "smooth_ece_bandwidth": max(pts[label]["smooth_ece"], SMECE_MIN_BANDWIDTH)}
        for key, point in pts[label].items():
            rec.update(flat(key, stats.summarize(point, smp[label][key], seed)))
            if base in pts and label != base:
                d = stats.summarize(point - pts[base][key], smp[label][key] - smp[base][key], seed)
                rec.update(flat(f"delta_{key}", d, median=False))
        out.append(rec)
    return out


def compute(study: Study) -> dict:
    """Rows: full val and eval half (see the module docstring); systems: teacher, vanilla, kd, + T."""
    views, bins = systems(study), study.cfg.evaluation.ece_bins
    unavailable = {a: r for a, r in study.unavailable.items() if a in {s for v in views.values() for _, s, _ in v}}
    records = []
    for view, entries in views.items():
        ok = [e for e in entries if e[1] not in unavailable]
        for scope in SCOPES:
            records += _scope(study, view, scope, ok) if ok else []
    eval_idx, reliability = study.fold[1], []
    base, kd = study.cfg.baseline_arm, study.cfg.headline_arm
    for label, system, scaled in [("teacher", "teacher", False), (base, base, False), (f"{base} + T", base, True),
                                  (kd, kd, False)]:
        if system in unavailable or (system != "teacher" and system not in study.arms):
            continue
        p, y = study.probs(system, scaled)[eval_idx], study.labels[eval_idx]
        reliability.append({"system": label, "ece": metrics.ece(p, y, bins), **metrics.reliability_bins(p, y, bins)})
    numbers = {}
    for r in records:
        if r["scope"] == "overall":
            tag = "CalSuite" if r["view"] == "full" else "CalSuiteEval"
            tag += latex.macro_name(r["system"].replace(" + T", " ts"))
            for m in METRICS:
                numbers[f"{tag}{SHORT[m]}"] = r[m]
                if f"delta_{m}" in r:
                    numbers[f"{tag}{SHORT[m]}Delta"] = r[f"delta_{m}"]
    return clean({"name": "calibration_suite", "n": study.n, "n_eval": len(eval_idx),
                  "fold": {"full": "full val", "eval": eval_fold(study)},
                  "fold_seed": study.cfg.evaluation.calibration_fold_seed, "unavailable": unavailable, "ece_bins": bins,
                  "bootstrap": {**boot_record(study, loop=True),
                                "curve_resamples": min(study.resamples, CURVE_RESAMPLES)},
                  "bin_counts": BIN_COUNTS, "baseline": base, "headline": kd,
                  "min_tier_examples_per_bin": study.cfg.evaluation.min_tier_examples_per_bin,
                  "tables": {"suite": records}, "reliability": reliability,
                  "numbers": {k: dash(v) for k, v in numbers.items()}})


def render(result: dict, out) -> None:
    """reports/tables/calibration_suite_{full,eval}_{ece,ace,mce,smece,brier,nll,ece_bins}.tex;
    reports/figures/calibration_suite_ece_bins.{pdf,png}. The eval-half reliability bins
    (``result["reliability"]``) are drawn once, by the report stage (reports/figures/reliability)."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    b = result["bootstrap"]
    for view in VIEWS:
        for m in METRICS:
            _metric_table(result, out, view, m)
        rows = {r["system"]: r for r in result["tables"]["suite"] if r["view"] == view and r["scope"] == "overall"}
        values, _, _ = frames(rows, [f"ece_{k}" for k in result["bin_counts"]])
        values.columns = [str(k) for k in result["bin_counts"]]
        missing = _missing(result, view)
        latex.write_table(
            out.tables / f"calibration_suite_{view}_ece_bins.tex", values.reindex(list(rows) + list(missing)),
            unavailable=missing, best_among=[x for x in rows if x != "teacher"],
            directions={c: "lower" for c in values.columns}, label=f"tab:calibration_suite_{view}_ece_bins",
            caption_tex=latex.caption(
                "Binned ECE as a function of the number of equal-width bins (columns), overall", n=_n(result, view),
                fold=_fold(result, view), source=out.source, demo_note=out.profile_note,
                notes=["Best student per column in bold. Intervals for every bin count and tier (first "
                       f"{b['curve_resamples']:,} of {b['resamples']:,} resamples, seed {b['seed']}) are in "
                       "results/calibration_suite.json and shaded in the figure."]))
    figures.set_style()
    note = note_text(out, "full val and eval half", result["n"], omitted_note(result["unavailable"]))
    figures.save_figure(_bins_figure(result, note, out.palette), out.figures / "calibration_suite_ece_bins")


def _metric_table(result: dict, out, view: str, m: str) -> None:
    """Rows: systems; columns: (scope, level | delta vs baseline with its interval)."""
    b, base = result["bootstrap"], result["baseline"]
    rows = [r for r in result["tables"]["suite"] if r["view"] == view]
    names, missing = list(dict.fromkeys(r["system"] for r in rows)), _missing(result, view)
    heads, dec, cols = {**latex.METRIC_LABELS, "delta": r"$\Delta$"}, {}, []
    for r in (r for r in rows if r["system"] == names[0]):
        top = f"{r['scope']} (n = {r['n']:,})"
        if r["ece_unstable"] and m in BINNED:
            heads[top] = latex.escape_latex(f"{r['scope']} (n = {r['n']:,}; unstable)")
            dec.update({(top, m): 2, (top, "delta"): 2})
        cols += [(top, m), (top, "delta")]
    values = pd.DataFrame(math.nan, index=names + list(missing),
                          columns=pd.MultiIndex.from_tuples(cols) if cols else [m])
    low, high = values.copy(), values.copy()
    for r in rows:
        top = f"{r['scope']} (n = {r['n']:,})"
        values.at[r["system"], (top, m)] = _num(r.get(m))
        for frame, suffix in ((values, ""), (low, "_low"), (high, "_high")):
            frame.at[r["system"], (top, "delta")] = _num(r.get(f"delta_{m}{suffix}"))
    loop = m in ("adaptive_ece", "smooth_ece")
    notes = [f"Levels: full-sample estimates, best student in bold; Delta: paired difference to {base} in the "
             "same rows, with its 95 % percentile interval."]
    if loop:
        notes.append(f"{latex.METRIC_LABELS[m]} has no vectorised bootstrap: its intervals use the first "
                     f"{b['loop_resamples']:,} of the {b['resamples']:,} shared resamples"
                     + ("; resamples keep each system's full-sample bandwidth." if m == "smooth_ece" else "."))
    if m in BINNED and any(r["ece_unstable"] for r in rows):
        notes.append(f"Unstable: fewer than {result['min_tier_examples_per_bin']:g} examples per bin "
                     f"({result['ece_bins']} bins): binned estimates there are descriptive, not stable "
                     "(2 decimals).")
    latex.write_table(
        out.tables / f"calibration_suite_{view}_{FILE[m]}.tex", values, low=low, high=high, unavailable=missing,
        stack=True, signed={"delta": True}, resize=True,  # eight stacked columns can pass the line by a hair
        best_among=[x for x in names if x != "teacher"], decimals=dec, headers=heads, size=r"\scriptsize",
        label=f"tab:calibration_suite_{view}_{FILE[m]}",
        caption_tex=latex.caption(f"{latex.METRIC_LABELS[m]} overall and per tier", n=_n(result, view),
                                  fold=_fold(result, view), source=out.source, demo_note=out.profile_note,
                                  resamples=b["loop_resamples"] if loop else b["resamples"], seed=b["seed"],
                                  notes=notes))


def _n(result: dict, view: str) -> int:
    return result["n"] if view == "full" else result["n_eval"]


def _fold(result: dict, view: str) -> str:
    return VIEWS[view] + (f", fold seed {result['fold_seed']}" if view == "eval" else "")


def _missing(result: dict, view: str) -> dict[str, str]:
    """Unavailable rows of a view: label -> reason."""
    base, kd = result["baseline"], result["headline"]
    labels = [("teacher", "teacher"), (base, base), (kd, kd)] if view == "full" else \
        [(a + s, a) for a in (base, kd) for s in ("", " + T")]
    return {lab: result["unavailable"][arm] for lab, arm in labels if arm in result["unavailable"]}


def _num(x) -> float:
    return math.nan if x is None else float(x)


def _bins_figure(result: dict, note: str, palette=None):
    """Binned ECE against the number of bins (log x), full val (top) and eval half (bottom), per scope."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    recs, ks = result["tables"]["suite"], result["bin_counts"]
    palette = figures.system_colors(list(dict.fromkeys(r["system"] for r in recs)), palette)
    fig, axes = figures.subplots(2, len(SCOPES), sharex=True, squeeze=False)
    for (i, view), (j, scope) in ((v, c) for v in enumerate(VIEWS) for c in enumerate(SCOPES)):
        ax = axes[i][j]
        for r in (r for r in recs if r["view"] == view and r["scope"] == scope):
            y, lo, hi = (np.array([_num(r[f"ece_{k}{x}"]) for k in ks]) for x in ("", "_low", "_high"))
            ax.plot(ks, y, marker="o", ms=3, color=palette[r["system"]], label=r["system"],
                    ls="--" if r["scaled"] else "-")
            ax.fill_between(ks, lo, hi, color=palette[r["system"]], alpha=0.15, lw=0)
            ax.set_title(f"{'full' if view == 'full' else 'eval'}: {scope} (n={r['n']:,})", fontsize="small")
        ax.set(xscale="log", ylim=(0, None), xlabel="equal-width bins" if i == 1 else "",
               ylabel="ECE" if j == 0 else "")
        ax.set_xticks(ks, [str(k) if k in LABELLED_BINS else "" for k in ks])  # 10, 15, 20, 30 would overlap
        ax.minorticks_off()
    figures.shared_legend(fig, axes)
    figures.add_note(fig, note)
    return fig
