"""`kdlab plan`: which training stages `dvc repro` would run, their size, and a time per arm from the best
source (a resume checkpoint, earlier runs' logs, a benchmark, the course's T4 figure), said with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdlab import plan
from kdlab.checkpoint import checkpoint_folder
from kdlab.cli import main as cli_main
from kdlab.config import config_from_mapping
from kdlab.paths import Layout
from kdlab.progress import speed_key

from conftest import composed, copy_repo


@pytest.fixture
def train_cfg(params_raw):
    return config_from_mapping(params_raw)


def test_the_size_of_each_training_stage(train_cfg):
    sizes = (57_846, 21_432)
    kd = plan.training_of("train@kd", train_cfg, sizes)
    assert (kd.rows, kd.epochs, kd.steps) == (79_278, 3, 3 * 2_478)
    assert plan.training_of("train@vanilla_train_only", train_cfg, sizes).rows == 57_846
    assert plan.training_of("sweep@1-0.7", train_cfg, sizes).rows == 79_278
    for stage in ("prepare", "teacher", "calibrate", "analyze@tiers"):  # the train profile's teacher is published
        assert plan.training_of(stage, train_cfg, sizes) is None
    raw = composed("profile=train")
    raw["optim"].update(max_train_samples=1000, launcher="accelerate launch --multi_gpu --num_processes 2 -m")
    two = plan.training_of("train@kd", config_from_mapping(raw), sizes)
    assert (two.rows, two.steps, two.key["processes"]) == (1000, 3 * 16, 2)  # 1000 rows / 32 / 2 processes


def test_a_trained_teacher_and_the_data_sizes_params_know(tmp_path):
    cfg = config_from_mapping(composed("profile=demo"))
    assert plan.split_sizes(cfg, Layout(tmp_path)) == (6000, 2000)  # the synthetic corpus, before `prepare` ran
    teacher = plan.training_of("teacher", cfg, (6000, 2000))
    assert (teacher.rows, teacher.steps) == (7200, 5 * 225)
    train = config_from_mapping(composed("profile=train"))
    assert plan.split_sizes(train, Layout(tmp_path)) == (57_846, 21_432)  # data.expected of the Hub data


def test_a_lora_teacher_is_sized_and_never_timed_by_the_student_benchmark(tmp_path):
    cfg = config_from_mapping(composed("teacher=lora"))
    teacher = plan.training_of("teacher", cfg, (57_846, 21_432))
    assert (teacher.rows, teacher.steps) == (71_350, 2 * 4460)  # 90 % of 79,278 rows, batch 16, 2 epochs
    assert teacher.key["backbone"]["repo_id"] == "Qwen/Qwen3-32B" and teacher.key["backbone"]["rank"] == 16
    bench = {"examples_per_s": 100.0}  # a ModernBERT benchmark says nothing about a LoRA teacher
    found = plan.estimate(teacher, "NVIDIA A100-SXM4-80GB", {}, bench, None, root=tmp_path)
    assert found.seconds is None and "docs/lora_teacher.md" in found.source


def training(cfg, stage="train@kd"):
    return plan.training_of(stage, cfg, (57_846, 21_432))


def write_checkpoint(root: Path, stage: str, step: int, seconds: float, fingerprint: dict) -> None:
    folder = root / checkpoint_folder(stage) / f"step-{step:07d}"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"position": {"epoch": 0, "batch": step, "step": step},
                                                   "seconds": seconds, "fingerprint": fingerprint}))
    (folder.parent / "latest.json").write_text(json.dumps({"folder": folder.name}))


def test_estimates_name_their_source_best_first(train_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("KDLAB_CHECKPOINTS", raising=False)
    kd = training(train_cfg)
    fingerprint = {"params": {"optim": {"epochs": 3}}, "deps": {}, "cmd": "python -m kdlab.stages.train --arm kd"}
    rate = 40.0
    speeds = {"train@vanilla": (rate, kd.key)}
    bench = {"examples_per_s": 50.0}

    # 4. nothing measured: the course's T4 figure, for ModernBERT-base on a T4 only
    t4 = plan.estimate(kd, "Tesla T4", {}, None, fingerprint, tmp_path)
    assert round(t4.seconds / 60) == 80 and "course's T4 figure" in t4.source
    assert plan.estimate(kd, "NVIDIA A100-SXM4-40GB", {}, None, fingerprint, tmp_path).seconds is None
    # 3. a benchmark on this device
    assert plan.estimate(kd, "Tesla T4", {}, bench, fingerprint, tmp_path).seconds == pytest.approx(79_278 * 3 / 50)
    # 2. an earlier arm with the same speed key (not one with another batch size)
    measured = plan.estimate(kd, "Tesla T4", speeds, bench, fingerprint, tmp_path)
    assert measured.seconds == pytest.approx(79_278 * 3 / rate) and "logs/train@vanilla.json" in measured.source
    other = {"train@vanilla": (rate, {**kd.key, "batch_size": 64})}
    assert "benchmark" in plan.estimate(kd, "Tesla T4", other, bench, fingerprint, tmp_path).source
    # 1. its own checkpoint: the steps left at its own pace
    write_checkpoint(tmp_path, "train@kd", 2000, 1000.0, fingerprint)
    resumed = plan.estimate(kd, "Tesla T4", speeds, bench, fingerprint, tmp_path)
    assert resumed.seconds == pytest.approx((7434 - 2000) * 0.5) and "resumes at step 2,000" in resumed.source
    # ... unless it was written for other inputs: the stage will refuse it
    stale = plan.estimate(kd, "Tesla T4", speeds, bench, {**fingerprint, "cmd": "other"}, tmp_path)
    assert stale.seconds is None and "other inputs" in stale.source and "checkpoints/train@kd" in stale.source


def test_measured_speeds_come_from_this_devices_logs(tmp_path, train_cfg):
    layout = Layout(tmp_path)
    layout.logs.mkdir()
    key = training(train_cfg).key
    (layout.logs / "train@kd.json").write_text(json.dumps({"examples_per_s": 30.0, "device_name": "Tesla T4",
                                                           "speed_key": key}))
    (layout.logs / "train@vanilla.json").write_text(json.dumps({"examples_per_s": 90.0, "device_name": "NVIDIA L4",
                                                                "speed_key": key}))
    (layout.logs / "prepare.json").write_text(json.dumps({"seconds": 3.0}))
    assert plan.measured_speeds(layout, "Tesla T4") == {"train@kd": (30.0, key)}


def test_plan_on_a_fresh_clone_lists_every_training_stage(tmp_path, monkeypatch, capsys):
    """Nothing has run in a fresh clone of the demo: DVC would run every stage; logs of an earlier demo arm
    on this machine give the time of every arm, the teacher's is unknown; a stray checkpoint is named."""
    repo = copy_repo(tmp_path / "repo")
    cfg = config_from_mapping(composed("profile=demo"))
    (repo / "logs").mkdir()
    (repo / "logs" / "train@kd.json").write_text(json.dumps({
        "examples_per_s": 600.0, "device_name": "cpu",
        "speed_key": speed_key(cfg.student, cfg.optim, cfg.data.max_length, 1)}))
    (repo / "checkpoints" / "train@gone").mkdir(parents=True)
    monkeypatch.delenv("KDLAB_CHECKPOINTS", raising=False)
    monkeypatch.setattr("kdlab.train.device_name", lambda: "cpu")
    assert cli_main(["plan", "--root", str(repo)]) == 0
    out = capsys.readouterr().out.splitlines()
    n_train = len(cfg.all_arms)
    assert out[0].startswith(f"kdlab plan: profile demo on cpu; `dvc repro` would run ") and \
        out[0].endswith(f"{n_train + 1} of them training:")
    rows = {line.split()[0]: line for line in out[1:n_train + 2]}
    assert set(rows) == {"teacher", *(f"train@{a.name}" for a in cfg.arms), *(c.name for c in cfg.sweep.cells())}
    assert "~40s" in rows["train@kd"] and "8,000 rows" in rows["train@kd"] and "750 steps" in rows["train@kd"]
    assert "6,000 rows" in rows["train@vanilla_train_only"]  # CE on the train split only
    assert " ? " in rows["teacher"] and "unknown" in rows["teacher"]  # another model: no measured speed
    assert any(line.startswith("left over: ") and "train@gone" in line for line in out)
