"""Argument parsing, the tracked-params view and error reporting shared by the stage entry points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from kdlab import io
from kdlab.config import Config, load_config
from kdlab.errors import ArgumentParser, KdlabError, report_errors
from kdlab.paths import Layout
from kdlab.resolved import config_record, record_differences
from kdlab.tracked import restrict, stage_specs

STUDY_STAGE = "study"
# what the stages after training read; dvc.yaml lists the same keys for `study` (a test checks it)
STUDY_KEYS = ("profile", "arm_source", "baseline_arm", "headline_arm", "raw_teacher_arm", "arms", "sweep",
              "evaluation")


class StageError(KdlabError):
    """A stage cannot run as configured (e.g. no GPU for the train profile)."""


def check_study(cfg: Config, layout: Layout, keys: Sequence[str]) -> None:
    """Stop unless results/study.json (stage `study`) holds ``cfg``'s values of ``keys``.

    The stages after training depend on that file, not on params, so this is what
    guarantees they never compute with settings DVC did not record.
    """
    path = layout.study
    if not path.is_file():
        raise StageError(f"{path}: not found; run `dvc repro` (the stage `study` writes it)")
    record = io.read_json(path)
    stored = record.get("config") if isinstance(record, dict) else None
    if not isinstance(stored, dict):
        raise StageError(f"{path}: expected a JSON object with the `config` the stage `study` records, found "
                         f"{type(record).__name__}; delete it and run `dvc repro`")
    differences = record_differences(stored, config_record(cfg, keys))
    if "profile" in differences:  # the usual cause, and it explains every other difference
        differences = ["profile"] + [d for d in differences if d != "profile"]
    if differences:
        shown = ", ".join(differences[:5]) + (f" and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise StageError(f"{path}: written for another configuration than {cfg.source_file} (differs in "
                         f"{shown}); run `dvc repro` so that every stage uses the same settings")


def stage_main(
    description: str,
    run: Callable[[Config, Layout, argparse.Namespace], None],
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    *,
    stage_name: Callable[[argparse.Namespace], str],
    needs_study: bool = False,
) -> int:
    """Parse ``--params``, load the config once, run; print user errors as one line (kdlab.errors).

    ``stage_name`` gives the DVC stage this process runs (e.g. ``train@kd``); when the
    working directory holds dvc.yaml, the stage then sees only the params dvc.yaml lists
    for it (:mod:`kdlab.tracked`), and what a killed earlier run left of its outs (temporary
    files) is removed first. ``needs_study``: the stage depends on results/study.json
    instead of params; it sees the keys the `study` stage tracks, checked against that file.
    """
    parser = ArgumentParser(prog=f"python -m {run.__module__}", description=description)
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)

    def start() -> None:
        cfg = load_config(args.params)
        layout = Layout()
        name = stage_name(args)
        specs = stage_specs(Path("."), [name, STUDY_STAGE] if needs_study else [name])
        if name in specs:
            io.remove_stale_temps(specs[name].outs)
        if needs_study:
            # no dvc.yaml (tests): the default
            keys = specs[STUDY_STAGE].params if STUDY_STAGE in specs else list(STUDY_KEYS)
            check_study(cfg, layout, keys)
        else:
            keys = specs[name].params if name in specs else None
        run(restrict(cfg, keys, name), layout, args)

    return report_errors(start)


def fixed_name(name: str) -> Callable[[argparse.Namespace], str]:
    """``stage_name`` for a stage that is not a foreach / matrix."""
    return lambda args: name


def run_stage(main: Callable[[Sequence[str] | None], int]) -> None:
    sys.exit(main(sys.argv[1:]))
