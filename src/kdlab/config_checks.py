"""The rules params.yaml must satisfy beyond its types: ranges, and sections that fit together.

:func:`validate` runs once, when :func:`kdlab.config.config_from_mapping` builds the
configuration, so a bad value anywhere stops any stage before it works; every message
names the file, the key, the expected and the found value, and what to do.
"""

from __future__ import annotations

import math
import re
from typing import Optional

from kdlab.config import (PROFILES, TIERS, Artifact, Config, DataConfig, PublishedPredictions, require,
                          sweep_cell_name, validate_backbone, validate_optim, validate_teacher)

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
