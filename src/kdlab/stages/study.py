"""Stage `study`: the configuration the stages after training read -> results/study.json.

calibrate, evaluate, analyze@<name> and report read the same params: the arms and
the sweep (which systems exist and how each was trained), the evaluation settings
and the roles (baseline, headline and raw-teacher arms). This stage tracks exactly
those keys and writes their values once; the later stages depend on this file instead
of listing the keys each, so dvc.lock records them once rather than a dozen times
(DVC reads and rewrites the whole lock at every stage, so its size is time). An edit
of any other param does not change this file, so it reruns none of them. Each of those
stages checks, before it reads anything, that params.yaml still gives this record
(kdlab.stages.common.check_study), and sees only these keys (kdlab.tracked).
"""

from __future__ import annotations

import argparse

from kdlab import io
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.resolved import config_record
from kdlab.stages.common import STUDY_KEYS, STUDY_STAGE, fixed_name, run_stage, stage_main
from kdlab.tracked import stage_params
from pathlib import Path

def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    keys = stage_params(Path("."), STUDY_STAGE) or list(STUDY_KEYS)
    io.write_json(layout.study, {"keys": list(keys), "config": config_record(cfg, keys)})
    print(f"study: profile {cfg.profile}, {len(cfg.arm_names)} arms (sweep cells included) -> {layout.study}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, stage_name=fixed_name(STUDY_STAGE))


if __name__ == "__main__":
    run_stage(main)
