"""Typed configuration: `params.yaml` loaded once, validated, passed down explicitly.

`params.yaml` is the *effective* configuration of a run: DVC composes it from
``conf/`` (Hydra) for ``dvc exp run -S profile=<name>``, so what DVC records
is what ran. It holds only what its profile uses: the data source's own keys
(``conf/data/<source>.yaml``), the student's and the teacher's, and, in the
audit profile, where the published predictions are. The mapping is checked
against the dataclasses below: unknown keys, wrong types, out-of-range values
and sections that do not fit together stop the stage before any work starts,
with a message that names the file, the key, the expected and the found value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

from kdlab.config_base import (DEFAULT_LAUNCHER, Artifact, BackboneConfig, OptimConfig, TinyModel,  # noqa: F401
                               require, validate_backbone, validate_optim)
from kdlab.teacher_config import (LoraTeacher, LoraTeacherSpec, PublishedTeacher, TeacherConfig,  # noqa: F401
                                  TinyQwen3, TrainedTeacher, validate_teacher)
from kdlab.typed import ParamsError, build
from kdlab.yamlfile import load_yaml

PROFILES = ("train", "audit", "demo", "cpu")
TIERS = ("head", "mid", "tail")
SWEEP_PREFIX = "sweep@"  # sweep cells are named after their DVC stage: sweep@<T_d>-<alpha>

ConfigError = ParamsError  # the one error type for bad params (kdlab.typed raises it too)


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class CourseFiles:
    label_list: Artifact
    label_merge_mapping: Artifact
    train_indices: Optional[Artifact] = None
    val_indices: Optional[Artifact] = None


@dataclass(frozen=True)
class ExpectedCounts:
    """Row counts that `prepare` must reproduce; a null field skips that check."""

    train: Optional[int] = None
    val: Optional[int] = None
    test: Optional[int] = None
    val_tiers: Optional[dict[str, int]] = None


@dataclass(frozen=True)
class SyntheticData:
    """Size of the bundled synthetic CFPB-like corpus (demo profile)."""

    n_train: int = 6000
    n_val: int = 1500
    n_test: int = 2000
    seed: int = 42
    imbalance: float = 1.1  # Zipf exponent of the class-frequency long tail


@dataclass(frozen=True)
class DataConfig:
    """Shared keys plus the source's own (hub: hub_train/hub_test/course_files; local:
    local_train/local_test/course_files; synthetic: synthetic)."""

    source: Literal["hub", "local", "synthetic"]
    course_files: Optional[CourseFiles] = None
    hub_train: Optional[Artifact] = None
    hub_test: Optional[Artifact] = None
    local_train: Optional[str] = None
    local_test: Optional[str] = None
    local_train_sha256: Optional[str] = None  # your own file's sha256: DVC sees params, not files outside the repo
    local_test_sha256: Optional[str] = None
    synthetic: Optional[SyntheticData] = None
    text_column: str = "Consumer Complaint"
    label_column: str = "Issue"
    val_fraction: float = 0.1  # used only when no val index file is given
    head_classes: int = 20
    mid_classes: int = 40
    max_length: int = 128
    expected: Optional[ExpectedCounts] = None
    drop_empty_text: bool = True  # hub: false, the canonical splits keep every row (teacher logits align to them)
    max_dropped_fraction: float = 0.05  # a larger share of a file's rows dropped by prepare is an error
    min_train_rows: int = 100  # checked whatever `expected` says
    min_val_rows: int = 20



# --------------------------------------------------------------------------- #
# Arms and the sweep
# --------------------------------------------------------------------------- #
LossName = Literal["ce", "kd", "top1_kd", "topk_kd"]


@dataclass(frozen=True)
class ArmConfig:
    """One student: everything but the loss is shared across arms.

    ``kd_temperature`` and ``alpha`` follow this study's convention: α weights
    the soft (KL) term, 1 − α the hard-label CE (torchdistill and Stanton 2021
    use the opposite convention).
    """

    name: str
    loss: LossName = "ce"
    kd_temperature: float = 4.0
    alpha: float = 0.7
    top_k: Optional[int] = None
    label_smoothing: float = 0.0
    teacher_logits: Literal["final", "raw"] = "final"
    train_splits: Literal["train+test", "train"] = "train+test"

    @property
    def uses_teacher(self) -> bool:
        return self.loss != "ce"

    @property
    def is_sweep_cell(self) -> bool:
        return self.name.startswith(SWEEP_PREFIX)


Number = Union[int, float]


def dvc_str(value: Number) -> str:
    """A number as DVC writes it into an interpolated stage name or path (``str``: 1, 0.7, 4.0)."""
    return str(value)


def sweep_cell_name(kd_temperature: Number, alpha: Number) -> str:
    """The DVC matrix stage (and run folder) of a sweep cell, e.g. ``sweep@1-0.7``."""
    return f"{SWEEP_PREFIX}{dvc_str(kd_temperature)}-{dvc_str(alpha)}"


def stage_of(arm: str) -> str:
    """The DVC stage that writes runs/<arm>/: ``train@<arm>``, or the sweep cell's own name."""
    return arm if arm.startswith(SWEEP_PREFIX) else f"train@{arm}"


def sweep_cell_from_name(name: str, source: str = "params.yaml") -> ArmConfig:
    """The :class:`ArmConfig` of the cell ``sweep@<T_d>-<alpha>`` (the inverse of :func:`sweep_cell_name`)."""
    try:
        t_text, a_text = name[len(SWEEP_PREFIX):].split("-")
        t, a = float(t_text), float(a_text)
    except ValueError:
        raise ConfigError(f"{source}: {name!r} is not a sweep cell name; expected {SWEEP_PREFIX}<T_d>-<alpha>, "
                          "e.g. sweep@4-0.7") from None
    return ArmConfig(name=name, loss="kd", kd_temperature=t, alpha=a)


@dataclass(frozen=True)
class SweepConfig:
    """The T_d x α grid, declared once; each cell is KD from the temperature-scaled teacher on
    train+test with the shared optim (dvc.yaml expands it with ``matrix:``)."""

    kd_temperature: tuple[Number, ...] = (1, 4, 8)
    alpha: tuple[Number, ...] = (0.7, 0.9)

    def cells(self) -> tuple[ArmConfig, ...]:
        return tuple(sweep_cell_from_name(sweep_cell_name(t, a)) for t in self.kd_temperature for a in self.alpha)


@dataclass(frozen=True)
class PublishedCell:
    kd_temperature: Number
    alpha: Number
    file: Artifact


@dataclass(frozen=True)
class PublishedPredictions:
    """Audit mode: the published val predictions of arms (by name) and of sweep cells."""

    arms: dict[str, Artifact]
    sweep: tuple[PublishedCell, ...] = ()

    def artifact(self, arm: ArmConfig) -> tuple[Artifact | None, str]:
        """The artifact of ``arm`` (None when it was never published) and its params key."""
        if arm.is_sweep_cell:
            for i, cell in enumerate(self.sweep):
                if sweep_cell_name(cell.kd_temperature, cell.alpha) == arm.name:
                    return cell.file, f"published.sweep[{i}].file"
            return None, "published.sweep"
        return self.arms.get(arm.name), f"published.arms.{arm.name}"


# --------------------------------------------------------------------------- #
# Evaluation and analyses
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class BootstrapConfig:
    resamples: int = 10_000
    seed: int = 42
    loop_resamples: int = 200  # cap for metrics the bootstrap can only loop over (adaptive ECE, smECE)


@dataclass(frozen=True)
class EvaluationConfig:
    ece_bins: int = 15
    thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    sla_accuracy: float = 0.95
    calibration_fold_seed: int = 42 + 999
    calibration_fold_size: Optional[int] = None  # default: half of val, rounded down
    bootstrap: BootstrapConfig = BootstrapConfig()
    min_tier_examples_per_bin: float = 20.0  # below this a tier's binned ECE is flagged unstable


@dataclass(frozen=True)
class Config:
    profile: str
    seed: int
    data: DataConfig
    student: BackboneConfig
    optim: OptimConfig
    teacher: TeacherConfig
    arms: tuple[ArmConfig, ...]
    evaluation: EvaluationConfig
    sweep: SweepConfig = SweepConfig()
    published: Optional[PublishedPredictions] = None
    source_file: str = "params.yaml"
    baseline_arm: str = "vanilla"
    headline_arm: str = "kd"  # the study's distilled student, compared with the baseline (docs/study.md §3)
    raw_teacher_arm: str = "kd_raw_teacher"  # distilled from the raw teacher logits (Han Guo test); may be absent
    arm_source: Literal["train", "published"] = "train"

    @property
    def all_arms(self) -> tuple[ArmConfig, ...]:
        """The arms of params.yaml, then the sweep's cells (each one `train` stage)."""
        return tuple(self.arms) + self.sweep.cells()

    def arm(self, name: str) -> ArmConfig:
        """The arm ``name`` of params.yaml, or the sweep cell ``name`` (read from the name alone, as its
        DVC stage does not track the grid: adding a value to the grid must not rerun the other cells)."""
        if name.startswith(SWEEP_PREFIX):
            return sweep_cell_from_name(name, self.source_file)
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ConfigError(
            f"{self.source_file}: unknown arm {name!r}; expected one of {[a.name for a in self.all_arms]}"
        )

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.all_arms]

    @property
    def trains_models(self) -> bool:
        """Whether any stage trains (students or a teacher); audit mode trains nothing."""
        return self.arm_source == "train" or self.teacher.source != "published"


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #
def config_from_mapping(raw: dict[str, Any], source: str = "params.yaml") -> Config:
    """Build and validate a :class:`Config` from the contents of params.yaml."""
    if raw is None:
        raise ConfigError(f"{source}: is empty; expected the params mapping: compose it from conf/ with "
                          "`dvc exp run -S profile=demo` (or audit, or train), or restore it with `git checkout`")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(raw).__name__}")
    if "profiles" in raw:
        raise ConfigError(f"{source}: `profiles` overlays are gone: params.yaml is composed from conf/ "
                          "(dvc exp run -S profile=demo); move the overlay into conf/profile/<name>.yaml")
    arms_raw = raw.get("arms")
    if not isinstance(arms_raw, dict):
        raise ConfigError(f"{source}: arms must be a mapping of arm name to settings, found {arms_raw!r}")
    effective = dict(raw)
    arms = []
    for name, spec in arms_raw.items():
        if not isinstance(spec, (dict, type(None))):
            raise ConfigError(f"{source}: arms.{name}: expected a mapping of settings, found {spec!r}")
        arms.append(build(ArmConfig, {"name": str(name), **(spec or {})}, f"{source}: arms.{name}"))
    effective["arms"] = arms
    effective["source_file"] = source
    from kdlab.config_checks import validate  # the rules need the classes above

    return validate(build(Config, effective, source))


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read ``path`` once and return its validated configuration."""
    return config_from_mapping(load_yaml(path, "run from the repository root (where dvc.yaml is)"), str(path))
