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

from kdlab import calibration, checkpoint, data, io, metrics, remote, teacher
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import StageError, fixed_name, run_stage, stage_main

STAGE = "teacher"


def published(cfg: Config, layout: Layout, splits: dict, n_classes: int) -> dict:
    """Fetch and validate the published files; return metadata for the card."""
    pub, records = cfg.teacher.published, []
    with tempfile.TemporaryDirectory(prefix="kdlab-teacher-") as tmp:
        def get(artifact, what):
            path, rec = remote.fetch(artifact, what, tmp)
            records.append(rec.as_dict())
            return path

        val = splits["val"]
        val_labels, val_tiers = val["label"].to_numpy(), data.tier_codes_of(val)
        val_final = teacher.load_published_logits(get(pub.val_final, "teacher.published.val_final"),
                                                  val_labels, n_classes, tiers=val_tiers)
        meta_path = get(pub.metadata, "teacher.published.metadata") if pub.metadata else None
        temperature = teacher.temperature_from_metadata(meta_path) or cfg.teacher.expected_temperature
        meta = {"source": "published", "temperature": temperature,
                "temperature_from": "metadata.json" if meta_path and teacher.temperature_from_metadata(meta_path)
                else "teacher.expected_temperature"}
        if cfg.teacher.need_train_logits:
            tt_labels = data.training_frame(splits, ["train", "test"])["label"].to_numpy()
            for kind, artifact in (("raw", pub.train_test_raw), ("final", pub.train_test_final)):
                arrays = teacher.load_published_logits(get(artifact, f"teacher.published.train_test_{kind}"),
                                                       tt_labels, n_classes)
                io.save_npz(layout.teacher / f"train_test_logits_{kind}.npz", **arrays)
                meta[f"train_test_{kind}_rows"] = len(tt_labels)
            raw = np.load(layout.teacher_train_test_raw)["logits"]
            final = np.load(layout.teacher_train_test_final)["logits"]
            meta["implied_temperature"] = teacher.implied_temperature(raw, final)
    if temperature is None:
        raise StageError("teacher: no temperature in metadata.json and teacher.expected_temperature is null; "
                         "set teacher.expected_temperature to derive the raw val logits")
    io.save_npz(layout.teacher_val_final, **val_final)
    raw_val = (val_final["logits"].astype(np.float32) * np.float32(temperature)).astype(np.float16)
    io.save_npz(layout.teacher_val_raw, logits=raw_val, labels=val_final["labels"], tiers=val_final["tiers"])
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
    temp = calibration.fit_temperature(raw_tt[cal_rows], frame["label"].to_numpy()[cal_rows])
    if not temp.converged:
        raise StageError(f"teacher: temperature fit did not converge (|grad| {temp.grad_norm:.3g}, "
                         f"T {temp.temperature:.4g}); increase teacher.trained.calibration_fraction")
    labels_tt = frame["label"].to_numpy()
    io.save_npz(layout.teacher_train_test_raw, logits=raw_tt.astype(np.float16), labels=labels_tt)
    io.save_npz(layout.teacher_train_test_final, logits=(raw_tt / temp.temperature).astype(np.float16),
                labels=labels_tt)
    val_labels, val_tiers = splits["val"]["label"].to_numpy(), data.tier_codes_of(splits["val"])
    io.save_npz(layout.teacher_val_raw, logits=raw_val.astype(np.float16), labels=val_labels, tiers=val_tiers)
    io.save_npz(layout.teacher_val_final, logits=(raw_val / temp.temperature).astype(np.float16),
                labels=val_labels, tiers=val_tiers)
    return {"source": "trained", "temperature": temp.temperature,
            "temperature_fit": {**temp.__dict__, "fold": "held-out calibration rows of train+test",
                                "rows": int(len(cal_rows))},
            "training": {**summary.record, "rows": int(len(fit_rows))}, "backbone": dataclasses.asdict(spec.backbone),
            "run_facts": {**summary.run_facts, "speed_key": speed_key(spec.backbone, spec.optim, max_len, 1)}}


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    card_in = io.read_json(layout.data_card)
    n_classes = card_in["n_classes"]
    splits = {name: data.load_split(layout.prepared, name) for name in data.SPLITS}
    layout.teacher.mkdir(parents=True, exist_ok=True)
    meta = (published if cfg.teacher.source == "published" else trained)(cfg, layout, splits, n_classes)
    io.write_json(layout.run_log("teacher"), meta.pop("run_facts", {}))
    io.write_json(layout.teacher / "metadata.json", meta)

    class_tiers = data.class_tiers_from_card(card_in)
    val = io.load_npz(layout.teacher_val_final)
    val_raw = io.load_npz(layout.teacher_val_raw)
    card = {"source": meta["source"], "temperature": meta["temperature"]}
    if "backbone" in meta:  # what the report's labels name (a trained teacher's size)
        card["backbone"] = meta["backbone"]
    for name, arrays in (("final", val), ("raw", val_raw)):
        probs = metrics.softmax(arrays["logits"].astype(np.float32))
        preds = arrays["logits"].astype(np.float32).argmax(axis=1)
        card[name] = metrics.summarize(probs, arrays["labels"], preds, arrays["tiers"], class_tiers,
                                       cfg.evaluation.ece_bins)
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
