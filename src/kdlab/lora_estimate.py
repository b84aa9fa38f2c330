"""What a LoRA teacher costs, from the base's shape alone: parameters, weight memory, LoRA size, time.

Pure arithmetic (no torch), so the README table can be regenerated anywhere:
``python -m kdlab.lora_estimate``. Parameter counts are exact for
Qwen3ForSequenceClassification (tests check them against the model built on
the meta device); memory and time are estimates with the assumptions stated
in :data:`ASSUMPTIONS`.

Shapes come from each checkpoint's config.json on the Hub (Qwen/Qwen3-0.6B,
-1.7B, -32B); their totals reproduce the model cards' "Number of Parameters"
and "(Non-Embedding)" figures (0.6B/0.44B, 1.7B/1.4B, 32.8B/31.2B).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from kdlab.teacher_config import QWEN3_LINEAR_MODULES

GIB = 2**30
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # NF4 + double-quantised absmax (8-bit per 64, fp32 per 256 blocks)
ADAM_BYTES = 16  # per trainable parameter: fp32 weight, fp32 grad, two fp32 AdamW moments
ASSUMPTIONS = (
    "Weights: bf16/fp16 = 2 bytes per parameter; 4-bit = bitsandbytes NF4 with double quantisation "
    f"({NF4_BITS:.3f} bits) for every decoder Linear, the rest (embeddings, norms, head) upcast to fp32 by "
    "peft's prepare_model_for_kbit_training. Training adds 16 bytes per trainable parameter (AdamW), "
    "activations with gradient checkpointing (one hidden state per layer plus one layer's working set) "
    "and ~1 GiB of CUDA context. Time: 6 x (matmul parameters) FLOPs per token with checkpointing "
    "(forward, recomputed forward, backward to the activations; no weight gradients for the frozen base), "
    "2 per token to predict, at an assumed model-FLOPs utilisation of the GPU's dense peak; "
    "sequences at the 128-token cap (an upper bound)."
)


@dataclass(frozen=True)
class Qwen3Shape:
    """The architecture numbers of a Qwen3 checkpoint (its config.json)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool


QWEN3 = {  # config.json of each repository at the revisions pinned in conf/teacher
    "Qwen/Qwen3-0.6B": Qwen3Shape(1024, 3072, 28, 16, 8, 128, 151936, True),
    "Qwen/Qwen3-1.7B": Qwen3Shape(2048, 6144, 28, 16, 8, 128, 151936, True),
    "Qwen/Qwen3-32B": Qwen3Shape(5120, 25600, 64, 64, 8, 128, 151936, False),
}


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float  # usable device memory
    dense_tflops: float  # vendor dense peak at the precision used (fp16 on a T4, bf16 elsewhere)
    precision: str


GPUS = (
    Gpu("T4 16 GB", 15.0, 65.0, "fp16"),
    Gpu("L4 24 GB", 22.0, 121.0, "bf16"),
    Gpu("A100 80 GB", 79.0, 312.0, "bf16"),
    Gpu("H100 80 GB SXM", 79.0, 989.0, "bf16"),
)


def linear_shapes(shape: Qwen3Shape) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each Linear in one decoder layer, by module name."""
    h, q, kv = shape.hidden_size, shape.num_attention_heads * shape.head_dim, shape.num_key_value_heads * shape.head_dim
    i = shape.intermediate_size
    return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def lora_parameters(shape: Qwen3Shape, rank: int, targets, n_classes: int) -> dict[str, int]:
    """Trainable parameters: r*(in+out) per adapted Linear per layer, plus the head copy (hidden x classes)."""
    shapes = linear_shapes(shape)
    unknown = sorted(set(targets) - set(shapes))
    if unknown:
        raise ValueError(f"unknown target modules {unknown}; expected some of {list(shapes)}")
    adapter = shape.num_hidden_layers * sum(rank * sum(shapes[m]) for m in targets)
    head = shape.hidden_size * n_classes
    return {"adapter": adapter, "head": head, "total": adapter + head}


def base_parameters(shape: Qwen3Shape, n_classes: int) -> dict[str, int]:
    """Parameters of Qwen3ForSequenceClassification (no LM head: ``score`` replaces it), and of the
    causal LM checkpoint for comparison with the model card."""
    linear = sum(a * b for a, b in linear_shapes(shape).values())
    norms = 2 * shape.hidden_size + 2 * shape.head_dim  # input/post-attention RMSNorm, q_norm, k_norm
    layers = shape.num_hidden_layers * (linear + norms)
    embedding = shape.vocab_size * shape.hidden_size
    score = shape.hidden_size * n_classes
    lm_head = 0 if shape.tie_word_embeddings else embedding
    return {
        "embedding": embedding, "decoder_linear": shape.num_hidden_layers * linear,
        "non_embedding": layers + shape.hidden_size, "classifier": embedding + layers + shape.hidden_size + score,
        "causal_lm": embedding + layers + shape.hidden_size + lm_head,
    }


def weight_bytes(shape: Qwen3Shape, n_classes: int, mode: str) -> float:
    """Bytes of the base's weights in memory: ``mode`` "bf16" (or fp16) or "4bit"."""
    p = base_parameters(shape, n_classes)
    if mode == "bf16":
        return 2.0 * p["classifier"]
    if mode == "4bit":
        rest = p["classifier"] - p["decoder_linear"]
        return p["decoder_linear"] * NF4_BITS / 8 + 4.0 * rest
    raise ValueError(f"mode must be 'bf16' or '4bit', found {mode!r}")


def training_bytes(shape: Qwen3Shape, n_classes: int, mode: str, trainable: int, batch_size: int,
                   seq_len: int) -> float:
    """Peak device memory for a training step with gradient checkpointing (an estimate, see ASSUMPTIONS)."""
    tokens = batch_size * seq_len
    checkpoints = shape.num_hidden_layers * tokens * shape.hidden_size * 2
    q = shape.num_attention_heads * shape.head_dim
    working = tokens * (4 * shape.intermediate_size + 4 * q + 8 * shape.hidden_size) * 2
    return weight_bytes(shape, n_classes, mode) + ADAM_BYTES * trainable + checkpoints + working + GIB


def gpu_hours(shape: Qwen3Shape, n_classes: int, tokens: float, flops_per_param_token: float, gpu: Gpu,
              utilisation: float) -> float:
    """Hours for ``tokens`` tokens at ``flops_per_param_token`` x matmul parameters each."""
    matmul = base_parameters(shape, n_classes)["decoder_linear"] + shape.hidden_size * n_classes
    return flops_per_param_token * matmul * tokens / (gpu.dense_tflops * 1e12 * utilisation) / 3600


def module_sets_matching(shape: Qwen3Shape, ranks, n_classes: int, target: float, rel_tol: float):
    """Every (rank, set of target modules) whose trainable count, adapter alone or with the head, is
    within ``rel_tol`` of ``target``: how to read a quoted "about N trainable parameters"."""
    hits = []
    for rank in ranks:
        for k in range(1, len(QWEN3_LINEAR_MODULES) + 1):
            for targets in itertools.combinations(QWEN3_LINEAR_MODULES, k):
                counts = lora_parameters(shape, rank, targets, n_classes)
                for what in ("adapter", "total"):
                    if math.isclose(counts[what], target, rel_tol=rel_tol):
                        hits.append((rank, targets, what, counts[what]))
    return hits


def cost_table(n_classes: int = 113, rank: int = 16, targets=("q_proj", "v_proj"), rows: int = 79_278,
               predict_rows: int = 79_278 + 6_430, seq_len: int = 128, batch_size: int = 16,
               utilisation: float = 0.35) -> str:
    """Two markdown tables: sizes and memory per base model; then, per GPU class, whether training fits
    (bf16/fp16 first, else 4-bit) and the estimated hours per epoch and to predict every row once."""
    head = (f"LoRA rank {rank} on {', '.join(targets)}, {n_classes} classes, batch {batch_size} x {seq_len} tokens, "
            f"{rows:,} training rows per epoch, {predict_rows:,} rows predicted.")
    sizes = ["| base | parameters (classifier) | trainable (adapter + head) | weights bf16 | weights 4-bit "
             "| training peak bf16 / 4-bit |", "|---|---:|---:|---:|---:|---:|"]
    times = ["| base | " + " | ".join(g.name for g in GPUS) + " |", "|---|" + "---|" * len(GPUS)]
    for name, shape in QWEN3.items():
        p = base_parameters(shape, n_classes)
        t = lora_parameters(shape, rank, targets, n_classes)
        peak = {m: training_bytes(shape, n_classes, m, t["total"], batch_size, seq_len) / GIB for m in ("bf16", "4bit")}
        sizes.append(
            f"| {name} | {p['classifier'] / 1e9:.2f}B | {t['adapter'] / 1e6:.2f}M + {t['head'] / 1e6:.2f}M "
            f"| {weight_bytes(shape, n_classes, 'bf16') / GIB:.1f} GiB | {weight_bytes(shape, n_classes, '4bit') / GIB:.1f} GiB "
            f"| {peak['bf16']:.1f} / {peak['4bit']:.1f} GiB |")
        cells = []
        for gpu in GPUS:
            fits = [m for m in ("bf16", "4bit") if peak[m] <= gpu.memory_gib]
            if not fits:
                cells.append("does not fit, even in 4-bit")
                continue
            mode = fits[0]
            util = utilisation if mode == "bf16" else utilisation / 2  # dequantising NF4 costs compute
            train_h = gpu_hours(shape, n_classes, rows * seq_len, 6, gpu, util)
            predict_h = gpu_hours(shape, n_classes, predict_rows * seq_len, 2, gpu, util)
            label = gpu.precision if mode == "bf16" else "4-bit"
            cells.append(f"{label}: {_hours(train_h)}/epoch + {_hours(predict_h)} predict")
        times.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, "", *sizes, "", *times])


def _hours(h: float) -> str:
    if h * 60 < 1:
        return "<1 min"
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h"


def main() -> None:
    print(cost_table())
    print()
    print(ASSUMPTIONS)
    print()
    print("Trainable parameters at rank 16 (adapter only / with the 113-class head), per target set:")
    for name, shape in QWEN3.items():
        for targets in (("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj"), QWEN3_LINEAR_MODULES):
            c = lora_parameters(shape, 16, targets, 113)
            print(f"  {name:16s} {'+'.join(targets):58s} {c['adapter']:>12,} / {c['total']:>12,}")
    print()
    print("Which target modules give 'about 3.2M trainable parameters' at rank 16 (within 5%; "
          "adapter = LoRA matrices only, total = with the 113-class head):")
    for name, shape in QWEN3.items():
        hits = module_sets_matching(shape, [16], 113, 3.2e6, 0.05)
        for _, targets, what, count in hits:
            print(f"  {name:16s} {'+'.join(targets):30s} {what:8s} {count:,}")
        if not hits:
            smallest = min(lora_parameters(shape, 16, [m], 113)["adapter"] for m in QWEN3_LINEAR_MODULES)
            print(f"  {name:16s} none: the smallest rank-16 adapter (one module in every layer) has {smallest:,}")

if __name__ == "__main__":
    main()
