"""The one training loop every arm (and a teacher kdlab trains) goes through.

Speed rules from the T4 recipe: texts are tokenised once, each batch is padded
to its own longest sequence, teacher logits live on the device as one tensor
indexed by row, losses are summed on the device and read back only every
``log_every`` steps. ``accelerate`` handles devices, fp16/bf16 autocast and
(multi-GPU) data sharding, so the same code runs on a T4, a laptop CPU or
several GPUs.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kdlab import checkpoint
from kdlab.batching import LengthGroupedBatches
from kdlab.checkpoint import Checkpointing, EpochOrder, LoopState, Position
from kdlab.config import OptimConfig
from kdlab.errors import KdlabError
from kdlab.io import atomic_path
from kdlab.progress import PROGRESS_SECONDS, Progress
from kdlab.signals import TrainingStopped, stop_signals

LossFn = Callable[..., "object"]  # (student_logits, teacher_logits | None, labels) -> scalar tensor


@dataclass(frozen=True)
class TrainSummary:
    """What a training run did: ``record`` is a function of the inputs (steps, precision, processes,
    final loss) and goes into tracked outputs; ``run_facts`` (wall-clock seconds, device) does not."""

    record: dict
    run_facts: dict


@dataclass(frozen=True)
class Encoded:
    """A tokenised split: ragged token ids (no padding), labels and teacher rows."""

    input_ids: list[np.ndarray]
    labels: np.ndarray  # (N,) int64
    teacher_rows: np.ndarray  # (N,) int64 index into the teacher logits; -1 when none

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        """Tokens per row (special tokens included), shape (N,) int64."""
        return np.fromiter((len(x) for x in self.input_ids), np.int64, len(self.input_ids))


def encode(texts: Sequence[str], labels: np.ndarray, tokenizer, max_length: int,
           teacher_rows: np.ndarray | None = None) -> Encoded:
    """Tokenise once, truncating to ``max_length`` tokens (special tokens included)."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)["input_ids"]
    rows = np.full(len(ids), -1, np.int64) if teacher_rows is None else np.asarray(teacher_rows, np.int64)
    return Encoded([np.asarray(x, np.int64) for x in ids], np.asarray(labels, np.int64), rows)


class _Rows:
    """Map-style dataset over an :class:`Encoded` split (returns positions only)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def make_collate(encoded: Encoded, pad_id: int):
    """Collate positions into a batch padded to the batch's longest sequence."""
    import torch

    def collate(positions: list[int]) -> dict:
        seqs = [encoded.input_ids[i] for i in positions]
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), pad_id, np.int64)
        mask = np.zeros((len(seqs), width), np.int64)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = s
            mask[r, : len(s)] = 1
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(encoded.labels[positions]),
            "teacher_rows": torch.from_numpy(encoded.teacher_rows[positions]),
        }

    return collate


def resolve_precision(optim: OptimConfig) -> str:
    """accelerate's ``mixed_precision``: bf16 where supported, fp16 on other GPUs (a T4), none on CPU."""
    import torch

    if optim.precision != "auto":
        return {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}[optim.precision]
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _quiet_bar(accelerator) -> bool | None:
    """tqdm's ``disable``: off on non-main processes; None lets tqdm hide it when not on a terminal."""
    return True if not accelerator.is_local_main_process else None


def make_accelerator(optim: OptimConfig):
    """One ``accelerate.Accelerator`` per process, shared by training and prediction."""
    import torch
    from accelerate import Accelerator

    if optim.num_threads:
        torch.set_num_threads(optim.num_threads)
    return Accelerator(mixed_precision=resolve_precision(optim), cpu=not torch.cuda.is_available())


def make_train_loader(train: Encoded, batch_size: int, pad_id: int, seed: int, length_grouped: bool = False):
    """Shuffled batches padded per batch; the order depends only on ``seed`` and the rows.

    ``length_grouped`` swaps the uniform shuffle for :class:`LengthGroupedBatches`.
    """
    import torch
    from torch.utils.data import DataLoader

    collate = make_collate(train, pad_id)
    if length_grouped:
        return DataLoader(_Rows(len(train)), collate_fn=collate,
                          batch_sampler=LengthGroupedBatches(train.lengths(), batch_size, seed))
    return DataLoader(_Rows(len(train)), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed), collate_fn=collate)


def make_optimizer(model, optim: OptimConfig, fused: bool = False):
    """AdamW at ``optim.learning_rate`` over the trainable parameters; no weight decay on biases and norms.

    ``fused=True`` selects PyTorch's single-kernel AdamW (CUDA and CPU): the
    same update, rounded differently, so it is opt-in.
    """
    import torch

    no_decay = ("bias", "norm", "LayerNorm")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # a LoRA teacher's base is frozen
    groups = [
        {"params": [p for n, p in trainable if not any(k in n for k in no_decay)], "weight_decay": optim.weight_decay},
        {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=optim.learning_rate, **({"fused": True} if fused else {}))


def training_step(accelerator, model, optimizer, scheduler, batch: dict, loss_fn: LossFn,
                  teacher=None, max_grad_norm: float = 0.0):
    """One optimiser step on ``batch``; returns the loss as a detached 0-d device tensor.

    The forward pass runs under accelerate's autocast, the loss in fp32;
    nothing here waits for the device (no ``.item()``), so the caller decides
    when to read losses back. ``teacher`` (N_teacher, C) on the device or None.
    """
    with accelerator.autocast():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    t_logits = teacher[batch["teacher_rows"]] if teacher is not None else None
    loss = loss_fn(logits.float(), t_logits, batch["labels"])  # the loss itself in fp32
    accelerator.backward(loss)
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def train_classifier(
    accelerator,
    model,
    train: Encoded,
    optim: OptimConfig,
    loss_fn: LossFn,
    pad_id: int,
    seed: int,
    teacher_logits: np.ndarray | None = None,
    log_path: str | Path | None = None,
    desc: str = "train",
    fused_adamw: bool = False,
    compile_model: bool = False,
    length_grouped: bool = False,
    checkpointing: Checkpointing | None = None,
    progress_seconds: float = PROGRESS_SECONDS,
) -> tuple[TrainSummary, object]:
    """Fine-tune ``model``; return (:class:`TrainSummary`, the unwrapped trained model).

    The data order depends only on ``seed`` and the training rows, so arms that
    share data see identical batches. ``teacher_logits`` (N_teacher, C) are
    moved to the device once and indexed by ``train.teacher_rows`` per batch.
    Writes a per-step CSV log (step, epoch, loss, lr) to ``log_path``.

    ``checkpointing`` (kdlab.checkpoint): save every ``checkpointing.every`` steps,
    at each epoch end and on SIGTERM/SIGINT (then stop with :class:`TrainingStopped`),
    and start from the checkpoint in its folder if there is one; the result is
    bit for bit the uninterrupted run's. Without a terminal, a progress line at
    least every ``progress_seconds`` (kdlab.progress).

    Speed options, all off by default (off is the paper recipe and today's
    bit-for-bit behaviour; ``benchmarks/train_throughput.py`` measures each):
    ``fused_adamw`` uses PyTorch's fused AdamW kernel (same maths, different
    rounding); ``compile_model`` wraps the model in ``torch.compile``;
    ``length_grouped`` batches texts of similar length (:class:`LengthGroupedBatches`),
    which changes every batch's composition, so use it for every arm or none.
    """
    import torch
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    set_seed(seed)
    loader = make_train_loader(train, optim.batch_size, pad_id, seed, length_grouped)
    order = EpochOrder(loader)
    optimizer = make_optimizer(model, optim, fused=fused_adamw)
    schedule_steps = optim.epochs * len(loader)  # the whole data per epoch, however many processes share it
    scheduler = get_linear_schedule_with_warmup(optimizer, int(optim.warmup_ratio * schedule_steps), schedule_steps)
    if compile_model:
        model = torch.compile(model)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    per_epoch = len(loader)  # batches per process
    total_steps = optim.epochs * per_epoch
    teacher = None
    if teacher_logits is not None:
        teacher = torch.as_tensor(np.asarray(teacher_logits, np.float32), device=accelerator.device)

    resumed = checkpoint.load(checkpointing, accelerator, model, optimizer, scheduler) if checkpointing else None
    state = resumed.state if resumed else LoopState(Position(0, 0, 0), [], torch.zeros(()))
    state.running = state.running.to(accelerator.device)
    start = state.position
    progress = Progress(desc, total_steps, start.step, Progress.for_stream(), accelerator.is_main_process,
                        progress_seconds)
    progress.say(_start_line(desc, optim, per_epoch, total_steps, accelerator, checkpointing, resumed))

    def save(position: Position, sampler: dict) -> None:
        if checkpointing is not None:
            state.position = position
            folder = checkpoint.save(checkpointing, accelerator, model, optimizer, scheduler, state, sampler,
                                     progress.seconds())
            progress.say(f"{desc}: checkpoint at step {position.step:,}/{total_steps:,} -> {folder}")

    model.train()
    bar = tqdm(total=total_steps, initial=start.step, desc=desc, disable=_quiet_bar(accelerator))
    step = start.step
    with stop_signals(enabled=checkpointing is not None) as stop:
        for epoch in range(start.epoch, optim.epochs):
            if resumed is not None and epoch == start.epoch:
                order.restore(resumed.sampler)
            epoch_start = order.begin(epoch)
            batches = iter(loader)
            skip = start.batch if resumed is not None and epoch == start.epoch else 0
            for _ in range(skip):  # the batches the checkpoint had trained on, replayed without training
                next(batches)
            if resumed is not None and epoch == start.epoch:
                checkpoint.restore_rng(resumed.rng, resumed.rng_tensors)
            for done, batch in enumerate(batches, start=skip + 1):
                state.running += training_step(accelerator, model, optimizer, scheduler, batch, loss_fn, teacher,
                                               optim.max_grad_norm)
                step += 1
                bar.update(1)
                progress.count(batch["labels"].shape[0] * accelerator.num_processes)
                if step % optim.log_every == 0 or step == total_steps:
                    window = optim.log_every if step % optim.log_every == 0 else step % optim.log_every
                    mean_loss = float(state.running) / window  # one device sync per log window
                    state.running.zero_()
                    state.log_rows.append({"step": step, "epoch": round(step / per_epoch, 4),
                                           "loss": round(mean_loss, 6), "lr": scheduler.get_last_lr()[0]})
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    progress.logged(step, mean_loss)
                if done < per_epoch:
                    every = checkpointing.every if checkpointing else 0
                    if every and step % every == 0:
                        save(Position(epoch, done, step), epoch_start)
                    if stop.requested(accelerator):
                        if state.position.step != step:
                            save(Position(epoch, done, step), epoch_start)
                        raise _stopped(desc, stop, step, total_steps, checkpointing)
            save(Position(epoch + 1, 0, step), order.snapshot())
            if stop.requested(accelerator):
                raise _stopped(desc, stop, step, total_steps, checkpointing)
    if resumed is not None and start.epoch >= optim.epochs:
        checkpoint.restore_rng(resumed.rng, resumed.rng_tensors)  # saved after the last epoch: nothing to replay
    bar.close()
    seconds = progress.seconds()
    if log_path is not None and accelerator.is_main_process:
        write_log(log_path, state.log_rows)
    log_rows = state.log_rows
    if not log_rows or not math.isfinite(log_rows[-1]["loss"]):
        raise KdlabError(f"{desc}: training diverged (final loss {log_rows[-1]['loss'] if log_rows else 'none'}); "
                         "lower optim.learning_rate")
    trained_steps = step - start.step
    summary = TrainSummary(
        record={"steps": step, "precision": accelerator.mixed_precision, "final_loss": log_rows[-1]["loss"],
                "processes": accelerator.num_processes},
        run_facts={"seconds": round(seconds, 2), "device": str(accelerator.device), "device_name": device_name(),
                   "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                   "steps": trained_steps, "examples": progress.examples,
                   "examples_per_s": round(progress.examples / seconds, 2) if trained_steps else None,
                   "resumed_from_step": start.step if resumed is not None else None,
                   "seconds_all_sessions": round(state.seconds + seconds, 2)})
    return summary, accelerator.unwrap_model(model, keep_torch_compile=False)


def _start_line(desc: str, optim: OptimConfig, per_epoch: int, total_steps: int, accelerator, checkpointing,
                resumed) -> str:
    line = (f"{desc}: {total_steps:,} steps ({optim.epochs} epochs x {per_epoch:,} batches of {optim.batch_size}"
            + (f" on each of {accelerator.num_processes} processes" if accelerator.num_processes > 1 else "")
            + f") on {device_name()}")
    if resumed is not None:
        p = resumed.state.position
        return line + (f"; resuming at step {p.step:,} (epoch {p.epoch + 1}, batch {p.batch:,}) "
                       f"from {checkpointing.folder}")
    if checkpointing is None:
        return line + "; no resume checkpoints (no dvc.yaml stage to fingerprint)"
    every = f"every {checkpointing.every:,} steps, " if checkpointing.every else ""
    return line + f"; checkpoints {every}at epoch ends and on SIGTERM/SIGINT in {checkpointing.folder}"


def _stopped(desc: str, stop, step: int, total_steps: int, checkpointing: Checkpointing) -> TrainingStopped:
    return TrainingStopped(f"{desc}: stopped by {stop.signal or 'a signal to another process'} at step {step:,} of "
                           f"{total_steps:,}; the checkpoint in {checkpointing.folder} resumes it: run the same "
                           "command again (`dvc repro`)")


def device_name() -> str:
    """The GPU's name (``Tesla T4``), or ``cpu``: what the plan matches earlier runs' speed on."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def predict_logits(accelerator, model, split: Encoded, batch_size: int, pad_id: int,
                   desc: str = "predict") -> np.ndarray:
    """Raw logits (N, C) float32 for ``split`` in its row order."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    # Longest-first batches pad least; the original order is restored afterwards.
    order = np.argsort([-len(x) for x in split.input_ids], kind="stable")
    loader = DataLoader(order.tolist(), batch_size=batch_size, shuffle=False, collate_fn=make_collate(split, pad_id))
    model, loader = accelerator.prepare(model, loader)
    model.eval()
    outputs = []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=desc, disable=_quiet_bar(accelerator)):
            with accelerator.autocast():
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            outputs.append(accelerator.gather_for_metrics(logits.float()).cpu().numpy())
    sorted_logits = np.concatenate(outputs)
    logits = np.empty_like(sorted_logits)
    logits[order] = sorted_logits
    return logits


def write_log(path: str | Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", "epoch", "loss", "lr"])
            writer.writeheader()
            writer.writerows(rows)


def save_checkpoint(model, folder: str | Path) -> None:
    """``model.safetensors`` + ``config.json`` in ``folder``, each written atomically."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unwrapped = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    with atomic_path(folder / "model.safetensors") as tmp:
        save_model(unwrapped, str(tmp), metadata={"format": "pt"})  # the tag from_pretrained expects
    with atomic_path(folder / "config.json") as tmp:
        tmp.write_text(unwrapped.config.to_json_string())
