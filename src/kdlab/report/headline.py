"""The values of ``reports/numbers.tex``: one ``\\kd<Name>`` macro per number the prose cites.

From metrics/evaluate.json (every system's full-val, eval-half and + T values), the KD-vs-baseline
comparisons, each analysis' own ``numbers`` (results/<name>.json) and a few values the paper
selects from the analyses' tables (:func:`derived`). Unavailable systems give ``--``. The run's
labels (:mod:`kdlab.report.provenance`) are text macros here too (DemoNote, Provenance, DataSource).
"""

from __future__ import annotations

import math
import re

from kdlab import analyses
from kdlab.config import TIERS, Config
from kdlab.report import latex, provenance
from kdlab.report.inputs import Inputs

TIER_KEYS = ("overall",) + TIERS
SIGNED = re.compile(r"(Lift|Delta|Change|MinusFull)(Low|High)?$")  # differences: written with + or -


def signed(name: str) -> bool:
    """Whether numbers.tex writes ``name`` with a sign (a difference)."""
    return bool(SIGNED.search(name))


def systems(cfg: Config) -> list[str]:
    """Row order: teacher, the baseline arm, the KD arm, then the other arms of params."""
    kd = cfg.headline_arm
    first = [cfg.baseline_arm] + ([kd] if kd in cfg.arm_names and kd != cfg.baseline_arm else [])
    return ["teacher"] + first + [a for a in cfg.arm_names if a not in first]


def record(inp: Inputs, system: str) -> dict:
    """evaluate.json's record of ``system`` ("teacher" or an arm name)."""
    return inp.evaluate["teacher"] if system == "teacher" else inp.evaluate["arms"][system]


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def labels(inp: Inputs) -> dict[str, str]:
    """The run's labels (text macros): warning banner, provenance phrase, data source, profile."""
    facts = inp.facts
    warning = provenance.warning(facts)
    return {"DemoNote": rf"\textbf{{{latex.escape_latex(warning)}}}" if warning else "",
            "Profile": latex.escape_latex(inp.profile), "DataSource": latex.escape_latex(provenance.data_phrase(facts)),
            "Provenance": latex.escape_latex(provenance.provenance(facts))}


def evaluate_numbers(cfg: Config, inp: Inputs) -> dict[str, float | int | str]:
    """Sizes, fold, and every system's values from metrics/evaluate.json; unavailable systems give ``--``."""
    ev, fold, card = inp.evaluate, inp.calibration["fold"], inp.data_card
    full = ev["teacher"]["full_val"]
    out: dict[str, float | int | str] = {
        **labels(inp),
        "NClasses": int(card["n_classes"]), "NVal": int(ev["n_val"]), "NEvalHalf": int(ev["eval_half_size"]),
        "NCalHalf": int(fold["cal_size"]), "FoldSeed": str(fold["seed"]), "EceBins": int(cfg.evaluation.ece_bins),
        "NTrain": int(sum(card["train_class_counts"])),
        "TeacherTemperature": float(inp.teacher_card["temperature"]),
        "TeacherRawTemperature": float(inp.calibration["teacher_raw"]["temperature"]),
    }
    recipe = inp.arm_cards.get(cfg.headline_arm, {}).get("config", {})  # what the headline arm was trained with
    out["RecipeTd"] = f"{recipe['kd_temperature']:g}" if recipe.get("kd_temperature") is not None else "--"
    out["RecipeAlpha"] = f"{recipe['alpha']:g}" if recipe.get("alpha") is not None else "--"
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
    """KD arm vs baseline, signed (KD minus baseline): overall macro F1 lift, ECE ratio
    (baseline / KD), relative NLL change; on the eval half the ECE change from KD and from
    temperature scaling, and the course's share (ECE_v - ECE_vT) / (ECE_v - ECE_kd) (docs/study.md §6;
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


def analysis_numbers(results: dict, taken: set[str]) -> dict:
    """Every analysis' headline numbers (``results[name]["numbers"]``); a name defined twice is an error."""
    from kdlab.stages.common import StageError

    collected: dict = {}
    for name in analyses.ANALYSES:
        for key, value in results[name].get("numbers", {}).items():
            if key in taken or key in collected:
                raise StageError(f"results/{name}.json: headline number {key!r} is defined twice; rename it")
            collected[key] = value
    return collected


def _triple(name: str, rec: dict | None, key: str = "") -> dict:
    """``name``, ``nameLow``, ``nameHigh`` from a record's estimate/low/high (or ``key``, ``key_low``, ...)."""
    fields = ("estimate", "low", "high") if not key else (key, f"{key}_low", f"{key}_high")
    out = {}
    for suffix, field in zip(("", "Low", "High"), fields):
        v = None if rec is None else rec.get(field)
        out[name + suffix] = "--" if v is None or not math.isfinite(float(v)) else float(v)
    return out


def derived(results: dict) -> dict:
    """Values the paper cites that the analyses record in their tables but not as numbers: the sweep's
    best cell minus the recipe's (paired), and the headline arm minus the baseline at the headline
    threshold (coverage, paired)."""
    sweep, cov = results["sweep"], results["coverage"]
    best = next((r for r in sweep["tables"]["grid"] if r.get("available") and r.get("rank_macro_f1") == 1), None)
    out = _triple("SweepBestMacroFoneDelta", best, "delta_macro_f1")
    out["SweepRecipeTd"], out["SweepRecipeAlpha"] = (f"{x:g}" for x in sweep["default_cell"])
    if best is not None and best.get("default"):
        out.update(dict.fromkeys(out, 0.0))
    out["CoverageThreshold"] = f"{cov['headline_threshold']:g}"
    out["SlaAccuracy"] = latex.percent(cov["sla_accuracy"], 0)
    for metric, tag in (("accuracy", "Accuracy"), ("coverage", "Coverage")):
        rec = next((r for r in cov["tables"].get("deltas", []) if (r["view"], r["system"], r["metric"])
                    == ("full", cov["headline"], metric)), None)
        out.update(_triple(f"Coverage{tag}Delta", rec))
    return out
