"""The report stage's own tables and figures (the analyses render theirs):

    reports/tables/tier_f1_ece.{tex,csv,md}            every system's macro F1 and ECE per tier (appendix)
    reports/tables/calibration_eval_half.{tex,csv,md}  baseline and KD arm, raw and + T, eval half (appendix)
    reports/tables/published_check.{tex,csv,md}        docs/study.md §7's published numbers against this run
    reports/figures/{long_tail,tier_f1_ece,reliability}.{pdf,png}

The reliability diagrams are drawn once, from the bins results/calibration_suite.json records.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab.config import TIERS, Config
from kdlab.paths import Layout
from kdlab.report import latex, provenance, reproduction
from kdlab.report.headline import TIER_KEYS, record, systems
from kdlab.report.inputs import Inputs, Out

LIKE_WITH_LIKE = ("Per-tier differences: the course's statistic, the median and 2.5/97.5 percentiles of the first "
                  "1,000 paired resamples (docs/study.md section 5); every other row: the full-sample value, as published.")


def tier_frame(inp: Inputs, names: list[str], view: str = "full_val",
               keys: tuple[str, ...] = ("macro_f1", "ece")) -> tuple[pd.DataFrame, dict[str, str]]:
    """Wide frame (rows ``names``, columns (tier, metric)) of one view, and unavailable reasons."""
    cols = pd.MultiIndex.from_tuples([(t, k) for t in TIER_KEYS for k in keys])
    values = pd.DataFrame(np.nan, index=names, columns=cols)
    unavailable = {}
    for name in names:
        rec = record(inp, name)
        if rec.get("available", True) is False:
            unavailable[name] = rec.get("reason", "not available")
            continue
        for tier, key in cols:
            values.at[name, (tier, key)] = rec[view][tier][key]
    return values, unavailable


def calibration_frame(inp: Inputs, arms: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Eval-half rows ``<arm>`` (raw, T = 1) and ``<arm> + T``: ECE, NLL, macro F1, fitted T."""
    keys = ["ece", "nll", "macro_f1", "temperature"]
    rows, unavailable = {}, {}
    for arm in arms:
        rec = inp.evaluate["arms"][arm]
        if not rec.get("available", False):
            unavailable[arm] = unavailable[f"{arm} + T"] = rec.get("reason", "not available")
            rows[arm] = rows[f"{arm} + T"] = [math.nan] * len(keys)
            continue
        raw, ts = rec["eval_half"]["overall"], rec["eval_half_ts"]["overall"]
        rows[arm] = [raw["ece"], raw["nll"], raw["macro_f1"], math.nan]
        rows[f"{arm} + T"] = [ts["ece"], ts["nll"], ts["macro_f1"], rec["temperature"]]
    return pd.DataFrame.from_dict(rows, orient="index", columns=keys), unavailable


def write_tables(cfg: Config, inp: Inputs, out: Out) -> None:
    """reports/tables/tier_f1_ece and calibration_eval_half."""
    ev, fold, bins = inp.evaluate, inp.calibration["fold"], cfg.evaluation.ece_bins
    full, names = ev["teacher"]["full_val"], systems(cfg)
    values, unavailable = tier_frame(inp, names)
    sizes = ", ".join(f"{t} {full[t]['n']:,}" for t in TIERS)
    notes = [f"Examples per tier: {sizes}; ECE with {bins} equal-width bins (descriptive for small tiers).",
             "The teacher is shown for reference; bold marks the best student per column. Intervals: the "
             "per-analysis tables."]
    latex.write_table(
        out.tables / "tier_f1_ece.tex", values, label="tab:tier_f1_ece", unavailable=unavailable,
        best_among=[n for n in names if n != "teacher"], size=r"\footnotesize",
        caption_tex=latex.caption("Macro F1 and ECE overall and per frequency tier, every system", n=ev["n_val"],
                                  fold="full validation split", source=out.source, demo_note=out.profile_note,
                                  notes=notes))
    arms = [a for a in (cfg.baseline_arm, cfg.headline_arm) if a in ev["arms"]]
    values, unavailable = calibration_frame(inp, arms)
    fits = inp.calibration["arms"]
    failed = [a for a in arms if fits[a].get("available", True) and not fits[a].get("converged", False)]
    notes = [f"T is fitted by LBFGS on log T minimising NLL on the calibration half (n = {fold['cal_size']:,}, "
             f"fold seed {fold['seed']}); rows without + T use T = 1; T leaves the argmax, hence macro F1, "
             f"unchanged. ECE with {bins} equal-width bins; bold marks the best value per column.",
             f"The T fit did NOT converge for: {', '.join(failed)}." if failed else "Every T fit converged."]
    latex.write_table(
        out.tables / "calibration_eval_half.tex", values, label="tab:calibration_eval_half",
        unavailable=unavailable, decimals={"temperature": 3},
        caption_tex=latex.caption("Temperature scaling and distillation", n=ev["eval_half_size"],
                                  fold="evaluation half of the validation split", source=out.source,
                                  demo_note=out.profile_note, notes=notes))


def write_figures(cfg: Config, inp: Inputs, out: Out) -> None:
    """reports/figures/{tier_f1_ece,reliability,long_tail}.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing

    figures.set_style()
    ev, card, full = inp.evaluate, inp.data_card, inp.evaluate["teacher"]["full_val"]
    names = systems(cfg)[:3]  # teacher, baseline, KD: all arms are in the table
    values, unavailable = tier_frame(inp, names)
    tidy = (values.drop(index=list(unavailable)).rename_axis("system").stack([0, 1], future_stack=True)
            .rename("value").rename_axis(["system", "tier", "metric"]).reset_index())
    note = "\n".join(x for x in (out.profile_note, f"full validation split, n = {ev['n_val']:,}") if x)
    fig = figures.tier_bars(tidy, tier_n={t: full[t]["n"] for t in TIER_KEYS}, palette=out.palette, note=note)
    figures.save_figure(fig, out.figures / "tier_f1_ece")
    suite = inp.results["calibration_suite"]
    panels = [(r["system"], {k: np.asarray(r[k], dtype=float) for k in ("edges", "count", "accuracy", "confidence")})
              for r in suite["reliability"]]
    titles = {r["system"]: f"{r['system']}\nECE {r['ece']:.3f}" for r in suite["reliability"]}
    gone = [f"{a} ({why})" for a, why in suite["unavailable"].items()]
    note = "\n".join(x for x in (out.profile_note, f"evaluation half of val, n = {suite['n_eval']:,}",
                                 f"not shown: {'; '.join(gone)}" if gone else "") if x)
    fig = figures.reliability_grid(panels, titles=titles, palette=out.palette, note=note)
    figures.save_figure(fig, out.figures / "reliability")
    counts = card["train_class_counts"]
    note = "\n".join(x for x in (out.profile_note, f"train split, n = {int(sum(counts)):,}") if x)
    fig = figures.long_tail(counts, card["class_tiers"], ylabel="train examples per class (log)", note=note)
    figures.save_figure(fig, out.figures / "long_tail")


def write_published_check(cfg: Config, inp: Inputs, layout: Layout, out: Out) -> dict[str, int]:
    """reports/tables/published_check: every number of docs/study.md §7 against this run's outputs
    (kdlab.report.reproduction); returns the counts for numbers.tex. When the run's data or teacher
    are not the study's, the caption says the comparison does not apply (the paper omits it from its body)."""
    from kdlab import io

    def read(rel: str):
        path = layout.root / rel
        return io.read_json(path) if path.is_file() else None

    records = reproduction.check(reproduction.load_reference(), read,
                                 {"baseline": cfg.baseline_arm, "headline": cfg.headline_arm})
    counts = reproduction.summary(records)
    applies, why = provenance.published_applies(inp.facts)
    if applies:
        notes = [f"{counts['PublishedMatched']} of {counts['PublishedCompared']} published numbers that this run "
                 "computes are reproduced: the value, rounded to the published precision, equals the published one.",
                 LIKE_WITH_LIKE]
    else:
        notes = [f"NOT APPLICABLE: {why} The table shows the check itself; a mismatch here says nothing about "
                 "the study.", LIKE_WITH_LIKE]
    reproduction.write_table(out.tables / "published_check.tex", records, latex.caption(
        "The published numbers (docs/study.md section 7) against this run", n=inp.evaluate["n_val"],
        fold="the fold each number was published on", source=out.source, demo_note=out.profile_note, notes=notes))
    return counts
