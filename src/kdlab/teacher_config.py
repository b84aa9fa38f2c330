"""The ``teacher`` section of params.yaml and its checks.

Three sources (``teacher.source``, selected as a whole with ``-S teacher=<file of conf/teacher/>``):
``published`` (the study's Qwen3-32B + LoRA logits), ``trained`` (a ModernBERT kdlab trains: tiny in
the demo, ModernBERT-base on a GPU) and ``lora`` (a Qwen3 + LoRA sequence classifier kdlab trains,
kdlab.lora; docs/lora_teacher.md). The LoRA model spec lives here, not in kdlab.lora, so that reading
params never imports the model code (every stage reads params; an edit of kdlab.lora reruns only the
teacher stage). :mod:`kdlab.config` re-exports every name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from kdlab.config_base import (DEFAULT_LAUNCHER, Artifact, BackboneConfig, OptimConfig, require, validate_backbone,
                               validate_optim)
from kdlab.typed import ParamsError

LORA_KEY = "teacher.lora.model"  # where the LoRA spec lives in params; messages name keys under it
QWEN3_LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class PublishedTeacher:
    train_test_raw: Artifact
    train_test_final: Artifact
    val_final: Artifact
    metadata: Optional[Artifact] = None


@dataclass(frozen=True)
class TrainedTeacher:
    """A ModernBERT teacher trained by kdlab (tiny in the demo; ModernBERT-base for own data on a GPU)."""

    backbone: BackboneConfig
    optim: OptimConfig
    calibration_fraction: float = 0.1  # share of train+test held out to fit the temperature on


@dataclass(frozen=True)
class TinyQwen3:
    """A small random Qwen3 built from a config (CPU tests and the offline demo); vocab = the tokenizer's."""

    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 8
    max_position_embeddings: int = 512


@dataclass(frozen=True)
class LoraTeacherSpec:
    """What to build: the base (Hub at a pinned commit, or tiny) and the LoRA adapter around it."""

    source: Literal["hub", "tiny"] = "hub"
    repo_id: str = "Qwen/Qwen3-32B"
    revision: str = "9216db5781bf21249d130ec9da846c4624c16137"  # a commit sha, never a branch
    rank: int = 16
    alpha: int = 32  # LoRA scale = alpha / rank
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    gradient_checkpointing: bool = True
    load_in_4bit: bool = False  # bitsandbytes NF4; needs CUDA and the bitsandbytes package
    pad_token: Optional[str] = None  # None: the tokenizer's own pad token, else its eos token
    tiny: TinyQwen3 = field(default_factory=TinyQwen3)


@dataclass(frozen=True)
class LoraTeacher:
    """A Qwen3 + LoRA teacher trained by kdlab (``teacher.source: lora``)."""

    model: LoraTeacherSpec
    optim: OptimConfig
    calibration_fraction: float = 0.1  # share of train+test held out to fit the temperature on


OwnTeacher = Union[TrainedTeacher, LoraTeacher]


@dataclass(frozen=True)
class TeacherConfig:
    source: Literal["published", "trained", "lora"]
    published: Optional[PublishedTeacher] = None
    trained: Optional[TrainedTeacher] = None
    lora: Optional[LoraTeacher] = None
    need_train_logits: bool = True  # audit mode needs only the val logits
    expected_temperature: Optional[float] = None

    @property
    def own(self) -> OwnTeacher | None:
        """The section of a teacher kdlab trains (``trained`` or ``lora``); None for published logits."""
        return None if self.source == "published" else getattr(self, self.source)

    def published_files(self) -> list[Artifact]:
        """The published teacher files a run reads (the train+test logits only when the students need them)."""
        if self.published is None:
            return []
        p = self.published
        return [p.val_final] + ([p.metadata] if p.metadata else []) + \
            ([p.train_test_raw, p.train_test_final] if self.need_train_logits else [])


def validate_spec(spec: LoraTeacherSpec, where: str = LORA_KEY) -> None:
    """Range checks types cannot express; ``where`` prefixes the key in messages (e.g. "params.yaml: teacher.lora.model")."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ParamsError(f"{where}.{message}")

    if spec.source == "hub":
        need(bool(spec.repo_id), "repo_id: expected a Hub model repository such as 'Qwen/Qwen3-1.7B', found ''")
        need(bool(_COMMIT.fullmatch(spec.revision)),
             f"revision: expected a 40-character commit sha of {spec.repo_id} (a branch or tag can move), "
             f"found {spec.revision!r}; look it up with `huggingface_hub.model_info({spec.repo_id!r}).sha`")
    need(spec.rank > 0, f"rank: expected a positive integer, found {spec.rank}")
    need(spec.alpha > 0, f"alpha: expected a positive integer, found {spec.alpha}")
    need(0 <= spec.dropout < 1, f"dropout: expected a number in [0, 1), found {spec.dropout}")
    unknown = sorted(set(spec.target_modules) - set(QWEN3_LINEAR_MODULES))
    need(bool(spec.target_modules) and not unknown,
         f"target_modules: expected a non-empty list from {list(QWEN3_LINEAR_MODULES)}, "
         f"found {list(spec.target_modules)}")
    need(len(set(spec.target_modules)) == len(spec.target_modules),
         f"target_modules: each module once, found {list(spec.target_modules)}")
    t = spec.tiny
    need(min(t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.head_dim) > 0,
         "tiny: sizes must be positive")
    need(t.num_key_value_heads > 0 and t.num_attention_heads % t.num_key_value_heads == 0,
         f"tiny.num_attention_heads ({t.num_attention_heads}) must be a positive multiple of "
         f"tiny.num_key_value_heads ({t.num_key_value_heads})")


def validate_teacher(t: TeacherConfig, src: str) -> None:
    """Range and consistency checks of the teacher section (``src``: the params file, for messages)."""
    require(getattr(t, t.source) is not None,
            f"{src}: teacher.source is {t.source!r} but teacher.{t.source} is not set; "
            f"select the teacher as a whole with -S teacher={t.source} (conf/teacher/{t.source}.yaml)")
    for key in ("trained", "lora"):
        own = getattr(t, key)
        if own is None:
            continue
        where = f"{src}: teacher.{key}"
        validate_optim(own.optim, f"{where}.optim")
        require(own.optim.launcher == DEFAULT_LAUNCHER,
                f"{where}.optim.launcher: the teacher stage always runs as "
                f"'{DEFAULT_LAUNCHER} kdlab.stages.teacher', found {own.optim.launcher!r}; remove the key")
        require(0 < own.calibration_fraction < 1,
                f"{where}.calibration_fraction must be in (0, 1), found {own.calibration_fraction}")
    if t.trained is not None:
        validate_backbone(t.trained.backbone, f"{src}: teacher.trained.backbone")
    if t.lora is not None:
        validate_spec(t.lora.model, f"{src}: {LORA_KEY}")
    if t.expected_temperature is not None:
        require(t.expected_temperature > 0, f"{src}: teacher.expected_temperature: expected a temperature > 0 "
                f"or null, found {t.expected_temperature}")
