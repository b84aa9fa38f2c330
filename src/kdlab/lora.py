"""A LoRA sequence-classification teacher: a decoder LLM (Qwen3), a classification head, a peft adapter.

This module builds, saves and reloads the model; training goes through
:func:`kdlab.train.train_classifier` like every student (the model returns
``.logits`` of shape (batch, n_classes) for ``input_ids``/``attention_mask``).

Design choices, each tested in tests/test_lora.py:

- The base is loaded at a pinned 40-hex ``revision`` and never with remote code;
  every base weight is frozen. peft's ``SEQ_CLS`` task type puts the head
  (``score``) in ``modules_to_save``, so a trained copy of it is saved with the
  adapter; the LoRA matrices and that copy are the only trainable tensors.
- Padding: Qwen3ForSequenceClassification pools the *rightmost token that is not
  the pad id* (it reads ``input_ids``, not the attention mask), and Qwen3 derives
  positions from the sequence index, not from the mask. So pad on the right
  (kdlab's collate does) and make the tokenizer's pad token and
  ``config.pad_token_id`` the same id, set explicitly here; a text that itself
  ends in the pad token would be pooled at the wrong place, which
  :func:`check_no_pad_tokens` refuses.
- Trainable tensors are kept in float32 whatever the base dtype, so fp16 loss
  scaling (a T4) and AdamW see full-precision adapter weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from kdlab.errors import KdlabError
from kdlab.io import read_json
from kdlab.teacher_config import (LORA_KEY, QWEN3_LINEAR_MODULES, LoraTeacherSpec, TinyQwen3,  # noqa: F401
                                  validate_spec)

METADATA_FILE = "kdlab_lora_teacher.json"
ADAPTER_CONFIG = "adapter_config.json"  # peft's name
ARCHITECTURE = "Qwen3 + LoRA"  # the teacher record's `architecture` (kdlab.report.provenance reads it)
TINY_BASE_DIR = "tiny_base"  # a tiny base has no Hub copy: its frozen weights are saved next to the adapter
PARAMS_KEY = LORA_KEY


def require_4bit_support(spec: LoraTeacherSpec) -> None:
    """Refuse ``load_in_4bit`` where it cannot run (no CUDA device, or bitsandbytes missing)."""
    import importlib.util

    import torch

    if not spec.load_in_4bit:
        return
    missing = []
    if not torch.cuda.is_available():
        missing.append("no CUDA device is visible")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package is not installed")
    if missing:
        raise KdlabError(
            f"{PARAMS_KEY}.load_in_4bit is true, but 4-bit loading needs bitsandbytes on a CUDA GPU and "
            f"{' and '.join(missing)}. Set {PARAMS_KEY}.load_in_4bit: false (the base then loads in "
            "bf16/fp16, see the memory table in docs/lora_teacher.md), or run on a CUDA machine with "
            "`pip install bitsandbytes`."
        )


def base_dtype(mixed_precision: str):
    """The dtype frozen base weights are loaded in, from accelerate's ``mixed_precision`` ("no", "fp16", "bf16").

    Matching the autocast dtype halves memory on a GPU; "no" (CPU, or precision fp32) keeps float32.
    """
    import torch

    dtypes = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if mixed_precision not in dtypes:
        raise KdlabError(f"{PARAMS_KEY}: unknown mixed precision {mixed_precision!r}; expected one of {list(dtypes)}")
    return dtypes[mixed_precision]


def configure_padding(tokenizer, spec: LoraTeacherSpec) -> int:
    """Set the tokenizer's pad token (explicitly, right side) and return its id.

    ``spec.pad_token`` wins; otherwise the tokenizer's own pad token; otherwise
    its eos token (Qwen3 checkpoints whose tokenizer has none). The token must
    already be in the vocabulary: adding one would resize the frozen embeddings.
    """
    chosen = spec.pad_token or tokenizer.pad_token or tokenizer.eos_token
    if chosen is None:
        raise KdlabError(f"{PARAMS_KEY}.pad_token: the tokenizer of {_base_name(spec)} has neither a pad nor an "
                         "eos token; set pad_token to a token of its vocabulary")
    token_id = tokenizer.convert_tokens_to_ids(chosen)
    unk = tokenizer.unk_token_id
    if token_id is None or (unk is not None and token_id == unk and chosen != tokenizer.unk_token):
        raise KdlabError(f"{PARAMS_KEY}.pad_token: {chosen!r} is not in the vocabulary of {_base_name(spec)}; "
                         "choose a token it already has (e.g. its eos token)")
    tokenizer.pad_token = chosen
    tokenizer.padding_side = "right"
    return int(tokenizer.pad_token_id)


def check_no_pad_tokens(input_ids: Sequence, pad_id: int, what: str) -> None:
    """Refuse texts the classifier would pool at the wrong token: empty ones, and longer ones that end in
    the pad token (it pools the rightmost non-pad token, or position 0 when every token is the pad id,
    so a one-token text is pooled right whatever its token).

    ``input_ids`` is the ragged list of token-id arrays of :class:`kdlab.train.Encoded`.
    """
    bad = [i for i, ids in enumerate(input_ids) if len(ids) == 0 or (len(ids) > 1 and int(ids[-1]) == pad_id)]
    if bad:
        raise KdlabError(f"{what}: {len(bad)} text(s) are empty or end in the pad token id {pad_id} "
                         f"(first rows {bad[:5]}); the classifier reads the last non-pad token, so set "
                         f"{PARAMS_KEY}.pad_token to a token these texts cannot end with")


def ready_for_pooling(encoded, tokenizer, what: str):
    """``encoded`` (a :class:`kdlab.train.Encoded`) with every empty text given one token, checked by
    :func:`check_no_pad_tokens`.

    A decoder tokenizer adds no special tokens, so an empty text (the Hub data keeps the few it has)
    encodes to nothing, which the classifier cannot pool; it becomes the eos token alone (the pad
    token when there is no eos), the same input for every empty text.
    """
    from dataclasses import replace

    import numpy as np

    stand_in = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
    ids = [x if len(x) else np.array([stand_in], np.int64) for x in encoded.input_ids]
    check_no_pad_tokens(ids, tokenizer.pad_token_id, what)
    return replace(encoded, input_ids=ids)


def load_base_tokenizer(spec: LoraTeacherSpec):
    """The base's own tokenizer at the pinned revision (``source: hub``); padding configured."""
    from transformers import AutoTokenizer

    if spec.source != "hub":
        raise KdlabError(f"{PARAMS_KEY}.source is {spec.source!r}: a tiny base uses the project's tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(spec.repo_id, revision=spec.revision, trust_remote_code=False)
    configure_padding(tokenizer, spec)
    return tokenizer


def tiny_config(spec: LoraTeacherSpec, n_classes: int, tokenizer):
    """The ``Qwen3Config`` of a tiny base with the tokenizer's vocabulary and pad id."""
    from transformers import Qwen3Config

    t = spec.tiny
    return Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads, head_dim=t.head_dim,
        max_position_embeddings=t.max_position_embeddings, tie_word_embeddings=False,
        num_labels=n_classes, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )


def build_base(spec: LoraTeacherSpec, n_classes: int, tokenizer, seed: int, mixed_precision: str = "no"):
    """The frozen-to-be base: Qwen3ForSequenceClassification with a fresh ``score`` head (seeded).

    ``tokenizer`` must have gone through :func:`configure_padding`; its pad id
    becomes ``config.pad_token_id``.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig, Qwen3ForSequenceClassification

    validate_spec(spec)
    require_4bit_support(spec)
    if tokenizer.pad_token_id is None:
        raise KdlabError("build_base: the tokenizer has no pad token; call kdlab.lora.configure_padding first")
    dtype = base_dtype(mixed_precision)
    torch.manual_seed(seed)
    if spec.source == "tiny":
        model = Qwen3ForSequenceClassification(tiny_config(spec, n_classes, tokenizer)).to(dtype)
    else:
        extra = {}
        if spec.load_in_4bit:
            compute = dtype if dtype != torch.float32 else (
                torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)  # 4-bit matmuls run in half
            extra["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute)
            extra["device_map"] = {"": torch.cuda.current_device()}  # quantised weights cannot move later
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.repo_id, revision=spec.revision, num_labels=n_classes, dtype=dtype,
            trust_remote_code=False, **extra)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False  # no generation; a KV cache only costs memory in training
    return model


def _enable_checkpointing(model) -> None:
    # transformers 5 renamed gradient_checkpointing_enable (kept as a deprecated alias); use_reentrant=False
    # lets gradients reach the adapters although the frozen embeddings' outputs do not require grad
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def wrap_with_lora(model, spec: LoraTeacherSpec):
    """Freeze ``model`` and add the LoRA adapter (+ a trainable copy of ``score``); trainable tensors in float32."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    if spec.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=spec.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    elif spec.gradient_checkpointing:
        _enable_checkpointing(model)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=spec.rank, lora_alpha=spec.alpha,
                        lora_dropout=spec.dropout, target_modules=list(spec.target_modules), bias="none",
                        revision=spec.revision if spec.source == "hub" else None)
    peft_model = get_peft_model(model, config)
    for param in peft_model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return peft_model


def build_lora_teacher(spec: LoraTeacherSpec, n_classes: int, tokenizer, seed: int, mixed_precision: str = "no"):
    """Base + LoRA, ready for :func:`kdlab.train.train_classifier` (a ``peft.PeftModel``)."""
    return wrap_with_lora(build_base(spec, n_classes, tokenizer, seed, mixed_precision), spec)


def trainable_names(model) -> list[str]:
    """Names of the parameters the optimizer may change (adapter matrices and the head copy)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def trainable_state_dict(model) -> dict:
    """Only what training changes (adapter matrices and the head copy), for a resume checkpoint:
    megabytes where the full state of a 32B base is 64 GB."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}


def load_trainable_state_dict(model, state: dict) -> None:
    """Put a :func:`trainable_state_dict` back into a freshly built teacher; the keys must match exactly."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    expected = set(get_peft_model_state_dict(model))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise KdlabError(f"resume: the saved adapter does not fit this teacher (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}); it was written with other {PARAMS_KEY} params")
    set_peft_model_state_dict(model, state)


def _base_name(spec: LoraTeacherSpec) -> str:
    return f"{spec.repo_id}@{spec.revision}" if spec.source == "hub" else "the tiny Qwen3"


def teacher_record(model, spec: LoraTeacherSpec) -> dict:
    """What the teacher's cards say of the model (kdlab.report.provenance names it from this): the
    base (repository and revision, or the tiny config), its parameters (frozen, with the original
    head), the trainable ones (adapter + head copy) and the adapter's settings."""
    trainable, total = model.get_nb_trainable_parameters()  # counts 4-bit weights unpacked
    record = {"architecture": ARCHITECTURE, "source": spec.source}
    if spec.source == "hub":
        record.update(repo_id=spec.repo_id, revision=spec.revision)
    else:
        record["tiny"] = asdict(spec.tiny)
    record.update(parameters=int(total - trainable), trainable_parameters=int(trainable),
                  adapter={"rank": spec.rank, "alpha": spec.alpha, "dropout": spec.dropout,
                           "target_modules": list(spec.target_modules), "load_in_4bit": spec.load_in_4bit,
                           "gradient_checkpointing": spec.gradient_checkpointing})
    return record


def _sort_adapter_config(path: Path) -> None:
    """peft keeps ``target_modules`` (and ``exclude_modules``) as sets and writes them in hash order,
    which differs between processes; sorted, the file is the same in every run (peft reads a list too)."""
    config = json.loads(path.read_text())
    for key in ("target_modules", "exclude_modules"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def frozen_base_state_dict(peft_model) -> dict:
    """The base's own weights inside a peft model (LoRA wrappers and the head copy stripped)."""
    state = {}
    for name, tensor in peft_model.get_base_model().state_dict().items():
        if ".lora_" in name or ".modules_to_save." in name:
            continue
        state[name.replace(".base_layer.", ".").replace(".original_module.", ".")] = tensor
    return state


def save_lora_teacher(model, tokenizer, folder: str | Path, spec: LoraTeacherSpec, n_classes: int,
                      seed: int) -> None:
    """Write the adapter (``save_pretrained``: adapter_config.json + adapter_model.safetensors, which
    holds the trained head copy), the configured tokenizer and a metadata file naming the base.

    A tiny base has no Hub copy, so its frozen weights go to ``tiny_base/`` as
    safetensors. Everything is written to a temporary folder next to ``folder``
    that then replaces it, so an interrupted save leaves the previous teacher (or
    nothing), never a mix.
    """
    import peft
    import transformers
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        _sort_adapter_config(tmp / ADAPTER_CONFIG)
        tokenizer.save_pretrained(str(tmp))
        if spec.source == "tiny":
            (tmp / TINY_BASE_DIR).mkdir()
            state = {k: v.contiguous() for k, v in frozen_base_state_dict(model).items()}
            save_file(state, str(tmp / TINY_BASE_DIR / "model.safetensors"))
            (tmp / TINY_BASE_DIR / "config.json").write_text(model.get_base_model().config.to_json_string())
        meta = {
            "spec": asdict(spec), "n_classes": n_classes, "seed": seed,
            "base": _base_name(spec), "pad_token": tokenizer.pad_token, "pad_token_id": tokenizer.pad_token_id,
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "versions": {"transformers": transformers.__version__, "peft": peft.__version__},
        }
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        mask = _umask()
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp creates 0700; give the folder the usual mode
        for path in tmp.rglob("*"):  # and the files (peft writes the weights 0600)
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)  # left by a save interrupted between the two renames
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def spec_from_dict(raw: dict) -> LoraTeacherSpec:
    """Rebuild a spec from its saved ``asdict`` form (tuples come back from JSON as lists)."""
    from kdlab.typed import build

    return build(LoraTeacherSpec, raw, METADATA_FILE)


def load_lora_teacher(folder: str | Path, mixed_precision: str = "no"):
    """Reload a saved teacher with peft, for inference; returns ``(model, tokenizer, metadata)``.

    A Hub base gets a freshly initialised head, which the trained copy saved with
    the adapter then replaces.
    """
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForSequenceClassification

    folder = Path(folder)
    if not (folder / METADATA_FILE).is_file():
        raise KdlabError(f"{folder}: no {METADATA_FILE}; expected a folder written by kdlab.lora.save_lora_teacher "
                         "(an interrupted save leaves none); rerun the teacher stage")
    meta = read_json(folder / METADATA_FILE)
    spec = spec_from_dict(meta["spec"])
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token_id != meta["pad_token_id"]:
        raise KdlabError(f"{folder}: the saved tokenizer pads with id {tokenizer.pad_token_id}, the metadata "
                         f"says {meta['pad_token_id']}; the folder is inconsistent, rerun the teacher stage")
    if spec.source == "tiny":
        config = Qwen3Config.from_json_file(str(folder / TINY_BASE_DIR / "config.json"))
        base = Qwen3ForSequenceClassification(config)
        base.load_state_dict(load_file(str(folder / TINY_BASE_DIR / "model.safetensors")), strict=True)
        base = base.to(base_dtype(mixed_precision))
        base.config.pad_token_id = meta["pad_token_id"]
    else:
        base = build_base(spec, meta["n_classes"], tokenizer, meta["seed"], mixed_precision)
    return PeftModel.from_pretrained(base, str(folder), is_trainable=False), tokenizer, meta
