"""Reading the per-arm outputs of `train@<arm>` back, available or not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdlab import io
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.predictions import Predictions, load_predictions


@dataclass(frozen=True)
class ArmOutput:
    name: str
    card: dict
    predictions: Predictions | None  # None when the arm is not available (audit mode, unpublished)

    @property
    def available(self) -> bool:
        return self.predictions is not None


def load_arm(layout: Layout, name: str) -> ArmOutput:
    card = io.read_json(layout.arm_card(name))
    pred = load_predictions(layout.predictions(name)) if card.get("available") else None
    return ArmOutput(name, card, pred)


def load_arms(cfg: Config, layout: Layout) -> dict[str, ArmOutput]:
    """Every arm of params.yaml and every sweep cell (never a glob of runs/, which may hold stale folders)."""
    return {name: load_arm(layout, name) for name in cfg.arm_names}


def load_teacher_val(layout: Layout, kind: str = "final") -> Predictions:
    """The teacher's val logits as :class:`Predictions` (``kind``: final or raw)."""
    path = layout.teacher_val_final if kind == "final" else layout.teacher_val_raw
    arrays = io.load_npz(path, {"logits": "f", "labels": "iu", "tiers": "iu"})
    return Predictions.from_logits(np.arange(len(arrays["labels"])), arrays["logits"], arrays["labels"],
                                   arrays["tiers"])
