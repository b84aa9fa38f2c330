"""Analysis 2: every arm against the baseline arm (``cfg.baseline_arm``), per tier and overall.

Compared: macro F1, accuracy, ECE and NLL of each available arm (and the
temperature-scaled teacher, for reference) on the full validation split
("full val", all rows of each scope: overall, head, mid, tail). Deltas are
arm − baseline on the same bootstrap resamples of the scope's rows (paired,
indices from ``study.bootstrap_indices``). Every interval carries the
full-sample estimate, the resamples' median and 2.5/97.5 percentiles.

The helpers here (``measure``, ``ci_record``, ``scope_table``, ...) are shared
by the stanton, busbridge and confound analyses.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab import metrics, stats
from kdlab.analyses.context import SCOPES, Study
from kdlab.report import figures, latex

FOLD = "full val"
KD_ARM = "kd"  # the study's distilled student (STUDY.md §3)
METRICS = ("macro_f1", "accuracy", "ece", "nll")
DIRECTION = {"macro_f1": "higher", "accuracy": "higher", "ece": "lower", "nll": "lower",
             "agreement": "higher", "kl": "lower", "js": "lower"}
LABEL = {"macro_f1": "macro F1", "accuracy": "accuracy", "ece": "ECE", "nll": "NLL", "kl": "KL(teacher || student)",
         "agreement": "top-1 agreement with the teacher", "js": "JS(teacher, student)"}
SIZE = r"\footnotesize"  # four columns of intervals
FIGURE_ARMS = ("kd", "top1_kd", "topk5_kd", "topk20_kd", "vanilla_train_only", "vanilla_ls", "kd_raw_teacher")
F1_NOTE = ("A single system's macro F1 interval can sit below its full-sample value: a resample repeats some "
           "rows and misses others, and a tier class missed scores 0 (the JSON flags estimate_in_interval); "
           "paired deltas are far less affected.")
_POINT = {  # full-sample values: kdlab.metrics, the one definition of each metric
    "macro_f1": lambda d: metrics.macro_f1(d["labels"], d["preds"], d["class_ids"]),
    "accuracy": lambda d: metrics.accuracy(d["labels"], d["preds"]),
    "ece": lambda d: metrics.ece(d["probs"], d["labels"], d["n_bins"]),
    "nll": lambda d: metrics.nll(d["probs"], d["labels"]),
    "js": lambda d: float(np.mean(metrics.js_divergence(d["p"], d["q"]))),
    "kl": lambda d: float(np.mean(metrics.kl_divergence(d["p"], d["q"]))),
    "agreement": lambda d: metrics.top1_agreement(d["p"], d["q"]),
}


# --- shared helpers ---------------------------------------------------------
def num(x) -> float | None:
    """A JSON-safe float: None for NaN, inf or None."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def ci_record(estimate: float, samples: np.ndarray, study: Study) -> dict:
    """{estimate, median, low, high, resamples, seed, estimate_in_interval}: stats.summarize of the resamples."""
    iv = stats.summarize(estimate, samples, study.seed)
    rec = {k: num(getattr(iv, k)) for k in ("estimate", "median", "low", "high")}
    inside = None if None in rec.values() else rec["low"] <= rec["estimate"] <= rec["high"]
    return {**rec, "resamples": iv.resamples, "seed": iv.seed, "estimate_in_interval": inside}


def excludes_zero(rec: dict) -> bool:
    """The interval [low, high] lies strictly on one side of 0."""
    return rec["low"] is not None and (rec["low"] > 0 or rec["high"] < 0)


def header(study: Study) -> dict:
    """The facts every result records: fold, n per scope, bootstrap, unavailable arms, and
    ``ece_unstable`` per scope: n_scope / ece_bins < cfg.evaluation.min_tier_examples_per_bin."""
    ev = study.cfg.evaluation
    n = {s: int(len(study.scope_rows(s))) for s in SCOPES}
    return {"fold": FOLD, "n": n, "bootstrap": {"resamples": study.resamples, "seed": study.seed},
            "ece_bins": ev.ece_bins, "min_tier_examples_per_bin": ev.min_tier_examples_per_bin,
            "ece_unstable": {s: k / ev.ece_bins < ev.min_tier_examples_per_bin for s, k in n.items()},
            "unavailable": dict(study.unavailable), "baseline": study.cfg.baseline_arm}


def _inputs(study: Study, scope: str, system: str, metric: str) -> dict:
    rows = study.scope_rows(scope)
    labels = study.labels[rows]
    if metric in ("macro_f1", "accuracy"):
        out = {"labels": labels, "preds": study.predictions(system).preds[rows]}
        return {**out, "class_ids": study.scope_class_ids(scope)} if metric == "macro_f1" else out
    if metric in ("ece", "nll"):
        out = {"probs": study.probs(system)[rows], "labels": labels}
        return {**out, "n_bins": study.cfg.evaluation.ece_bins} if metric == "ece" else out
    return {"p": study.probs("teacher")[rows], "q": study.probs(system)[rows]}  # js, kl, agreement


def measure(study: Study, scope: str, systems, metric_names) -> dict[str, dict[str, tuple[float, np.ndarray]]]:
    """system -> metric -> (full-sample value, (B,) values on the scope's shared resamples).

    Every system of a scope uses the same indices (paired). The resamples go
    through kdlab.stats, batched (one count matrix per scope for all systems).
    """
    idx = study.bootstrap_indices(len(study.scope_rows(scope)))
    jobs = [(s, m, _inputs(study, scope, s, m)) for s in systems for m in metric_names]
    out: dict = {s: {} for s in systems}
    for group in ([j for j in jobs if j[1] == "macro_f1"], [j for j in jobs if j[1] != "macro_f1"]):
        if not group:
            continue
        samples = stats.resampled_many([(m, inp) for _, m, inp in group], idx)
        for (s, m, inp), values in zip(group, samples):
            out[s][m] = (float(_POINT[m](inp)), values)
    return out


def delta(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray], study: Study) -> dict:
    """Paired interval of a − b from two ``measure`` entries on the same indices."""
    return ci_record(a[0] - b[0], a[1] - b[1], study)


macro = latex.macro_name  # free name -> TeX macro letters ("top1_kd" -> "TopOneKd")


def add_numbers(numbers: dict, name: str, rec: dict | None) -> None:
    """``name`` (estimate), ``nameLow``, ``nameHigh``; "--" where missing."""
    for suffix, key in (("", "estimate"), ("Low", "low"), ("High", "high")):
        value = None if rec is None else rec[key]
        numbers[name + suffix] = "--" if value is None else value


def caption_tex(result: dict, out, title: str, notes=()) -> str:
    b = result["bootstrap"]
    cells = ("Cells: full-sample estimate [2.5th, 97.5th percentile of the paired resamples]; "
             f"resample medians in results/{result.get('name', '')}.json.")
    return latex.caption(title, n=result["n"]["overall"], fold=result["fold"], source=out.source,
                         demo_note=out.profile_note, resamples=b["resamples"], seed=b["seed"],
                         notes=[cells, *notes])


def scope_table(path, records, metric: str, row_key: str, result: dict, out, *, title: str, notes=(),
                unavailable=None, label_of=None, best_among=None, direction=None,
                unstable_ece: bool = False) -> None:
    """One metric's table: rows = ``records[row_key]`` (records with scope, metric and an interval),
    columns = scopes; ``unavailable`` (name -> reason) rows span the columns with the reason."""
    label_of = label_of or (lambda r: r)
    names = list(dict.fromkeys(r[row_key] for r in records if r.get("metric") == metric))
    unavailable = {label_of(a): why for a, why in (unavailable or {}).items()}
    index = [label_of(r) for r in names] + [u for u in unavailable if u not in names]
    frames = {k: pd.DataFrame(np.nan, index=index, columns=list(SCOPES)) for k in ("estimate", "low", "high")}
    for r in records:
        if r.get("metric") == metric:
            for k, f in frames.items():
                f.at[label_of(r[row_key]), r["scope"]] = np.nan if r[k] is None else r[k]
    shaky, k = {s for s, flag in result["ece_unstable"].items() if flag and unstable_ece}, result["ece_bins"]
    heads = {s: f"{s} ($n={latex.count(result['n'][s])}$" + ("; unstable)" if s in shaky else ")") for s in SCOPES}
    direction = DIRECTION.get(metric) if direction is None else direction
    latex.write_table(path, frames["estimate"], low=frames["low"], high=frames["high"],
                      label=f"tab:{path.stem}", unavailable=unavailable, headers=heads,
                      directions={s: direction for s in SCOPES if s not in shaky},
                      decimals={s: 2 if s in shaky else 3 for s in SCOPES},
                      best_among=None if best_among is None else [label_of(b) for b in best_among], size=SIZE,
                      caption_tex=caption_tex(result, out, title, [*notes, *(
                          f"ECE unstable for {s}: {result['n'][s]} examples over {k} bins ({result['n'][s] / k:.1f} "
                          f"per bin, fewer than {result['min_tier_examples_per_bin']:g}); descriptive only, "
                          "2 decimals, not ranked." for s in sorted(shaky, key=SCOPES.index))]))


def figure_note(result: dict, out, shown=()) -> str:
    """Super-title: profile note, source, fold and n, and the arms omitted as unavailable."""
    lines = [out.profile_note] if out.profile_note else []
    lines.append(f"Data: {out.source}; {result['fold']}, n = {result['n']['overall']:,}")
    gone = [a for a in result["unavailable"] if not shown or a in shown]
    if gone:
        lines.append("omitted (" + "; ".join(f"{a}: {result['unavailable'][a]}" for a in gone) + ")")
    return "\n".join(lines)


def scope_bars(tidy: pd.DataFrame, metric_names, tier_n: dict, note: str, ylabel: str, order=(), shaky=()):
    """Bars with interval error bars (may be negative, unlike figures.tier_bars): a panel per metric,
    scopes on x; ``tidy`` has system, scope, metric, estimate, low, high; colours follow ``order``;
    ECE ticks of the ``shaky`` scopes say "unstable"."""
    systems = list(dict.fromkeys(tidy["system"]))
    palette = figures.colors(list(dict.fromkeys([*order, *systems])))
    x, width = np.arange(len(SCOPES)), 0.8 / max(len(systems), 1)
    fig, axes = figures.plt.subplots(1, len(metric_names), figsize=(max(4.4 * len(metric_names), 7.0), 3.6),
                                     squeeze=False)
    for ax, metric in zip(axes[0], metric_names):
        sub = tidy[tidy["metric"] == metric].set_index(["system", "scope"])
        for i, s in enumerate(systems):
            v, lo, hi = (np.array([sub[c].get((s, t), np.nan) for t in SCOPES], float)
                         for c in ("estimate", "low", "high"))
            err = np.clip(np.nan_to_num(np.array([v - lo, hi - v])), 0, None)
            ax.bar(x - 0.4 + width * (i + 0.5), v, width, yerr=err, capsize=2, color=palette[s], label=s,
                   error_kw={"elinewidth": 0.8})
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(x, [f"{t}\n(n={tier_n[t]:,})" + ("\nunstable" if metric == "ece" and t in shaky else "")
                          for t in SCOPES])
        ax.set(title=f"{LABEL[metric]} ({DIRECTION[metric]} is better)", ylabel=ylabel)
    axes[0][-1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(note, fontsize="small")
    return fig


# --- the analysis -----------------------------------------------------------
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
                                   "excludes_zero": excludes_zero(rec)})
    result = {"name": "tiers", **header(study)}
    for r in values + deltas:
        r["n"] = result["n"][r["scope"]]
        r["unstable"] = r["metric"] == "ece" and result["ece_unstable"][r["scope"]]
    missing = [{"system": a, "available": False, "reason": why} for a, why in study.unavailable.items()]
    result["tables"] = {"values": values + missing, "deltas": deltas + missing}
    numbers: dict = {}
    tags = {"macro_f1": "FoneLift", "accuracy": "AccuracyLift", "ece": "EceDelta", "nll": "NllDelta"}
    for scope in SCOPES:
        for m, tag in tags.items():
            rec = next((d for d in deltas if (d["arm"], d["scope"], d["metric"]) == (KD_ARM, scope, m)), None)
            add_numbers(numbers, f"{macro(KD_ARM)}{scope.capitalize()}{tag}", rec)
    result["numbers"] = numbers
    return result


def render(result: dict, out) -> None:
    """reports/tables/tiers_{delta,value}_<metric>.tex and reports/figures/tiers_deltas.{pdf,png}."""
    base, gone = result["baseline"], result["unavailable"]
    students = list(dict.fromkeys(r["system"] for r in result["tables"]["values"] if r.get("metric")))[1:]
    for m in METRICS:
        scope_table(out.tables / f"tiers_delta_{m}.tex", result["tables"]["deltas"], m, "arm", result, out,
                    title=f"Change in {LABEL[m]}, arm minus {base}, overall and per frequency tier",
                    notes=["Bold: the largest improvement per column."], unstable_ece=m == "ece",
                    unavailable={a: why for a, why in gone.items() if a != base})
        scope_table(out.tables / f"tiers_value_{m}.tex", result["tables"]["values"], m, "system", result, out,
                    title=f"{LABEL[m]} of each system, overall and per frequency tier", best_among=students,
                    notes=["The temperature-scaled teacher is shown for reference; bold: best student.", *(
                        [F1_NOTE] if m == "macro_f1" else [])],
                    unstable_ece=m == "ece", unavailable=gone)
    shown = [a for a in FIGURE_ARMS if a != base]
    tidy = pd.DataFrame([{**d, "system": d["arm"]} for d in result["tables"]["deltas"] if d.get("arm") in shown],
                        columns=["system", "scope", "metric", "estimate", "low", "high"])
    tidy[["estimate", "low", "high"]] = tidy[["estimate", "low", "high"]].astype(float)
    figures.set_style()
    fig = scope_bars(tidy, ("macro_f1", "ece"), result["n"], figure_note(result, out, shown), f"arm minus {base}",
                     order=[base, *FIGURE_ARMS], shaky=[t for t, f in result["ece_unstable"].items() if f])
    figures.save_figure(fig, out.figures / "tiers_deltas")
