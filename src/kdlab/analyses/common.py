"""Helpers that more than one analysis uses: resampled metrics, interval records, JSON and
numbers.tex values, the per-scope table and bar chart, and caption / super-title notes.

Resampling goes through :mod:`kdlab.stats` (batched: every job of a call on the same
indices, so deltas are paired); full-sample values through :mod:`kdlab.metrics`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab import metrics, stats
from kdlab.analyses.context import SCOPES, Study
from kdlab.report import latex

FOLD = "full val"
DIRECTION = {"macro_f1": "higher", "macro_f1_present": "higher", "accuracy": "higher", "ece": "lower", "nll": "lower",
             "agreement": "higher", "kl": "lower", "js": "lower"}
LABEL = {"macro_f1": "macro F1", "macro_f1_present": "macro F1 over the classes present in val", "accuracy": "accuracy", "ece": "ECE", "nll": "NLL", "kl": "KL(teacher || student)",
         "agreement": "top-1 agreement with the teacher", "js": "JS(teacher, student)"}
SIZE = r"\footnotesize"  # four columns of intervals
OTHER_FIGURE_ARMS = ("top1_kd", "topk5_kd", "topk20_kd", "vanilla_train_only", "vanilla_ls")
COMPUTED_AS = {"macro_f1_present": "macro_f1"}  # the same metric on another class list (Study.scope_class_ids)
_POINT = {  # full-sample values: kdlab.metrics, the one definition of each metric
    "macro_f1": lambda d: metrics.macro_f1(d["labels"], d["preds"], d.get("class_ids")),
    "accuracy": lambda d: metrics.accuracy(d["labels"], d["preds"]),
    "ece": lambda d: metrics.ece(d["probs"], d["labels"], d["n_bins"]),
    "nll": lambda d: metrics.nll(d["probs"], d["labels"]),
    "mean": lambda d: float(np.mean(d["values"])),
    "js": lambda d: float(np.mean(metrics.js_divergence(d["p"], d["q"]))),
    "kl": lambda d: float(np.mean(metrics.kl_divergence(d["p"], d["q"]))),
    "agreement": lambda d: metrics.top1_agreement(d["p"], d["q"]),
}


# --- resampled metrics --------------------------------------------------------
def resample_many(jobs: list[tuple[str, dict]], indices: np.ndarray,
                  points: bool = False) -> list:
    """Every (metric, inputs) job on every resample in one pass (:func:`kdlab.stats.resampled_many`):
    a (B,) array per job, or with ``points`` a (full-sample value, (B,) array) pair per job."""
    jobs = [(COMPUTED_AS.get(m, m), inp) for m, inp in jobs]
    samples = stats.resampled_many(jobs, indices) if jobs else []
    if not points:
        return samples
    return [(float(_POINT[m](inp)), s) for (m, inp), s in zip(jobs, samples)]


def _inputs(study: Study, scope: str, system: str, metric: str) -> dict:
    rows = study.scope_rows(scope)
    labels = study.labels[rows]
    if metric in ("macro_f1", "macro_f1_present", "accuracy"):
        out = {"labels": labels, "preds": study.predictions(system).preds[rows]}
        if metric == "accuracy":
            return out
        return {**out, "class_ids": study.scope_class_ids(scope, present=metric == "macro_f1_present")}
    if metric in ("ece", "nll"):
        out = {"probs": study.probs(system)[rows], "labels": labels}
        return {**out, "n_bins": study.cfg.evaluation.ece_bins} if metric == "ece" else out
    return {"p": study.probs("teacher")[rows], "q": study.probs(system)[rows]}  # js, kl, agreement


def measure(study: Study, scope: str, systems, metric_names) -> dict[str, dict[str, tuple[float, np.ndarray]]]:
    """system -> metric -> (full-sample value, (B,) values on the scope's shared resamples).

    Every system of a scope uses the same indices (paired), batched (one count matrix per
    scope for all systems)."""
    idx = study.bootstrap_indices(len(study.scope_rows(scope)))
    jobs = [(s, m, _inputs(study, scope, s, m)) for s in systems for m in metric_names]
    out: dict = {s: {} for s in systems}
    f1 = ("macro_f1", "macro_f1_present")
    for group in ([j for j in jobs if j[1] in f1], [j for j in jobs if j[1] not in f1]):
        for (s, m, _), got in zip(group, resample_many([(m, inp) for _, m, inp in group], idx, points=True)):
            out[s][m] = got
    return out


# --- interval records ------------------------------------------------------------
def num(x) -> float | None:
    """A JSON-safe float: None for NaN, inf or None."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def ci_record(estimate: float, samples: np.ndarray, study: Study) -> dict:
    """{estimate, median, low, high, resamples, seed, estimate_in_interval}: stats.summarize of the resamples."""
    iv = stats.summarize(estimate, samples, study.seed)
    rec = {k: num(getattr(iv, k)) for k in ("estimate", "median", "low", "high")}
    inside = None if None in rec.values() else rec["low"] <= rec["estimate"] <= rec["high"]
    return {**rec, "resamples": iv.resamples, "seed": iv.seed, "estimate_in_interval": inside}


def delta(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray], study: Study) -> dict:
    """Paired interval of a − b from two ``measure`` entries on the same indices."""
    return ci_record(a[0] - b[0], a[1] - b[1], study)


def excludes_zero(rec: dict) -> bool:
    """The interval [low, high] lies strictly on one side of 0."""
    return rec["low"] is not None and (rec["low"] > 0 or rec["high"] < 0)


def flat(key: str, iv: stats.Interval, median: bool = True) -> dict:
    """An interval as flat record fields: key (full-sample estimate), key_median, key_low, key_high."""
    return {key: iv.estimate, **({f"{key}_median": iv.median} if median else {}),
            f"{key}_low": iv.low, f"{key}_high": iv.high}


# --- result facts ----------------------------------------------------------------
def header(study: Study) -> dict:
    """The facts every comparison result records: fold, n per scope, bootstrap, unavailable arms,
    the baseline, headline and raw-teacher arms, and ``ece_unstable`` per scope."""
    ev, cfg = study.cfg.evaluation, study.cfg
    n = {s: int(len(study.scope_rows(s))) for s in SCOPES}
    return {"fold": FOLD, "n": n, "bootstrap": {"resamples": study.resamples, "seed": study.seed},
            "ece_bins": ev.ece_bins, "min_tier_examples_per_bin": ev.min_tier_examples_per_bin,
            "ece_unstable": {s: unstable(study, k) for s, k in n.items()},
            "unavailable": dict(study.unavailable), "baseline": cfg.baseline_arm,
            "headline": cfg.headline_arm, "raw_teacher": cfg.raw_teacher_arm}


def unavailable_rows(unavailable: dict) -> list[dict]:
    """Table rows {system, available: False, reason} for the systems without predictions."""
    return [{"system": a, "available": False, "reason": why} for a, why in unavailable.items()]


def unstable(study: Study, n_rows: int) -> bool:
    """Binned ECE on ``n_rows`` examples is flagged when n / bins < min_tier_examples_per_bin."""
    ev = study.cfg.evaluation
    return bool(n_rows / ev.ece_bins < ev.min_tier_examples_per_bin)


def boot_record(study: Study, loop: bool = False) -> dict:
    rec = {"resamples": study.resamples, "seed": study.seed}
    if loop:
        rec["loop_resamples"] = study.loop_resamples
    return rec


def eval_fold(study: Study) -> str:
    ev = study.cfg.evaluation
    return f"eval half, n={len(study.fold[1])}, seed {ev.calibration_fold_seed}"


def figure_arms(result: dict) -> tuple[str, ...]:
    """The arms the comparison figures show: the headline arm, the others, the raw-teacher arm."""
    return (result["headline"], *OTHER_FIGURE_ARMS, result["raw_teacher"])


# --- JSON and numbers.tex values -------------------------------------------------
def clean(obj):
    """JSON-safe copy: numpy -> Python, NaN/inf -> None, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dash(x):
    """A numbers.tex value: "--" for a missing one."""
    return "--" if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


macro = latex.macro_name  # free name -> TeX macro letters ("top1_kd" -> "TopOneKd")


def add_numbers(numbers: dict, name: str, rec: dict | None) -> None:
    """``name`` (estimate), ``nameLow``, ``nameHigh``; "--" where missing."""
    for suffix, key in (("", "estimate"), ("Low", "low"), ("High", "high")):
        numbers[name + suffix] = dash(None if rec is None else rec[key])


# --- tables ------------------------------------------------------------------------
def frames(rows: dict, keys, suffix_low: str = "_low", suffix_high: str = "_high"):
    """(values, low, high) frames (rows = dict keys, columns = ``keys``) from flat records; None -> NaN."""
    def get(rec, k):
        v = rec.get(k)
        return math.nan if v is None else float(v)

    def frame(suffix):
        return pd.DataFrame([[get(r, k + suffix) for k in keys] for r in rows.values()], index=list(rows),
                            columns=list(keys))
    return frame(""), frame(suffix_low), frame(suffix_high)


def scope_table(path, records, metric: str, row_key: str, result: dict, out, *, title: str, notes=(),
                unavailable=None, label_of=None, best_among=None, direction=None,
                unstable_ece: bool = False, signed: bool = False, row_decimals=None, row_signed=None) -> None:
    """One metric's table: rows = ``records[row_key]`` (records with scope, metric and an interval),
    columns = scopes; ``unavailable`` (name -> reason) rows span the columns with the reason;
    ``signed``: cells are differences (``+0.052``); ``row_decimals``/``row_signed``: per-row overrides."""
    label_of = label_of or (lambda r: r)
    names = list(dict.fromkeys(r[row_key] for r in records if r.get("metric") == metric))
    unavailable = {label_of(a): why for a, why in (unavailable or {}).items()}
    index = [label_of(r) for r in names] + [u for u in unavailable if u not in names]
    frame = {k: pd.DataFrame(np.nan, index=index, columns=list(SCOPES)) for k in ("estimate", "low", "high")}
    for r in records:
        if r.get("metric") == metric:
            for k, f in frame.items():
                f.at[label_of(r[row_key]), r["scope"]] = np.nan if r[k] is None else r[k]
    shaky, k = {s for s, flag in result["ece_unstable"].items() if flag and unstable_ece}, result["ece_bins"]
    heads = {s: f"{s} ($n={latex.count(result['n'][s])}$" + ("; unstable)" if s in shaky else ")") for s in SCOPES}
    direction = DIRECTION.get(metric) if direction is None else direction
    boot = result["bootstrap"]
    cells = ("Cells: full-sample estimate, under it [2.5th, 97.5th percentile of the paired resamples]; "
             f"resample medians in results/{result.get('name', '')}.json.")
    shaky_notes = [f"ECE unstable for {s}: {result['n'][s]} examples over {k} bins ({result['n'][s] / k:.1f} "
                   f"per bin, fewer than {result['min_tier_examples_per_bin']:g}); descriptive only, "
                   "2 decimals, not ranked." for s in sorted(shaky, key=SCOPES.index)]
    latex.write_table(path, frame["estimate"], low=frame["low"], high=frame["high"],
                      label=f"tab:{path.stem}", unavailable=unavailable, headers=heads,
                      directions={s: direction for s in SCOPES if s not in shaky},
                      decimals={s: 2 if s in shaky else 3 for s in SCOPES},
                      best_among=None if best_among is None else [label_of(b) for b in best_among], size=SIZE,
                      signed=signed, stack=True, row_decimals=row_decimals, row_signed=row_signed,
                      caption_tex=latex.caption(title, n=result["n"]["overall"], fold=result["fold"],
                                                source=out.source, demo_note=out.profile_note,
                                                resamples=boot["resamples"], seed=boot["seed"],
                                                notes=[cells, *notes, *shaky_notes]))


# --- figures -------------------------------------------------------------------------
def note_text(out, view: str, n: int, extra=()) -> str:
    """A figure's super-title: the run's warning (e.g. the demo banner), the view and n, then the
    ``extra`` lines. The data source and models are in the caption (the figure stays readable)."""
    lines = [out.profile_note] if out.profile_note else []
    return "\n".join([*lines, f"{view}, n = {n:,}", *extra])


def omitted_note(unavailable: dict, shown=()) -> list[str]:
    """One line naming the (``shown``) systems left out of a figure, grouped by reason."""
    gone = {a: why for a, why in unavailable.items() if not shown or a in shown}
    by_reason: dict = {}
    for arm, why in gone.items():
        by_reason.setdefault(why, []).append(arm)
    return ["not shown: " + "; ".join(f"{', '.join(arms)} ({why})" for why, arms in by_reason.items())] \
        if gone else []


def figure_note(result: dict, out, shown=()) -> str:
    """:func:`note_text` of a comparison result, with the (``shown``) arms omitted as unavailable."""
    return note_text(out, result["fold"], result["n"]["overall"], omitted_note(result["unavailable"], shown))


def scope_bars(tidy: pd.DataFrame, metric_names, tier_n: dict, note: str, ylabel: str, palette=None, shaky=()):
    """Bars with interval error bars (may be negative, unlike figures.tier_bars): a panel per metric,
    scopes on x; ``tidy`` has system, scope, metric, estimate, low, high; colours from ``palette``
    (the report's map, :mod:`kdlab.report.palette`); ECE ticks of the ``shaky`` scopes say "unstable"."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    systems = list(dict.fromkeys(tidy["system"]))
    colors = figures.system_colors(systems, palette)
    x, width = np.arange(len(SCOPES)), 0.8 / max(len(systems), 1)
    fig, axes = figures.subplots(1, len(metric_names), squeeze=False)
    for ax, metric in zip(axes[0], metric_names):
        sub = tidy[tidy["metric"] == metric].set_index(["system", "scope"])
        for i, s in enumerate(systems):
            v, lo, hi = (np.array([sub[c].get((s, t), np.nan) for t in SCOPES], float)
                         for c in ("estimate", "low", "high"))
            err = np.clip(np.nan_to_num(np.array([v - lo, hi - v])), 0, None)
            ax.bar(x - 0.4 + width * (i + 0.5), v, width, yerr=err, capsize=2, color=colors[s], label=s,
                   error_kw={"elinewidth": 0.8})
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(x, [f"{t}\n(n={tier_n[t]:,})" + ("\nunstable" if metric == "ece" and t in shaky else "")
                          for t in SCOPES])
        ax.set(title=f"{LABEL[metric]} ({DIRECTION[metric]} is better)", ylabel=ylabel)
    figures.shared_legend(fig, axes)
    figures.add_note(fig, note)
    return fig
