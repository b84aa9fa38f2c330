"""Student versions of the course notebooks (experiments/*.py, jupytext percent format).

The instructor notebook is the single source. Two cell tags drive the transform:

``solution`` (code cell)
    The code is removed. The cell keeps its leading comment block (the task,
    written for the student) and, for every top-level assignment, the assigned
    names with a ``___`` placeholder on the right (``tier_f1 = ___``), so later
    cells still refer to names the student has to define. Everything else
    (calls, loops, imports, inner comments) is dropped. ``___`` is a valid
    Python identifier: the student version parses and compiles; running it
    stops with ``NameError: name '___' is not defined`` until the blanks are
    filled. The tag becomes ``exercise``.
``solution`` (markdown cell)
    A model answer: replaced by an answer prompt; a leading heading line is kept.
``reveal`` (markdown cell)
    Kept, but collapsed: wrapped in ``<details><summary>…</summary> … </details>``.
    The summary is the cell's ``summary`` metadata
    (``# %% [markdown] tags=["reveal"] summary="What we saw"``) or a default.

Every other cell is left exactly as it is. The functions are pure: text or
notebook in, a new text or notebook out (the input is not modified).
Running the transform on a student version changes nothing.
"""

from __future__ import annotations

import ast
import copy
import re
from typing import Union

import nbformat

SOLUTION = "solution"
EXERCISE = "exercise"  # the tag a solution cell carries in the student version
REVEAL = "reveal"
PLACEHOLDER = "___"
DEFAULT_TASK = "# Your code here: replace every ___ with your own code."
DEFAULT_SUMMARY = "Reveal (open it after you have written down your prediction)"
ANSWER_PROMPT = "_Your answer:_ ___"
FORMAT = "py:percent"

Notebook = nbformat.NotebookNode


class NotebookTransformError(ValueError):
    """A cell cannot be turned into its student form (e.g. a code cell tagged reveal)."""


# --------------------------------------------------------------------------- #
# One cell
# --------------------------------------------------------------------------- #
def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _leading_comments(lines: list[str]) -> list[str]:
    """The comment lines before the first line of code (blank lines in between are kept)."""
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            out.append(line.rstrip())
        elif stripped == "":
            if out:
                out.append("")
        else:
            break
    while out and out[-1] == "":
        out.pop()
    return out


def comment_magics(source: str) -> str:
    """IPython magics and shell escapes (``%time``, ``!ls``) commented out so ``ast`` can parse."""
    return "\n".join(f"# {ln}" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


def _placeholders(source: str) -> list[str]:
    """``targets = ___`` for every top-level assignment of ``source``, in order, each once."""
    code = comment_magics(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []

    def text(node: ast.AST) -> str:  # as written (``a, b`` stays unparenthesised), on one line
        return " ".join((ast.get_source_segment(code, node) or ast.unparse(node)).split())

    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            line = " = ".join(text(t) for t in node.targets) + f" = {PLACEHOLDER}"
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            line = f"{text(node.target)}: {text(node.annotation)} = {PLACEHOLDER}"
        else:
            continue
        if line not in out:
            out.append(line)
    return out


def student_code(source: str) -> str:
    """The student form of a solution code cell (see the module docstring)."""
    task = _leading_comments(source.splitlines()) or [DEFAULT_TASK]
    body = _placeholders(source) or [PLACEHOLDER]
    return "\n".join(task + body)


def student_answer(source: str) -> str:
    """The student form of a markdown model answer: its heading line (if any) and a prompt."""
    lines = source.splitlines()
    head = [lines[0]] if lines and lines[0].lstrip().startswith("#") else []
    return "\n\n".join(head + [ANSWER_PROMPT])


def collapse(source: str, summary: str = DEFAULT_SUMMARY) -> str:
    """``source`` (markdown) folded into a ``<details>`` block; already folded text is returned as is."""
    if source.lstrip().startswith("<details"):
        return source
    summary = summary.replace("<", "&lt;").replace(">", "&gt;")
    return f"<details>\n<summary>{summary}</summary>\n\n{source.strip()}\n\n</details>"


def student_cell(cell) -> Notebook:
    """A new cell: the student form of ``cell`` (an unchanged copy if it carries neither tag)."""
    cell = copy.deepcopy(cell)
    cell_tags = tags(cell)
    if SOLUTION in cell_tags:
        if cell.cell_type == "code":
            cell.source = student_code(cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = student_answer(cell.source)
        else:
            raise NotebookTransformError(f"a {cell.cell_type} cell cannot be tagged {SOLUTION!r}")
        cell.metadata["tags"] = [EXERCISE if t == SOLUTION else t for t in cell_tags]
    if REVEAL in cell_tags:
        if cell.cell_type != "markdown":
            raise NotebookTransformError(
                f"only markdown cells can be tagged {REVEAL!r} (a {cell.cell_type} cell starting "
                f"{cell.source[:40]!r} is); put the interpretation in a markdown cell")
        summary = str(cell.metadata.get("summary") or DEFAULT_SUMMARY)
        cell.source = collapse(cell.source, summary)
    return cell


# --------------------------------------------------------------------------- #
# A notebook
# --------------------------------------------------------------------------- #
def student_notebook(nb: Notebook) -> Notebook:
    """A new notebook with every cell in its student form; metadata unchanged, outputs of
    solution cells cleared."""
    out = copy.deepcopy(nb)
    out.cells = [student_cell(c) for c in nb.cells]
    return out


def student_text(text: str, fmt: str = FORMAT) -> str:
    """Jupytext text (default percent format) -> the student version, same format."""
    import jupytext

    return jupytext.writes(student_notebook(jupytext.reads(text, fmt=fmt)), fmt=fmt)


def make_student(source: Union[str, Notebook], fmt: str = FORMAT) -> Union[str, Notebook]:
    """Student version of jupytext text (returns text) or of an nbformat notebook (returns one)."""
    if isinstance(source, str):
        return student_text(source, fmt)
    return student_notebook(source)


# --------------------------------------------------------------------------- #
# Checks (the CLI runs them before writing; the tests use them)
# --------------------------------------------------------------------------- #
_WS = re.compile(r"\s+")


def _norm(line: str) -> str:
    return _WS.sub(" ", line.strip())


def solution_lines(nb: Notebook) -> set[str]:
    """Lines of the solutions (code lines of solution code cells, text lines of markdown
    model answers), whitespace-normalised, without comments and headings (the transform keeps
    those) and without lines that also appear in a non-solution cell (those are no secret)."""
    secret: set[str] = set()
    public: set[str] = set()
    for cell in nb.cells:
        lines = {_norm(ln) for ln in cell.source.splitlines() if _norm(ln)}
        if SOLUTION in tags(cell):
            secret |= {ln for ln in lines if not ln.startswith("#")}  # comments and headings stay
        else:
            public |= lines
    return secret - public


def leaked_lines(source: Notebook, student: Notebook) -> list[str]:
    """Solution lines of ``source`` that still appear anywhere in ``student`` (should be [])."""
    secret = solution_lines(source)
    seen = {_norm(ln) for cell in student.cells for ln in cell.source.splitlines()}
    return sorted(secret & seen)


def code_problems(nb: Notebook) -> list[str]:
    """Code cells that do not compile (magics commented out first); one message each."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            compile(comment_magics(cell.source), f"<cell {i}>", "exec")
        except SyntaxError as exc:
            problems.append(f"cell {i}: {exc.msg} (line {exc.lineno})")
    return problems


def check_student(source: Notebook, student: Notebook) -> list[str]:
    """Everything wrong with ``student`` as the student version of ``source``: leaked solution
    lines, cells that do not compile, remaining solution tags, unfolded reveals. [] when fine."""
    problems = [f"solution line survives: {ln!r}" for ln in leaked_lines(source, student)]
    problems += code_problems(student)
    if len(source.cells) != len(student.cells):
        problems.append(f"{len(source.cells)} cells became {len(student.cells)}")
    for i, cell in enumerate(student.cells):
        if SOLUTION in tags(cell):
            problems.append(f"cell {i} is still tagged {SOLUTION!r}")
        if REVEAL in tags(cell) and not cell.source.lstrip().startswith("<details"):
            problems.append(f"cell {i} (reveal) is not folded in <details>")
    return problems
