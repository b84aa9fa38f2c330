"""Student versions of the course notebooks (experiments/*.py, jupytext percent format).

The instructor notebook is the single source. Two cell tags drive the transform:

``solution`` (code cell)
    The code is removed. The cell keeps its leading comment block (the task,
    written for the student), imports :func:`kdlab.blanks.blank` and puts the
    names it must define in front of a blank
    (``tail_f1 = blank("tail_f1 (Exercise 1)")``), so later cells still refer to
    them: the top-level assignments of names the task sets in backticks
    (``Store it in `tail_f1`.``), or every top-level assignment when the task
    names none; a cell without top-level assignments gets one bare
    ``blank(...)``. Everything else (helper assignments, calls, loops, imports,
    inner comments) is dropped. The student version compiles, and running it stops at
    the first unfilled blank with ``UnfilledBlank: fill in this blank: <hint>``
    in any kernel; the hint is the assigned name and the first sentence of the
    task (``Exercise 1``). The tag becomes ``exercise``.
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
import textwrap
from typing import Union

import nbformat

from kdlab.errors import KdlabError

SOLUTION = "solution"
EXERCISE = "exercise"  # the tag a solution cell carries in the student version
REVEAL = "reveal"
BLANK = "blank"  # kdlab.blanks.blank: the placeholder call
BLANK_IMPORT = "from kdlab.blanks import blank  # blank(...) stops the run: replace it with your code"
DEFAULT_TASK = "# Your code here: replace the blank(...) below with your own code."
WHOLE_CELL = "the code of this cell"  # what a bare blank stands for
HINT_WIDTH = 60  # characters of the task's first sentence kept in a hint
DEFAULT_SUMMARY = "Reveal (open it after you have written down your prediction)"
ANSWER_PROMPT = "_Your answer:_ (replace this line with yours)"
FORMAT = "py:percent"

Notebook = nbformat.NotebookNode


class NotebookTransformError(KdlabError):
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


def task_label(task: list[str]) -> str:
    """The first sentence of a task comment, for hints: ``# Exercise 1. Recompute ...`` ->
    ``Exercise 1``; '' when there is no task. At most ``HINT_WIDTH`` characters."""
    text = " ".join(ln.strip().lstrip("#").strip() for ln in task).strip()
    first = re.split(r"(?<=[.:;!?])\s", text, maxsplit=1)[0].rstrip(".:;!? ")
    return textwrap.shorten(first, HINT_WIDTH, placeholder=" ...") if first else ""


def blank_call(hint: str) -> str:
    """The placeholder expression: ``blank('tail_f1 (Exercise 1)')``."""
    return f"{BLANK}({hint!r})"


def _named(task: list[str]) -> set[str]:
    """The names a task comment sets in backticks (``Store it in `tail_f1`.``)."""
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", "\n".join(task)))


def _placeholders(source: str, task: list[str]) -> list[str]:
    """``targets = blank("<targets> (<label>)")`` for the top-level assignments of ``source``,
    in order, each once: those that assign a name the task names in backticks (the cell's
    deliverables; helpers such as ``tail_rows`` are the student's business), or every one
    when the task names none of them."""
    code = comment_magics(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []

    def text(node: ast.AST) -> str:  # as written (``a, b`` stays unparenthesised), on one line
        return " ".join((ast.get_source_segment(code, node) or ast.unparse(node)).split())

    label = task_label(task)

    def hint(targets: str) -> str:
        return f"{targets} ({label})" if label else targets

    lines: list[tuple[str, set[str]]] = []  # (placeholder line, the names it assigns)
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = " = ".join(text(t) for t in node.targets)
            line = f"{targets} = {blank_call(hint(targets))}"
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = text(node.target)
            line = f"{targets}: {text(node.annotation)} = {blank_call(hint(targets))}"
        else:
            continue
        lines.append((line, stored_names(node)))
    named = _named(task)
    kept = [line for line, names in lines if names & named] or [line for line, _ in lines]
    return list(dict.fromkeys(kept))


def stored_names(node: ast.AST) -> set[str]:
    """The names a statement (or a parsed cell) binds anywhere inside it: assignments,
    imports, function and class definitions."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.alias):
            out.add(n.asname or n.name.split(".")[0])
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
    return out


def _parsed(cell) -> ast.Module:
    try:
        return ast.parse(comment_magics(cell.source))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def student_code(source: str) -> str:
    """The student form of a solution code cell (see the module docstring)."""
    task = _leading_comments(source.splitlines())
    label = task_label(task)
    whole = f"{label}: {WHOLE_CELL}" if label else WHOLE_CELL
    body = _placeholders(source, task) or [blank_call(whole)]
    return "\n".join((task or [DEFAULT_TASK]) + [BLANK_IMPORT] + body)


def blank_hints(source: str) -> list[str]:
    """The hints of the ``blank("...")`` calls in a code cell, in order ([] when it has none
    or does not parse)."""
    try:
        tree = ast.parse(comment_magics(source))
    except SyntaxError:
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == BLANK and len(n.args) == 1 and isinstance(n.args[0], ast.Constant)]
    return [c.args[0].value for c in sorted(calls, key=lambda c: (c.lineno, c.col_offset))]


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


def dropped_names(source: Notebook, student: Notebook) -> list[str]:
    """Names a non-solution code cell reads that only solution cells bind in ``source`` and
    no exercise cell binds in ``student`` (cells aligned): a later cell would fail on them
    with a NameError even after the student filled every blank. One message each."""
    code = [i for i, c in enumerate(source.cells) if c.cell_type == "code"]
    secret = set().union(*(stored_names(_parsed(source.cells[i])) for i in code if SOLUTION in tags(source.cells[i])))
    public = set().union(*(stored_names(_parsed(source.cells[i])) for i in code if SOLUTION not in tags(source.cells[i])))
    blanks = set().union(*(stored_names(_parsed(student.cells[i])) for i in code
                           if i < len(student.cells) and SOLUTION in tags(source.cells[i])))
    problems = []
    for i in code:
        if SOLUTION in tags(source.cells[i]):
            continue
        read = {n.id for n in ast.walk(_parsed(source.cells[i])) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        problems += [f"cell {i} reads {name!r}, which no blank in the student version assigns"
                     for name in sorted((read & secret) - public - blanks)]
    return problems


def check_student(source: Notebook, student: Notebook) -> list[str]:
    """Everything wrong with ``student`` as the student version of ``source``: leaked solution
    lines, cells that do not compile, exercises without a blank, names later cells read that
    no blank assigns, remaining solution tags, unfolded reveals. [] when fine."""
    problems = [f"solution line survives: {ln!r}" for ln in leaked_lines(source, student)]
    problems += code_problems(student)
    problems += dropped_names(source, student)
    if len(source.cells) != len(student.cells):
        problems.append(f"{len(source.cells)} cells became {len(student.cells)}")
    for i, (was, cell) in enumerate(zip(source.cells, student.cells)):
        if SOLUTION in tags(was) and was.cell_type == "code" and not blank_hints(cell.source):
            problems.append(f"cell {i} (exercise) has no {BLANK}(...): the student version would not stop there")
    for i, cell in enumerate(student.cells):
        if SOLUTION in tags(cell):
            problems.append(f"cell {i} is still tagged {SOLUTION!r}")
        if REVEAL in tags(cell) and not cell.source.lstrip().startswith("<details"):
            problems.append(f"cell {i} (reveal) is not folded in <details>")
    return problems
