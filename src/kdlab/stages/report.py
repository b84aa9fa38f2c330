"""Stage `report`: the tables, figures and headline macros that reports/paper.tex includes.

Inputs: metrics/evaluate.json, results/calibration.json, data/prepared/data_card.json,
data/teacher/teacher_card.json, the teacher's val logits and runs/<arm>/predictions.npz
for the arms listed in params.yaml (never a glob of runs/). Outputs (stable names):

    reports/tables/tier_f1_ece.tex             per-tier and overall macro F1 and ECE, full val
    reports/tables/calibration_eval_half.tex   baseline / KD arm, raw and + T, on the eval half
    reports/tables/published_check.tex         STUDY.md §7's published numbers against this run
    reports/figures/{tier_f1_ece,reliability,long_tail}.{pdf,png}
    reports/numbers.tex                        \\kd<Name> macros for the prose and slides

Arms that are not available (audit mode: not published) are shown as such,
and their macros are ``--``; every number comes from the files above.
"""

from __future__ import annotations

import argparse
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from kdlab import analyses, calibration, io, metrics
from kdlab.arms import load_arm, load_teacher_val
from kdlab.config import TIERS, Config
from kdlab.paths import Layout
from kdlab.report import figures, latex, reproduction
from kdlab.stages.common import StageError, fixed_name, run_stage, stage_main

TIER_KEYS = ("overall",) + TIERS
MAX_WORKERS = 4  # processes for drawing; more gains little (11 figures) and costs memory
_SLOWEST_TO_DRAW = ("calibration_suite", "sweep", "coverage", "teacher_diag", "tiers", "busbridge", "stanton")
# every analysis, the slowest to draw first (balances the workers; the outputs do not depend on it)
RENDER_ORDER = sorted(analyses.ANALYSES, key=lambda name: _SLOWEST_TO_DRAW.index(name)
                      if name in _SLOWEST_TO_DRAW else len(_SLOWEST_TO_DRAW))
DEMO_NOTE = "DEMO: synthetic data, tiny models \u2014 not the study's numbers"
DATA_SOURCES = {"synthetic": "bundled synthetic complaints", "local": "CFPB complaints (local file)"}


@dataclass(frozen=True)
class Inputs:
    """The pipeline's JSON outputs the report reads (see the module docstring)."""

    evaluate: dict
    calibration: dict
    data_card: dict
    teacher_card: dict

    @classmethod
    def read(cls, layout: Layout) -> "Inputs":
        return cls(io.read_json(layout.metrics / "evaluate.json"),
                   io.read_json(layout.results / "calibration.json"),
                   io.read_json(layout.data_card), io.read_json(layout.teacher_card))


# --------------------------------------------------------------------------- #
# Names and notes
# --------------------------------------------------------------------------- #
def data_source(cfg: Config, card: dict) -> str:
    """Plain-text name of the data source recorded by `prepare` (``card["source"]``)."""
    if card.get("source_description"):
        return card["source_description"]
    return DATA_SOURCES.get(card.get("source"), str(card.get("source")))


def provenance(cfg: Config, inp: Inputs) -> str:
    """Data, teacher and student sources and the profile, as one plain-text phrase."""
    teacher = {"published": "published teacher logits", "trained": "teacher trained by kdlab"}
    students = {"train": "students trained by kdlab", "published": "published student predictions"}
    src = inp.teacher_card.get("source")
    return (f"{data_source(cfg, inp.data_card)}; {teacher.get(src, src)}; "
            f"{students[cfg.arm_source]}; profile {cfg.profile}")


def figure_note(cfg: Config, inp: Inputs, what: str, n: int) -> str:
    """Super-title of a figure: the demo warning (demo profile), then source, view and n."""
    line = f"Data: {data_source(cfg, inp.data_card)} ({cfg.profile} profile); {what}, n = {n:,}"
    return f"{DEMO_NOTE}\n{line}" if cfg.profile == "demo" else line


# --------------------------------------------------------------------------- #
# Frames
# --------------------------------------------------------------------------- #
def systems(cfg: Config) -> list[str]:
    """Row order: teacher, the baseline arm, the KD arm, then the other arms of params.yaml."""
    kd = cfg.headline_arm
    first = [cfg.baseline_arm] + ([kd] if kd in cfg.arm_names and kd != cfg.baseline_arm else [])
    return ["teacher"] + first + [a for a in cfg.arm_names if a not in first]


def record(inp: Inputs, system: str) -> dict:
    """evaluate.json's record of ``system`` ("teacher" or an arm name)."""
    return inp.evaluate["teacher"] if system == "teacher" else inp.evaluate["arms"][system]


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


# --------------------------------------------------------------------------- #
# Headline numbers
# --------------------------------------------------------------------------- #
def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def numbers(cfg: Config, inp: Inputs) -> dict[str, float | int | str]:
    """Every macro of numbers.tex (name -> value); unavailable systems give ``--``."""
    ev, fold, card = inp.evaluate, inp.calibration["fold"], inp.data_card
    full = ev["teacher"]["full_val"]
    out: dict[str, float | int | str] = {
        "DemoNote": rf"\textbf{{{latex.escape_latex(DEMO_NOTE)}}}" if cfg.profile == "demo" else "",
        "Profile": cfg.profile, "DataSource": latex.escape_latex(data_source(cfg, card)),
        "Provenance": latex.escape_latex(provenance(cfg, inp)),
        "NClasses": int(card["n_classes"]), "NVal": int(ev["n_val"]), "NEvalHalf": int(ev["eval_half_size"]),
        "NCalHalf": int(fold["cal_size"]), "FoldSeed": str(fold["seed"]), "EceBins": int(cfg.evaluation.ece_bins),
        "NTrain": int(sum(card["train_class_counts"])),
        "TeacherTemperature": float(inp.teacher_card["temperature"]),
        "TeacherRawTemperature": float(inp.calibration["teacher_raw"]["temperature"]),
    }
    for tier in TIERS:
        out[f"N{tier.capitalize()}Classes"] = int(card["tier_classes"][tier])
        out[f"NVal{tier.capitalize()}"] = int(full[tier]["n"])
    for name in systems(cfg):
        m, rec = latex.macro_name(name), record(inp, name)
        ok = rec.get("available", True) is not False
        for tier in TIER_KEYS:
            t = "" if tier == "overall" else tier.capitalize()
            out[f"{m}{t or 'Macro'}Fone"] = rec["full_val"][tier]["macro_f1"] if ok else "--"
            out[f"{m}{t}Ece"] = rec["full_val"][tier]["ece"] if ok else "--"
        out[f"{m}Nll"] = rec["full_val"]["overall"]["nll"] if ok else "--"
        out[f"{m}Accuracy"] = rec["full_val"]["overall"]["accuracy"] if ok else "--"
        if name != "teacher":
            for view, tag in (("eval_half", "Eval"), ("eval_half_ts", "Ts")):
                for key, label in (("ece", "Ece"), ("nll", "Nll"), ("macro_f1", "MacroFone")):
                    out[f"{m}{tag}{label}"] = rec[view]["overall"][key] if ok else "--"
            out[f"{m}Temperature"] = rec["temperature"] if ok else "--"
    out.update(comparisons(cfg, inp))
    return out


def comparisons(cfg: Config, inp: Inputs) -> dict[str, str]:
    """KD arm vs baseline, signed (KD minus baseline): per-tier macro F1 lift, ECE ratio
    (baseline / KD), relative NLL change; on the eval half the ECE change from KD and from
    temperature scaling, and the course's share (ECE_v - ECE_vT) / (ECE_v - ECE_kd) (STUDY.md §6;
    ``--`` unless KD lowers ECE)."""
    arms = inp.evaluate["arms"]
    k, b = latex.macro_name(cfg.headline_arm), latex.macro_name(cfg.baseline_arm)
    # per-tier lifts (Kd{Head,Mid,Tail}FoneLift, with CIs) come from the `tiers` analysis
    names = [f"{k}MacroFoneLift"] + \
            [f"{k}{t}EceRatio" for t in ("", "Head", "Mid", "Tail")] + \
            [f"{k}NllChange", f"{k}EvalEceChange", f"{b}TsEceChange", "TsShareOfKdEceGain"]
    if cfg.headline_arm not in arms or not (arms[cfg.headline_arm].get("available")
                                            and arms[cfg.baseline_arm].get("available")):
        return dict.fromkeys(names, "--")
    kd, base = arms[cfg.headline_arm], arms[cfg.baseline_arm]
    out = {}
    for tier in TIER_KEYS:
        t = "Macro" if tier == "overall" else tier.capitalize()
        kf, bf = kd["full_val"][tier], base["full_val"][tier]
        if tier == "overall":
            out[f"{k}MacroFoneLift"] = latex.fixed(kf["macro_f1"] - bf["macro_f1"], 3, sign=True)
        out[f"{k}{'' if t == 'Macro' else t}EceRatio"] = latex.fixed(_ratio(bf["ece"], kf["ece"]), 1)
    kn, bn = kd["full_val"]["overall"]["nll"], base["full_val"]["overall"]["nll"]
    out[f"{k}NllChange"] = latex.percent(_ratio(kn - bn, bn), 1, sign=True)
    e_v, e_vt = base["eval_half"]["overall"]["ece"], base["eval_half_ts"]["overall"]["ece"]
    e_kd = kd["eval_half"]["overall"]["ece"]
    out[f"{k}EvalEceChange"] = latex.fixed(e_kd - e_v, 3, sign=True)
    out[f"{b}TsEceChange"] = latex.fixed(e_vt - e_v, 3, sign=True)
    out["TsShareOfKdEceGain"] = latex.percent(_ratio(e_v - e_vt, e_v - e_kd), 0)
    return {name: out[name] for name in names}


# --------------------------------------------------------------------------- #
# Outputs
# --------------------------------------------------------------------------- #
def write_tables(cfg: Config, inp: Inputs, layout: Layout) -> None:
    """reports/tables/tier_f1_ece.tex and reports/tables/calibration_eval_half.tex."""
    ev, fold, bins = inp.evaluate, inp.calibration["fold"], cfg.evaluation.ece_bins
    demo, full, names = DEMO_NOTE if cfg.profile == "demo" else "", ev["teacher"]["full_val"], systems(cfg)
    values, unavailable = tier_frame(inp, names)
    sizes = ", ".join(f"{t} {full[t]['n']:,}" for t in TIERS)
    notes = [f"Examples per tier: {sizes}; ECE with {bins} equal-width bins (descriptive for small tiers).",
             "The teacher is shown for reference; bold marks the best student per column."]
    latex.write_table(
        layout.tables / "tier_f1_ece.tex", values, label="tab:tier_f1_ece", unavailable=unavailable,
        best_among=[n for n in names if n != "teacher"],
        caption_tex=latex.caption("Macro F1 and ECE overall and per frequency tier", n=ev["n_val"],
                                  fold="full validation split", source=provenance(cfg, inp),
                                  demo_note=demo, notes=notes))
    arms = [a for a in (cfg.baseline_arm, cfg.headline_arm) if a in ev["arms"]]
    values, unavailable = calibration_frame(inp, arms)
    fits = inp.calibration["arms"]
    failed = [a for a in arms if fits[a].get("available", True) and not fits[a].get("converged", False)]
    notes = [f"T is fitted by LBFGS on log T minimising NLL on the calibration half (n = {fold['cal_size']:,}, "
             f"fold seed {fold['seed']}); rows without + T use T = 1; T leaves the argmax, hence macro F1, "
             f"unchanged. ECE with {bins} equal-width bins; bold marks the best value per column.",
             f"The T fit did NOT converge for: {', '.join(failed)}." if failed else "Every T fit converged."]
    latex.write_table(
        layout.tables / "calibration_eval_half.tex", values, label="tab:calibration_eval_half",
        unavailable=unavailable, decimals={"temperature": 3},
        caption_tex=latex.caption("Temperature scaling and distillation", n=ev["eval_half_size"],
                                  fold="evaluation half of the validation split", source=provenance(cfg, inp),
                                  demo_note=demo, notes=notes))


def reliability_panels(cfg: Config, inp: Inputs, layout: Layout) -> tuple[list[tuple[str, dict]], dict]:
    """(system, reliability bins) on the eval half for the teacher, baseline, baseline + T and
    KD arm (those available), and panel titles with each system's eval-half ECE."""
    teacher = load_teacher_val(layout, "final")
    fold = inp.calibration["fold"]
    _, eval_idx = calibration.calibration_fold(len(teacher.labels), cfg.evaluation.calibration_fold_seed,
                                               cfg.evaluation.calibration_fold_size)
    if (fold["seed"], fold["n"], fold["eval_size"]) != (cfg.evaluation.calibration_fold_seed,
                                                        len(teacher.labels), len(eval_idx)):
        raise StageError(f"results/calibration.json: fold {fold} differs from params.yaml's; "
                         "rerun calibrate and evaluate (dvc repro)")
    bins = cfg.evaluation.ece_bins  # only the arms drawn are loaded (a sweep may list many)
    arms = {a: load_arm(layout, a) for a in (cfg.baseline_arm, cfg.headline_arm) if a in cfg.arm_names}
    entries = [("teacher", teacher, 1.0, inp.evaluate["teacher"]["eval_half"])]
    for arm, scaled in ((cfg.baseline_arm, False), (cfg.baseline_arm, True), (cfg.headline_arm, False)):
        if arm in arms and arms[arm].available:
            rec = inp.evaluate["arms"][arm]
            entries.append((f"{arm} + T" if scaled else arm, arms[arm].predictions,
                            rec["temperature"] if scaled else 1.0, rec["eval_half_ts" if scaled else "eval_half"]))
    panels, titles = [], {}
    for name, pred, temp, summary in entries:
        half = pred.subset(eval_idx)
        titles[name] = f"{name}\nECE {summary['overall']['ece']:.3f}"
        panels.append((name, metrics.reliability_bins(half.probs(temp), half.labels, bins)))
    return panels, titles


def write_figures(cfg: Config, inp: Inputs, layout: Layout) -> None:
    """reports/figures/{tier_f1_ece,reliability,long_tail}.{pdf,png}."""
    figures.set_style()
    ev, card, full = inp.evaluate, inp.data_card, inp.evaluate["teacher"]["full_val"]
    names = systems(cfg)  # one colour per system in every figure; "+ T" after the headline three
    palette = figures.colors(names[:3] + [f"{cfg.baseline_arm} + T"] + names[3:])
    values, unavailable = tier_frame(inp, names[:3])  # teacher, baseline, KD: all arms are in the table
    tidy = (values.drop(index=list(unavailable)).rename_axis("system").stack([0, 1], future_stack=True)
            .rename("value").rename_axis(["system", "tier", "metric"]).reset_index())
    fig = figures.tier_bars(tidy, tier_n={t: full[t]["n"] for t in TIER_KEYS}, palette=palette,
                            note=figure_note(cfg, inp, "full validation split", ev["n_val"]))
    figures.save_figure(fig, layout.figures / "tier_f1_ece")
    panels, titles = reliability_panels(cfg, inp, layout)
    fig = figures.reliability_grid(panels, titles=titles, palette=palette,
                                   note=figure_note(cfg, inp, "evaluation half of val", ev["eval_half_size"]))
    figures.save_figure(fig, layout.figures / "reliability")
    counts = card["train_class_counts"]
    fig = figures.long_tail(counts, card["class_tiers"], ylabel="train examples per class (log)",
                            note=figure_note(cfg, inp, "train split", int(sum(counts))))
    figures.save_figure(fig, layout.figures / "long_tail")


def write_published_check(cfg: Config, inp: Inputs, layout: Layout) -> dict[str, int]:
    """reports/tables/published_check.tex: every number of STUDY.md §7 against this run's outputs
    (kdlab.report.reproduction); returns the counts for numbers.tex."""
    def read(rel: str):
        path = layout.root / rel
        return io.read_json(path) if path.is_file() else None

    records = reproduction.check(reproduction.load_reference(), read,
                                 {"baseline": cfg.baseline_arm, "headline": cfg.headline_arm})
    counts = reproduction.summary(records)
    notes = [f"{counts['PublishedMatched']} of {counts['PublishedCompared']} published numbers that this run "
             "computes are reproduced: the value, rounded to the published precision, equals the published one.",
             "Published intervals (the course's 1,000 resamples) are not compared; the point estimates are."]
    if cfg.profile == "demo":
        notes.insert(0, "Synthetic data: nothing here is expected to match; the table shows the check itself.")
    reproduction.write_table(layout.tables / "published_check.tex", records, latex.caption(
        "The published numbers (STUDY.md section 7) against this run", n=inp.evaluate["n_val"],
        fold="the fold each number was published on", source=provenance(cfg, inp),
        demo_note=DEMO_NOTE if cfg.profile == "demo" else "", notes=notes))
    return counts


@dataclass(frozen=True)
class Out:
    """Where an analysis' ``render`` writes, and the notes every caption carries."""

    tables: Path
    figures: Path
    profile_note: str
    source: str


def render_analysis(name: str, result_path: Path, out: Out) -> None:
    """One analysis' tables and figures from its results/<name>.json."""
    analyses.get(name).render(io.read_json(result_path), out)


def analysis_numbers(layout: Layout, taken: set[str]) -> dict:
    """Every analysis' headline numbers from results/<name>.json (names must be unique)."""
    collected: dict = {}
    for name in analyses.ANALYSES:
        for key, value in io.read_json(layout.results / f"{name}.json").get("numbers", {}).items():
            if key in taken or key in collected:
                raise StageError(f"results/{name}.json: headline number {key!r} is defined twice; rename it")
            collected[key] = value
    return collected


def run_tasks(tasks: list[tuple[Callable, tuple]], workers: int) -> None:
    """Call each ``fn(*args)``; with ``workers`` > 1 in that many processes. Every task writes its
    own files, so the outputs do not depend on the order or the process; the first error is raised."""
    if workers <= 1:
        for fn, args in tasks:
            fn(*args)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(fn, *args) for fn, args in tasks]:
            future.result()


def write_appendix(cfg: Config, layout: Layout) -> None:
    """reports/appendix.tex: every analysis' tables and figures, one section per analysis,
    so paper.tex includes all of them whatever the analyses write."""
    note = latex.escape_latex(DEMO_NOTE) if cfg.profile == "demo" else ""
    parts = ["% Written by the report stage: one section per analysis (kdlab.analyses.ANALYSES)."]
    for name, title in analyses.ANALYSES.items():
        parts.append(rf"\section{{{latex.escape_latex(title)}}}\label{{sec:{name}}}")
        parts += [rf"\input{{tables/{t.name}}}" for t in sorted(layout.tables.glob(f"{name}_*.tex"))]
        for fig in sorted(layout.figures.glob(f"{name}_*.pdf")):
            caption = latex.escape_latex(fig.stem.replace("_", " ")) + (f". {note}" if note else "")
            parts.append("\n".join([r"\begin{figure}[htbp]", r"  \centering",
                                     rf"  \includegraphics[width=\linewidth]{{figures/{fig.name}}}",
                                     rf"  \caption{{{caption}}}\label{{fig:{fig.stem}}}", r"\end{figure}"]))
        parts.append(r"\clearpage")
    io.write_text(layout.reports / "appendix.tex", "\n\n".join(parts) + "\n")


def run(cfg: Config, layout: Layout, args: argparse.Namespace | None = None) -> None:
    inp = Inputs.read(layout)
    missing = [a for a in cfg.arm_names if a not in inp.evaluate["arms"]]
    if missing or inp.evaluate.get("profile") != cfg.profile:
        raise StageError(f"metrics/evaluate.json is stale (profile {inp.evaluate.get('profile')!r}, "
                         f"missing arms {missing}) for params.yaml (profile {cfg.profile!r}); run dvc repro")
    tags = [latex.macro_name(s) for s in systems(cfg)]
    if len(set(tags)) != len(tags):
        raise StageError(f"arm names {cfg.arm_names} give clashing macro names {tags}; rename an arm")
    headline = numbers(cfg, inp)
    headline.update(analysis_numbers(layout, set(headline)))
    write_tables(cfg, inp, layout)
    headline.update(write_published_check(cfg, inp, layout))
    # drawing is most of this stage's time and each figure is independent: use the machine's cores
    # (DVC runs one stage at a time); the slowest renders go first
    out = Out(layout.tables, layout.figures, DEMO_NOTE if cfg.profile == "demo" else "", provenance(cfg, inp))
    tasks = [(render_analysis, (name, layout.results / f"{name}.json", out)) for name in RENDER_ORDER]
    tasks.insert(2, (write_figures, (cfg, inp, layout)))
    run_tasks(tasks, workers=min(len(tasks), os.cpu_count() or 1, MAX_WORKERS))
    write_appendix(cfg, layout)
    latex.write_numbers_tex(layout.reports / "numbers.tex", headline)
    print(f"report: wrote {layout.tables}, {layout.figures} and {layout.reports / 'numbers.tex'}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, needs_study=True, stage_name=fixed_name("report"))


if __name__ == "__main__":
    run_stage(main)
