"""The ``kdlab`` command (console script declared in pyproject.toml).

    kdlab student-notebook SRC [-o DEST]   the student version of a notebook (default handout/<name>.ipynb)
    kdlab handouts [--check]               every course notebook's handout, written or checked
    kdlab pin [--dry-run]                  pin the Hub artifacts of conf/ (commits, sha256)
    kdlab plan [-S profile=train]          what `dvc repro` would train, and how long each arm takes here
    kdlab results [TABLE] [--root DIR]     print a table of the report (default: the headline one)

Each subcommand is one ``add_<name>(subparsers)`` function that registers its
parser and sets ``func``; add new ones to ``COMMANDS``. User errors print one
line ``kdlab: error: ...`` and exit with status 1 (usage mistakes: 2); ``KDLAB_DEBUG=1`` shows
the traceback too (kdlab.errors).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from kdlab.errors import ArgumentParser, KdlabError, report_errors
from kdlab.pin import add_pin
from kdlab.plan import add_plan


class CliError(KdlabError):
    """A command cannot do what was asked (missing file, unsupported format...)."""


# --------------------------------------------------------------------------- #
# student-notebook, handouts
# --------------------------------------------------------------------------- #
def _format_of(path: Path) -> str:
    if path.suffix == ".py":
        return "py:percent"
    if path.suffix == ".ipynb":
        return "ipynb"
    raise CliError(f"{path}: expected a .py (jupytext percent format) or .ipynb notebook")


def _build_handout(src: Path):
    """(the notebook read from ``src``, its handout); refuses one that is not safe to hand out."""
    import jupytext

    from kdlab import handouts, notebooks

    if not src.is_file():
        raise CliError(f"{src}: not found")
    fmt = _format_of(src)
    try:
        source = jupytext.reads(src.read_text(encoding="utf-8"), fmt=fmt)
    except UnicodeDecodeError as exc:
        raise CliError(f"{src}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except ValueError as exc:  # nbformat: not JSON, not a notebook
        raise CliError(f"{src}: not a readable {fmt} notebook ({exc})") from None
    try:
        built = handouts.handout(source)
    except notebooks.NotebookTransformError as exc:
        raise CliError(f"{src}: {exc}") from None
    problems = handouts.check_handout(source, built)
    if problems:
        raise CliError(f"{src}: the student version is not safe to hand out: " + "; ".join(problems))
    return source, built


def _handout_text(nb, dest: Path) -> str:
    import jupytext

    from kdlab import handouts

    return handouts.handout_text(nb) if dest.suffix == ".ipynb" else jupytext.writes(nb, fmt=_format_of(dest))


def student_notebook_command(args: argparse.Namespace) -> int:
    from kdlab import handouts, io, notebooks

    src = Path(args.src)
    dest = Path(args.output) if args.output else handouts.handout_path(src)
    _format_of(dest)
    if dest.resolve() == src.resolve():
        raise CliError(f"{dest}: the student version would overwrite its source; choose another -o")
    source, built = _build_handout(src)
    io.write_text(dest, _handout_text(built, dest))
    n_ex = sum(notebooks.SOLUTION in notebooks.tags(c) for c in source.cells)
    n_rev = sum(notebooks.REVEAL in notebooks.tags(c) for c in source.cells)
    print(f"kdlab: wrote {dest} ({n_ex} solution cells blanked, {n_rev} reveals folded)")
    return 0


def add_student_notebook(sub) -> None:
    p = sub.add_parser(
        "student-notebook",
        help="write the student version of a notebook (solutions blanked, reveals folded)",
        description="Blank the code of cells tagged 'solution' (keeping their task comments and "
                    "'name = blank(\"hint\")' placeholders, which stop the run with 'fill in this blank: "
                    "hint'), fold markdown cells tagged 'reveal' into <details>, and add the Colab setup "
                    "cell. SRC and DEST may be .py (jupytext percent) or .ipynb.")
    p.add_argument("src", metavar="SRC", help="instructor notebook, e.g. experiments/week6_lab.py")
    p.add_argument("-o", "--output", metavar="DEST",
                   help="where to write (default: handout/<name>.ipynb in SRC's repository)")
    p.set_defaults(func=student_notebook_command)


def handouts_command(args: argparse.Namespace) -> int:
    from kdlab import handouts, io

    root = handouts.repo_root(Path.cwd())
    if root is None:
        raise CliError(f"{Path.cwd()}: no dvc.yaml here or above; run from the kdlab repository")
    sources = handouts.course_notebooks(root)
    if not sources:
        raise CliError(f"{root / handouts.COURSE_DIR}: no course notebooks (*.py) found")
    stale = []
    for src in sources:
        dest = handouts.handout_path(src)
        text = _handout_text(_build_handout(src)[1], dest)
        if dest.is_file() and dest.read_text() == text:
            print(f"kdlab: {dest.relative_to(root)} is up to date")
        elif args.check:
            stale.append(str(dest.relative_to(root)))
        else:
            io.write_text(dest, text)
            print(f"kdlab: wrote {dest.relative_to(root)}")
    if stale:
        raise CliError(f"out of date with {handouts.COURSE_DIR}/: {', '.join(stale)}; run `kdlab handouts`")
    if handouts.REPOSITORY:
        for src in sources:
            url = handouts.colab_url(handouts.REPOSITORY, f"{handouts.HANDOUT_DIR}/{src.stem}.ipynb")
            print(f"Open in Colab: {url or 'Colab opens notebooks from GitHub only: ' + handouts.REPOSITORY}")
    else:
        print("kdlab: kdlab.handouts.REPOSITORY is not set: in Colab the setup cell will ask for the repository URL")
    return 0


def add_handouts(sub) -> None:
    p = sub.add_parser(
        "handouts",
        help="write handout/<name>.ipynb for every course notebook experiments/<name>.py",
        description="The student version of every course notebook, as the committed, Colab-ready "
                    "handout/<name>.ipynb. Run from the repository.")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a handout is out of date")
    p.set_defaults(func=handouts_command)




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
    try:
        print(path.read_text(encoding="utf-8"), end="")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); rerun `dvc repro report`") from None
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


COMMANDS: tuple[Callable[[object], None], ...] = (add_student_notebook, add_handouts, add_results, add_pin,
                                                  add_plan)


# --------------------------------------------------------------------------- #
def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="kdlab", description="kdlab helper commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
