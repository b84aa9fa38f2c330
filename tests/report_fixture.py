"""A complete input layout for the `report` stage, built from the in-memory study fixture (no training).

:func:`build_report_inputs` writes, under a temporary root, everything the report stage reads:
the data, teacher and arm cards (with the sources a run records: synthetic / local / hub data,
a trained or published teacher, trained or published students), metrics/evaluate.json,
results/calibration.json and every analysis' results/<name>.json, computed by the analyses
themselves on :func:`study_fixture.make_study`.
"""

from __future__ import annotations

from pathlib import Path

from kdlab import analyses, io, metrics
from kdlab.config import TIERS
from kdlab.paths import Layout
from kdlab.stages.train import arm_record
from study_fixture import make_study

TINY_STUDENT = {"source": "tiny", "repo_id": "answerdotai/ModernBERT-base", "revision": "main",
                "tiny": {"hidden_size": 64, "num_hidden_layers": 2}}
TINY_TEACHER = {"source": "tiny", "repo_id": "answerdotai/ModernBERT-base", "revision": "main",
                "tiny": {"hidden_size": 128, "num_hidden_layers": 2}}
HUB_STUDENT = {"source": "hub", "repo_id": "answerdotai/ModernBERT-base", "revision": "main", "tiny": {}}
RUNS = {  # name -> (data source, teacher card, students' arm source)
    "demo": ("synthetic", {"source": "trained", "backbone": TINY_TEACHER}, "trained"),
    "local": ("local", {"source": "trained", "backbone": TINY_TEACHER}, "trained"),
    "audit": ("hub", {"source": "published"}, "published"),
    "train": ("hub", {"source": "published"}, "trained"),
}


def fixture_data_report(study) -> dict:
    """data/prepared/data_report.json (kdlab.data_report) for the fixture's class counts: 12 train rows dropped
    for an unknown label, no empty text, no test split; no lengths.json (as when nothing is tokenized)."""
    import numpy as np
    import pandas as pd

    from kdlab.data import Account
    from kdlab.data_report import data_report

    counts = study.card["train_class_counts"]
    train = pd.DataFrame({"text": [f"train text {i}" for i in range(sum(counts))],
                          "label": np.repeat(np.arange(len(counts)), counts)})
    val = pd.DataFrame({"text": [f"val text {i}" for i in range(study.n)], "label": study.labels})
    splits = {"train": train, "val": val, "test": train.iloc[:0]}
    accounts = {"train": Account(len(train) + 12, 12, 0, True, (("Not a label", 12),)),
                "val": Account(study.n, 0, 0, True)}
    settings = {"drop_empty_text": True, "max_dropped_fraction": 0.05, "min_train_rows": 100, "min_val_rows": 20,
                "val_fraction": 0.1}
    return data_report(splits, accounts, study.card["labels"], {"train": "data.hub_train", "val": "data.hub_train"},
                       settings)


def build_report_inputs(root: Path, run: str = "demo", n: int = 600, resamples: int = 100,
                        unavailable: tuple[str, ...] = ()):
    """Write the report stage's inputs for ``run`` (a key of :data:`RUNS`); returns (cfg, layout)."""
    data_source, teacher_card, arm_source = RUNS[run]
    study = make_study(n=n, resamples=resamples, unavailable=unavailable)
    cfg, layout = study.cfg, Layout(root)
    io.write_json(layout.data_card, {**study.card, "source": data_source, "split_sizes": {"val": n}})
    io.write_json(layout.data_report, fixture_data_report(study))
    io.write_json(layout.teacher_card, {**teacher_card, "temperature": study.calibration["teacher_raw"]["temperature"]})
    cal_idx, eval_idx = study.fold
    class_tiers = study.class_tiers
    bins = cfg.evaluation.ece_bins

    def summary(pred, t=1.0, rows=None):
        p = pred if rows is None else pred.subset(rows)
        return metrics.summarize(p.probs(t), p.labels, p.preds, p.tiers, class_tiers, bins)

    evaluate = {"profile": cfg.profile, "n_val": n, "eval_half_size": len(eval_idx),
                "teacher": {"full_val": summary(study.teacher), "eval_half": summary(study.teacher, rows=eval_idx)},
                "arms": {}}
    cal = {"fold": {"seed": cfg.evaluation.calibration_fold_seed, "n": n, "cal_size": len(cal_idx),
                    "eval_size": len(eval_idx)}, "teacher_raw": study.calibration["teacher_raw"], "arms": {}}
    for arm in cfg.all_arms:
        out = study.arms[arm.name]
        if not out.available:
            card = {"arm": arm.name, "available": False, "reason": out.card["reason"], "config": arm_record(arm)}
            evaluate["arms"][arm.name] = cal["arms"][arm.name] = {"available": False, "reason": out.card["reason"]}
        else:
            card = {"arm": arm.name, "available": True, "source": arm_source, "config": arm_record(arm)}
            if arm_source == "trained":
                card["backbone"] = TINY_STUDENT if run in ("demo", "local") else HUB_STUDENT
            t = study.temperature(arm.name)
            evaluate["arms"][arm.name] = {"available": True, "full_val": summary(out.predictions),
                                          "eval_half": summary(out.predictions, rows=eval_idx),
                                          "eval_half_ts": summary(out.predictions, t, eval_idx), "temperature": t}
            cal["arms"][arm.name] = study.calibration["arms"][arm.name]
        io.write_json(layout.arm_card(arm.name), card)
    io.write_json(layout.metrics / "evaluate.json", evaluate)
    io.write_json(layout.results / "calibration.json", cal)
    for name in analyses.ANALYSES:
        result = analyses.get(name).compute(study)
        result.setdefault("name", name)
        io.write_json(layout.results / f"{name}.json", result)
    assert set(TIERS) <= set(evaluate["teacher"]["full_val"])
    return cfg, layout


def copy_paper(layout: Layout) -> Path:
    """reports/paper.tex of this repository into the layout's reports/ (for compiling)."""
    src = Path(__file__).resolve().parents[1] / "reports" / "paper.tex"
    dest = layout.reports / "paper.tex"
    dest.write_text(src.read_text())
    return dest

