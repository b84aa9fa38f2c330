"""The course notebooks (experiments/*.py): the student-version transform, the
`kdlab student-notebook` command, and both notebooks executed top to bottom
against the demo outputs (headless kernel, no network; marked e2e)."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import jupytext
import pytest

from kdlab import cli, notebooks

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
def test_solution_code_becomes_placeholders_with_its_task_comment():
    out = jupytext.reads(notebooks.student_text(SYNTHETIC), fmt="py:percent")
    sol = out.cells[2].source
    assert sol.splitlines()[0] == "# Compute `value`: the square root of 16 plus `base`."
    assert "value = ___" in sol and "extra, other = ___" in sol
    assert "sqrt" not in sol and "print" not in sol and "secret" not in sol
    assert out.cells[2].metadata["tags"] == [notebooks.EXERCISE]
    # no leading comment: a generic instruction, and a bare placeholder when nothing is assigned at top level
    loop = out.cells[5].source
    assert loop.splitlines() == [notebooks.DEFAULT_TASK, "___"]


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
            compiles(cell.source)  # ___ is a valid identifier
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


def test_code_reveal_is_refused():
    text = '# %% tags=["reveal"]\nx = 1\n'
    with pytest.raises(notebooks.NotebookTransformError, match="markdown"):
        notebooks.student_text(text)


def test_magics_survive_the_transform():
    text = '# %% tags=["solution"]\n# time it\n# %time y = sum(range(10))\nz = 3\n'
    out = jupytext.reads(notebooks.student_text(text), fmt="py:percent")
    assert out.cells[0].source.splitlines()[-1] == "z = ___"


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


def test_cli_writes_student_versions(tmp_path, capsys):
    src = tmp_path / "lab.py"
    src.write_text(SYNTHETIC)
    assert cli.main(["student-notebook", str(src), "-o", str(tmp_path / "out" / "lab_student.py")]) == 0
    written = (tmp_path / "out" / "lab_student.py").read_text()
    assert written == notebooks.student_text(SYNTHETIC)
    assert "(3 solution cells blanked, 2 reveals folded)" in capsys.readouterr().out
    assert cli.main(["student-notebook", str(src), "-o", str(tmp_path / "lab_student.ipynb")]) == 0
    nb = jupytext.read(tmp_path / "lab_student.ipynb")
    assert cell_sources(nb) == cell_sources(jupytext.reads(written, fmt="py:percent"))
    assert cli.main(["student-notebook", str(src)]) == 0  # default: lab_student.py beside it
    assert (tmp_path / "lab_student.py").read_text() == written
    assert not list(tmp_path.rglob("*.tmp"))


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["student-notebook", str(tmp_path / "missing.py")]) == 1
    assert "kdlab: error:" in capsys.readouterr().err
    src = tmp_path / "lab.py"
    src.write_text(SYNTHETIC)
    assert cli.main(["student-notebook", str(src), "-o", str(src)]) == 1
    assert cli.main(["student-notebook", str(src), "-o", str(tmp_path / "x.txt")]) == 1
    with pytest.raises(SystemExit):
        cli.main([])


# --------------------------------------------------------------------------- #
# Execution against the demo outputs (headless kernel, no network)
# --------------------------------------------------------------------------- #
@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_top_to_bottom(name, demo_repo, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("KDLAB_ROOT", str(demo_repo))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may reach the network
    nb = jupytext.read(REPO / "experiments" / name)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(demo_repo)}})
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - started
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.get("output_type") == "stream")
    assert "profile: demo" in text and "synthetic" in text.lower() and "per tier: head" in text
    assert elapsed < 60, f"{name} took {elapsed:.0f} s on the demo outputs"
