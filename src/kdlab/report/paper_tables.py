"""The paper's body tables: one per question, each with paired-bootstrap intervals.

Every function reads analysis results (``results/<name>.json``, already parsed) and writes
``reports/tables/paper_<question>.{tex,csv,md}`` with :func:`kdlab.report.latex.write_table`
(intervals stacked under the estimate, so every table fits the text width). The appendix
keeps the full tables each analysis renders; these are the compact views the prose cites.

Cells: the full-sample estimate with the 2.5th and 97.5th percentiles of the paired
resamples under it (:data:`STATISTIC`); a difference is computed on the same resamples
for both systems.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import pandas as pd

from kdlab.analyses.context import SCOPES
from kdlab.report import latex
from kdlab.report.inputs import Out

STATISTIC = ("Cells: full-sample estimate, under it the 2.5th and 97.5th percentiles of the paired bootstrap "
             "resamples (differences and ratios on the same resamples for every system). The course reports "
             "the median of 1,000 resamples instead; the published-numbers check compares that statistic.")
DELTA = r"$\Delta$"


def _iv(rec: Optional[dict], key: str = "") -> tuple[float, float, float]:
    """(estimate, low, high) of a record: fields ``estimate/low/high`` or ``<key>``, ``<key>_low``, ``<key>_high``."""
    if rec is None:
        return (math.nan,) * 3
    names = ("estimate", "low", "high") if not key else (key, f"{key}_low", f"{key}_high")
    return tuple(math.nan if rec.get(n) is None else float(rec[n]) for n in names)


def _frames(rows: dict, columns: list) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """rows: label -> {column: (estimate, low, high)} -> (values, low, high) frames; missing cells NaN."""
    index = pd.MultiIndex.from_tuples(columns) if columns and isinstance(columns[0], tuple) else columns
    out = [pd.DataFrame(math.nan, index=list(rows), columns=index) for _ in range(3)]
    for label, cells in rows.items():
        for col, triple in cells.items():
            for frame, x in zip(out, triple):
                frame.at[label, col] = x
    return out[0], out[1], out[2]


def _find(records: list, **key) -> Optional[dict]:
    return next((r for r in records if all(r.get(k) == v for k, v in key.items())), None)


def _caption(out: Out, title: str, n: int, fold: str, boot: dict, notes=()) -> str:
    return latex.caption(title, n=n, fold=fold, source=out.source, demo_note=out.profile_note,
                         resamples=boot["resamples"], seed=boot["seed"], notes=[STATISTIC, *notes])


def _unavailable(result: dict, names: dict[str, str]) -> dict[str, str]:
    """row label -> reason, for the rows whose arm (``names``: label -> arm) has no predictions."""
    return {label: result["unavailable"][arm] for label, arm in names.items() if arm in result["unavailable"]}


def tiers(result: dict, out: Out) -> None:
    """Q1, what KD transfers per tier: macro F1 and ECE of the baseline and the headline arm, and
    their paired difference, overall and per tier (results/tiers.json)."""
    base, kd = result["baseline"], result["headline"]
    values, deltas = result["tables"]["values"], result["tables"]["deltas"]
    cols = [(m, r) for m in ("macro_f1", "ece") for r in ("base", "kd", "delta")]
    rows, order = {}, []
    for scope in SCOPES:
        label = f"{scope} (n = {result['n'][scope]:,})"
        order.append(label)
        rows[label] = {(m, "base"): _iv(_find(values, system=base, scope=scope, metric=m)) for m in ("macro_f1", "ece")}
        rows[label].update({(m, "kd"): _iv(_find(values, system=kd, scope=scope, metric=m)) for m in ("macro_f1", "ece")})
        rows[label].update({(m, "delta"): _iv(_find(deltas, arm=kd, scope=scope, metric=m)) for m in ("macro_f1", "ece")})
    v, lo, hi = _frames(rows, cols)
    gone = [a for a in (base, kd) if a in result["unavailable"]]
    shaky = [s for s, flag in result["ece_unstable"].items() if flag]
    notes = [f"\u0394: {kd} minus {base} on the same resamples of each tier's rows; macro F1 of a tier is over "
             "that tier's classes."]
    absent = {s: c for s, c in result.get("classes", {}).items() if s != "overall" and c["present"] < c["all"]}
    if absent:  # an absent class counts 0: say so, and where the macro F1 over the classes present is
        notes.append("Classes without a val row (counted as F1 = 0): " + "; ".join(
            f"{s} {c['all'] - c['present']} of {c['all']}" for s, c in absent.items())
            + "; macro F1 over the classes present: appendix, tiers_value_macro_f1_present.")
    if shaky:
        notes.append(f"ECE on {', '.join(shaky)} has fewer than {result['min_tier_examples_per_bin']:g} examples per "
                     f"bin ({result['ece_bins']} bins): descriptive, not a stable estimate.")
    latex.write_table(
        out.tables / "paper_tiers.tex", v, low=lo, high=hi, stack=True, directions={}, label="tab:paper_tiers",
        signed={(m, "delta"): True for m in ("macro_f1", "ece")}, size=r"\footnotesize",
        unavailable={label: f"{', '.join(gone)}: {result['unavailable'][gone[0]]}" for label in order} if gone else None,
        headers={**latex.METRIC_LABELS, "base": latex.escape_latex(base), "kd": latex.escape_latex(kd),
                 "delta": DELTA},
        caption_tex=_caption(out, f"What distillation changes per tier: {kd} against {base}", result["n"]["overall"],
                             "full validation split", result["bootstrap"], notes))


def calibration(suite: dict, han_guo: dict, out: Out) -> None:
    """Q2, calibration and temperature scaling: ECE and NLL on the evaluation half, raw and + T, their
    paired differences to the baseline, and the two shares of Han Guo et al. (a: the course's, b: the paper's)."""
    base, kd, raw = han_guo["baseline"], han_guo["headline"], han_guo["raw_teacher"]
    recs = [r for r in suite["tables"]["suite"] if r["view"] == "eval" and r["scope"] == "overall"]
    temps = {r["system"]: r.get("temperature") for r in han_guo["tables"]["course"]}
    keys = ["ece", "delta_ece", "nll", "delta_nll", "temperature"]
    rows = {}
    for label in (base, f"{base} + T", kd, f"{kd} + T"):
        r = _find(recs, system=label)
        rows[label] = {k: _iv(r, k) for k in keys[:4]} if r else {}
        t = temps.get(label)
        rows[label]["temperature"] = (math.nan if t is None else float(t), math.nan, math.nan)
    shares = {"(a) course: T on the student / KD": ("course_shares", 1.0),
              "(b) Han Guo et al.: student / teacher": ("paper_shares", 1.0)}
    missing = {}
    for label, (table, _) in shares.items():
        rows[label] = {}
        for r in han_guo["tables"][table]:
            if not r.get("available"):
                missing[label] = r["reason"]
                continue
            col = "ece" if r["metric"] == "ece" else "nll"
            rows[label][col] = tuple(x * 100.0 for x in _iv(r, "share"))
    v, lo, hi = _frames(rows, keys)
    first_share = next(iter(shares))
    latex.write_table(
        out.tables / "paper_calibration.tex", v, low=lo, high=hi, stack=True, label="tab:paper_calibration",
        best_among=[], signed={"delta_ece": True, "delta_nll": True}, decimals={"temperature": 2},
        row_decimals={label: 1 for label in shares}, row_signed={label: False for label in shares},
        groups={base: "Evaluation half: T fitted on the calibration half",
                first_share: "Share of the gain (%), per-resample ratio"},
        unavailable={**_unavailable(suite, {base: base, f"{base} + T": base, kd: kd, f"{kd} + T": kd}), **missing},
        headers={**latex.METRIC_LABELS, "delta_ece": f"{DELTA} ECE", "delta_nll": f"{DELTA} NLL"},
        size=r"\footnotesize",
        caption_tex=_caption(
            out, "Temperature scaling against distillation", han_guo["n_eval"], "evaluation half of val",
            han_guo["bootstrap"],
            [f"\u0394: minus {base} on the same resamples. (a) ECE: (ECE({base}) - ECE({base} + T)) / (ECE({base}) - "
             f"ECE({kd})), the share of distillation's ECE gain that temperature scaling reproduces (the course's "
             f"test; same for NLL). (b) (M({raw}) - M({kd})) / (M(teacher_raw) - M(teacher)) on the full validation "
             f"split (n = {han_guo['n']:,}): the share of the teacher's own temperature-scaling gain that reaches "
             "the student (Han Guo et al. 2021, who report 111.2 % for BERT students; their number)."]))


def busbridge(result: dict, out: Out, label: Callable[[str], str]) -> None:
    """Q3, Busbridge et al.: calibration against k, the teacher probabilities the student sees; differences
    to full-distribution KD on the same resamples (results/busbridge.json, overall)."""
    kd, base = result["headline"], result["baseline"]
    values = [r for r in result["tables"]["values"] if r.get("scope") == "overall"]
    vs_full = [r for r in result["tables"]["vs_full"] if r.get("scope") == "overall"]
    arms = [r["arm"] for r in result["ladder"]] + [base]
    rows = {}
    for arm in arms:
        rows[label(arm)] = {m: _iv(_find(values, system=arm, metric=m)) for m in ("ece", "nll", "js")}
        rows[label(arm)].update({f"delta_{m}": _iv(_find(vs_full, arm=arm, metric=m)) for m in ("ece", "nll")})
    keys = ["ece", "delta_ece", "nll", "delta_nll", "js"]
    v, lo, hi = _frames(rows, keys)
    latex.write_table(
        out.tables / "paper_busbridge.tex", v, low=lo, high=hi, stack=True, label="tab:paper_busbridge",
        signed={"delta_ece": True, "delta_nll": True}, size=r"\footnotesize",
        best_among=[label(a) for a in arms if a != base],
        directions={"ece": "lower", "nll": "lower", "js": "lower"},
        unavailable=_unavailable(result, {label(a): a for a in arms}),
        headers={**latex.METRIC_LABELS, "delta_ece": f"{DELTA} ECE vs full", "delta_nll": f"{DELTA} NLL vs full",
                 "js": "JS to teacher"},
        caption_tex=_caption(out, "Calibration by how much of the teacher's distribution the student sees",
                             result["n"]["overall"], "full validation split", result["bootstrap"],
                             [f"k: teacher probabilities per example in the loss; \u0394: minus {kd} (full "
                              "distribution) on the same resamples; bold: best distilled student. "
                              "Busbridge et al. (2025) report student ECE of 0.1-0.6 % with full-distribution KD "
                              "and 22-39 % with top-1 KD (their numbers)."]))


def stanton(result: dict, out: Out) -> None:
    """Q4, Stanton et al.: fidelity to the teacher (top-1 agreement, KL and JS) of the baseline and the
    headline arm, the headline's paired change and the share of the baseline's gap it closes (overall)."""
    base, kd = result["baseline"], result["headline"]
    tables = {k: [r for r in result["tables"][k] if r.get("scope") == "overall"]
              for k in ("values", "deltas", "gap_closed")}
    metrics = ("agreement", "kl", "js")
    change, closed = f"{kd} minus {base}", "share of the gap closed"
    rows = {s: {m: _iv(_find(tables["values"], system=s, metric=m)) for m in metrics} for s in (base, kd)}
    rows[change] = {m: _iv(_find(tables["deltas"], arm=kd, metric=m)) for m in metrics}
    rows[closed] = {m: _iv(_find(tables["gap_closed"], arm=kd, metric=m)) for m in metrics}
    v, lo, hi = _frames(rows, list(metrics))
    gone = _unavailable(result, {base: base, kd: kd})
    if gone:
        gone.update({change: next(iter(gone.values())), closed: next(iter(gone.values()))})
    latex.write_table(
        out.tables / "paper_stanton.tex", v, low=lo, high=hi, stack=True, label="tab:paper_stanton",
        best_among=[base, kd], directions={"agreement": "higher", "kl": "lower", "js": "lower"},
        row_signed={change: True}, groups={change: "Paired comparison"}, unavailable=gone, size=r"\footnotesize",
        headers={"agreement": "Top-1 agreement", "kl": r"KL(teacher $\|$ student)", "js": "JS(teacher, student)"},
        caption_tex=_caption(out, "Fidelity to the teacher", result["n"]["overall"], "full validation split",
                             result["bootstrap"],
                             ["Against the temperature-scaled teacher on the same rows; KL and JS in nats. Share of "
                              f"the gap closed: (A({kd}) - A({base})) / (1 - A({base})) for agreement, "
                              f"(D({base}) - D({kd})) / D({base}) for KL and JS, per resample; 1 means no gap left. "
                              "Per tier: the appendix."]))


def sweep(result: dict, out: Out) -> None:
    """Q6, the T_d x alpha sweep: macro F1, its paired difference to the recipe's cell, ECE and tail macro
    F1 of each cell (results/sweep.json)."""
    t0, a0 = result["default_cell"]
    rows, missing = {}, {}
    for r in result["tables"]["grid"]:
        label = f"T_d = {r['kd_temperature']:g}, \u03b1 = {r['alpha']:g}" + (" (recipe)" if r["default"] else "")
        rows[label] = {k: _iv(r, k) for k in ("macro_f1", "delta_macro_f1", "ece", "tail_f1")} if r["available"] else {}
        if not r["available"]:
            missing[label] = f"{r['arm'] or 'no arm'}: {r['reason']}"
    keys = ["macro_f1", "delta_macro_f1", "ece", "tail_f1"]
    v, lo, hi = _frames(rows, keys)
    latex.write_table(
        out.tables / "paper_sweep.tex", v, low=lo, high=hi, stack=True, label="tab:paper_sweep",
        signed={"delta_macro_f1": True}, unavailable=missing, size=r"\footnotesize",
        directions={**latex.DIRECTIONS, "tail_f1": "higher"},
        headers={**latex.METRIC_LABELS, "delta_macro_f1": f"{DELTA} macro F1 vs recipe", "tail_f1": "Tail macro F1"},
        caption_tex=_caption(out, "The distillation temperature and weight", result["n"], "full validation split",
                             result["bootstrap"],
                             [f"\u0394: the cell minus the recipe's cell (T_d = {t0:g}, \u03b1 = {a0:g}) on the same "
                              f"resamples; tail macro F1 on the {result['n_tail']:,} tail examples; bold: best cell. "
                              "NLL and ranks: the appendix."]))


def coverage(result: dict, out: Out) -> None:
    """Q7, selective prediction: accuracy and coverage at the headline threshold, the SLA threshold, and the
    headline arm minus the baseline on the same resamples (results/coverage.json, full val)."""
    base, kd, h = result["baseline"], result["headline"], result["headline_threshold"]
    cov = [r for r in result["tables"]["coverage"] if r["view"] == "full" and math.isclose(r["threshold"], h)]
    sla = {r["system"]: r for r in result["tables"]["sla"] if r["view"] == "full"}
    deltas = [r for r in result["tables"].get("deltas", []) if r["view"] == "full"]
    change = f"{kd} minus {base}"
    rows = {}
    for s in ("teacher", base, kd):
        r = _find(cov, system=s)
        rows[s] = {"accuracy": _iv(r, "accuracy"), "coverage": _iv(r, "coverage")}
        fine = sla.get(s, {})
        rows[s]["sla"] = (math.nan if fine.get("sla_threshold_fine") is None else fine["sla_threshold_fine"],
                          math.nan, math.nan)
        rows[s]["sla_coverage"] = (math.nan if fine.get("coverage_at_sla_fine") is None
                                   else fine["coverage_at_sla_fine"], math.nan, math.nan)
    rows[change] = {m: _iv(_find(deltas, system=kd, metric=m)) for m in ("accuracy", "coverage")}
    v, lo, hi = _frames(rows, ["accuracy", "coverage", "sla", "sla_coverage"])
    gone = _unavailable(result, {base: base, kd: kd})
    if gone:
        gone[change] = next(iter(gone.values()))
    target = f"{result['sla_accuracy']:.0%}".replace("%", r"\,\%")
    latex.write_table(
        out.tables / "paper_coverage.tex", v, low=lo, high=hi, stack=True, label="tab:paper_coverage",
        best_among=[base, kd], directions={"accuracy": "higher", "coverage": "higher"}, decimals={"sla": 2},
        row_signed={change: True}, groups={change: "Paired comparison"}, unavailable=gone, size=r"\footnotesize",
        headers={"accuracy": rf"Accuracy at $\geq {h:g}$", "coverage": rf"Coverage at $\geq {h:g}$",
                 "sla": f"{target} SLA threshold", "sla_coverage": "Coverage there"},
        caption_tex=_caption(out, "Confidence thresholds and the accuracy SLA", result["n"], "full validation split",
                             result["bootstrap"],
                             [f"Coverage: share of examples with top-1 confidence at or above the threshold; accuracy "
                              f"on those. SLA threshold: the lowest threshold on a 0.01 grid whose accuracy reaches "
                              f"{result['sla_accuracy']:g} (-- when none does). Accuracy per resample: covered and "
                              "correct over covered. Other thresholds and + T: the appendix."]))
