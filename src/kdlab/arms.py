"""Reading the per-arm outputs of `train@<arm>` back, available or not."""

from __future__ import annotations

from dataclasses import dataclass

from kdlab import records
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.predictions import Predictions, load_predictions
from kdlab.teacher import load_logits
from kdlab.validate import PreparedRows


@dataclass(frozen=True)
class ArmOutput:
    name: str
    card: dict
    predictions: Predictions | None  # None when the arm is not available (audit mode, unpublished)

    @property
    def available(self) -> bool:
        return self.predictions is not None


def load_arm(layout: Layout, name: str, rows: PreparedRows) -> ArmOutput:
    """runs/<name>/arm.json and, for an available arm, its predictions checked against the prepared val rows."""
    card = records.arm_card(layout, name)
    pred = load_predictions(layout.predictions(name), rows) if card["available"] else None
    return ArmOutput(name, card, pred)


def load_arms(cfg: Config, layout: Layout, rows: PreparedRows) -> dict[str, ArmOutput]:
    """Every arm of params.yaml and every sweep cell (never a glob of runs/, which may hold stale folders)."""
    return {name: load_arm(layout, name, rows) for name in cfg.arm_names}


def load_teacher_val(layout: Layout, rows: PreparedRows, kind: str = "final") -> Predictions:
    """The teacher's val logits (``kind``: final or raw) as :class:`Predictions`, checked against the
    prepared val rows."""
    path = layout.teacher_val_final if kind == "final" else layout.teacher_val_raw
    out = load_logits(path, rows, with_tiers=True)
    return Predictions.from_logits(rows.row_id, out["logits"], out["labels"], out["tiers"])
