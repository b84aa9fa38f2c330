"""The course notebooks (experiments/*.py): the student-version transform and its
placeholder, and the notebooks run in a kernel against the demo outputs (headless,
no network; marked e2e): the instructor versions top to bottom, the student
handouts up to their first blank. Handouts, Colab and the CLI: test_handouts.py."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

from kdlab import blanks, handouts, notebooks

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "experiments").glob("week6_*.py"))
NAMES = ["week6_lab.py", "week6_homework.py"]

SYNTHETIC = '''# %% [markdown]
# # A tiny lab
#
# **Predict:** will the number be larger than 2?

# %%
import math
base = 2

# %% tags=["solution"]
# Compute `value`: the square root of 16 plus `base`.
value = math.sqrt(16) + base
extra, other = value * 2, value * 3
print("secret print", value)

# %% [markdown] tags=["reveal"] summary="What we saw"
# It was six: larger than two.

# %% [markdown] tags=["reveal"]
# A second reveal, default summary.

# %% tags=["solution"]
for i in range(3):
    total_secret = i * base

# %% [markdown] tags=["solution"]
# ### Your memo
# The model answer says the number is six.

# %%
print(value + base)
'''


def cell_sources(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


def compiles(source: str) -> None:
    """Compile a code cell as Jupyter would run it (IPython magics such as %matplotlib commented out)."""
    compile(notebooks.comment_magics(source), "<cell>", "exec")


# --------------------------------------------------------------------------- #
# The transform on a small synthetic notebook
# --------------------------------------------------------------------------- #
def test_solution_code_becomes_blanks_with_its_task_comment():
    out = jupytext.reads(notebooks.student_text(SYNTHETIC), fmt="py:percent")
    sol = out.cells[2].source.splitlines()
    # the task, the import of blank, and a blank for the name the task asks for (`value`); the
    # helpers `extra, other` are not named by the task: the student decides how to get there
    assert sol == ["# Compute `value`: the square root of 16 plus `base`.", notebooks.BLANK_IMPORT,
                   "value = blank('value (Compute `value`)')"]
    assert out.cells[2].metadata["tags"] == [notebooks.EXERCISE]
    # no leading comment: a generic instruction, and a bare blank when nothing is assigned at top level
    loop = out.cells[5].source
    assert loop.splitlines() == [notebooks.DEFAULT_TASK, notebooks.BLANK_IMPORT, "blank('the code of this cell')"]
    assert notebooks.blank_hints(loop) == ["the code of this cell"]


def test_every_assignment_gets_a_blank_when_the_task_names_none():
    text = '# %% tags=["solution"]\n# Exercise 7. Split the data.\na, b = 1, 2\nc: int = a + b\nc: int = 4\n'
    cell = jupytext.reads(notebooks.student_text(text), fmt="py:percent").cells[0].source
    assert cell.splitlines()[2:] == ["a, b = blank('a, b (Exercise 7)')", "c: int = blank('c (Exercise 7)')"]
    assert notebooks.blank_hints(cell) == ["a, b (Exercise 7)", "c (Exercise 7)"]


@pytest.mark.parametrize("task, label", [
    (["# Exercise 1. Recompute the teacher's tail macro F1 yourself with", "# kdlab.metrics."], "Exercise 1"),
    (["# Exercise 3 (question 4). The pipeline stored a curve."], "Exercise 3 (question 4)"),
    (["# Compute `value`: the square root."], "Compute `value`"),
    (["# " + "a very long first sentence " * 5], None),
    ([], ""),
])
def test_task_label_is_the_first_sentence(task, label):
    got = notebooks.task_label(task)
    if label is None:
        assert len(got) <= notebooks.HINT_WIDTH and got.startswith("a very long") and got.endswith("...")
    else:
        assert got == label


def test_blank_raises_fill_in_this_blank():
    with pytest.raises(blanks.UnfilledBlank) as err:
        blanks.blank("tail_f1 (Exercise 1)")
    assert str(err.value) == "fill in this blank: tail_f1 (Exercise 1)"
    assert isinstance(err.value, NotImplementedError)


def test_unfilled_blank_stops_plain_python(tmp_path):
    """The student .py as a script: the first blank stops it with the message (no Jupyter needed)."""
    script = tmp_path / "lab_student.py"
    script.write_text(notebooks.student_text(SYNTHETIC))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == \
        "kdlab.blanks.UnfilledBlank: fill in this blank: value (Compute `value`)"
    assert "NameError" not in run.stderr


def test_unfilled_blank_is_not_ipython_output_history():
    """In IPython ``___`` is the third-last output; a blank must fail even after outputs exist."""
    shell_mod = pytest.importorskip("IPython.core.interactiveshell")
    shell = shell_mod.InteractiveShell.instance()
    try:
        for value in ("'first output'", "2", "3"):
            shell.run_cell(value, store_history=True)
        assert shell.user_ns["___"] == "first output"  # what the old placeholder silently took
        cell = jupytext.reads(notebooks.student_text(SYNTHETIC), fmt="py:percent").cells[2].source
        result = shell.run_cell(cell, store_history=True)
        assert isinstance(result.error_in_exec, blanks.UnfilledBlank)
        assert str(result.error_in_exec) == "fill in this blank: value (Compute `value`)"
        assert "value" not in shell.user_ns
    finally:
        shell_mod.InteractiveShell.clear_instance()


def test_reveals_are_folded_in_details():
    out = jupytext.reads(notebooks.student_text(SYNTHETIC), fmt="py:percent")
    first, second = out.cells[3].source, out.cells[4].source
    assert first.startswith("<details>\n<summary>What we saw</summary>\n\n")
    assert first.rstrip().endswith("</details>") and "It was six: larger than two." in first
    assert f"<summary>{notebooks.DEFAULT_SUMMARY}</summary>" in second


def test_markdown_model_answer_becomes_a_prompt():
    out = jupytext.reads(notebooks.student_text(SYNTHETIC), fmt="py:percent")
    memo = out.cells[6].source
    assert memo.startswith("### Your memo") and notebooks.ANSWER_PROMPT in memo
    assert "six" not in memo


def test_other_cells_are_unchanged_and_order_kept():
    src = jupytext.reads(SYNTHETIC, fmt="py:percent")
    out = jupytext.reads(notebooks.student_text(SYNTHETIC), fmt="py:percent")
    assert [c.cell_type for c in out.cells] == [c.cell_type for c in src.cells]
    for i in (0, 1, 7):
        assert out.cells[i].source == src.cells[i].source and out.cells[i].metadata == src.cells[i].metadata


def test_student_text_parses_compiles_and_leaks_nothing():
    text = notebooks.student_text(SYNTHETIC)
    src = jupytext.reads(SYNTHETIC, fmt="py:percent")
    out = jupytext.reads(text, fmt="py:percent")
    for cell in out.cells:
        if cell.cell_type == "code":
            compiles(cell.source)
    ast.parse(text)  # the whole .py file too
    secrets = notebooks.solution_lines(src)
    assert {"value = math.sqrt(16) + base", 'print("secret print", value)', "total_secret = i * base",
            "The model answer says the number is six."} <= secrets
    assert notebooks.leaked_lines(src, out) == []
    assert notebooks.check_student(src, out) == []
    for line in secrets:
        assert line not in text


def test_transform_is_pure_and_idempotent():
    src = jupytext.reads(SYNTHETIC, fmt="py:percent")
    before = cell_sources(src)
    out = notebooks.make_student(src)
    assert cell_sources(src) == before  # the input is not modified
    assert cell_sources(notebooks.make_student(out)) == cell_sources(out)
    assert notebooks.make_student(SYNTHETIC) == notebooks.student_text(SYNTHETIC)


def test_check_student_catches_a_leak_and_an_unfolded_reveal():
    src = jupytext.reads(SYNTHETIC, fmt="py:percent")
    bad = notebooks.make_student(src)
    bad.cells[2].source += "\nvalue = math.sqrt(16) + base"
    bad.cells[3].source = "It was six."
    problems = notebooks.check_student(src, bad)
    assert any("solution line survives" in p for p in problems)
    assert any("not folded" in p for p in problems)


def test_check_student_catches_an_exercise_that_would_not_stop_and_a_dropped_name():
    src = jupytext.reads(SYNTHETIC, fmt="py:percent")
    bad = notebooks.make_student(src)
    bad.cells[2].source = "# Compute `value`: the square root of 16 plus `base`.\npass"
    problems = notebooks.check_student(src, bad)
    assert "cell 2 (exercise) has no blank(...): the student version would not stop there" in problems
    assert "cell 7 reads 'value', which no blank in the student version assigns" in problems
    assert notebooks.check_student(src, notebooks.make_student(src)) == []


def test_code_reveal_is_refused():
    text = '# %% tags=["reveal"]\nx = 1\n'
    with pytest.raises(notebooks.NotebookTransformError, match="markdown"):
        notebooks.student_text(text)


def test_magics_survive_the_transform():
    text = '# %% tags=["solution"]\n# time it\n# %time y = sum(range(10))\nz = 3\n'
    out = jupytext.reads(notebooks.student_text(text), fmt="py:percent")
    assert out.cells[0].source.splitlines()[-1] == "z = blank('z (time it)')"


# --------------------------------------------------------------------------- #
# The real notebooks
# --------------------------------------------------------------------------- #
def test_both_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_real_notebook_student_version(name):
    path = REPO / "experiments" / name
    src = jupytext.read(path)
    text = notebooks.student_text(path.read_text())
    out = jupytext.reads(text, fmt="py:percent")
    ast.parse(text)  # the student .py is valid Python as a whole (magics stay commented in the file)
    assert notebooks.check_student(src, out) == []
    for line in notebooks.solution_lines(src):
        assert line not in text, line
    tagged = [notebooks.tags(c) for c in src.cells]
    assert sum(notebooks.SOLUTION in t for t in tagged) >= 3, "expected several exercises"
    assert sum(notebooks.REVEAL in t for t in tagged) >= 3, "expected several reveals"
    for cell in out.cells:
        if cell.cell_type == "code":
            compiles(cell.source)
        if notebooks.REVEAL in notebooks.tags(cell):
            assert cell.source.startswith("<details>")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_file_is_canonical_jupytext(name):
    """Opening and saving in Jupyter (jupytext pairing) leaves the committed .py unchanged."""
    text = (REPO / "experiments" / name).read_text()
    assert jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent") == text


@pytest.mark.parametrize("name", NAMES)
def test_instructor_notebook_compiles(name):
    for cell in jupytext.read(REPO / "experiments" / name).cells:
        if cell.cell_type == "code":
            compiles(cell.source)


# metric and model code belongs in kdlab: a notebook that calls these computes numbers of its own
HOMEMADE = re.compile(r"\bsklearn\b|\bscipy\b|np\.(log|exp|percentile|quantile)\(|softmax\(|kl_div\(|cross_entropy\(|"
                      r"\bnn\.(Linear|Module)\b|\.backward\(\).*\bstep\(")


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_compute_no_metric_of_their_own(name):
    nb = jupytext.read(REPO / "experiments" / name)
    code = [ln for c in nb.cells if c.cell_type == "code" for ln in c.source.splitlines()
            if not ln.lstrip().startswith("#")]
    assert [ln for ln in code if HOMEMADE.search(ln)] == []
    assert any("kdlab" in ln for ln in code) and any("results" in ln for ln in code)


# --------------------------------------------------------------------------- #
# Execution against the demo outputs (headless kernel, no network)
# --------------------------------------------------------------------------- #
def kernel_client(nb, demo_repo, monkeypatch):
    """An nbclient client that runs ``nb`` in a python3 kernel on the demo outputs, offline."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("KDLAB_ROOT", str(demo_repo))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may reach the network
    return nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                   resources={"metadata": {"path": str(demo_repo)}})


def stream_text(cells) -> str:
    return "\n".join(o.get("text", "") for c in cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_top_to_bottom(name, demo_repo, monkeypatch):
    nb = jupytext.read(REPO / "experiments" / name)
    client = kernel_client(nb, demo_repo, monkeypatch)
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - started
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = stream_text(nb.cells)
    assert "profile: demo" in text and "synthetic" in text.lower() and "per tier: head" in text
    assert elapsed < 60, f"{name} took {elapsed:.0f} s on the demo outputs"


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_student_handout_stops_at_its_first_blank(name, demo_repo, monkeypatch):
    """The committed handout (kept equal to its source by test_handouts.py), run as a student who
    fills nothing in: every cell before the first exercise runs cleanly, the first exercise stops
    the run with "fill in this blank: <its first hint>", and no later cell runs."""
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(REPO / handouts.HANDOUT_DIR / name.replace(".py", ".ipynb"), as_version=4)
    first = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and notebooks.EXERCISE in notebooks.tags(c))
    hints = notebooks.blank_hints(nb.cells[first].source)
    assert hints, f"the first exercise (cell {first}) has no blank(...)"
    hint = hints[0]
    source = jupytext.read(REPO / "experiments" / name)
    deliverables = [c for c in source.cells if notebooks.SOLUTION in notebooks.tags(c) and c.cell_type == "code"]
    assert hint.split(" (")[0] in deliverables[0].source  # the hint names what the first solution assigns
    with pytest.raises(CellExecutionError) as err:
        kernel_client(nb, demo_repo, monkeypatch).execute()
    assert err.value.ename == "UnfilledBlank"
    assert err.value.evalue == f"fill in this blank: {hint}"
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    failed = [i for i in code for o in nb.cells[i].get("outputs", []) if o.get("output_type") == "error"]
    assert failed == [first]
    assert all(nb.cells[i].get("execution_count") is not None for i in code if i <= first)
    assert all(nb.cells[i].get("execution_count") is None and not nb.cells[i].get("outputs")
               for i in code if i > first)
    text = stream_text(nb.cells)
    assert "Not in Colab" in text and "profile: demo" in text  # the Colab cell and the Setup cell ran
