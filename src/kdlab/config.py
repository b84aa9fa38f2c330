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

import math
import re
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
# Validation
# --------------------------------------------------------------------------- #

def _validate_data(d: DataConfig, src: str) -> None:
    require(d.head_classes > 0 and d.mid_classes > 0,
            f"{src}: data.head_classes and data.mid_classes must be positive, found {d.head_classes}, {d.mid_classes}")
    require(0 < d.val_fraction < 1, f"{src}: data.val_fraction must be in (0, 1), found {d.val_fraction}")
    require(d.max_length > 0, f"{src}: data.max_length must be positive, found {d.max_length}")
    require(0 <= d.max_dropped_fraction <= 1,
            f"{src}: data.max_dropped_fraction must be in [0, 1], found {d.max_dropped_fraction}")
    require(d.min_train_rows >= 1, f"{src}: data.min_train_rows must be at least 1, found {d.min_train_rows}")
    require(d.min_val_rows >= 2, f"{src}: data.min_val_rows must be at least 2 (val needs two classes), "
            f"found {d.min_val_rows}")
    for key in ("local_train_sha256", "local_test_sha256"):
        value = getattr(d, key)
        require(value is None or re.fullmatch(r"[0-9a-fA-F]{64}", value) is not None,
                f"{src}: data.{key}: expected null or a sha256 (64 hex digits), found {value!r}")
    needs = {"hub": ("hub_train", "hub_test", "course_files"), "local": ("local_train", "course_files"),
             "synthetic": ("synthetic",)}[d.source]
    missing = [key for key in needs if getattr(d, key) is None]
    require(not missing, f"{src}: data.source is {d.source!r} but data.{missing[0] if missing else ''} is not set; "
            f"select the data source as a whole with -S data={d.source} (conf/data/{d.source}.yaml)"
            + (" and give -S data.local_train=/path/to/file" if d.source == "local" else ""))
    if d.expected and d.expected.val_tiers:
        require(set(d.expected.val_tiers) == set(TIERS),
                f"{src}: data.expected.val_tiers must name {list(TIERS)}, found {sorted(d.expected.val_tiers)}")
    if d.synthetic is not None:
        s = d.synthetic
        require(min(s.n_train, s.n_val, s.n_test) > 0, f"{src}: data.synthetic sizes must be positive")


def _validate_arms(cfg: Config) -> None:
    src = cfg.source_file
    names = [a.name for a in cfg.all_arms]
    require(len(cfg.arms) > 0, f"{src}: arms is empty; expected at least the baseline arm {cfg.baseline_arm!r}")
    require(len(set(names)) == len(names), f"{src}: arm names must be unique, found {names}")
    listed = [a.name for a in cfg.arms]
    for role in ("baseline_arm", "headline_arm"):
        require(getattr(cfg, role) in names, f"{src}: {role} {getattr(cfg, role)!r} is not among the arms {listed} "
                "nor the sweep cells")
    require(cfg.raw_teacher_arm.replace("_", "").replace("-", "").isalnum(),
            f"{src}: raw_teacher_arm: arm names may use letters, digits, '_' and '-' only, "
            f"found {cfg.raw_teacher_arm!r}")
    for arm in cfg.all_arms:
        w = f"{src}: arms.{arm.name}"
        if not arm.is_sweep_cell:
            require(arm.name.replace("_", "").replace("-", "").isalnum(),
                    f"{w}: arm names may use letters, digits, '_' and '-' only")
        require(0.0 <= arm.alpha <= 1.0, f"{w}.alpha: expected a value in [0, 1], found {arm.alpha}")
        require(arm.kd_temperature > 0, f"{w}.kd_temperature: expected T_d > 0, found {arm.kd_temperature}")
        require(0.0 <= arm.label_smoothing < 1.0,
                f"{w}.label_smoothing: expected a value in [0, 1), found {arm.label_smoothing}")
        if arm.loss == "topk_kd":
            require(arm.top_k is not None and arm.top_k >= 1,
                    f"{w}.top_k: loss 'topk_kd' needs top_k >= 1, found {arm.top_k}")
        else:
            require(arm.top_k is None, f"{w}.top_k: only loss 'topk_kd' takes top_k, found loss {arm.loss!r}")
        if arm.train_splits == "train":
            require(not arm.uses_teacher,
                    f"{w}: train_splits 'train' is for CE arms; the teacher logits cover train+test only")


def _validate_sweep(cfg: Config) -> None:
    src, sweep = cfg.source_file, cfg.sweep
    for key in ("kd_temperature", "alpha"):
        values = getattr(sweep, key)
        require(len(values) > 0, f"{src}: sweep.{key}: expected at least one value")
        require(len(set(map(float, values))) == len(values), f"{src}: sweep.{key}: values must differ, found {list(values)}")
        require(all(math.isfinite(v) for v in values), f"{src}: sweep.{key}: expected finite numbers, found {list(values)}")
    require(all(t > 0 for t in sweep.kd_temperature),
            f"{src}: sweep.kd_temperature: expected T_d > 0, found {list(sweep.kd_temperature)}")
    require(all(0 <= a <= 1 for a in sweep.alpha), f"{src}: sweep.alpha: expected values in [0, 1], found {list(sweep.alpha)}")


def _validate_published(cfg: Config) -> None:
    src, pub = cfg.source_file, cfg.published
    if cfg.arm_source != "published":
        return
    require(pub is not None, f"{src}: arm_source is 'published' but `published` is null; "
            "select the audit profile (-S profile=audit), which says where the published predictions are")
    unknown = sorted(set(pub.arms) - {a.name for a in cfg.arms})
    require(not unknown, f"{src}: published.arms names {unknown}, which are not arms; expected some of "
            f"{[a.name for a in cfg.arms]}")
    grid = {c.name for c in cfg.sweep.cells()}
    files = [sweep_cell_name(c.kd_temperature, c.alpha) for c in pub.sweep]
    require(len(set(files)) == len(files), f"{src}: published.sweep lists a cell twice: {files}")
    stray = sorted(set(files) - grid)
    require(not stray, f"{src}: published.sweep has files for {stray}, which are not cells of the sweep grid "
            f"{sorted(grid)}; remove them or add their values to sweep")


def _prediction_files(published: Optional[PublishedPredictions]) -> list[Artifact]:
    if published is None:
        return []
    return list(published.arms.values()) + [cell.file for cell in published.sweep]


def _any_from_hub(files: list[Artifact]) -> bool:
    """Whether any of ``files`` is read from the Hub rather than given as a local copy (whose rows are then
    checked against the prepared split like any published file)."""
    return any(not f.local for f in files)


def validate(cfg: Config) -> Config:
    """Range and consistency checks that types alone cannot express."""
    src = cfg.source_file
    require(cfg.profile in PROFILES, f"{src}: profile must be one of {list(PROFILES)}, found {cfg.profile!r}; "
            "switch with `dvc exp run -S profile=demo` (or audit, cpu, or train)")
    validate_optim(cfg.optim, f"{src}: optim")
    _validate_data(cfg.data, src)
    validate_backbone(cfg.student, f"{src}: student")
    t = cfg.teacher
    validate_teacher(t, src)
    if cfg.data.source != "hub":  # the published files on the Hub are aligned row by row with the Hub data's splits
        require(t.source != "published" or not _any_from_hub(t.published_files()),
                f"{src}: teacher.source is 'published', but the published teacher logits belong to the Hub data and "
                f"data.source is {cfg.data.source!r}; select a teacher kdlab trains on your data: -S teacher=modernbert "
                "or -S teacher=lora (a GPU), or -S teacher=trained (tiny; or -S profile=cpu), or give files of that "
                "layout made for your data with `local:`")
        require(cfg.arm_source != "published" or not _any_from_hub(_prediction_files(cfg.published)),
                f"{src}: arm_source is 'published' (the audit profile), but the published predictions belong to the "
                f"Hub data's val split and data.source is {cfg.data.source!r}; audit the Hub data, or train on yours "
                "(-S profile=cpu, or the train profile on a GPU), or give prediction files made for your data with "
                "`local:`")
    _validate_sweep(cfg)
    _validate_arms(cfg)
    _validate_published(cfg)
    ev = cfg.evaluation
    require(ev.ece_bins > 0, f"{src}: evaluation.ece_bins must be positive, found {ev.ece_bins}")
    require(len(ev.thresholds) > 0 and all(0 < t < 1 for t in ev.thresholds),
            f"{src}: evaluation.thresholds: expected one or more values in (0, 1), found {list(ev.thresholds)}")
    if ev.calibration_fold_size is not None:  # its upper bound is the val size: checked where that is known
        require(ev.calibration_fold_size >= 1, f"{src}: evaluation.calibration_fold_size: expected a positive "
                f"integer (rows of val) or null (half of val), found {ev.calibration_fold_size}")
    seeds = {"seed": cfg.seed, "evaluation.calibration_fold_seed": ev.calibration_fold_seed,
             "evaluation.bootstrap.seed": ev.bootstrap.seed}
    if cfg.data.synthetic is not None:
        seeds["data.synthetic.seed"] = cfg.data.synthetic.seed
    for key, value in seeds.items():
        require(0 <= value < 2**32, f"{src}: {key}: expected an integer in 0..{2**32 - 1} (numpy's seed range), "
                f"found {value}")
    require(0 < ev.sla_accuracy <= 1, f"{src}: evaluation.sla_accuracy must be in (0, 1]")
    require(ev.bootstrap.resamples > 0, f"{src}: evaluation.bootstrap.resamples must be positive")
    require(ev.bootstrap.loop_resamples > 0, f"{src}: evaluation.bootstrap.loop_resamples: expected a positive "
            f"integer, found {ev.bootstrap.loop_resamples}")
    return cfg


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
    return validate(build(Config, effective, source))


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read ``path`` once and return its validated configuration."""
    return config_from_mapping(load_yaml(path, "run from the repository root (where dvc.yaml is)"), str(path))
