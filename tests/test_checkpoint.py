"""Resume inside a training run (kdlab.checkpoint), in process: an interrupted run continued from its
checkpoint ends bit for bit where the uninterrupted run does; stale checkpoints are refused; the model
hook decides what is saved; progress lines reach a redirected log. (The same through real stage
processes killed by SIGKILL and SIGTERM under `dvc repro`: tests/test_resume_e2e.py.)"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlab import checkpoint
from kdlab.checkpoint import Checkpointing, CheckpointError, ModelState
from kdlab.config import ArmConfig, BackboneConfig, OptimConfig, TinyModel
from kdlab.losses import make_loss_fn
from kdlab.signals import TrainingStopped

ROWS, BATCH, EPOCHS = 52, 8, 2  # 7 batches per epoch (the last one short), 14 steps
PER_EPOCH = -(-ROWS // BATCH)
OPTIM = OptimConfig(epochs=EPOCHS, batch_size=BATCH, require_gpu=False, log_every=3, checkpoint_every=4,
                    learning_rate=1e-3, warmup_ratio=0.1)
FINGERPRINT = {"stage": "train@test", "cmd": "python -m kdlab.stages.train --arm test",
               "params": {"optim": {"learning_rate": 1e-3, "epochs": EPOCHS}}, "deps": {"data/prepared": "abc.dir"}}


class Died(Exception):
    """The process 'dies' here (the loss function raises before the step's update)."""


@pytest.fixture(scope="module")
def setup():
    from kdlab.tokenization import train_wordpiece
    from kdlab.train import encode

    rng = np.random.default_rng(0)
    words = ["loan", "fee", "late", "credit", "report", "debt", "bank", "card", "mortgage", "escrow"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(2, 24)))) for _ in range(ROWS)]
    labels = rng.integers(0, 4, ROWS)
    tokenizer = train_wordpiece(texts, 120)
    return tokenizer, encode(texts, labels, tokenizer, 32)


def train(setup, folder: Path | None, *, fingerprint=FINGERPRINT, die_at: int | None = None,
          signal_at: int | None = None, length_grouped=False, model_state=ModelState(), progress_seconds=3600.0,
          log: Path | None = None):
    """One run of train_classifier on a fresh model (seed 1) that checkpoints in ``folder`` (None: not at
    all); returns (summary, model, the bytes of its train_log.csv, written to ``log`` or beside ``folder``)."""
    from kdlab.models import build_classifier
    from kdlab.train import make_accelerator, train_classifier

    tokenizer, encoded = setup
    backbone = BackboneConfig(source="tiny", tiny=TinyModel(hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                                            vocab_size=120))
    base = make_loss_fn(ArmConfig(name="test", label_smoothing=0.1))
    calls = {"n": 0}

    def loss_fn(student, teacher, labels):
        calls["n"] += 1
        if calls["n"] == die_at:
            raise Died
        if calls["n"] == signal_at:
            os.kill(os.getpid(), signal.SIGTERM)  # handled after this step: checkpoint, then stop
        # draws from the torch, python and numpy RNGs (as dropout would), so each must be restored exactly
        noise = float(torch.rand(())) + random.random() + float(np.random.rand())
        return base(student, teacher, labels) * (1 + 0.01 * noise)

    ck = Checkpointing(folder, fingerprint, OPTIM.checkpoint_every, model_state) if folder else None
    accelerator = make_accelerator(OPTIM)
    model = build_classifier(backbone, 4, tokenizer, seed=1)
    log = log or folder.with_name(folder.name + "-train_log.csv")
    summary, model = train_classifier(accelerator, model, encoded, OPTIM, loss_fn, tokenizer.pad_token_id, seed=1,
                                      length_grouped=length_grouped, checkpointing=ck,
                                      progress_seconds=progress_seconds, log_path=log)
    return summary, model, log.read_bytes()


_REFERENCE: dict = {}


def reference(setup, length_grouped: bool, tmp_path: Path):
    """The uninterrupted run (no checkpoints at all), computed once per data order."""
    if length_grouped not in _REFERENCE:
        _REFERENCE[length_grouped] = train(setup, None, length_grouped=length_grouped, log=tmp_path / "reference.csv")
    return _REFERENCE[length_grouped]


def assert_same_run(a, b) -> None:
    (summary_a, model_a, log_a), (summary_b, model_b, log_b) = a, b
    assert summary_a.record == summary_b.record
    assert log_a == log_b  # every log row, the loss window that spans the interruption included
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    different = [k for k in state_a if not bool((state_a[k] == state_b[k]).all())]
    assert not different, f"weights differ after resuming: {different[:5]}"


def saved_step(folder: Path) -> int:
    return json.loads((checkpoint.latest(folder) / "state.json").read_text())["position"]["step"]


@pytest.mark.parametrize("length_grouped", [False, True], ids=["shuffled", "length-grouped"])
@pytest.mark.parametrize("die_at, resumes_at", [
    (7, 4),     # mid-epoch, in the middle of a log window (steps 4..6 of the window 4-6 not logged yet)
    (10, 8),    # epoch 2: the epoch-end checkpoint (step 7) was replaced by step 8's
    (8, 7),     # right after the epoch-end checkpoint: resume at the start of epoch 2
    (None, 14),  # dies after training (predicting): the last epoch's checkpoint, nothing left to train
])
def test_an_interrupted_run_resumes_bit_for_bit(setup, tmp_path, length_grouped, die_at, resumes_at):
    folder = tmp_path / "checkpoints" / "train@test"
    if die_at is None:
        train(setup, folder, length_grouped=length_grouped)  # the stage deletes it only once its outputs exist
    else:
        with pytest.raises(Died):
            train(setup, folder, die_at=die_at, length_grouped=length_grouped)
    assert saved_step(folder) == resumes_at
    step_dir = checkpoint.latest(folder)
    assert {p.suffix for p in step_dir.iterdir()} == {".json", ".safetensors"}  # nothing pickled
    resumed = train(setup, folder, length_grouped=length_grouped)
    assert_same_run(resumed, reference(setup, length_grouped, tmp_path))
    assert resumed[0].run_facts["resumed_from_step"] == resumes_at


def test_sigterm_saves_at_the_step_it_arrives_and_stops(setup, tmp_path):
    folder = tmp_path / "train@test"
    with pytest.raises(TrainingStopped, match=r"stopped by SIGTERM at step 5 of 14; the checkpoint in .*train@test"):
        train(setup, folder, signal_at=5)
    assert saved_step(folder) == 5  # not only the periodic step 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the loop's only while it runs
    assert_same_run(train(setup, folder), reference(setup, False, tmp_path))


def test_a_checkpoint_of_other_inputs_is_refused_with_what_differs(setup, tmp_path):
    folder = tmp_path / "checkpoints" / "train@test"
    with pytest.raises(Died):
        train(setup, folder, die_at=6)
    changed = {**FINGERPRINT, "params": {"optim": {"learning_rate": 2e-3, "epochs": EPOCHS}},
               "deps": {"data/prepared": "def.dir"}}
    with pytest.raises(CheckpointError) as info:
        train(setup, folder, fingerprint=changed)
    message = str(info.value)
    for fragment in (str(folder), "step 4", "params optim.learning_rate", "deps data/prepared",
                     f"rm -r '{folder}'"):
        assert fragment in message, message
    assert saved_step(folder) == 4  # refused, not overwritten


def test_an_unreadable_checkpoint_names_the_file_and_how_to_start_over(setup, tmp_path):
    folder = tmp_path / "train@test"
    with pytest.raises(Died):
        train(setup, folder, die_at=6)
    (checkpoint.latest(folder) / "optimizer.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"optimizer\.safetensors: unreadable checkpoint file .* `rm -r "):
        train(setup, folder)


def test_the_model_hook_decides_what_a_checkpoint_holds(setup, tmp_path):
    """A LoRA teacher saves only its trainable tensors: the hook's dict is the file, and load gets it back."""
    from safetensors.torch import load_file

    loaded = {}

    def head_only(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith("classifier.")}

    def load_head(model, tensors):
        loaded.update(tensors)
        model.load_state_dict(tensors, strict=False)

    folder = tmp_path / "train@test"
    with pytest.raises(Died):
        train(setup, folder, die_at=6, model_state=ModelState(head_only, load_head))
    saved = load_file(str(checkpoint.latest(folder) / "model.safetensors"))
    assert saved and all(k.startswith("classifier.") for k in saved)
    train(setup, folder, model_state=ModelState(head_only, load_head))
    assert loaded.keys() == saved.keys()


def test_a_redirected_log_shows_progress_lines(setup, tmp_path, capsys):
    train(setup, tmp_path / "train@test", progress_seconds=0.0)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("train: 14 steps (2 epochs x 7 batches of 8) on cpu; checkpoints every 4 steps")
    lines = [line for line in out if " examples/s" in line]
    assert [line.split(",")[0] for line in lines] == [f"train: step {s}/14 ({100 * s / 14:.1f} %)"
                                                      for s in (3, 6, 9, 12, 14)]
    assert all(" loss " in line and " ETA " in line for line in lines)
    assert sum("checkpoint at step" in line for line in out) == 5  # steps 4, 7 (epoch end), 8, 12, 14


def test_the_checkpoints_folder_can_move(monkeypatch, tmp_path):
    monkeypatch.delenv(checkpoint.ROOT_ENV, raising=False)
    assert checkpoint.checkpoint_folder("train@kd") == Path("checkpoints") / "train@kd"
    monkeypatch.setenv(checkpoint.ROOT_ENV, str(tmp_path))
    assert checkpoint.checkpoint_folder("sweep@1-0.7") == tmp_path / "sweep@1-0.7"


class FakeAccelerator:
    """The accelerate.Accelerator attributes a checkpoint reads, with a loss scaler (fp16 on a GPU; a CPU
    run has none, so this is how a test reaches the scaler's save and load)."""

    is_main_process, process_index, num_processes, mixed_precision = True, 0, 1, "fp16"
    device = torch.device("cpu")

    def __init__(self, scaler):
        self.scaler = scaler

    def wait_for_everyone(self):
        pass

    def unwrap_model(self, model, keep_torch_compile=False):
        return model


def test_the_fp16_loss_scale_and_the_schedule_are_saved_and_restored(tmp_path):
    from transformers import get_linear_schedule_with_warmup

    def parts(scale: float):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scheduler = get_linear_schedule_with_warmup(optimizer, 2, 10)
        return model, optimizer, scheduler, torch.amp.GradScaler("cpu", init_scale=scale, growth_interval=2)

    model, optimizer, scheduler, scaler = parts(2.0 ** 10)
    for _ in range(3):  # the scale grows once, the growth tracker stands at 1, the schedule at step 3
        scaler.scale(model(torch.ones(4, 3)).pow(2).mean()).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad()
    ck = Checkpointing(tmp_path / "train@test", FINGERPRINT, 0)
    state = checkpoint.LoopState(checkpoint.Position(0, 3, 3), [], torch.zeros(()))
    checkpoint.save(ck, FakeAccelerator(scaler), model, optimizer, scheduler, state, {}, 1.0)

    model2, optimizer2, scheduler2, scaler2 = parts(2.0 ** 16)
    resumed = checkpoint.load(ck, FakeAccelerator(scaler2), model2, optimizer2, scheduler2)
    assert resumed.state.position == checkpoint.Position(0, 3, 3)
    assert scaler2.state_dict() == scaler.state_dict() and scaler.state_dict()["scale"] == 2.0 ** 11
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert optimizer2.param_groups[0]["betas"] == (0.9, 0.999)  # a tuple again after JSON
    for a, b in zip(optimizer.state.values(), optimizer2.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
