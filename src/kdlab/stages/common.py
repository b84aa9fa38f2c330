"""Argument parsing and error reporting shared by the stage entry points."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from kdlab.config import Config, load_config
from kdlab.errors import KdlabError
from kdlab.paths import Layout


class StageError(KdlabError):
    """A stage cannot run as configured (e.g. no GPU for the train profile)."""


def stage_main(
    description: str,
    run: Callable[[Config, Layout, argparse.Namespace], None],
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse ``--params``, load the config once, run; print user errors as one line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.params)
        run(cfg, Layout(), args)
    except KdlabError as exc:
        print(f"kdlab: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_stage(main: Callable[[Sequence[str] | None], int]) -> None:
    sys.exit(main(sys.argv[1:]))
