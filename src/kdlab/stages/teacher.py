"""Stage `teacher`: teacher logits for train+test and val, raw and temperature-scaled.

``teacher.source: published`` downloads the Qwen3-32B + LoRA logits (pinned),
checks shapes, finiteness and that stored labels equal the prepared labels row
by row. ``trained`` (a tiny ModernBERT in the demo, ModernBERT-base on a GPU)
and ``lora`` (Qwen3 + a LoRA adapter + a classification head, kdlab.lora) are
trained by kdlab on train+test minus a held-out calibration fold, through the
students' path (kdlab.fit); a post-hoc temperature is fitted on that fold, and
the same files are written. Output: data/teacher/ (see kdlab.teacher for the
format), metadata.json, teacher_card.json and, for ``lora``, the peft adapter
in data/teacher/adapter/.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from kdlab import calibration, checkpoint, data, io, metrics, records, remote, teacher, validate
from kdlab.arms import load_teacher_val
from kdlab.checkpoint import ModelState
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import StageError, fixed_name, run_stage, stage_main

if TYPE_CHECKING:  # kdlab.fit loads the training code, which reading published logits does not need
    from kdlab.fit import Recipe

STAGE = "teacher"
CALIBRATION_FOLD = "held-out calibration rows of train+test"


def published(cfg: Config, layout: Layout, splits: dict, n_classes: int) -> dict:
    """Fetch and validate the published files, then write data/teacher/; return metadata for the card.
    Every file is checked (and the raw val logits derived) before the first one is written."""
    pub, records, files = cfg.teacher.published, [], {}
    with tempfile.TemporaryDirectory(prefix="kdlab-teacher-") as tmp:
        def get(artifact, what):
            path, rec = remote.fetch(artifact, what, tmp)
            records.append(rec.as_dict())
            return path

        val_path = get(pub.val_final, "teacher.published.val_final")
        val_final = teacher.load_logits(val_path, validate.prepared_val(layout), with_tiers=True,
                                        remedy=validate.DOWNLOAD)
        meta_path = get(pub.metadata, "teacher.published.metadata") if pub.metadata else None
        found = teacher.temperature_from_metadata(meta_path)
        temperature = found or cfg.teacher.expected_temperature
        meta = {"source": "published", "temperature": temperature,
                "temperature_from": "metadata.json" if found else "teacher.expected_temperature"}
        if cfg.teacher.need_train_logits:
            tt_rows = validate.prepared_train_test(layout, splits, n_classes)
            for kind, artifact in (("raw", pub.train_test_raw), ("final", pub.train_test_final)):
                files[layout.teacher / f"train_test_logits_{kind}.npz"] = teacher.load_logits(
                    get(artifact, f"teacher.published.train_test_{kind}"), tt_rows, remedy=validate.DOWNLOAD)
                meta[f"train_test_{kind}_rows"] = tt_rows.n
            meta["implied_temperature"] = teacher.implied_temperature(files[layout.teacher_train_test_raw]["logits"],
                                                                      files[layout.teacher_train_test_final]["logits"])
    if temperature is None:
        raise StageError("teacher: no temperature in metadata.json and teacher.expected_temperature is null; "
                         "set teacher.expected_temperature to derive the raw val logits")
    raw_val = validate.as_float16(f"{val_path} x temperature {temperature:g}",
                                  val_final["logits"].astype(np.float32) * np.float32(temperature),
                                  "the raw val logits (val_logits_final x T) cannot be stored: check the temperature "
                                  "in metadata.json or teacher.expected_temperature")
    files[layout.teacher_val_final] = val_final
    files[layout.teacher_val_raw] = {"logits": raw_val, "labels": val_final["labels"], "tiers": val_final["tiers"]}
    for path, arrays in files.items():
        io.save_npz(path, **arrays)
    meta["val_raw"] = "derived: val_logits_final x temperature (only the scaled val logits are published)"
    meta["files"] = records
    return meta


@dataclass(frozen=True)
class TeacherParts:
    """What differs between the teachers kdlab trains: the recipe (kdlab.fit), the tokenizer, the
    spec the run's speed is keyed to (kdlab.progress.speed_key), and ``finish(model)``, which writes what
    the model leaves besides logits and returns the metadata that describes it."""

    recipe: Recipe
    tokenizer: Any
    speed_spec: Any
    finish: Callable[[Any], dict]


def modernbert_teacher(cfg: Config, layout: Layout, n_classes: int) -> TeacherParts:
    """``teacher.source: trained``: a ModernBERT (tiny, or -base at a pinned commit) with the students' tokenizer."""
    from kdlab.fit import Recipe
    from kdlab.losses import ce_loss
    from kdlab.models import build_classifier
    from kdlab.tokenization import load_tokenizer

    spec = cfg.teacher.trained
    tokenizer = load_tokenizer(layout.tokenizer)
    recipe = Recipe(stage=STAGE, optim=spec.optim, loss_fn=lambda s, t, y: ce_loss(s, y), seed=cfg.seed,
                    build=lambda _: build_classifier(spec.backbone, n_classes, tokenizer, cfg.seed))
    return TeacherParts(recipe, tokenizer, spec.backbone, lambda model: {"backbone": dataclasses.asdict(spec.backbone)})


def lora_teacher(cfg: Config, layout: Layout, n_classes: int) -> TeacherParts:
    """``teacher.source: lora``: Qwen3 + a LoRA adapter + a classification head (kdlab.lora); the base's
    own tokenizer (a tiny base: the students'), padding set explicitly; a checkpoint keeps only the
    trainable tensors; the adapter is saved under data/teacher/adapter."""
    from kdlab import lora
    from kdlab.fit import Recipe
    from kdlab.losses import ce_loss
    from kdlab.tokenization import load_tokenizer

    spec = cfg.teacher.lora
    lora.require_4bit_support(spec.model)  # before anything is downloaded
    if spec.model.source == "hub":
        tokenizer = lora.load_base_tokenizer(spec.model)
    else:
        tokenizer = load_tokenizer(layout.tokenizer)
        lora.configure_padding(tokenizer, spec.model)

    def finish(model) -> dict:
        lora.save_lora_teacher(model, tokenizer, layout.teacher_adapter, spec.model, n_classes, cfg.seed)
        saved = io.read_json(layout.teacher_adapter / lora.ADAPTER_CONFIG)  # what peft wrote, in its own keys
        config = {k: saved.get(k) for k in ("peft_type", "task_type", "r", "lora_alpha", "lora_dropout",
                                             "target_modules", "modules_to_save", "bias", "revision")}
        return {"backbone": lora.teacher_record(model, spec.model),
                "adapter": {"folder": layout.teacher_adapter.name, "config": config,
                            "reload": "kdlab.lora.load_lora_teacher(folder), or peft.PeftModel.from_pretrained"}}

    recipe = Recipe(stage=STAGE, optim=spec.optim, loss_fn=lambda s, t, y: ce_loss(s, y), seed=cfg.seed,
                    build=lambda accelerator: lora.build_lora_teacher(spec.model, n_classes, tokenizer, cfg.seed,
                                                                      accelerator.mixed_precision),
                    model_state=ModelState(lora.trainable_state_dict, lora.load_trainable_state_dict),
                    prepare=lambda name, rows: lora.ready_for_pooling(rows, tokenizer, f"teacher: the {name} texts"))
    return TeacherParts(recipe, tokenizer, spec.model, finish)


def trained(cfg: Config, layout: Layout, splits: dict, n_classes: int) -> dict:
    """Train the teacher of ``teacher.trained`` or ``teacher.lora`` on train+test minus a held-out
    calibration fold, fit its temperature on that fold, write the published files; return the metadata."""
    # the training stack loads only here: reading published logits (audit) needs none of it
    from kdlab.fit import Texts, fit_and_predict
    from kdlab.progress import speed_key

    key = f"teacher.{cfg.teacher.source}"
    own = cfg.teacher.own
    teacher = (modernbert_teacher if cfg.teacher.source == "trained" else lora_teacher)(cfg, layout, n_classes)
    frame = data.training_frame(splits, ["train", "test"])
    labels_tt = frame["label"].to_numpy()
    fit_rows, cal_rows = data.stratified_val_split(labels_tt, own.calibration_fraction, cfg.seed)
    texts = frame["text"]
    val = splits["val"]
    fitted = fit_and_predict(teacher.recipe, teacher.tokenizer, cfg.data.max_length,
                             Texts(texts.iloc[fit_rows].tolist(), labels_tt[fit_rows]),
                             {"train+test": Texts(texts.tolist(), labels_tt),
                              "val": Texts(val["text"].tolist(), val["label"].to_numpy())},
                             log_path=layout.teacher / "train_log.csv")
    raw_tt, raw_val = fitted.logits["train+test"], fitted.logits["val"]
    diverged = f"training diverged: lower {key}.optim.learning_rate or set its precision to fp32"

    def fp16(values, what):
        return validate.as_float16(f"teacher: the trained teacher's {what}", values, diverged)

    validate.check_finite("teacher: the trained teacher's train+test logits", raw_tt, "logits", diverged)
    validate.check_finite("teacher: the trained teacher's val logits", raw_val, "logits", diverged)
    temp = calibration.fit_temperature(raw_tt[cal_rows], labels_tt[cal_rows])
    if not temp.converged:
        raise StageError(f"teacher: temperature fit did not converge (|grad| {temp.grad_norm:.3g}, "
                         f"T {temp.temperature:.4g}); increase {key}.calibration_fraction")
    val_labels, val_tiers = val["label"].to_numpy(), data.tier_codes_of(val)
    files = {  # every cast checked before the first file is written
        layout.teacher_train_test_raw: dict(logits=fp16(raw_tt, "train+test logits"), labels=labels_tt),
        layout.teacher_train_test_final: dict(logits=fp16(raw_tt / temp.temperature, "scaled train+test logits"),
                                              labels=labels_tt),
        layout.teacher_val_raw: dict(logits=fp16(raw_val, "val logits"), labels=val_labels, tiers=val_tiers),
        layout.teacher_val_final: dict(logits=fp16(raw_val / temp.temperature, "scaled val logits"),
                                       labels=val_labels, tiers=val_tiers),
    }
    for path, arrays in files.items():
        io.save_npz(path, **arrays)
    summary = fitted.summary
    return {"source": cfg.teacher.source, "temperature": temp.temperature,
            "temperature_fit": {**temp.__dict__, "fold": CALIBRATION_FOLD, "rows": int(len(cal_rows))},
            "training": {**summary.record, "rows": int(len(fit_rows))}, **teacher.finish(fitted.model),
            "run_facts": {**summary.run_facts,
                          "speed_key": speed_key(teacher.speed_spec, own.optim, cfg.data.max_length, 1)}}


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    card_in = records.data_card(layout)
    n_classes = card_in["n_classes"]
    splits = {name: data.load_split(layout.prepared, name) for name in data.SPLITS}
    layout.teacher.mkdir(parents=True, exist_ok=True)
    meta = (published if cfg.teacher.source == "published" else trained)(cfg, layout, splits, n_classes)
    io.write_json(layout.run_log("teacher"), meta.pop("run_facts", {}))
    io.write_json(layout.teacher / "metadata.json", meta)

    class_tiers = data.class_tiers_from_card(card_in)
    rows = validate.prepared_val(layout)
    card = {"source": meta["source"], "temperature": meta["temperature"]}
    if "backbone" in meta:  # what the report's labels name (a trained teacher's size)
        card["backbone"] = meta["backbone"]
    if "temperature_fit" in meta:  # a teacher kdlab trained: where its T comes from
        fit = meta["temperature_fit"]
        card["temperature_fit"] = {"fold": fit["fold"], "rows": fit["rows"], "converged": fit["converged"],
                                   "calibration_fraction": cfg.teacher.own.calibration_fraction}
    for name in ("final", "raw"):
        pred = load_teacher_val(layout, rows, name)  # read back as every later stage reads it
        card[name] = metrics.summarize(metrics.softmax(pred.logits32()), pred.labels, pred.preds, pred.tiers,
                                       class_tiers, cfg.evaluation.ece_bins)
    io.write_json(layout.teacher_card, card)
    checkpoint.remove(checkpoint.checkpoint_folder(STAGE))  # the outputs are complete
    f = card["final"]
    print(f"teacher ({meta['source']}): val macro F1 {f['overall']['macro_f1']:.4f}, ECE {f['overall']['ece']:.4f}, "
          f"NLL {f['overall']['nll']:.4f}, T {meta['temperature']:.4f}; tier F1 "
          + " / ".join(f"{t} {f[t]['macro_f1']:.3f}" for t in ("head", "mid", "tail")))


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, stage_name=fixed_name(STAGE))


if __name__ == "__main__":
    run_stage(main)
