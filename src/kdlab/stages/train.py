"""Stage `train@<arm>` (and `sweep@<T_d>-<alpha>`): one student, or (audit) its published predictions.

Every arm shares the data, seed, data order and optimiser recipe; only the
loss (and its targets) differ. A sweep cell is an arm whose recipe is its
stage name: KD from the temperature-scaled teacher at that T_d and alpha.
Outputs in runs/<arm>/: predictions.npz (val, see kdlab.predictions), arm.json,
model.safetensors + config.json, train_log.csv (per-step loss for `dvc plots`).
In audit mode an arm without a published file gets an arm.json that says so,
and nothing is faked. Every output is a function of the inputs DVC tracks (no
times, hosts or paths): how long it took goes to logs/<stage>.json, untracked.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

from kdlab import checkpoint, io, records, remote, validate
from kdlab.config import ArmConfig, Config, ConfigError, stage_of
from kdlab.paths import Layout
from kdlab.predictions import Predictions, save_predictions
from kdlab.published import convert_published_predictions
from kdlab.stages.common import run_stage, stage_main
from kdlab.teacher import load_logits

NOT_PUBLISHED = "not published (train mode)"


def arm_record(arm: ArmConfig) -> dict:
    return dataclasses.asdict(arm)


def from_published(cfg: Config, layout: Layout, arm: ArmConfig) -> dict:
    artifact, key = cfg.published.artifact(arm)
    if artifact is None:
        return {"arm": arm.name, "available": False, "reason": NOT_PUBLISHED, "config": arm_record(arm)}
    rows = validate.prepared_val(layout)  # pandas: only for arms with a file (an unpublished arm's stage starts faster)
    with tempfile.TemporaryDirectory(prefix="kdlab-arm-") as tmp:
        path, fetched = remote.fetch(artifact, key, tmp)
        save_predictions(layout.predictions(arm.name), convert_published_predictions(path, rows))
    return {"arm": arm.name, "available": True, "source": "published", "config": arm_record(arm),
            "file": fetched.as_dict()}


def trained(cfg: Config, layout: Layout, arm: ArmConfig, n_classes: int) -> tuple[dict, dict] | None:
    """Train the arm; return (arm.json record, run facts for the untracked log), or None in the
    processes other than the main one (several processes: `accelerate launch`), which write nothing."""
    # torch, transformers and accelerate (and pandas) load here, not at module import: an audit run
    # (16 arms, no training) would otherwise pay their ~2 s import in every train@<arm> process
    from kdlab import data
    from kdlab.fit import Recipe, Texts, fit_and_predict
    from kdlab.losses import make_loss_fn
    from kdlab.models import backbone_record, build_classifier
    from kdlab.tokenization import load_tokenizer
    from kdlab.model_card import publish_arm
    from kdlab.progress import speed_key

    splits = {name: data.load_split(layout.prepared, name) for name in data.SPLITS}
    teacher_logits = None
    if arm.uses_teacher:  # checked before anything is loaded or trained
        path = layout.teacher_train_test_final if arm.teacher_logits == "final" else layout.teacher_train_test_raw
        teacher_logits = load_logits(path, validate.prepared_train_test(layout, splits, n_classes))["logits"]
    tokenizer = load_tokenizer(layout.tokenizer)
    which = ["train", "test"] if arm.train_splits == "train+test" else ["train"]
    frame = data.training_frame(splits, which)
    if cfg.optim.max_train_samples:
        frame = frame.iloc[: cfg.optim.max_train_samples]
    max_len = cfg.data.max_length
    val = splits["val"]
    recipe = Recipe(stage=stage_of(arm.name), optim=cfg.optim, loss_fn=make_loss_fn(arm), seed=cfg.seed,
                    build=lambda _: build_classifier(cfg.student, n_classes, tokenizer, cfg.seed))
    fitted = fit_and_predict(recipe, tokenizer, max_len,
                             Texts(frame["text"].tolist(), frame["label"].to_numpy(), frame["teacher_row"].to_numpy()),
                             {"val": Texts(val["text"].tolist(), val["label"].to_numpy())},
                             teacher_logits=teacher_logits, log_path=layout.run(arm.name) / "train_log.csv")
    accelerator, model, summary, logits = fitted.accelerator, fitted.model, fitted.summary, fitted.logits["val"]
    if not accelerator.is_main_process:
        return None
    logits = validate.as_float16(f"train@{arm.name}: the model's val logits", logits,
                                 "training diverged: lower optim.learning_rate or set optim.precision to fp32")
    pred = Predictions.from_logits(val["row_id"].to_numpy(), logits, val["label"].to_numpy(),
                                   data.tier_codes_of(val))
    save_predictions(layout.predictions(arm.name), pred)
    training = {**summary.record, "rows": len(frame), "splits": which}
    # the folder loads with from_pretrained / pipeline; README.md is its model card (kdlab.model_card)
    publish_arm(layout.run(arm.name), model, tokenizer, pred, cfg, arm, records.data_card(layout),
                records.teacher_card(layout), training)
    record = {"arm": arm.name, "available": True, "source": "trained", "config": arm_record(arm),
              "training": training, "backbone": backbone_record(cfg.student, model)}
    speed = speed_key(cfg.student, cfg.optim, max_len, accelerator.num_processes)
    return record, {**summary.run_facts, "speed_key": speed}


def check_arm(arm: ArmConfig, n_classes: int, source: str) -> None:
    """What only the data can tell: a top-k cannot keep more classes than there are."""
    if arm.top_k is not None and arm.top_k > n_classes:
        raise ConfigError(f"{source}: arms.{arm.name}.top_k: expected 1..{n_classes} (the classes of "
                          f"data_card.json), found {arm.top_k}")


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    arm = cfg.arm(args.arm)
    card = records.data_card(layout)
    check_arm(arm, card["n_classes"], cfg.source_file)
    layout.run(arm.name).mkdir(parents=True, exist_ok=True)
    facts: dict = {}
    if cfg.arm_source == "published":
        record = from_published(cfg, layout, arm)
    else:
        result = trained(cfg, layout, arm, card["n_classes"])
        if result is None:
            return
        record, facts = result
    io.write_json(layout.arm_card(arm.name), record)
    io.write_json(layout.run_log(stage_of(arm.name)), facts)
    if cfg.arm_source != "published":
        checkpoint.remove(checkpoint.checkpoint_folder(stage_of(arm.name)))  # the outputs are complete
    print(f"{stage_of(arm.name)}: {record.get('source', record.get('reason'))}"
          + (f", {facts['seconds']} s on {facts['device']}" if facts else ""))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", required=True, help="an arm of params.yaml `arms`, or a sweep cell sweep@<T_d>-<alpha>")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, add_arguments, stage_name=lambda a: stage_of(a.arm))


if __name__ == "__main__":
    run_stage(main)
