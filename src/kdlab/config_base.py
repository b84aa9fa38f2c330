"""The params building blocks several sections share: a pinned remote file (:class:`Artifact`), a
backbone (:class:`BackboneConfig`), a training recipe (:class:`OptimConfig`), and their range checks.

:mod:`kdlab.config` (the whole params.yaml) and :mod:`kdlab.teacher_config` (the teacher section)
build on them; import them from :mod:`kdlab.config`, which re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from kdlab.typed import ParamsError

DEFAULT_LAUNCHER = "python -m"


# --------------------------------------------------------------------------- #
# Remote artifacts
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Artifact:
    """One remote file, pinned, with a local override.

    Exactly one source is used, in this order: ``local`` (a path on disk),
    ``url`` (plain HTTPS), or the Hub (``repo_id`` + ``filename`` at
    ``revision``, a commit). ``filename`` may be a glob (``data/train-*.parquet``);
    it must then match exactly one file of the repository at that revision.
    ``sha256`` is checked whenever it is set, for local files too.
    """

    repo_id: Optional[str] = None
    repo_type: Literal["model", "dataset"] = "dataset"
    filename: Optional[str] = None
    revision: Optional[str] = None
    url: Optional[str] = None
    sha256: Optional[str] = None
    local: Optional[str] = None

    @property
    def given(self) -> bool:
        """Whether a source is set (conf/ lists optional files with every source null)."""
        return bool(self.local or self.url or self.repo_id)

    def describe(self) -> str:
        if self.local:
            return f"local file {self.local}"
        if self.url:
            return self.url
        return f"hf://{self.repo_type}s/{self.repo_id}@{self.revision}/{self.filename}"


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class TinyModel:
    """A small ModernBERT built from a config (demo profile; no download)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    vocab_size: int = 2000
    # Mean pooling: from-scratch tiny encoders learn the mid and tail classes far better
    # with it than with the [CLS] token (demo: mid F1 0.29 vs 0.05 at equal cost).
    classifier_pooling: Literal["mean", "cls"] = "mean"


@dataclass(frozen=True)
class BackboneConfig:
    """``source: hub`` loads ``repo_id`` at ``revision`` (a commit); ``tiny`` builds ``tiny``."""

    source: Literal["hub", "tiny"]
    repo_id: Optional[str] = None
    revision: Optional[str] = None
    tiny: Optional[TinyModel] = None


@dataclass(frozen=True)
class OptimConfig:
    """Training recipe shared by every arm (and by a teacher kdlab trains)."""

    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    require_gpu: bool = True
    max_train_samples: Optional[int] = None
    log_every: int = 10
    num_threads: Optional[int] = None
    # optimizer steps between resume checkpoints (kdlab.checkpoint; also at each epoch end and on
    # SIGTERM/SIGINT); 0: epoch ends and signals only. Resuming is bit-exact, so it changes no output.
    checkpoint_every: int = 500
    # how DVC starts a training stage: dvc.yaml interpolates it into the train@/sweep@ cmd, followed by
    # the stage's module (so it ends with -m), e.g. "accelerate launch --num_processes 2 -m" (several GPUs)
    launcher: str = DEFAULT_LAUNCHER


# --------------------------------------------------------------------------- #
# Range checks (types are checked by kdlab.typed when params are built)
# --------------------------------------------------------------------------- #
def require(condition: bool, message: str) -> None:
    """Raise :class:`ParamsError` with ``message`` unless ``condition``."""
    if not condition:
        raise ParamsError(message)


def validate_optim(optim: OptimConfig, where: str) -> None:
    require(optim.epochs > 0, f"{where}.epochs: expected a positive integer, found {optim.epochs}")
    require(optim.batch_size > 0, f"{where}.batch_size: expected a positive integer, found {optim.batch_size}")
    require(optim.eval_batch_size > 0, f"{where}.eval_batch_size: expected a positive integer, found {optim.eval_batch_size}")
    require(optim.learning_rate > 0, f"{where}.learning_rate: expected > 0, found {optim.learning_rate}")
    require(optim.weight_decay >= 0, f"{where}.weight_decay: expected >= 0, found {optim.weight_decay}")
    require(0 <= optim.warmup_ratio < 1, f"{where}.warmup_ratio: expected in [0, 1), found {optim.warmup_ratio}")
    require(optim.log_every > 0, f"{where}.log_every: expected a positive integer, found {optim.log_every}")
    require(optim.max_grad_norm > 0, f"{where}.max_grad_norm: expected > 0, found {optim.max_grad_norm}")
    if optim.num_threads is not None:
        require(optim.num_threads > 0, f"{where}.num_threads: expected a positive integer or null, "
                 f"found {optim.num_threads}")
    require(optim.checkpoint_every >= 0,
             f"{where}.checkpoint_every: expected 0 (epoch ends only) or a positive number of steps, "
             f"found {optim.checkpoint_every}")
    words = optim.launcher.split()
    require(words in (["python", "-m"], ["python3", "-m"])
             or (words[:2] == ["accelerate", "launch"] and words[-1] == "-m"),
             f"{where}.launcher: expected 'python -m' or 'accelerate launch [options] -m' (the stage's module "
             f"follows it in dvc.yaml), found {optim.launcher!r}")
    if optim.max_train_samples is not None:
        require(optim.max_train_samples > 0, f"{where}.max_train_samples: expected a positive integer or null")


def validate_backbone(b: BackboneConfig, where: str) -> None:
    if b.source == "hub":
        require(bool(b.repo_id and b.revision),
                 f"{where}: source 'hub' needs repo_id and revision (a commit); found {b.repo_id!r} @ {b.revision!r}")
    else:
        require(b.tiny is not None, f"{where}: source 'tiny' needs the `tiny` settings (select -S student=tiny)")

