"""Stage `evaluate`: every metric of docs/study.md §5 for the teacher and every arm, per tier.

Three views per system: the full val split (raw), the evaluation half (raw),
and the evaluation half after the temperature fitted on the calibration half
("+ T"). Outputs: metrics/evaluate.json (every metric, every view, every tier) and
metrics/headline/<system>.json (a DVC metrics directory: `dvc metrics show` prints one row
per system with the handful of headline numbers; committed to git, `cache: false`).
"""

from __future__ import annotations

import argparse

from kdlab import calibration, data, io, metrics
from kdlab.arms import load_arms, load_teacher_val
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import fixed_name, run_stage, stage_main


def views(pred, class_tiers, eval_idx, temperature, n_bins) -> dict:
    def summary(p, t=1.0):
        return metrics.summarize(p.probs(t), p.labels, p.preds, p.tiers, class_tiers, n_bins)

    half = pred.subset(eval_idx)
    out = {"full_val": summary(pred), "eval_half": summary(half)}
    if temperature is not None:
        out["eval_half_ts"] = summary(half, temperature)
        out["temperature"] = temperature
    return out


def headline(rec: dict) -> dict:
    """The numbers `dvc metrics show` prints for one system (4 decimals): macro F1 on the full val split,
    overall and per tier; ECE and NLL on the evaluation half, raw and (``_T``) after temperature scaling."""
    full, half = rec["full_val"], rec["eval_half"]["overall"]
    out = {"f1": full["overall"]["macro_f1"], **{f"f1_{t}": full[t]["macro_f1"] for t in ("head", "mid", "tail")},
           "ece": half["ece"], "nll": half["nll"]}
    if "eval_half_ts" in rec:
        ts = rec["eval_half_ts"]["overall"]
        out.update({"ece_T": ts["ece"], "nll_T": ts["nll"]})
    return {key: round(float(value), 4) for key, value in out.items()}


def write_headline(folder, out: dict) -> None:
    """One small JSON per available system; files of systems no longer in the run are removed."""
    systems = {"teacher": out["teacher"], **{name: rec for name, rec in out["arms"].items() if rec.get("available")}}
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        if stale.stem not in systems:
            stale.unlink()
    for name, rec in systems.items():
        io.write_json(folder / f"{name}.json", headline(rec))


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    class_tiers = data.class_tiers_from_card(io.read_json(layout.data_card))
    cal = io.read_json(layout.results / "calibration.json")
    ev = cfg.evaluation
    teacher = load_teacher_val(layout, "final")
    _, eval_idx = calibration.calibration_fold(len(teacher.labels), ev.calibration_fold_seed,
                                               ev.calibration_fold_size)
    teacher_raw = load_teacher_val(layout, "raw")
    out = {
        "profile": cfg.profile,
        "n_val": int(len(teacher.labels)),
        "eval_half_size": int(len(eval_idx)),
        "teacher": views(teacher, class_tiers, eval_idx, None, ev.ece_bins),
        "teacher_raw": views(teacher_raw, class_tiers, eval_idx, cal["teacher_raw"]["temperature"], ev.ece_bins),
        "arms": {},
    }
    for name, arm in load_arms(cfg, layout).items():
        if not arm.available:
            out["arms"][name] = {"available": False, "reason": arm.card.get("reason", "not available")}
            continue
        out["arms"][name] = {"available": True, **views(arm.predictions, class_tiers, eval_idx,
                                                         cal["arms"][name]["temperature"], ev.ece_bins)}
    io.write_json(layout.metrics / "evaluate.json", out)
    write_headline(layout.metrics / "headline", out)
    for name, rec in [("teacher", out["teacher"])] + list(out["arms"].items()):
        if "full_val" in rec:
            o = rec["full_val"]["overall"]
            print(f"evaluate: {name:<24} macro F1 {o['macro_f1']:.4f}  ECE {o['ece']:.4f}  NLL {o['nll']:.4f}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, needs_study=True, stage_name=fixed_name("evaluate"))


if __name__ == "__main__":
    run_stage(main)
