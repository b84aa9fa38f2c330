"""A trained arm's folder as a model people can use: weights, label names, tokenizer, model card.

After :func:`publish_arm`, ``runs/<arm>/`` loads with
``AutoModelForSequenceClassification.from_pretrained(folder)`` and
``pipeline("text-classification", model=folder)``, no extra arguments:
``model.safetensors`` + ``config.json`` (``id2label``/``label2id`` with the issue
names of the data card, ``architectures``), the tokenizer's files, and a model
card ``README.md`` with the arm's recipe, data, metrics per tier and calibration.

The card's numbers are computed here, at the end of ``train@<arm>``, from the
arm's own validation predictions (the ``predictions.npz`` the stage writes)
with kdlab.metrics, kdlab.calibration and kdlab.selective: the later
calibrate/evaluate stages read every arm, so they cannot feed this stage.
The card holds no dates, host paths or timings: the same run writes the same card.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from kdlab import calibration, io, metrics, selective, validate
from kdlab.config import TIERS, ArmConfig, Config, EvaluationConfig, stage_of
from kdlab.errors import KdlabError
from kdlab.predictions import Predictions

CARD = "README.md"


# --------------------------------------------------------------------------- #
# The model folder
# --------------------------------------------------------------------------- #
def label_maps(labels: Sequence[str], source: str = "data card") -> tuple[dict[int, str], dict[str, int]]:
    """``id2label`` {class id: name} and ``label2id`` {name: class id} for the class names in id order."""
    labels = list(labels)
    if not labels or any(not isinstance(x, str) or not x for x in labels):
        raise KdlabError(f"{source}: `labels` must be a non-empty list of class names, found {labels[:3]!r}...; "
                         "rerun `dvc repro prepare`")
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise KdlabError(f"{source}: class names must be unique for label2id, found duplicates {duplicates}; "
                         "fix the label list and rerun `dvc repro prepare`")
    return dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}


def save_model_folder(folder: str | Path, model, tokenizer, labels: Sequence[str], max_length: int,
                      source: str = "data card") -> None:
    """Weights, config and tokenizer files in ``folder``, each file written atomically.

    Sets the model's ``config.id2label``/``label2id`` from ``labels`` (class
    names in id order), ``architectures`` and ``problem_type``; the tokenizer is
    saved with ``model_max_length = max_length`` so that ``truncation=True``
    cuts texts where training did.
    """
    from kdlab.train import save_checkpoint

    id2label, label2id = label_maps(labels, source)
    unwrapped = getattr(model, "module", model)
    if unwrapped.config.num_labels != len(id2label):
        raise KdlabError(f"{source}: {len(id2label)} class names for a model with "
                         f"{unwrapped.config.num_labels} outputs; rerun `dvc repro prepare` and the arm")
    unwrapped.config.id2label, unwrapped.config.label2id = id2label, label2id
    unwrapped.config.architectures = [type(unwrapped).__name__]
    unwrapped.config.problem_type = "single_label_classification"
    save_checkpoint(unwrapped, folder)
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.model_max_length = max_length
    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix=".tokenizer.", suffix=io.TEMP_SUFFIX, dir=folder) as tmp:
        tokenizer.save_pretrained(tmp)
        for name in sorted(os.listdir(tmp)):
            os.replace(Path(tmp) / name, folder / name)  # one rename per file: never half-written


# --------------------------------------------------------------------------- #
# The card's numbers
# --------------------------------------------------------------------------- #
def card_numbers(pred: Predictions, class_tiers: np.ndarray, evaluation: EvaluationConfig) -> dict:
    """Metrics per tier, temperature scaling and selective prediction from the val predictions.

    ``val``: metrics.summarize on the full split (raw logits). ``calibration``:
    the study's fold (seed and size from ``evaluation``), T fitted on the
    calibration half, the evaluation half summarised raw and with T.
    ``coverage``: selective.coverage_table at ``evaluation.thresholds`` (raw).
    """
    bins = evaluation.ece_bins

    def summary(p: Predictions, temperature: float = 1.0) -> dict:
        return metrics.summarize(p.probs(temperature), p.labels, p.preds, p.tiers, class_tiers, bins)

    cal_idx, eval_idx = validate.calibration_fold(evaluation, len(pred.labels))
    fit = calibration.fit_temperature(pred.logits32()[cal_idx], pred.labels[cal_idx])
    half = pred.subset(eval_idx)
    return {
        "val": summary(pred),
        "calibration": {
            "fold_seed": evaluation.calibration_fold_seed, "cal_size": int(len(cal_idx)),
            "eval_size": int(len(eval_idx)), "fit": dataclasses.asdict(fit),
            "eval_half": summary(half), "eval_half_ts": summary(half, fit.temperature),
        },
        "coverage": selective.coverage_table(pred.probs(), pred.labels, evaluation.thresholds),
        "ece_bins": bins,
    }


# --------------------------------------------------------------------------- #
# The card
# --------------------------------------------------------------------------- #
def fmt(value: float, digits: int = 4) -> str:
    """A number as the card prints it; NaN (an empty tier) as an en dash."""
    return "\u2013" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def card_facts(cfg: Config, arm: ArmConfig, data_card: dict, teacher_card: dict, training: dict) -> dict:
    """What the card says about the run: the recipe and the data (no timings, no host paths).

    Only what `train@<arm>` tracks is read from ``cfg`` (the arm, student, optim, seed, max length);
    the data and the teacher are described by their stages' cards."""
    student = cfg.student
    backbone = (f"{student.repo_id} (revision {student.revision})" if student.source == "hub" else
                "a tiny ModernBERT built from a config: " + ", ".join(
                    f"{k} {v}" for k, v in dataclasses.asdict(student.tiny).items()))
    o = cfg.optim
    recipe = [("loss", arm.loss)]
    if arm.uses_teacher:
        recipe += [("distillation temperature T_d", f"{arm.kd_temperature:g}"), ("alpha (soft-term weight)", f"{arm.alpha:g}"),
                   ("teacher logits", f"{arm.teacher_logits} ({teacher_card.get('source', '?')} teacher)")]
        if arm.top_k is not None:
            recipe.append(("top-k", str(arm.top_k)))
    recipe += [("label smoothing", f"{arm.label_smoothing:g}"), ("backbone", backbone),
               ("training rows", f"{training['rows']:,} ({' + '.join(training['splits'])})"),
               ("epochs", str(o.epochs)), ("batch size", str(o.batch_size)), ("learning rate", f"{o.learning_rate:g}"),
               ("weight decay", f"{o.weight_decay:g}"), ("warmup ratio", f"{o.warmup_ratio:g}"),
               ("max grad norm", f"{o.max_grad_norm:g}"), ("mixed precision", training["precision"]),
               ("max length (tokens)", str(cfg.data.max_length)), ("seed", str(cfg.seed))]
    study_setup = (data_card.get("source") == "hub" and student.source == "hub"
                   and teacher_card.get("source") == "published")
    return {"arm": arm.name, "study_setup": study_setup, "synthetic": data_card.get("source") == "synthetic",
            "hub_student": student.source == "hub",
            "base_model": student.repo_id if student.source == "hub" else None,
            "dataset": data_card.get("hub_dataset"), "data": data_card.get("source_description", data_card.get("source")),
            "recipe": recipe, "n_classes": int(data_card["n_classes"]), "tier_classes": data_card["tier_classes"],
            "split_sizes": data_card["split_sizes"], "max_length": cfg.data.max_length}


def render_card(facts: dict, numbers: dict) -> str:
    """The model card (Markdown with the Hub's YAML header) from :func:`card_facts` and :func:`card_numbers`."""
    name, cal = facts["arm"], numbers["calibration"]
    fit, bins = cal["fit"], numbers["ece_bins"]
    meta = ["---", "library_name: transformers", "pipeline_tag: text-classification"]
    if facts["base_model"]:
        meta.append(f"base_model: {facts['base_model']}")
    if facts["dataset"]:
        meta += ["datasets:", f"- {facts['dataset']}"]
    meta += ["tags:", "- knowledge-distillation", "- kdlab", "---", ""]
    out = meta + [f"# kdlab student `{name}`: complaint narrative \u2192 one of {facts['n_classes']} issues", ""]
    if facts["synthetic"]:
        out += ["> **DEMO model**: trained on kdlab's synthetic complaints to exercise the pipeline. Its numbers "
                "describe the demo, not the study.", ""]
    elif not facts["study_setup"]:
        out += ["> **Not the study's setup** (see the recipe and data below): its numbers describe this run only.", ""]
    out += [f"Written by kdlab's `{stage_of(name)}` stage. Every number below is computed "
            "by kdlab from this model's own predictions on the validation split (`predictions.npz` beside this "
            "card); the study's tables add paired-bootstrap intervals.", "",
            "## Use", "", "```python", "from transformers import pipeline", "",
            f'clf = pipeline("text-classification", model="runs/{name}")  # this folder',
            'text = "I was charged a late fee after I paid on time."',
            f"clf(text, truncation=True)  # training saw the first {facts['max_length']} tokens",
            "```", "",
            f"Scores are the softmax of the raw logits. For temperature-scaled probabilities (T = {fmt(fit['temperature'])}, "
            "fitted below), ask for the logits and divide:", "",
            "```python", "import numpy as np", "",
            'out = clf(text, truncation=True, top_k=None, function_to_apply="none")  # every label, score = logit',
            f"z = np.array([o[\"score\"] for o in out]) / {fit['temperature']:.4f}",
            "probs = np.exp(z - z.max()); probs /= probs.sum()  # in the order of [o[\"label\"] for o in out]",
            "```", ""]
    out += ["## Recipe", ""] + _table(["setting", "value"], facts["recipe"]) + [""]
    tiers, sizes = facts["tier_classes"], facts["split_sizes"]
    out += ["## Data", "", f"{facts['data']}. Splits: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
            + f". Classes by training frequency: head {tiers['head']}, mid {tiers['mid']}, tail {tiers['tail']}.", ""]
    val = numbers["val"]
    out += [f"## Metrics on the validation split (n = {val['overall']['n']:,})", "",
            f"Macro F1 over a tier's classes on the tier's rows; ECE with {bins} equal-width bins; raw logits.", ""]
    out += _table(["tier", "n", "accuracy", "macro F1", "ECE", "NLL", "Brier"],
                  [[t, f"{val[t]['n']:,}", fmt(val[t]["accuracy"]), fmt(val[t]["macro_f1"]), fmt(val[t]["ece"]),
                    fmt(val[t]["nll"]), fmt(val[t]["brier"])] for t in ("overall", *TIERS)]) + [""]
    raw, ts = cal["eval_half"]["overall"], cal["eval_half_ts"]["overall"]
    converged = "converged" if fit["converged"] else f"NOT converged (|gradient| {fit['grad_norm']:.2g})"
    out += ["## Calibration", "",
            f"Temperature scaling: T = {fmt(fit['temperature'])} fitted by LBFGS on the calibration half of the "
            f"validation split (n = {cal['cal_size']:,}, fold seed {cal['fold_seed']}; {converged} after "
            f"{fit['iterations']} iterations), evaluated on the other half (n = {cal['eval_size']:,}).", ""]
    out += _table(["evaluation half", "ECE", "adaptive ECE", "NLL", "Brier", "mean confidence", "accuracy"],
                  [[label, fmt(b["ece"]), fmt(b["adaptive_ece"]), fmt(b["nll"]), fmt(b["brier"]),
                    fmt(b["mean_confidence"]), fmt(b["accuracy"])]
                   for label, b in (("raw", raw), (f"+ T ({fmt(fit['temperature'], 3)})", ts))]) + [""]
    out += ["## Selective prediction", "",
            "Keep a prediction only when its top score reaches a threshold (validation split, raw scores):", ""]
    out += _table(["top score \u2265", "coverage", "accuracy", "n kept"],
                  [[f"{r['threshold']:g}", fmt(r["coverage"]), fmt(r["accuracy"]), f"{r['n_covered']:,}"]
                   for r in numbers["coverage"]]) + [""]
    return "\n".join(out)


def publish_arm(folder: str | Path, model, tokenizer, pred: Predictions, cfg: Config, arm: ArmConfig,
                data_card: dict, teacher_card: dict, training: dict) -> None:
    """The hook ``train@<arm>`` calls: the loadable model folder and its ``README.md`` card.

    ``training`` needs ``rows``, ``splits`` and ``precision`` (the stage's record).
    """
    from kdlab.data import class_tiers_from_card

    source = "data/prepared/data_card.json"
    save_model_folder(folder, model, tokenizer, data_card["labels"], cfg.data.max_length, source)
    numbers = card_numbers(pred, class_tiers_from_card(data_card), cfg.evaluation)
    io.write_text(Path(folder) / CARD, render_card(card_facts(cfg, arm, data_card, teacher_card, training), numbers))
