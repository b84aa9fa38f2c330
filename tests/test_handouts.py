"""Student handouts (handout/*.ipynb): built from the course notebooks, kept in sync with
them, Colab-ready; the Colab cell and kdlab.colab.prepare; the `kdlab student-notebook`
and `kdlab handouts` commands. The handouts run in a kernel: test_notebooks.py (e2e)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import nbformat
import pytest

from kdlab import cli, colab, handouts, notebooks
from kdlab.errors import KdlabError

REPO = Path(__file__).resolve().parents[1]
FIND_SPEC = importlib.util.find_spec  # the real one (a test fakes "kdlab is not installed yet")
SYNTHETIC = '''# %% [markdown]
# # A tiny lab

# %%
base = 2

# %% tags=["solution"]
# Exercise 1. Store the square of `base` in `value`.
value = base ** 2

# %% [markdown] tags=["reveal"]
# It was four.

# %%
print(value)
'''


def synthetic() -> nbformat.NotebookNode:
    return jupytext.reads(SYNTHETIC, fmt="py:percent")


def sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


# --------------------------------------------------------------------------- #
# The handout of a notebook
# --------------------------------------------------------------------------- #
def test_handout_is_the_student_version_with_the_colab_cells_after_the_title():
    src = synthetic()
    built = handouts.handout(src)
    student = notebooks.student_notebook(src)
    colab_cells = [(c.cell_type, c.source) for c in handouts.colab_cells()]
    assert sources(built) == sources(student)[:1] + colab_cells + sources(student)[1:]
    assert [handouts.is_colab_cell(c) for c in built.cells] == [False, True, True, False, False, False, False]
    assert [c.id for c in built.cells] == [f"cell-{i}" for i in range(7)]
    assert "jupytext" not in built.metadata  # no pairing: opening the handout must not create a .py
    assert handouts.check_handout(src, built) == []
    assert src.cells[2].source.startswith("# Exercise 1.")  # the input is not modified


def test_handout_of_a_handout_is_the_same_text():
    once = handouts.handout(synthetic())
    twice = handouts.handout(once)
    assert handouts.handout_text(twice) == handouts.handout_text(once)
    assert handouts.handout_text(handouts.handout(synthetic())) == handouts.handout_text(once)  # deterministic


def test_check_handout_wants_the_colab_cell_and_the_student_checks():
    src = synthetic()
    built = handouts.without_colab(handouts.handout(src))
    built.cells[2].source = "value = base ** 2"
    problems = handouts.check_handout(src, built)
    assert f"no {handouts.COLAB_TAG} code cell" in problems
    assert any("solution line survives" in p for p in problems)


@pytest.mark.parametrize("name", ["week6_lab", "week6_homework"])
def test_committed_handouts_match_their_sources(name):
    """handout/<name>.ipynb is exactly what `kdlab handouts` writes from experiments/<name>.py:
    edit the source, run `kdlab handouts`, commit both."""
    src = REPO / handouts.COURSE_DIR / f"{name}.py"
    committed = REPO / handouts.HANDOUT_DIR / f"{name}.ipynb"
    assert committed.is_file(), f"{committed} missing: run `kdlab handouts`"
    built = handouts.handout(jupytext.read(src))
    assert committed.read_text() == handouts.handout_text(built), f"{committed} is stale: run `kdlab handouts`"
    nbformat.validate(nbformat.reads(committed.read_text(), as_version=4))
    assert handouts.check_handout(jupytext.read(src), built) == []


def test_every_course_notebook_has_a_committed_handout():
    names = [p.stem for p in handouts.course_notebooks(REPO)]
    assert names == ["week6_homework", "week6_lab"]
    tracked = subprocess.run(["git", "ls-files", handouts.HANDOUT_DIR], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode == 0 and tracked.stdout.strip():  # in a git checkout: committed, not ignored
        assert sorted(Path(p).stem for p in tracked.stdout.split()) == names


def test_colab_url():
    assert handouts.colab_url("https://github.com/someone/kdlab.git", "handout/week6_lab.ipynb") == \
        "https://colab.research.google.com/github/someone/kdlab/blob/main/handout/week6_lab.ipynb"
    assert handouts.colab_url("git@example.org:someone/kdlab.git", "x.ipynb") is None


# --------------------------------------------------------------------------- #
# The Colab cell (executed here with google.colab faked and the side effects recorded)
# --------------------------------------------------------------------------- #
def run_colab_cell(monkeypatch, repository, in_colab, kdlab_installed=False):
    calls = []
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(("run", list(cmd), kw)))
    monkeypatch.setattr(colab, "prepare", lambda root, profile: calls.append(("prepare", root, profile)))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        None if name == "kdlab" and not kdlab_installed else FIND_SPEC(name, *a)))
    exec(compile(handouts.colab_source(repository), "<colab cell>", "exec"), {})
    return calls


def test_colab_cell_does_nothing_outside_colab(monkeypatch, capsys):
    assert run_colab_cell(monkeypatch, "https://github.com/someone/kdlab", in_colab=False) == []
    assert capsys.readouterr().out.startswith("Not in Colab")


def test_colab_cell_clones_installs_and_prepares(monkeypatch):
    calls = run_colab_cell(monkeypatch, "https://github.com/someone/kdlab", in_colab=True)
    clone, install, prepare = calls
    assert clone[1] == ["git", "clone", "--quiet", "https://github.com/someone/kdlab", handouts.COLAB_CLONE]
    assert install[1] == [sys.executable, "-m", "pip", "install", "--quiet", handouts.COLAB_CLONE]
    assert clone[2] == install[2] == {"check": True}  # a failed clone or install stops the cell
    assert prepare == ("prepare", handouts.COLAB_CLONE, handouts.COLAB_PROFILE)
    again = run_colab_cell(monkeypatch, "https://github.com/someone/kdlab", in_colab=True, kdlab_installed=True)
    assert [c[0] for c in again] == ["run", "prepare"]  # installed already: no second pip install


def test_colab_cell_without_a_repository_says_what_to_set(monkeypatch):
    with pytest.raises(RuntimeError, match="REPOSITORY is not set in this cell"):
        run_colab_cell(monkeypatch, None, in_colab=True)


# --------------------------------------------------------------------------- #
# kdlab.colab.prepare
# --------------------------------------------------------------------------- #
@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A folder with a dvc.yaml; the test's working directory is restored after."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_prepare_runs_dvc_exp_run_for_the_profile(clone, tmp_path_factory, monkeypatch):
    runs = []
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    root = colab.prepare(clone, "demo", run=lambda cmd, cwd, env: runs.append((cmd, cwd, env)) or 0)
    assert root == clone.resolve() and Path.cwd() == clone.resolve()  # the notebook finds the repository
    [(cmd, cwd, env)] = runs
    assert cmd == [sys.executable, "-m", "dvc", "exp", "run", "-S", "profile=demo"] and cwd == root
    assert env["DVC_NO_ANALYTICS"] == "1"


def test_prepare_errors_say_what_to_do(clone, tmp_path_factory):
    with pytest.raises(KdlabError, match=r"exit status 2 \(its log is above\)"):
        colab.prepare(clone, "demo", run=lambda *a: 2)
    with pytest.raises(KdlabError, match=r"profile 'train': expected one of \['audit', 'demo'\]"):
        colab.prepare(clone, "train")
    with pytest.raises(KdlabError, match="no dvc.yaml there"):
        colab.prepare(tmp_path_factory.mktemp("empty"), "demo")


def test_stream_prints_the_output_as_it_comes(capsys):
    status = colab.stream([sys.executable, "-c", "print('one'); import sys; sys.exit(3)"], Path.cwd(), {})
    assert status == 3 and capsys.readouterr().out == "one\n"


# --------------------------------------------------------------------------- #
# The commands
# --------------------------------------------------------------------------- #
def test_student_notebook_writes_the_handout(tmp_path, capsys):
    src = tmp_path / "lab.py"
    src.write_text(SYNTHETIC)
    expected = handouts.handout(synthetic())
    assert cli.main(["student-notebook", str(src)]) == 0  # default: handout/<name>.ipynb
    written = tmp_path / handouts.HANDOUT_DIR / "lab.ipynb"
    assert written.read_text() == handouts.handout_text(expected)
    assert "(1 solution cells blanked, 1 reveals folded)" in capsys.readouterr().out
    assert cli.main(["student-notebook", str(src), "-o", str(tmp_path / "out" / "lab.py")]) == 0
    assert sources(jupytext.read(tmp_path / "out" / "lab.py")) == sources(expected)
    assert cli.main(["student-notebook", str(written), "-o", str(tmp_path / "again.ipynb")]) == 0
    assert (tmp_path / "again.ipynb").read_text() == written.read_text()  # idempotent
    assert not list(tmp_path.rglob("*.tmp"))


def test_default_handout_path_is_in_the_repository():
    assert handouts.handout_path(REPO / "experiments" / "week6_lab.py") == REPO / "handout" / "week6_lab.ipynb"


def test_student_notebook_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["student-notebook", str(tmp_path / "missing.py")]) == 1
    assert "kdlab: error:" in capsys.readouterr().err
    src = tmp_path / "lab.py"
    src.write_text(SYNTHETIC)
    assert cli.main(["student-notebook", str(src), "-o", str(src)]) == 1
    assert cli.main(["student-notebook", str(src), "-o", str(tmp_path / "x.txt")]) == 1
    assert not (tmp_path / "x.txt").exists()
    src.write_text(SYNTHETIC.replace('# %% [markdown] tags=["reveal"]\n# It was four.', '# %% tags=["reveal"]\nx = 4'))
    assert cli.main(["student-notebook", str(src)]) == 1  # a transform error is a user error too
    assert f"kdlab: error: {src}: only markdown cells can be tagged" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])


def test_handouts_command_writes_and_checks(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "experiments").mkdir()
    src = tmp_path / "experiments" / "lab.py"
    src.write_text(SYNTHETIC)
    monkeypatch.chdir(tmp_path / "experiments")  # anywhere in the repository
    assert cli.main(["handouts", "--check"]) == 1
    assert "out of date with experiments/: handout/lab.ipynb; run `kdlab handouts`" in capsys.readouterr().err
    assert not (tmp_path / "handout").exists()  # --check writes nothing
    assert cli.main(["handouts"]) == 0
    assert "wrote handout/lab.ipynb" in capsys.readouterr().out
    assert cli.main(["handouts", "--check"]) == 0
    src.write_text(SYNTHETIC.replace("It was four.", "It was 4."))
    assert cli.main(["handouts", "--check"]) == 1
    monkeypatch.setattr(handouts, "REPOSITORY", "https://github.com/someone/kdlab")
    assert cli.main(["handouts"]) == 0
    out = capsys.readouterr().out
    assert "Open in Colab: https://colab.research.google.com/github/someone/kdlab/blob/main/handout/lab.ipynb" in out
    assert '"REPOSITORY = \\"https://github.com/someone/kdlab\\"' in (tmp_path / "handout" / "lab.ipynb").read_text()


def test_handouts_command_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["handouts"]) == 1


def test_handouts_of_this_repository_are_up_to_date(monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli.main(["handouts", "--check"]) == 0
