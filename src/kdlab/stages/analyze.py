"""Stage `analyze@<name>`: one analysis of the stored predictions -> results/<name>.json.

The analyses are listed in kdlab.analyses.ANALYSES; each reads the teacher's
val logits, every arm's predictions and the fitted temperatures (never
retraining) and writes tidy tables with paired-bootstrap CIs.
"""

from __future__ import annotations

import argparse
import time

from kdlab import analyses, io
from kdlab.analyses.context import load_study
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import run_stage, stage_main


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    module = analyses.get(args.name)
    started = time.perf_counter()
    study = load_study(cfg, layout)
    result = module.compute(study)
    result.setdefault("name", args.name)
    result.setdefault("profile", cfg.profile)
    result.setdefault("bootstrap", {"resamples": study.resamples, "seed": study.seed})
    result.setdefault("unavailable", study.unavailable)
    io.write_json(layout.results / f"{args.name}.json", result)
    print(f"analyze@{args.name}: {time.perf_counter() - started:.1f} s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, choices=list(analyses.ANALYSES))


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, add_arguments, needs_study=True,
                      stage_name=lambda a: f"analyze@{a.name}")


if __name__ == "__main__":
    run_stage(main)
