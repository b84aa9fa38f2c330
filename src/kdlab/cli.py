"""The ``kdlab`` command (console script declared in pyproject.toml).

    kdlab student-notebook SRC [-o DEST]   the student version of a course notebook
    kdlab pin [--dry-run]                  pin the Hub artifacts of conf/ (commits, sha256)
    kdlab plan [-S profile=train]          what `dvc repro` would train, and how long each arm takes here
    kdlab results [TABLE] [--root DIR]     print a table of the report (default: the headline one)

Each subcommand is one ``add_<name>(subparsers)`` function that registers its
parser and sets ``func``; add new ones to ``COMMANDS``. User errors print one
line ``kdlab: error: ...`` and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from kdlab.errors import KdlabError
from kdlab.pin import add_pin
from kdlab.plan import add_plan


class CliError(KdlabError):
    """A command cannot do what was asked (missing file, unsupported format...)."""


# --------------------------------------------------------------------------- #
# student-notebook
# --------------------------------------------------------------------------- #
def _format_of(path: Path) -> str:
    if path.suffix == ".py":
        return "py:percent"
    if path.suffix == ".ipynb":
        return "ipynb"
    raise CliError(f"{path}: expected a .py (jupytext percent format) or .ipynb notebook")


def default_student_path(src: Path) -> Path:
    """experiments/week6_lab.py -> experiments/week6_lab_student.py"""
    return src.with_name(f"{src.stem}_student{src.suffix}")


def student_notebook_command(args: argparse.Namespace) -> int:
    import jupytext

    from kdlab import io, notebooks

    src = Path(args.src)
    dest = Path(args.output) if args.output else default_student_path(src)
    if not src.is_file():
        raise CliError(f"{src}: not found")
    if dest.resolve() == src.resolve():
        raise CliError(f"{dest}: the student version would overwrite its source; choose another -o")
    source = jupytext.reads(src.read_text(), fmt=_format_of(src))
    student = notebooks.student_notebook(source)
    problems = notebooks.check_student(source, student)
    if problems:
        raise CliError(f"{src}: the student version is not safe to hand out:\n  " + "\n  ".join(problems))
    io.write_text(dest, jupytext.writes(student, fmt=_format_of(dest)))
    n_ex = sum(notebooks.SOLUTION in notebooks.tags(c) for c in source.cells)
    n_rev = sum(notebooks.REVEAL in notebooks.tags(c) for c in source.cells)
    print(f"kdlab: wrote {dest} ({n_ex} solution cells blanked, {n_rev} reveals folded)")
    return 0


def add_student_notebook(sub) -> None:
    p = sub.add_parser(
        "student-notebook",
        help="write the student version of a notebook (solutions blanked, reveals folded)",
        description="Blank the code of cells tagged 'solution' (keeping their task comments and "
                    "'name = ___' placeholders) and fold markdown cells tagged 'reveal' into "
                    "<details>. SRC and DEST may be .py (jupytext percent) or .ipynb.")
    p.add_argument("src", metavar="SRC", help="instructor notebook, e.g. experiments/week6_lab.py")
    p.add_argument("-o", "--output", metavar="DEST", help="where to write (default: SRC with _student)")
    p.set_defaults(func=student_notebook_command)


# --------------------------------------------------------------------------- #
# results
# --------------------------------------------------------------------------- #
HEADLINE_TABLE = "paper_tiers"  # what distillation changes per tier, with paired-bootstrap intervals


def results_command(args: argparse.Namespace) -> int:
    """Print reports/tables/<TABLE>.md: the table as the paper shows it, then its caption."""
    from kdlab.paths import Layout

    tables = Layout(Path(args.root)).tables
    path = tables / f"{args.table}.md"
    if not path.is_file():
        known = sorted(p.stem for p in tables.glob("*.md"))
        hint = f"one of {known}" if known else "none yet: run `dvc repro report` first"
        raise CliError(f"{path}: not found; expected a table written by the report stage ({hint})")
    print(path.read_text(encoding="utf-8"), end="")
    return 0


def add_results(sub) -> None:
    p = sub.add_parser(
        "results", help="print a table of the report in the terminal (default: the headline table)",
        description="Print a table the report stage wrote (reports/tables/<TABLE>.md): cells as in the paper, "
                    "estimates with their paired-bootstrap intervals, then the caption with the run's labels.")
    p.add_argument("table", nargs="?", default=HEADLINE_TABLE, metavar="TABLE",
                   help=f"table name without extension (default {HEADLINE_TABLE}; e.g. paper_calibration)")
    p.add_argument("--root", default=".", help="repository root holding reports/ (default: the current folder)")
    p.set_defaults(func=results_command)


COMMANDS: tuple[Callable[[object], None], ...] = (add_student_notebook, add_results, add_pin, add_plan)


# --------------------------------------------------------------------------- #
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdlab", description="kdlab helper commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KdlabError as exc:
        print(f"kdlab: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
