"""A trained arm's folder is a usable model: from_pretrained and pipeline load it, the card holds kdlab's numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from kdlab import calibration, metrics, selective
from kdlab.errors import KdlabError
from kdlab.model_card import CARD, fmt, label_maps, publish_arm
from kdlab.predictions import Predictions
from study_fixture import demo_config

TAXONOMY = Path(__file__).resolve().parents[1] / "src" / "kdlab" / "demo" / "taxonomy.json"
N_CLASSES = 6
TIER_NAMES = ["head", "head", "mid", "mid", "tail", "tail"]
TEXTS = [
    "I was charged a late fee after I paid my credit card bill on time.",
    "The debt collector keeps calling me at work about a debt I do not owe.",
    "My mortgage servicer lost my loan modification application twice.",
    "There is an account on my credit report that is not mine.",
]


def issue_names() -> list[str]:
    return json.loads(TAXONOMY.read_text())["labels"][:N_CLASSES]


def data_card() -> dict:
    return {"n_classes": N_CLASSES, "labels": issue_names(), "class_tiers": TIER_NAMES,
            "tier_classes": {"head": 2, "mid": 2, "tail": 2}, "split_sizes": {"train": 40, "val": 60, "test": 20},
            "source": "synthetic", "source_description": "bundled synthetic complaints (seed 42)"}


def synthetic_predictions(n: int = 300, seed: int = 0) -> Predictions:
    """Val predictions with signal, overconfident logits, and every tier present."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n)
    logits = rng.normal(size=(n, N_CLASSES))
    logits[np.arange(n), labels] += 1.5
    tiers = np.array([{"head": 0, "mid": 1, "tail": 2}[TIER_NAMES[y]] for y in labels])
    return Predictions.from_logits(np.arange(n), 3.0 * logits, labels, tiers)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny ModernBERT published twice (two folders) by the hook train@<arm> calls."""
    from kdlab.models import build_classifier
    from kdlab.tokenization import train_wordpiece

    cfg = demo_config()
    arm = cfg.arm("kd")
    tokenizer = train_wordpiece(TEXTS * 5, 300)
    pred = synthetic_predictions()
    training = {"rows": 60, "splits": ["train", "test"], "precision": "no", "seconds": 1.23, "device": "cpu"}
    folders = []
    for name in ("a", "b"):
        model = build_classifier(cfg.student, N_CLASSES, tokenizer, cfg.seed)
        folder = tmp_path_factory.mktemp(f"arm-{name}")
        publish_arm(folder, model, tokenizer, pred, cfg, arm, data_card(), {"source": "trained"}, training)
        folders.append(folder)
    return cfg, pred, folders, model, tokenizer


def test_pipeline_and_from_pretrained_load_the_folder_with_issue_names(published):
    import torch
    from transformers import AutoModelForSequenceClassification, pipeline

    _, _, (folder, _), model, tokenizer = published
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForSequenceClassification"]
    assert [config["id2label"][str(i)] for i in range(N_CLASSES)] == issue_names()
    assert config["label2id"] == {name: i for i, name in enumerate(issue_names())}
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))  # safetensors only

    loaded = AutoModelForSequenceClassification.from_pretrained(folder)
    assert loaded.config.id2label == dict(enumerate(issue_names()))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    clf = pipeline("text-classification", model=str(folder))
    for text in TEXTS:
        out = clf(text)
        assert out[0]["label"] in issue_names()
        # the label is the model's argmax mapped through the data card's order, with its softmax score
        with torch.inference_mode():
            probs = torch.softmax(loaded(**tokenizer(text, return_tensors="pt")).logits[0], -1)
        assert out[0]["label"] == issue_names()[int(probs.argmax())]
        assert out[0]["score"] == pytest.approx(float(probs.max()), abs=1e-5)
    # the saved tokenizer truncates where training did
    long_text = " ".join(["fee"] * 400)
    assert len(clf.tokenizer(long_text, truncation=True)["input_ids"]) == demo_config().data.max_length


def test_card_holds_the_numbers_kdlab_computes(published):
    cfg, pred, (folder, _), _, _ = published
    card = (folder / CARD).read_text()
    ev = cfg.evaluation
    class_tiers = np.array([{"head": 0, "mid": 1, "tail": 2}[t] for t in TIER_NAMES])
    val = metrics.summarize(pred.probs(), pred.labels, pred.preds, pred.tiers, class_tiers, ev.ece_bins)
    cal_idx, eval_idx = calibration.calibration_fold(len(pred.labels), ev.calibration_fold_seed,
                                                     ev.calibration_fold_size)
    fit = calibration.fit_temperature(pred.logits32()[cal_idx], pred.labels[cal_idx])
    half = pred.subset(eval_idx)
    after = metrics.summarize(half.probs(fit.temperature), half.labels, half.preds, half.tiers, class_tiers,
                              ev.ece_bins)["overall"]
    before = metrics.summarize(half.probs(), half.labels, half.preds, half.tiers, class_tiers, ev.ece_bins)["overall"]
    coverage = {r["threshold"]: r for r in selective.coverage_table(pred.probs(), pred.labels, ev.thresholds)}

    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in card.splitlines() if line.startswith("| ")}
    for tier in ("overall", "head", "mid", "tail"):
        b = val[tier]
        assert rows[tier] == [f"{b['n']:,}", fmt(b["accuracy"]), fmt(b["macro_f1"]), fmt(b["ece"]), fmt(b["nll"]),
                              fmt(b["brier"])]
    assert rows["raw"][0] == fmt(before["ece"]) and rows["raw"][2] == fmt(before["nll"])
    assert rows[f"+ T ({fmt(fit.temperature, 3)})"][0] == fmt(after["ece"])
    assert f"T = {fmt(fit.temperature)} fitted by LBFGS" in card and fit.converged
    assert f"n = {len(cal_idx):,}, fold seed {ev.calibration_fold_seed}" in card
    assert rows["0.7"] == [fmt(coverage[0.7]["coverage"]), fmt(coverage[0.7]["accuracy"]), f"{coverage[0.7]['n_covered']:,}"]
    # independent of kdlab: accuracy and the tail's macro F1 over the tail's classes (scikit-learn)
    assert val["overall"]["accuracy"] == pytest.approx(float(np.mean(pred.preds == pred.labels)))
    tail = pred.tiers == 2
    assert val["tail"]["macro_f1"] == pytest.approx(
        f1_score(pred.labels[tail], pred.preds[tail], labels=[4, 5], average="macro", zero_division=0))
    # temperature scaling fitted on this fold lowers the NLL on the other half (overconfident logits)
    assert after["nll"] < before["nll"]
    assert "DEMO model" in card and "| loss | kd |" in card and "| alpha (soft-term weight) | 0.7 |" in card


def test_published_folder_is_deterministic_and_holds_no_run_details(published):
    _, _, (a, b), _, _ = published
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", CARD} <= set(names)
    assert not [n for n in names if n.startswith(".")]  # no temporary files left behind
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    card = (a / CARD).read_text()
    assert str(a) not in card and "/tmp" not in card
    assert not re.search(r"\d{4}-\d{2}-\d{2}", card)  # no dates
    assert "1.23" not in card and "seconds" not in card  # no timings


def test_bad_label_lists_are_refused_with_the_file_named():
    with pytest.raises(KdlabError, match="data card.*duplicates"):
        label_maps(["Late fee", "Late fee", "Billing"])
    with pytest.raises(KdlabError, match="non-empty list"):
        label_maps([])
    assert label_maps(["a", "b"]) == ({0: "a", 1: "b"}, {"a": 0, "b": 1})


def test_a_label_count_that_does_not_match_the_model_is_refused(tmp_path):
    from kdlab.model_card import save_model_folder
    from kdlab.models import build_classifier
    from kdlab.tokenization import train_wordpiece

    cfg = demo_config()
    tokenizer = train_wordpiece(TEXTS, 200)
    model = build_classifier(cfg.student, N_CLASSES, tokenizer, cfg.seed)
    with pytest.raises(KdlabError, match="5 class names for a model with 6 outputs"):
        save_model_folder(tmp_path, model, tokenizer, issue_names()[:5], 64)
    assert not list(tmp_path.iterdir())
