"""An in-memory :class:`kdlab.analyses.context.Study` for analysis tests (no files, no training).

Systems are noisy copies of one "true" logit matrix: the teacher is closest to
it, KD-like arms are pulled towards the teacher, vanilla-like arms are noisier
and overconfident, so the analyses have real differences to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdlab import calibration
from kdlab.analyses.context import Study
from kdlab.arms import ArmOutput
from kdlab.compose import compose
from kdlab.config import TIERS, config_from_mapping
from kdlab.data import assign_tiers
from kdlab.predictions import Predictions

REPO = Path(__file__).resolve().parents[1]


def demo_config(resamples: int = 200, **overrides):
    raw = compose(REPO / "conf", ["profile=demo", f"evaluation.bootstrap.resamples={resamples}"])
    raw.update(overrides)
    return config_from_mapping(raw)


def make_study(n: int = 900, n_classes: int = 113, resamples: int = 200, seed: int = 0,
               unavailable: tuple[str, ...] = ()) -> Study:
    cfg = demo_config(resamples)
    rng = np.random.default_rng(seed)
    freq = 1.0 / np.arange(1, n_classes + 1) ** 1.1
    freq /= freq.sum()
    train_labels = rng.choice(n_classes, size=20 * n, p=freq)
    class_tiers = assign_tiers(train_labels, n_classes, 20, 40)
    labels = rng.choice(n_classes, size=n, p=freq)
    tiers = class_tiers[labels]
    signal = rng.normal(size=(n, n_classes))
    signal[np.arange(n), labels] += 3.0
    teacher_raw = signal + 0.5 * rng.normal(size=signal.shape)

    def system(pull: float, noise: float, scale: float) -> np.ndarray:
        base = pull * teacher_raw + (1 - pull) * signal
        return scale * (base + noise * rng.normal(size=signal.shape))

    def pred(logits):
        return Predictions.from_logits(np.arange(n), logits, labels, tiers)

    specs = {name: (0.0, 1.0, 2.5) if name.startswith("vanilla") or name == "top1_kd" else (0.7, 0.6, 1.2)
             for name in cfg.arm_names}
    arms, cal = {}, {"arms": {}}
    cal_idx, _ = calibration.calibration_fold(n, cfg.evaluation.calibration_fold_seed)
    for name, spec in specs.items():
        if name in unavailable:
            arms[name] = ArmOutput(name, {"available": False, "reason": "not published (train mode)"}, None)
            cal["arms"][name] = {"available": False, "reason": "not published (train mode)"}
            continue
        p = pred(system(*spec))
        arms[name] = ArmOutput(name, {"available": True, "source": "fixture"}, p)
        cal["arms"][name] = calibration.fit_temperature(p.logits32()[cal_idx], labels[cal_idx]).__dict__
    t_raw = pred(teacher_raw)
    cal["teacher_raw"] = calibration.fit_temperature(t_raw.logits32()[cal_idx], labels[cal_idx]).__dict__
    teacher = pred(teacher_raw / cal["teacher_raw"]["temperature"])
    card = {
        "n_classes": n_classes,
        "labels": [f"class {i}" for i in range(n_classes)],
        "class_tiers": [TIERS[t] for t in class_tiers],
        "train_class_counts": np.bincount(train_labels, minlength=n_classes).tolist(),
        "tier_classes": {t: int((class_tiers == i).sum()) for i, t in enumerate(TIERS)},
        "profile": "demo",
        "source": "fixture",
    }
    return Study(cfg=cfg, card=card, teacher=teacher, teacher_raw=t_raw, arms=arms, calibration=cal)
