"""Resume checkpoints: everything the training loop needs to continue an interrupted run bit for bit.

Where. ``checkpoints/<stage>/`` at the repository root (``KDLAB_CHECKPOINTS`` moves the root, e.g. to
a mounted drive), which is no stage's output and is gitignored. DVC deletes a stage's outputs before it
runs the stage again (``dvc repro`` docs: "Stage outputs are deleted from the workspace before executing
the stage commands that produce them (unless ``persist: true`` is used)"), so a checkpoint inside
``runs/<arm>/`` would be deleted exactly when the rerun needs it. ``persist: true`` on the outputs
would keep it, but it would also keep whatever an earlier, different run left in the outputs (a new run
could ship stale files), DVC would cache the checkpoint with the outputs (about 1.8 GB per arm at real
size), and DVC ignores its run-cache for persistent outputs. A folder beside the outputs has none of
these problems; its validity is checked here instead, with a fingerprint of what the stage depends on.

What. One checkpoint at a time, complete before ``latest.json`` names it (a new one is written in its
own folder, then ``latest.json`` is replaced atomically, then the old folder is deleted):

    checkpoints/<stage>/latest.json                  {"folder": "step-0000300"}
    checkpoints/<stage>/step-0000300/state.json      fingerprint, environment, position, log rows,
                                                     scheduler, grad scaler, optimizer hyperparameters
    .../model.safetensors                            the model hook's tensors (the state_dict by default)
    .../optimizer.safetensors                        the optimizer's state tensors (AdamW moments, steps)
    .../rank-<k>.safetensors, rank-<k>.json          per process: the torch CPU and CUDA, python and numpy
                                                     RNG states, the data order's generator at the start
                                                     of the epoch, the loss summed since the last log row

Only safetensors and JSON: nothing is unpickled. A checkpoint records the stage's fingerprint (the
tracked params as the stage sees them and the hash of every dependency, from DVC; kdlab.fingerprint)
and is refused, with what differs, when the stage's inputs changed since it was written.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kdlab.errors import KdlabError
from kdlab.io import atomic_path

FORMAT = 1
ROOT_ENV = "KDLAB_CHECKPOINTS"
LATEST = "latest.json"


class CheckpointError(KdlabError):
    """A checkpoint cannot be used: written for other inputs or another setup, or unreadable."""


def checkpoint_folder(stage: str) -> Path:
    """``checkpoints/<stage>`` (or ``$KDLAB_CHECKPOINTS/<stage>``), relative to the repository root."""
    return Path(os.environ.get(ROOT_ENV) or "checkpoints") / stage


# --------------------------------------------------------------------------- #
# What goes into a checkpoint
# --------------------------------------------------------------------------- #
def full_state_dict(model) -> dict:
    """Every tensor of ``model.state_dict()``, copied to the CPU (tied tensors become separate copies)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def load_full_state_dict(model, tensors: dict) -> None:
    model.load_state_dict(tensors, strict=True)


@dataclass(frozen=True)
class ModelState:
    """How the model goes into a checkpoint: ``save(model) -> {name: tensor}`` and ``load(model, tensors)``.

    The default is the whole state_dict; a LoRA teacher passes ``kdlab.lora.trainable_state_dict`` and
    ``kdlab.lora.load_trainable_state_dict`` so that only what training changes is written.
    """

    save: Callable[[Any], dict] = full_state_dict
    load: Callable[[Any, dict], None] = load_full_state_dict


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often the training loop saves: ``folder`` (``checkpoint_folder(stage)``),
    ``fingerprint`` (kdlab.fingerprint.stage_fingerprint), ``every`` optimizer steps (0: epoch ends
    and signals only)."""

    folder: Path
    fingerprint: dict
    every: int
    model_state: ModelState = ModelState()


@dataclass(frozen=True)
class Position:
    """Where the loop stands: ``batch`` batches of ``epoch`` done, ``step`` optimizer steps in all."""

    epoch: int
    batch: int
    step: int


@dataclass
class LoopState:
    """What the loop carries from step to step (besides model, optimizer and scheduler)."""

    position: Position
    log_rows: list[dict]
    running: Any  # 0-d float32 tensor: the losses summed since the last log row
    seconds: float = 0.0  # training seconds of earlier sessions (for progress and the plan; never tracked)


@dataclass
class Resumed:
    """A loaded checkpoint: the loop state, then what :func:`restore_rng` and the data order need."""

    state: LoopState
    sampler: dict  # the data order's state at the start of the position's epoch (see EpochOrder)
    rng: dict = field(default_factory=dict)
    rng_tensors: dict = field(default_factory=dict)


class EpochOrder:
    """Where an epoch's batch order comes from, so that a resumed run replays it.

    Shuffled batches (``make_train_loader``): the DataLoader's generator, consumed when an epoch's
    iterator starts; its state at that moment is saved. Length-grouped batches: a pure function of
    the seed and the epoch number (kdlab.batching), so the epoch alone is enough.
    """

    def __init__(self, loader):
        from kdlab.batching import LengthGroupedBatches

        grouped = loader.batch_sampler
        self.grouped = grouped if isinstance(grouped, LengthGroupedBatches) else None
        self.generator = None if self.grouped is not None else loader.generator

    def snapshot(self) -> dict:
        return {} if self.generator is None else {"generator": self.generator.get_state()}

    def restore(self, saved: dict) -> None:
        if self.generator is not None:
            self.generator.set_state(saved["generator"])

    def begin(self, epoch: int) -> dict:
        """Call right before the epoch's iterator starts; returns the state to save for this epoch."""
        if self.grouped is not None:
            self.grouped.epoch = epoch
        return self.snapshot()


# --------------------------------------------------------------------------- #
# RNG states
# --------------------------------------------------------------------------- #
def capture_rng() -> tuple[dict, dict]:
    """(JSON part, tensors) of the python, numpy, torch CPU and every CUDA device's RNG."""
    import torch

    version, words, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    plain = {"python": [version, list(words), gauss],
             "numpy": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"]),
                       "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])}}
    tensors = {"torch.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"torch.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return plain, tensors


def restore_rng(plain: dict, tensors: dict) -> None:
    import torch

    version, words, gauss = plain["python"]
    random.setstate((version, tuple(words), gauss))
    n = plain["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": np.asarray(n["key"], np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(tensors["torch.cpu"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("torch.cuda.")),
                                       key=lambda k: int(k.rsplit(".", 1)[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


# --------------------------------------------------------------------------- #
# Optimizer state without pickles
# --------------------------------------------------------------------------- #
def optimizer_parts(state_dict: dict) -> tuple[dict, dict]:
    """Split ``optimizer.state_dict()`` into tensors (``"<param>/<name>"``) and JSON (groups, scalars)."""
    import torch

    tensors, scalars = {}, {}
    for pid, entries in state_dict["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}/{name}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                scalars[f"{pid}/{name}"] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_state_dict(tensors: dict, plain: dict, current: dict) -> dict:
    """The inverse of :func:`optimizer_parts`; ``current`` (the fresh optimizer's state_dict) gives
    the types JSON cannot keep (AdamW's ``betas`` tuple)."""
    state: dict[int, dict] = {}
    for key, value in [*tensors.items(), *plain["scalars"].items()]:
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = []
    for saved, fresh in zip(plain["param_groups"], current["param_groups"], strict=True):
        groups.append({k: tuple(v) if isinstance(fresh.get(k), tuple) else v for k, v in saved.items()})
    return {"state": state, "param_groups": groups}


# --------------------------------------------------------------------------- #
# Fingerprints
# --------------------------------------------------------------------------- #
def _flat(prefix: str, value: Any) -> dict:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flat(f"{prefix}.{key}", item).items()}
    return {prefix: value}


def differences(saved: dict, current: dict) -> list[str]:
    """What differs between two fingerprints, e.g. ``params optim.learning_rate``, ``deps data/teacher``."""
    found = []
    for part in ("params", "deps"):
        old, new = (_flat(part, fp.get(part, {})) for fp in (saved, current))
        found += [f"{part} {key.split('.', 1)[1]}" for key in sorted(set(old) | set(new))
                  if old.get(key) != new.get(key)]
    if saved.get("cmd") != current.get("cmd"):
        found.append("cmd")
    return found


def environment(accelerator) -> dict:
    """What a resumed run must share with the one that saved (else the result would differ)."""
    return {"processes": accelerator.num_processes, "mixed_precision": str(accelerator.mixed_precision),
            "device": accelerator.device.type}


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #
def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj))  # NaN allowed: a diverging loss is reported after training


def _save_tensors(path: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def _read(path: Path, what: Callable[[Path], Any], folder: Path) -> Any:
    from safetensors import SafetensorError

    try:
        return what(path)
    except (OSError, ValueError, KeyError, SafetensorError) as exc:  # missing, truncated, another format
        raise CheckpointError(f"{path}: unreadable checkpoint file ({exc}); delete the checkpoint with "
                              f"`rm -r '{folder}'` and rerun (training then starts from step 0)") from None


def latest(folder: Path) -> Path | None:
    """The complete checkpoint in ``folder`` (None when there is none)."""
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    name = _read(pointer, lambda p: json.loads(p.read_text())["folder"], folder)
    return folder / name


def save(ck: Checkpointing, accelerator, model, optimizer, scheduler, state: LoopState, sampler: dict,
         seconds: float) -> Path:
    """Write a checkpoint of ``state`` (every process calls this at the same step); return its folder."""
    step_dir = ck.folder / f"step-{state.position.step:07d}"
    main = accelerator.is_main_process
    if main:
        if step_dir.exists() and step_dir != latest(ck.folder):
            shutil.rmtree(step_dir)  # an incomplete leftover of a killed run
        step_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    rank = accelerator.process_index
    plain, tensors = capture_rng()
    _save_tensors(step_dir / f"rank-{rank}.safetensors",
                  {**tensors, **{f"sampler.{k}": v for k, v in sampler.items()},
                   "running": state.running.detach().to("cpu", copy=True).reshape(())})
    _write_json(step_dir / f"rank-{rank}.json", plain)
    if main:
        unwrapped = accelerator.unwrap_model(model, keep_torch_compile=False)
        _save_tensors(step_dir / "model.safetensors", ck.model_state.save(unwrapped))
        opt_tensors, opt_plain = optimizer_parts(optimizer.state_dict())
        _save_tensors(step_dir / "optimizer.safetensors", opt_tensors)
        scaler = getattr(accelerator, "scaler", None)
        _write_json(step_dir / "state.json", {
            "format": FORMAT, "fingerprint": ck.fingerprint, "environment": environment(accelerator),
            "position": vars(state.position), "log_rows": state.log_rows, "seconds": state.seconds + seconds,
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
            "optimizer": opt_plain})
    accelerator.wait_for_everyone()
    if main:
        _write_json(ck.folder / LATEST, {"folder": step_dir.name})
        for old in ck.folder.glob("step-*"):
            if old != step_dir:
                shutil.rmtree(old, ignore_errors=True)
    return step_dir


def check(ck: Checkpointing, accelerator, step_dir: Path, saved: dict) -> None:
    """Refuse a checkpoint written for other inputs or another setup, saying what differs."""
    delete = f"delete it with `rm -r '{ck.folder}'` to start this stage from step 0"
    where = f"{ck.folder}: the checkpoint of step {saved.get('position', {}).get('step', '?')}"
    if saved.get("format") != FORMAT:
        raise CheckpointError(f"{where} has format {saved.get('format')!r}, this kdlab reads {FORMAT}; {delete}")
    changed = differences(saved["fingerprint"], ck.fingerprint)
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        raise CheckpointError(f"{where} was written for other inputs (differs in {shown}), so resuming it "
                              f"would mix two configurations; {delete}, or restore the inputs it was made with")
    now = environment(accelerator)
    if saved["environment"] != now:
        raise CheckpointError(f"{where} was written with {saved['environment']}, this run has {now}; resume on "
                              f"the same kind of device with the same number of processes, or {delete}")


def load(ck: Checkpointing, accelerator, model, optimizer, scheduler) -> Resumed | None:
    """Load the checkpoint in ``ck.folder`` into the prepared model, optimizer and scheduler; None if
    there is none. Call after ``accelerator.prepare`` (optimizer state goes to the parameters' device)."""
    from safetensors.torch import load_file

    step_dir = latest(ck.folder)
    if step_dir is None:
        return None
    saved = _read(step_dir / "state.json", lambda p: json.loads(p.read_text()), ck.folder)
    check(ck, accelerator, step_dir, saved)
    rank = accelerator.process_index
    own = _read(step_dir / f"rank-{rank}.safetensors", lambda p: load_file(str(p)), ck.folder)
    ck.model_state.load(accelerator.unwrap_model(model, keep_torch_compile=False),
                        _read(step_dir / "model.safetensors", lambda p: load_file(str(p)), ck.folder))
    opt_tensors = _read(step_dir / "optimizer.safetensors", lambda p: load_file(str(p)), ck.folder)
    optimizer.load_state_dict(optimizer_state_dict(opt_tensors, saved["optimizer"], optimizer.state_dict()))
    scheduler.load_state_dict(saved["scheduler"])
    if saved["scaler"] is not None:
        accelerator.scaler.load_state_dict(saved["scaler"])
    state = LoopState(Position(**saved["position"]), saved["log_rows"], own["running"], saved["seconds"])
    return Resumed(state=state, sampler={k.split(".", 1)[1]: v for k, v in own.items() if k.startswith("sampler.")},
                   rng=_read(step_dir / f"rank-{rank}.json", lambda p: json.loads(p.read_text()), ck.folder),
                   rng_tensors={k: v for k, v in own.items() if k.startswith("torch.")})


def remove(folder: Path) -> None:
    """Delete a stage's checkpoints once its outputs are written (and the root when it is empty)."""
    if folder.exists():
        shutil.rmtree(folder)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()
