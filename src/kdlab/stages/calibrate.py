"""Stage `calibrate`: post-hoc temperature scaling of every arm and the raw teacher.

T is fitted in log space with LBFGS on the calibration half of val (the
homework's fold, docs/study.md §5) and reported with its convergence; every "X + T"
in later tables uses these temperatures on the evaluation half.
Output: results/calibration.json.
"""

from __future__ import annotations

import argparse
import dataclasses

from kdlab import calibration, io
from kdlab.arms import load_arms, load_teacher_val
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import fixed_name, run_stage, stage_main


def fit_record(pred, cal_idx) -> dict:
    fit = calibration.fit_temperature(pred.logits32()[cal_idx], pred.labels[cal_idx])
    return dataclasses.asdict(fit)


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    teacher_raw = load_teacher_val(layout, "raw")
    n = len(teacher_raw.labels)
    ev = cfg.evaluation
    cal_idx, eval_idx = calibration.calibration_fold(n, ev.calibration_fold_seed, ev.calibration_fold_size)
    out = {
        "fold": {"seed": ev.calibration_fold_seed, "n": n, "cal_size": int(len(cal_idx)),
                 "eval_size": int(len(eval_idx)), "definition": "np.random.RandomState(seed).permutation(n)"},
        "teacher_raw": fit_record(teacher_raw, cal_idx),
        "arms": {},
    }
    for name, arm in load_arms(cfg, layout).items():
        out["arms"][name] = fit_record(arm.predictions, cal_idx) if arm.available else \
            {"available": False, "reason": arm.card.get("reason", "not available")}
    io.write_json(layout.results / "calibration.json", out)
    for name, rec in out["arms"].items():
        if "temperature" in rec:
            flag = "" if rec["converged"] else "  (NOT converged)"
            print(f"calibrate: {name:<24} T = {rec['temperature']:.4f}{flag}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, needs_study=True, stage_name=fixed_name("calibrate"))


if __name__ == "__main__":
    run_stage(main)
