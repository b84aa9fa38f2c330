"""Resume through real stage processes under `dvc repro` (issue 9), on a tiny arm of the demo:
SIGKILL or SIGTERM mid-epoch, rerun `dvc repro`, and every output is byte-identical to an uninterrupted
run's; one arm on two processes through `accelerate launch` (optim.launcher) writes the same files.

The arm: `vanilla` on 1,280 rows, 2 epochs of 40 batches, a checkpoint every 7 steps (so most
checkpoints fall inside an epoch). About a minute and a half on a 2-core CPU."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import copy_repo, run

pytestmark = pytest.mark.e2e

ARM, STAGE = "vanilla", "train@vanilla"
ROWS, EPOCHS, EVERY = 1280, 2, 7
PER_EPOCH = ROWS // 32


def set_optim(repo: Path, **values) -> None:
    path = repo / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["optim"].update(values)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def arm_repo(demo_repo, tmp_path_factory) -> Path:
    """A fresh clone holding the demo's prepared data, tokenizer and teacher, with a tiny optim."""
    repo = copy_repo(tmp_path_factory.mktemp("kdlab-resume"))
    for part in ("data/prepared", "data/tokenizer", "data/teacher"):
        shutil.copytree(demo_repo / part, repo / part)
    set_optim(repo, max_train_samples=ROWS, epochs=EPOCHS, checkpoint_every=EVERY)
    return repo


def outputs(repo: Path) -> dict[str, bytes]:
    """Every file of runs/<arm>/ (predictions, train_log.csv, model, card, tokenizer, arm.json)."""
    return {p.name: p.read_bytes() for p in sorted((repo / "runs" / ARM).iterdir())}


@pytest.fixture(scope="module")
def uninterrupted(arm_repo) -> dict[str, bytes]:
    """The arm's outputs from one uninterrupted stage process (no run-cache entry)."""
    run(["python", "-m", "kdlab.stages.train", "--arm", ARM], arm_repo)
    assert not (arm_repo / "checkpoints").exists(), "the checkpoints outlived the outputs"
    return outputs(arm_repo)


def stage_process(dvc_pid: int):
    """The stage's Python process under ``dvc_pid``: the innermost process running kdlab.stages.train
    (DVC may start the command through a shell whose command line names the module too)."""
    import psutil

    found = {}
    for p in psutil.Process(dvc_pid).children(recursive=True):
        try:
            if "kdlab.stages.train" in " ".join(p.cmdline()):
                found[p.pid] = p
        except psutil.Error:  # exited meanwhile
            continue
    leaves = [p for p in found.values() if not any(c.pid in found for c in p.children())]
    assert len(leaves) == 1, [(p.pid, p.cmdline()) for p in found.values()]
    return leaves[0]


def interrupt(repo: Path, sig: signal.Signals) -> tuple[int, str]:
    """`dvc repro -f` the arm, send ``sig`` to its stage process once a checkpoint exists; return the
    checkpoint's step and the output. On a failure here the whole `dvc repro` is killed, so that the
    next test does not meet its lock."""
    latest = repo / "checkpoints" / STAGE / "latest.json"
    assert not latest.exists(), "a checkpoint is left from an earlier run"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0"}
    dvc = subprocess.Popen(["dvc", "repro", "-f", "-s", STAGE], cwd=repo, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not latest.is_file():
            assert dvc.poll() is None and time.monotonic() < deadline, "the stage ended before its first checkpoint"
            time.sleep(0.02)
        stage_process(dvc.pid).send_signal(sig)
        out, _ = dvc.communicate(timeout=300)
    except BaseException:
        os.killpg(dvc.pid, signal.SIGKILL)
        dvc.wait()
        raise
    assert dvc.returncode != 0, out
    step = int(json.loads(latest.read_text())["folder"].split("-")[1])
    assert step % PER_EPOCH, f"the checkpoint at step {step} is an epoch end; expected one inside an epoch"
    return step, out


def assert_resumed_identically(repo: Path, step: int, expected: dict[str, bytes], force: bool = False) -> None:
    rerun = run(["dvc", "repro", *(["-f"] if force else []), "-s", STAGE], repo)
    assert f"resuming at step {step} " in rerun.stdout, rerun.stdout[-2000:]
    got = outputs(repo)
    assert got.keys() == expected.keys()
    assert not [name for name in expected if got[name] != expected[name]], "outputs differ after resuming"
    assert not (repo / "checkpoints" / STAGE).exists(), "the checkpoint is removed once the outputs are written"


def test_sigkill_mid_epoch_then_dvc_repro_resumes_byte_identically(arm_repo, uninterrupted):
    step, _ = interrupt(arm_repo, signal.SIGKILL)
    assert (arm_repo / "checkpoints" / STAGE).is_dir() and not (arm_repo / "runs" / ARM / "arm.json").exists()
    assert_resumed_identically(arm_repo, step, uninterrupted)


def test_sigterm_saves_exits_non_zero_and_dvc_repro_resumes_byte_identically(arm_repo, uninterrupted):
    step, out = interrupt(arm_repo, signal.SIGTERM)
    assert f"stopped by SIGTERM at step {step} of {EPOCHS * PER_EPOCH}" in out, out[-2000:]
    assert f"checkpoint at step {step}/" in out  # saved at the step the signal arrived
    # -f: the previous test's rerun completed this very configuration, so a plain `dvc repro` would check
    # its outputs out of the cache (dvc.lock matches) instead of running the stage: correct for a user, but
    # it would not resume anything
    assert_resumed_identically(arm_repo, step, uninterrupted, force=True)


def test_one_arm_on_two_processes_through_the_launcher_param(arm_repo, uninterrupted):
    """optim.launcher = accelerate launch ... -m: DVC runs the arm on two processes (gloo on a CPU, the
    same command as on two GPUs); the folder has the same files, predictions for the same rows."""
    set_optim(arm_repo, launcher="accelerate launch --multi_gpu --num_processes 2 --num_machines 1 "
                                 "--mixed_precision no --dynamo_backend no -m")
    try:
        result = run(["dvc", "repro", "-s", STAGE], arm_repo, env={"OMP_WAIT_POLICY": "PASSIVE"})  # 2 processes
        assert "> accelerate launch --multi_gpu --num_processes 2" in result.stdout
        assert "on each of 2 processes" in result.stdout
        folder = arm_repo / "runs" / ARM
        assert outputs(arm_repo).keys() == uninterrupted.keys()
        record = json.loads((folder / "arm.json").read_text())["training"]
        assert record["processes"] == 2 and record["steps"] == EPOCHS * PER_EPOCH // 2
        two, one = np.load(folder / "predictions.npz"), np.load(io.BytesIO(uninterrupted["predictions.npz"]))
        assert two.files == one.files
        for key in one.files:
            assert two[key].shape == one[key].shape and two[key].dtype == one[key].dtype, key
        np.testing.assert_array_equal(two["row_id"], one["row_id"])
        np.testing.assert_array_equal(two["labels"], one["labels"])
        assert (folder / "train_log.csv").read_text().splitlines()[0] == "step,epoch,loss,lr"
    finally:
        set_optim(arm_repo, launcher="python -m")



def test_arms_in_parallel_one_gpu_each_from_separate_shells(arm_repo):
    """README, several GPUs: one `dvc --wait-for-lock repro` per GPU, pinned with CUDA_VISIBLE_DEVICES,
    in one workspace at the same time; DVC unlocks the repository while a stage runs, so both train at
    once, and both land in dvc.lock. (On this CPU the variable pins nothing; each arm records what it saw.)"""
    # two trainings share 2 cores: OpenMP threads that spin while they wait would slow both ~5x
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0", "OMP_WAIT_POLICY": "PASSIVE"}
    shells = {arm: subprocess.Popen(["dvc", "--wait-for-lock", "repro", "-f", "-s", f"train@{arm}"], cwd=arm_repo,
                                    env={**env, "CUDA_VISIBLE_DEVICES": gpu}, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
              for arm, gpu in (("vanilla", "0"), ("kd", "1"))}
    outs = {arm: shell.communicate(timeout=600)[0] for arm, shell in shells.items()}
    for arm, shell in shells.items():
        assert shell.returncode == 0, outs[arm][-3000:]
    for arm, gpu in (("vanilla", "0"), ("kd", "1")):
        facts = json.loads((arm_repo / "logs" / f"train@{arm}.json").read_text())
        assert facts["cuda_visible_devices"] == gpu
    status = run(["dvc", "status", "train@vanilla", "train@kd"], arm_repo).stdout
    assert "up to date" in status, status
