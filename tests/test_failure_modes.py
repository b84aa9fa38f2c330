"""What goes wrong besides a bad file: a killed stage, YAML errors in conf/, the notebooks' reader.

- A SIGKILL in the middle of a write leaves the good output in place and a ``.<name>.*.tmp`` next
  to it; the next start of the stage that owns the output removes it (and nothing of other stages).
  DVC itself restores a killed stage's outputs from its run cache on the next `dvc repro`.
- A duplicate key or a syntax error in conf/*.yaml is reported with file, line and column, by
  kdlab.compose (tests, notebooks, write_params) and by `dvc exp run` itself.
- The notebooks read the stored predictions through the same checks as the stages.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bad_inputs import changed_labels, edit_npz, run_entry, snapshot
from conftest import REPO, run
from kdlab import io
from kdlab.compose import check_conf, compose
from kdlab.typed import ParamsError

KILLED_WRITER = """
import sys, time
from kdlab import io
with io.atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half an output")
    print("writing", flush=True)
    time.sleep(120)
"""


def dvc_repo(root: Path) -> Path:
    """``root`` made a DVC project with this repository's dvc.yaml (so stages know their outs)."""
    shutil.copy2(REPO / "dvc.yaml", root / "dvc.yaml")
    run(["dvc", "init", "--no-scm", "-q"], root)
    return root


def kill_while_writing(root: Path, relpath: str) -> None:
    """Start a process writing ``relpath`` through io.atomic_path and SIGKILL it mid-write."""
    src = str(Path(io.__file__).resolve().parents[1])
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, relpath], cwd=root, stdout=subprocess.PIPE,
                             text=True, env={"PYTHONPATH": src, "PATH": ""})
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def test_a_killed_write_is_cleaned_at_the_next_start_of_its_stage(good_repos, tmp_path):
    root = dvc_repo(good_repos.copy("study", tmp_path / "repo"))
    good = (root / "results/calibration.json").read_bytes()
    kill_while_writing(root, "results/calibration.json")
    stray = list((root / "results").glob(".calibration.json.*.tmp"))
    assert len(stray) == 1 and stray[0].read_text() == "half an output"
    assert (root / "results/calibration.json").read_bytes() == good  # the output was never half-written
    other = root / "reports" / ".numbers.tex.x1y2.tmp"  # a stray of the report stage: not calibrate's to remove
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("report's")

    code, _, err = run_entry(("calibrate",), root)
    assert code == 0, err
    assert not stray[0].exists() and other.exists()
    assert (root / "results/calibration.json").read_bytes() == good  # the same inputs give the same output


def test_remove_stale_temps_of_file_and_folder_outputs(tmp_path):
    (tmp_path / "runs/kd/.tokenizer.ab.tmp").mkdir(parents=True)  # a temporary folder inside a folder out
    (tmp_path / "runs/kd/.model.safetensors.cd.tmp").write_text("x")
    (tmp_path / "runs/kd/model.safetensors").write_text("good")
    (tmp_path / "reports/tables").mkdir(parents=True)
    (tmp_path / "reports/.numbers.tex.ef.tmp").write_text("x")
    (tmp_path / "reports/.findings.tex.gh.tmp").write_text("x")  # another out's: kept
    (tmp_path / "reports/numbers.tex.tmp").write_text("not ours: no leading dot")
    removed = io.remove_stale_temps([tmp_path / "runs/kd", tmp_path / "reports/numbers.tex"])
    assert sorted(p.name for p in removed) == [".model.safetensors.cd.tmp", ".numbers.tex.ef.tmp", ".tokenizer.ab.tmp"]
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["reports/.findings.tex.gh.tmp", "reports/numbers.tex.tmp", "runs/kd/model.safetensors"]


# --------------------------------------------------------------------------- #
# YAML errors in conf/
# --------------------------------------------------------------------------- #
def broken_conf(tmp_path: Path, edit) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    path = conf / "profile" / "demo.yaml"
    path.write_text(edit(path.read_text()))
    return conf


DUPLICATE = lambda text: text.replace("optim:\n", "optim:\n  epochs: 9\n", 1)  # noqa: E731
UNCLOSED = lambda text: text.replace("epochs: 3", "epochs: [3", 1)  # noqa: E731


@pytest.mark.parametrize("edit, says", [(DUPLICATE, "duplicate key 'epochs' (first at line 13, column 3; again at "
                                                   "line 14, column 3)"),
                                        (UNCLOSED, "expected ',' or ']'")], ids=["duplicate key", "syntax error"])
def test_compose_names_file_line_and_column(tmp_path, edit, says):
    conf = broken_conf(tmp_path, edit)
    with pytest.raises(ParamsError) as info:
        compose(conf, ["profile=demo"])
    message = str(info.value)
    assert message.startswith(f"{conf / 'profile' / 'demo.yaml'}:") and says in message
    with pytest.raises(ParamsError, match="demo.yaml:"):
        check_conf(conf)


def test_dvc_exp_run_reports_a_conf_duplicate_key_with_file_line_and_column(tmp_path):
    """`dvc exp run` composes conf/ with OmegaConf's loader, which refuses a duplicate key; DVC prints
    the file, line and column of both keys and stops before any stage runs (DVC 3.x, hydra-core 1.3)."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(REPO / "conf", root / "conf")
    conf = root / "conf" / "profile" / "demo.yaml"
    conf.write_text(DUPLICATE(conf.read_text()))
    (root / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo ran > ran.txt\n    params:\n      - seed\n"
                                   "    outs:\n      - ran.txt\n")
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.invalid"],
                    ["git", "config", "user.name", "ci"], ["dvc", "init", "-q"]):
        run(command, root)
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")  # hydra.enabled
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "x"], root)
    result = run(["dvc", "exp", "run", "-S", "profile=demo"], root, check=False)
    assert result.returncode != 0
    assert "found duplicate key epochs" in result.stderr
    assert f'in "{conf}", line 14, column 3' in result.stderr, result.stderr
    assert not (root / "ran.txt").exists()


# --------------------------------------------------------------------------- #
# The notebooks
# --------------------------------------------------------------------------- #
def test_notebooks_read_predictions_through_the_same_checks(good_repos, tmp_path):
    from kdlab.io import ArtifactError
    from kdlab.outputs import open_outputs

    root = good_repos.copy("study", tmp_path / "repo")
    (root / "dvc.yaml").write_text("stages: {}\n")  # what find_root looks for
    assert open_outputs(root).study.n == 240
    edit_npz("runs/kd/predictions.npz", labels=changed_labels(50))(root)
    before = snapshot(root)
    with pytest.raises(ArtifactError, match="runs/kd/predictions.npz: labels differ from the prepared data in 50"):
        open_outputs(root)
    assert snapshot(root) == before
