"""Everything an analysis reads, loaded once: the study's stored predictions.

Analyses never retrain: they read the teacher's val logits, every arm's
predictions, the fitted temperatures and the data card, and compute tables
with paired-bootstrap CIs. Resample indices are drawn once per scope (overall
and each tier) and shared by every system, so every delta is paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from kdlab import data, metrics, records, stats, validate
from kdlab.arms import ArmOutput, load_arms, load_teacher_val
from kdlab.config import TIERS, Config
from kdlab.paths import Layout
from kdlab.predictions import Predictions

SCOPES = ("overall",) + TIERS


@dataclass
class Study:
    """The loaded study. ``teacher`` is the temperature-scaled teacher, ``teacher_raw`` the raw one."""

    cfg: Config
    card: dict
    teacher: Predictions
    teacher_raw: Predictions
    arms: dict[str, ArmOutput]
    calibration: dict  # results/calibration.json
    _cache: dict = field(default_factory=dict, repr=False)

    # --- data ----------------------------------------------------------------
    @property
    def class_tiers(self) -> np.ndarray:
        """(C,) int8 tier code per class."""
        return data.class_tiers_from_card(self.card)

    @property
    def labels(self) -> np.ndarray:
        """(N_val,) true class ids."""
        return self.teacher.labels

    @property
    def n(self) -> int:
        return int(len(self.teacher.labels))

    @property
    def available(self) -> list[str]:
        """Arms with predictions, in params.yaml order."""
        return [name for name, arm in self.arms.items() if arm.available]

    @property
    def unavailable(self) -> dict[str, str]:
        """Arm -> reason (e.g. "not published (train mode)") for arms without predictions."""
        return {name: arm.card.get("reason", "not available") for name, arm in self.arms.items()
                if not arm.available}

    def scope_rows(self, scope: str) -> np.ndarray:
        """Row positions of ``scope`` ("overall" or a tier name) in val order."""
        if scope == "overall":
            return np.arange(self.n)
        return np.flatnonzero(self.teacher.tiers == TIERS.index(scope))

    def scope_class_ids(self, scope: str, present: bool = False) -> np.ndarray | None:
        """Class ids for macro F1 in ``scope``: None (scikit-learn's default) overall, else the tier's.
        ``present``: only those with a val row in the scope (the course's list, docs/study.md §5; overall: every
        class with a val row)."""
        ids = None if scope == "overall" else np.flatnonzero(self.class_tiers == TIERS.index(scope))
        return metrics.present_class_ids(self.labels[self.scope_rows(scope)], ids) if present else ids

    def scope_classes(self, scope: str) -> dict[str, int]:
        """{"all": the scope's classes (overall: the label list), "present": those with a val row in it}."""
        ids = self.scope_class_ids(scope)
        return {"all": len(self.class_tiers) if ids is None else int(len(ids)),
                "present": int(len(self.scope_class_ids(scope, present=True)))}

    # --- the calibration fold -------------------------------------------------
    @cached_property
    def fold(self) -> tuple[np.ndarray, np.ndarray]:
        """(cal_idx, eval_idx): the homework's calibration / evaluation halves of val."""
        return validate.calibration_fold(self.cfg.evaluation, self.n, self.cfg.source_file)

    def temperature(self, arm: str) -> float:
        """Temperature fitted on the calibration half (calibrate stage); "teacher_raw" for the raw teacher."""
        if arm == "teacher_raw":
            return float(self.calibration["teacher_raw"]["temperature"])
        return float(self.calibration["arms"][arm]["temperature"])

    # --- systems ----------------------------------------------------------------
    def predictions(self, system: str) -> Predictions:
        """"teacher", "teacher_raw" or an available arm name."""
        if system == "teacher":
            return self.teacher
        if system == "teacher_raw":
            return self.teacher_raw
        arm = self.arms[system]
        if not arm.available:
            raise KeyError(f"arm {system!r} has no predictions ({arm.card.get('reason')})")
        return arm.predictions

    def probs(self, system: str, scaled: bool = False) -> np.ndarray:
        """(N_val, C) float64 probabilities; ``scaled`` divides the logits by the fitted T first."""
        key = ("probs", system, scaled)
        if key not in self._cache:
            t = self.temperature(system) if scaled else 1.0
            self._cache[key] = self.predictions(system).probs(t)
        return self._cache[key]

    # --- bootstrap ---------------------------------------------------------------
    @property
    def resamples(self) -> int:
        return self.cfg.evaluation.bootstrap.resamples

    @property
    def seed(self) -> int:
        return self.cfg.evaluation.bootstrap.seed

    @property
    def loop_resamples(self) -> int:
        """Resamples for the metrics the bootstrap can only loop over (adaptive ECE, smECE): the first
        ``evaluation.bootstrap.loop_resamples`` of the shared ones."""
        return min(self.resamples, self.cfg.evaluation.bootstrap.loop_resamples)

    def bootstrap_indices(self, n_rows: int) -> np.ndarray:
        """(B, n_rows) resample indices, drawn once per size and seed and shared by every system."""
        key = ("boot", n_rows)
        if key not in self._cache:
            self._cache[key] = stats.draw_indices(n_rows, self.resamples, self.seed)
        return self._cache[key]


def load_study(cfg: Config, layout: Layout) -> Study:
    """Everything an analysis reads; every stored array checked against data/prepared/val.parquet."""
    rows = validate.prepared_val(layout)
    validate.calibration_fold(cfg.evaluation, rows.n, cfg.source_file)  # refused here, whichever analysis runs
    arms = load_arms(cfg, layout, rows)
    return Study(
        cfg=cfg,
        card=records.data_card(layout),
        teacher=load_teacher_val(layout, rows, "final"),
        teacher_raw=load_teacher_val(layout, rows, "raw"),
        arms=arms,
        calibration=records.temperatures(layout.results / "calibration.json",
                                         [name for name, arm in arms.items() if arm.available]),
    )
