"""Stage `study`: the study's effective configuration -> results/study.json.

The profile's overlay applied to params.yaml, every default filled in (see
kdlab.resolved.config_record). This stage tracks every param; calibrate,
evaluate, analyze@<name> and report depend on its output instead of listing
the arms, the evaluation settings and the profile overlays themselves. DVC
then reruns them exactly when the effective configuration changes, and
dvc.lock holds those values once instead of a dozen times (DVC reads and
rewrites the whole lock file at every stage, so its size is time). Each of
those stages checks, before it reads anything, that params.yaml still gives
this configuration (kdlab.stages.common.check_study).
"""

from __future__ import annotations

import argparse

from kdlab import io
from kdlab.config import Config
from kdlab.resolved import config_record
from kdlab.paths import Layout
from kdlab.stages.common import run_stage, stage_main


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    io.write_json(layout.study, {"profile": cfg.profile, "config": config_record(cfg)})
    print(f"study: profile {cfg.profile}, {len(cfg.arms)} arms -> {layout.study}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    run_stage(main)
