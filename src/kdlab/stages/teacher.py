"""Stage `teacher`: teacher logits for train+test and val, raw and temperature-scaled.

``teacher.source: published`` downloads the Qwen3-32B + LoRA logits (pinned),
checks shapes, finiteness and that stored labels equal the prepared labels row
by row. ``trained`` (demo) trains a larger tiny ModernBERT with kdlab's own
trainer on train+test minus a held-out calibration fold, fits a post-hoc
temperature on that fold, and writes the same files. Output: data/teacher/
(see kdlab.teacher for the format) and teacher_card.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import numpy as np

from kdlab import calibration, checkpoint, data, io, metrics, records, remote, teacher, validate
from kdlab.arms import load_teacher_val
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import StageError, fixed_name, run_stage, stage_main

STAGE = "teacher"


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


def trained(cfg: Config, layout: Layout, splits: dict, n_classes: int) -> dict:
    """Train a teacher with kdlab's own trainer (demo profile) and fit its temperature."""
    # the training stack loads only here: reading published logits (audit) needs none of it
    from kdlab.losses import ce_loss
    from kdlab.models import build_classifier
    from kdlab.tokenization import load_tokenizer
    from kdlab.device import require_device
    from kdlab.fingerprint import stage_checkpointing
    from kdlab.progress import speed_key
    from kdlab.train import encode, make_accelerator, predict_logits, train_classifier

    spec = cfg.teacher.trained
    require_device(spec.optim, "teacher")
    checkpointing = stage_checkpointing(STAGE, spec.optim.checkpoint_every)
    tokenizer = load_tokenizer(layout.tokenizer)
    frame = data.training_frame(splits, ["train", "test"])
    fit_rows, cal_rows = data.stratified_val_split(frame["label"].to_numpy(), spec.calibration_fraction, cfg.seed)
    max_len = cfg.data.max_length
    fit = encode(frame["text"].iloc[fit_rows].tolist(), frame["label"].to_numpy()[fit_rows], tokenizer, max_len)
    everything = encode(frame["text"].tolist(), frame["label"].to_numpy(), tokenizer, max_len)
    val = encode(splits["val"]["text"].tolist(), splits["val"]["label"].to_numpy(), tokenizer, max_len)

    accelerator = make_accelerator(spec.optim)
    model = build_classifier(spec.backbone, n_classes, tokenizer, cfg.seed)
    summary, model = train_classifier(
        accelerator, model, fit, spec.optim, lambda s, t, y: ce_loss(s, y), tokenizer.pad_token_id, cfg.seed,
        log_path=layout.teacher / "train_log.csv", desc=STAGE, checkpointing=checkpointing,
    )
    raw_tt = predict_logits(accelerator, model, everything, spec.optim.eval_batch_size, tokenizer.pad_token_id)
    raw_val = predict_logits(accelerator, model, val, spec.optim.eval_batch_size, tokenizer.pad_token_id)
    diverged = "training diverged: lower teacher.trained.optim.learning_rate or set its precision to fp32"

    def fp16(values, what):
        return validate.as_float16(f"teacher: the trained teacher's {what}", values, diverged)

    validate.check_finite("teacher: the trained teacher's train+test logits", raw_tt, "logits", diverged)
    validate.check_finite("teacher: the trained teacher's val logits", raw_val, "logits", diverged)
    temp = calibration.fit_temperature(raw_tt[cal_rows], frame["label"].to_numpy()[cal_rows])
    if not temp.converged:
        raise StageError(f"teacher: temperature fit did not converge (|grad| {temp.grad_norm:.3g}, "
                         f"T {temp.temperature:.4g}); increase teacher.trained.calibration_fraction")
    labels_tt = frame["label"].to_numpy()
    val_labels, val_tiers = splits["val"]["label"].to_numpy(), data.tier_codes_of(splits["val"])
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
    return {"source": "trained", "temperature": temp.temperature,
            "temperature_fit": {**temp.__dict__, "fold": "held-out calibration rows of train+test",
                                "rows": int(len(cal_rows))},
            "training": {**summary.record, "rows": int(len(fit_rows))}, "backbone": dataclasses.asdict(spec.backbone),
            "run_facts": {**summary.run_facts, "speed_key": speed_key(spec.backbone, spec.optim, max_len, 1)}}


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
