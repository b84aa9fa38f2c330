"""Training throughput on ModernBERT-base's shapes: kdlab's training step vs a naive loop, side by side.

    python benchmarks/train_throughput.py                       # CUDA if visible, else CPU; 20 timed steps per arm
    python benchmarks/train_throughput.py --variants            # also each speed option on its own
    python benchmarks/train_throughput.py --device cpu --batch-size 4 --steps 3 --warmup 1
    python benchmarks/train_throughput.py --tiny --steps 3      # a tiny ModernBERT: seconds on a CPU (the test)

Model: ModernBERT-base built from its configuration with random weights (no
download: a step's cost does not depend on the weights' values). The shapes
are those of answerdotai/ModernBERT-base's config.json, which are also the
defaults of transformers' ``ModernBertConfig`` ("a similar configuration to that
of ModernBERT-base", https://huggingface.co/docs/transformers/model_doc/modernbert):
22 layers, hidden 768, intermediate 1152 (GeGLU), 12 heads, vocabulary 50,368,
full (global) attention in every third layer and a 128-token sliding window in
the others, RoPE theta 160,000 / 10,000, special ids 50281-50283; a 113-class head.

Data: random token ids with the length profile of the CFPB narratives (median
~137 words, ~65 % reach the 128-token limit): lengths are log-normal with a
median of 137 x 1.3 tokens per word (+ [CLS], [SEP]) and the spread that puts
65 % at or over 128 tokens, then truncated at 128. So per-batch padding alone
saves little on real data: almost every batch of 32 holds a text of 128 tokens.

Arms (each a fresh model with the same seed):
  naive  every batch padded to max_length, fp32, ``loss.item()`` after every step,
         torch's default AdamW on all parameters
  kdlab  kdlab.train's own loader (``make_train_loader``: per-batch padding), optimizer
         (``make_optimizer``) and ``training_step`` (accelerate's autocast: --precision,
         auto = bf16/fp16 on CUDA, fp32 on CPU), the loss read back every ``log_every`` steps
Both use the `kd` arm's loss (T 4, alpha 0.7) on teacher logits held on the
device, gradient clipping at 1.0 and the linear schedule. ``--variants`` adds
kdlab with each speed option on its own: fused AdamW, length-grouped batches
(opt-in: changes batch composition), eager attention instead of SDPA,
torch.compile (on CUDA; on a CPU compiling takes minutes, so measure it with
--compile), and the other autocast precisions the device supports.

Printed per arm: examples/s; tokens/s computed (padding included) and real; TFLOP/s = 6 x
non-embedding parameters x computed tokens/s; projected minutes per arm (79,278 rows x 3 epochs)
and per study (16 trainings: 10 arms + 6 sweep cells) on this device; the ratio to naive.
--eval-rows also times prediction. How to record GPU figures: docs/speed.md.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import sys
import time
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
import torch

from kdlab.config import ArmConfig, OptimConfig
from kdlab.losses import make_loss_fn
from kdlab.train import (Encoded, make_optimizer, make_train_loader, predict_logits, resolve_precision,
                         training_step)

N_CLASSES = 113
TRAIN_ROWS, EPOCHS, TRAININGS = 79_278, 3, 16  # train + test rows; 10 arms + 6 sweep cells
VAL_ROWS = 6_430
ARM_WIDTH = 52  # the printed table's first column
MEDIAN_WORDS, SHARE_AT_MAX, TOKENS_PER_WORD = 137, 0.65, 1.3

MODERNBERT_BASE = dict(
    vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22, num_attention_heads=12,
    global_attn_every_n_layers=3, local_attention=128, global_rope_theta=160000.0, local_rope_theta=10000.0,
    max_position_embeddings=8192, pad_token_id=50283, cls_token_id=50281, sep_token_id=50282,
    bos_token_id=50281, eos_token_id=50282,
)
TINY = dict(
    vocab_size=512, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=2,
    global_attn_every_n_layers=3, local_attention=64, max_position_embeddings=512,
    pad_token_id=0, cls_token_id=1, sep_token_id=2, bos_token_id=1, eos_token_id=2,
)


@dataclass(frozen=True)
class Recipe:
    """What one kdlab arm of the benchmark runs with."""

    label: str
    precision: str  # accelerate's mixed_precision: no | fp16 | bf16
    attn: str = "sdpa"
    fused_adamw: bool = False
    compile_model: bool = False
    length_grouped: bool = False


def length_profile(n: int, max_length: int, seed: int) -> np.ndarray:
    """Token counts (N,) with [CLS]/[SEP], truncated at ``max_length``: see the module docstring."""
    median = MEDIAN_WORDS * TOKENS_PER_WORD + 2
    sigma = (math.log(max_length) - math.log(median)) / NormalDist().inv_cdf(1 - SHARE_AT_MAX)
    raw = np.exp(np.random.default_rng(seed).normal(math.log(median), sigma, n))
    return np.clip(np.ceil(raw), 3, max_length).astype(np.int64)


def synthetic_split(n: int, max_length: int, shape: dict, seed: int) -> tuple[Encoded, np.ndarray]:
    """Random token ids with the length profile, random labels, and (n, 113) teacher logits."""
    rng = np.random.default_rng(seed + 1)
    ids = [rng.integers(5, shape["vocab_size"] - 5, length) for length in length_profile(n, max_length, seed)]
    for row in ids:
        row[0], row[-1] = shape["cls_token_id"], shape["sep_token_id"]
    teacher = rng.normal(0, 2, (n, N_CLASSES)).astype(np.float32)
    return Encoded(ids, rng.integers(0, N_CLASSES, n), np.arange(n, dtype=np.int64)), teacher


def build_model(shape: dict, attn: str, seed: int):
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    torch.manual_seed(seed)
    config = ModernBertConfig(**shape, num_labels=N_CLASSES, attn_implementation=attn)
    return ModernBertForSequenceClassification(config)


def non_embedding_parameters(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    torch.cuda.empty_cache() if device.type == "cuda" else None


class Meter:
    """Times ``steps`` calls after ``warmup`` untimed ones; counts examples and tokens on the device."""

    def __init__(self, device: torch.device, warmup: int, steps: int):
        self.device, self.warmup, self.steps = device, warmup, steps
        self.computed = 0  # batch width x rows: what the device computed
        self.real = torch.zeros((), dtype=torch.int64, device=device)  # non-padding tokens (read at the end)
        self.examples, self.seconds, self.started = 0, 0.0, None

    def before(self, i: int) -> None:
        if i == self.warmup:
            sync(self.device)
            self.started = time.perf_counter()

    def after(self, i: int, mask: torch.Tensor) -> None:
        if i >= self.warmup:
            self.computed += mask.numel()
            self.examples += mask.shape[0]
            self.real += mask.sum()
        if i == self.warmup + self.steps - 1:
            sync(self.device)
            self.seconds = time.perf_counter() - self.started

    def record(self, label: str, n_params: int) -> dict:
        s = self.seconds
        ex_s = self.examples / s
        return {"arm": label, "examples_per_s": ex_s, "tokens_per_s": self.computed / s,
                "real_tokens_per_s": int(self.real) / s, "tflops": 6 * n_params * self.computed / s / 1e12,
                "minutes_per_arm": TRAIN_ROWS * EPOCHS / ex_s / 60,
                "minutes_study": TRAININGS * TRAIN_ROWS * EPOCHS / ex_s / 60,
                "seconds": s, "steps": self.steps}


def run_naive(shape, split, teacher_np, args, device, optim) -> tuple[dict, int]:
    """Pad to max_length, fp32, read the loss back after every step."""
    from transformers import get_linear_schedule_with_warmup

    model = build_model(shape, args.attn, args.seed).to(device)
    n_params = non_embedding_parameters(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.learning_rate, weight_decay=optim.weight_decay)
    total = args.warmup + args.steps
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, total)
    loss_fn = make_loss_fn(ArmConfig(name="kd", loss="kd"))
    teacher = torch.as_tensor(teacher_np, device=device)
    order = np.random.default_rng(args.seed).permutation(len(split))
    meter, losses = Meter(device, args.warmup, args.steps), []
    model.train()
    for i in range(total):
        meter.before(i)
        rows = order[i * args.batch_size:(i + 1) * args.batch_size]
        ids = np.full((len(rows), args.max_length), shape["pad_token_id"], np.int64)
        mask = np.zeros_like(ids)
        for r, row in enumerate(rows):
            seq = split.input_ids[row]
            ids[r, :len(seq)], mask[r, :len(seq)] = seq, 1
        ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
        logits = model(input_ids=ids_t, attention_mask=mask_t).logits
        loss = loss_fn(logits, teacher[torch.from_numpy(rows).to(device)],
                       torch.from_numpy(split.labels[rows]).to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        meter.after(i, mask_t)
    label = f"naive: pad to {args.max_length}, fp32, .item() per step"
    record = meter.record(label, n_params)
    record["final_loss"] = losses[-1]
    del model, optimizer
    free(device)
    return record, n_params


def run_kdlab(shape, split, teacher_np, args, device, optim, recipe: Recipe, eval_split=None) -> dict:
    """kdlab.train's loader, optimizer and training step under accelerate."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from transformers import get_linear_schedule_with_warmup

    # One Accelerator per process is accelerate's rule; the benchmark builds one per arm (private API)
    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(mixed_precision=recipe.precision, cpu=device.type == "cpu")
    model = build_model(shape, recipe.attn, args.seed)
    n_params = non_embedding_parameters(model)
    loader = make_train_loader(split, args.batch_size, shape["pad_token_id"], args.seed, recipe.length_grouped)
    optimizer = make_optimizer(model, optim, fused=recipe.fused_adamw)
    total = args.warmup + args.steps
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, total)
    if recipe.compile_model:
        model = torch.compile(model)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    loss_fn = make_loss_fn(ArmConfig(name="kd", loss="kd"))
    teacher = torch.as_tensor(teacher_np, device=accelerator.device)
    meter = Meter(accelerator.device, args.warmup, args.steps)
    running, read = torch.zeros((), device=accelerator.device), []
    model.train()
    batches = iter(loader)
    for i in range(total):
        meter.before(i)
        batch = next(batches)
        running += training_step(accelerator, model, optimizer, scheduler, batch, loss_fn, teacher,
                                 optim.max_grad_norm)
        if (i + 1) % optim.log_every == 0 or i == total - 1:
            read.append(float(running))  # the loop's one device sync per log window
            running.zero_()
        meter.after(i, batch["attention_mask"])
    record = meter.record(recipe.label, n_params)
    record["final_loss_window"] = read[-1]
    if eval_split is not None:
        record["eval"] = time_prediction(accelerator, model, eval_split, shape, args)
    del model, optimizer, loader
    free(device)
    return record


def time_prediction(accelerator, model, split: Encoded, shape: dict, args) -> list[dict]:
    """kdlab.train.predict_logits over ``split`` at each eval batch size: rows/s and val-split seconds."""
    out = []
    for size in args.eval_batch_sizes:
        predict_logits(accelerator, model, Encoded(split.input_ids[:size], split.labels[:size],
                                                   split.teacher_rows[:size]), size, shape["pad_token_id"])
        sync(accelerator.device)
        started = time.perf_counter()
        predict_logits(accelerator, model, split, size, shape["pad_token_id"])
        sync(accelerator.device)
        seconds = time.perf_counter() - started
        out.append({"eval_batch_size": size, "rows_per_s": len(split) / seconds,
                    "val_seconds": VAL_ROWS * seconds / len(split)})
    return out


def autocast_precision(requested: str, device: torch.device) -> str:
    """accelerate's mixed_precision for --precision, as the study resolves it (auto on a CPU: none)."""
    if requested == "auto" and device.type != "cuda":
        return "no"  # kdlab.train.resolve_precision looks at the machine, not at --device
    return resolve_precision(OptimConfig(precision=requested))


def recipes(args, device) -> list[Recipe]:
    precision = autocast_precision(args.precision, device)
    shown = {"no": "fp32", "fp16": "fp16 autocast", "bf16": "bf16 autocast"}
    base = Recipe(f"kdlab: per-batch pad, {shown[precision]}, read every {args.log_every}", precision,
                  args.attn, args.fused_adamw, args.compile, args.length_grouped)
    out = [base]
    if not args.variants:
        return out
    if not base.fused_adamw:
        out.append(replace(base, label="kdlab + fused AdamW", fused_adamw=True))
    if not base.length_grouped:
        out.append(replace(base, label="kdlab + length-grouped batches (opt-in)", length_grouped=True))
    other_attn = "eager" if base.attn == "sdpa" else "sdpa"
    out.append(replace(base, label=f"kdlab with {other_attn} attention", attn=other_attn))
    if not base.compile_model and device.type == "cuda":  # on a CPU compiling takes minutes: use --compile
        out.append(replace(base, label="kdlab + torch.compile", compile_model=True))
    candidates = ["no", "fp16", "bf16"] if device.type == "cuda" else ["no", "bf16"]
    for p in candidates:
        if p != precision and (p != "bf16" or device.type != "cuda" or torch.cuda.is_bf16_supported()):
            out.append(replace(base, label=f"kdlab with {shown[p]}", precision=p))
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() says only "x86_64"
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {torch.get_num_threads()} threads"


def print_table(records: list[dict], naive: dict) -> None:
    head = (f"{'arm':<{ARM_WIDTH}} {'examples/s':>10} {'tokens/s':>10} {'real tok/s':>10} {'TFLOP/s':>8} "
            f"{'min/arm':>9} {'min/study':>10} {'vs naive':>8}")
    print(f"\n{head}\n{'-' * len(head)}")
    for r in records:
        print(f"{r['arm']:<{ARM_WIDTH}} {r['examples_per_s']:>10.2f} {r['tokens_per_s']:>10.0f} {r['real_tokens_per_s']:>10.0f} "
              f"{r['tflops']:>8.3f} {r['minutes_per_arm']:>9.1f} {r['minutes_study']:>10.1f} "
              f"{r['examples_per_s'] / naive['examples_per_s']:>7.2f}x")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per arm (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch (the recipe's 32)")
    parser.add_argument("--max-length", type=int, default=128, help="token limit (the recipe's 128)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto",
                        help="kdlab arm's autocast (auto: bf16 where the GPU has it, else fp16; fp32 on CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the kdlab arm's model")
    parser.add_argument("--fused-adamw", action="store_true", help="fused AdamW in the kdlab arm")
    parser.add_argument("--length-grouped", action="store_true", help="length-grouped batches in the kdlab arm")
    parser.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa",
                        help="attention implementation (sdpa: transformers' default for ModernBERT)")
    parser.add_argument("--variants", action="store_true", help="also time kdlab with each speed option alone")
    parser.add_argument("--eval-rows", type=int, default=0, help="time prediction on this many rows (0: skip)")
    parser.add_argument("--eval-batch-sizes", default="128,512", help="comma-separated eval batch sizes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--tiny", action="store_true", help="a tiny ModernBERT (3 layers, hidden 32): for tests")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", default=None, help="also write the records to this JSON file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error(f"--steps must be >= 1, --warmup >= 0 and --batch-size >= 1; found {args.steps}, "
                     f"{args.warmup}, {args.batch_size}")
    args.eval_batch_sizes = [int(x) for x in args.eval_batch_sizes.split(",") if x]
    args.log_every = OptimConfig().log_every
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is visible; use --device cpu", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    shape = TINY if args.tiny else MODERNBERT_BASE
    optim = OptimConfig(batch_size=args.batch_size, require_gpu=False)

    # a pool of at least 50 batches, so length grouping works on groups of realistic size
    n_rows = max((args.warmup + args.steps) * args.batch_size, 50 * args.batch_size)
    split, teacher = synthetic_split(n_rows, args.max_length, shape, args.seed)
    eval_split = synthetic_split(args.eval_rows, args.max_length, shape, args.seed + 7)[0] if args.eval_rows else None
    lengths = split.lengths()
    batch_widths = [lengths[i:i + args.batch_size].max() for i in range(0, len(lengths), args.batch_size)]

    import transformers
    print(f"kdlab training throughput: {'a TINY ModernBERT' if args.tiny else 'ModernBERT-base shapes'} "
          f"(random weights), {N_CLASSES} classes")
    print(f"device: {device.type} ({device_name(device)}) | torch {torch.__version__} | "
          f"transformers {transformers.__version__}")
    print(f"length profile: {n_rows} rows, {np.mean(lengths >= args.max_length):.1%} at {args.max_length} tokens, "
          f"mean {lengths.mean():.1f} tokens; per-batch padding computes "
          f"{np.mean(batch_widths) / args.max_length:.1%} of the tokens of padding to {args.max_length}")
    print(f"steps: {args.steps} timed (+{args.warmup} warm-up) per arm, batch {args.batch_size}; projections: "
          f"{TRAIN_ROWS:,} rows x {EPOCHS} epochs per arm, {TRAININGS} trainings per study")
    if device.type != "cuda":
        print("GPU figures: NOT MEASURED - this run is on a CPU; run it on a CUDA machine to record them")

    naive, n_params = run_naive(shape, split, teacher, args, device, optim)
    print(f"model: {n_params:,} non-embedding parameters; attention {args.attn}")
    records = [naive]
    for i, recipe in enumerate(recipes(args, device)):
        records.append(run_kdlab(shape, split, teacher, args, device, optim, recipe,
                                 eval_split if i == 0 else None))
    print_table(records, naive)
    kdlab = records[1]
    print(f"\nratio kdlab/naive (examples/s): {kdlab['examples_per_s'] / naive['examples_per_s']:.2f}")
    for e in kdlab.get("eval", []):
        print(f"prediction, eval batch {e['eval_batch_size']}: {e['rows_per_s']:.1f} rows/s, "
              f"{e['val_seconds']:.1f} s for the {VAL_ROWS:,} val rows")
    if args.json:
        from kdlab.io import write_json

        write_json(args.json, {"device": device.type, "device_name": device_name(device), "tiny": args.tiny,
                               "batch_size": args.batch_size, "steps": args.steps,
                               "non_embedding_parameters": n_params, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
