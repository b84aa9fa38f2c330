"""The LoRA teacher as a stage (``teacher.source: lora``, kdlab.stages.teacher), on CPU and offline.

The base is a tiny random Qwen3 saved as a local causal-LM checkpoint standing in for the Hub repository
(``source: hub`` with a local path and a 40-hex revision), so the stage goes through the Hub branch: the
base's own tokenizer, the pinned revision recorded, the base weights loaded and frozen. The data are a
small synthetic corpus prepared by the real `prepare` and `tokenizer` stages. (The model itself:
tests/test_lora.py; the stage under DVC through to the report: tests/test_e2e_lora_teacher.py.)
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import composed
from kdlab import io, teacher, validate
from kdlab.paths import Layout

SIZES = {"n_train": 300, "n_val": 150, "n_test": 150}
ROWS_PER_BATCH, EPOCHS, EVERY = 16, 2, 5
REVISION = "0123456789abcdef0123456789abcdef01234567"


class Died(Exception):
    """The process 'dies' here (before an optimizer step)."""


def stage(name: str, root: Path, *argv: str) -> None:
    """Run a stage's entry point in-process in ``root`` (no dvc.yaml there: every param is readable)."""
    import importlib

    module = importlib.import_module(f"kdlab.stages.{name}")
    with contextlib.chdir(root):
        assert module.main(list(argv)) == 0, f"stage {name} failed"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A repository with data/prepared and data/tokenizer from the real stages (demo profile, small)."""
    root = tmp_path_factory.mktemp("lora-prepared")
    raw = composed("profile=demo", "teacher=lora_tiny")
    raw["data"]["synthetic"].update(SIZES)
    raw["data"]["max_length"] = 32
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    stage("prepare", root)
    stage("tokenizer", root)
    return root


@pytest.fixture(scope="module")
def hub_base(prepared, tmp_path_factory) -> Path:
    """A tiny Qwen3 causal LM and its tokenizer saved as a Hub checkpoint would be (no score head)."""
    import torch
    from transformers import Qwen3ForCausalLM

    from kdlab.lora import LoraTeacherSpec, configure_padding, tiny_config
    from kdlab.tokenization import load_tokenizer

    folder = tmp_path_factory.mktemp("hub") / "Qwen3-tiny"
    tokenizer = load_tokenizer(Layout(prepared).tokenizer)
    configure_padding(tokenizer, LoraTeacherSpec(source="tiny"))
    torch.manual_seed(0)
    Qwen3ForCausalLM(tiny_config(LoraTeacherSpec(source="tiny"), 2, tokenizer)).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def lora_repo(prepared: Path, hub_base: Path, dest: Path) -> Path:
    """A copy of ``prepared`` whose params train a LoRA teacher on ``hub_base`` at ``REVISION``."""
    shutil.copytree(prepared, dest)
    raw = yaml.safe_load((dest / "params.yaml").read_text())
    lora = raw["teacher"]["lora"]
    lora["model"].update(source="hub", repo_id=str(hub_base), revision=REVISION, rank=4, alpha=8,
                         target_modules=["q_proj", "v_proj", "down_proj"])
    lora["optim"].update(epochs=EPOCHS, batch_size=ROWS_PER_BATCH, checkpoint_every=EVERY, log_every=5)
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def files(root: Path) -> dict[str, bytes]:
    """Every file the teacher stage wrote (data/teacher, the adapter folder included), by relative path."""
    folder = Layout(root).teacher
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(prepared, hub_base, tmp_path_factory) -> Path:
    root = lora_repo(prepared, hub_base, tmp_path_factory.mktemp("lora-teacher") / "repo")
    stage("teacher", root)
    return root


def test_the_outputs_pass_the_published_files_validation(trained):
    from kdlab import data

    layout = Layout(trained)
    card_in = io.read_json(layout.data_card)
    splits = {name: data.load_split(layout.prepared, name) for name in data.SPLITS}
    tt_rows = validate.prepared_train_test(layout, splits, card_in["n_classes"])
    raw = teacher.load_logits(layout.teacher_train_test_raw, tt_rows)["logits"].astype(np.float32)
    final = teacher.load_logits(layout.teacher_train_test_final, tt_rows)["logits"].astype(np.float32)
    val_rows = validate.prepared_val(layout)
    val_raw = teacher.load_logits(layout.teacher_val_raw, val_rows, with_tiers=True)
    val_final = teacher.load_logits(layout.teacher_val_final, val_rows, with_tiers=True)
    assert raw.shape == (len(splits["train"]) + len(splits["test"]), card_in["n_classes"])
    meta = io.read_json(layout.teacher / "metadata.json")
    t = meta["temperature"]
    assert meta["source"] == "lora" and meta["temperature_fit"]["converged"] and t > 0
    assert teacher.implied_temperature(raw, final) == pytest.approx(t, rel=2e-3)
    np.testing.assert_allclose(val_final["logits"].astype(np.float32),
                               (val_raw["logits"].astype(np.float32) / t), rtol=2e-3, atol=2e-3)
    cal = meta["temperature_fit"]["rows"]
    assert meta["training"]["rows"] + cal == raw.shape[0] and cal > 0  # the fold is held out of training
    assert meta["training"]["steps"] == EPOCHS * -(-meta["training"]["rows"] // ROWS_PER_BATCH)


def test_metadata_and_card_name_the_base_revision_adapter_and_fold(trained, hub_base):
    layout = Layout(trained)
    meta = io.read_json(layout.teacher / "metadata.json")
    base = meta["backbone"]
    assert (base["architecture"], base["source"], base["repo_id"], base["revision"]) == \
        ("Qwen3 + LoRA", "hub", str(hub_base), REVISION)
    assert base["adapter"]["rank"] == 4 and base["adapter"]["target_modules"] == ["q_proj", "v_proj", "down_proj"]
    config = meta["adapter"]["config"]
    assert (config["task_type"], config["r"], config["lora_alpha"]) == ("SEQ_CLS", 4, 8)
    assert config["target_modules"] == ["down_proj", "q_proj", "v_proj"] and "score" in config["modules_to_save"]
    assert config["revision"] == REVISION
    card = io.read_json(layout.teacher_card)
    assert card["source"] == "lora" and card["backbone"] == base
    assert card["temperature_fit"]["fold"] == "held-out calibration rows of train+test"
    assert card["temperature_fit"]["calibration_fraction"] == 0.1 and card["temperature_fit"]["converged"]
    from kdlab.report.provenance import RunFacts, teacher_phrase

    phrase = teacher_phrase(RunFacts.from_cards({"source": "synthetic"}, card, []))
    assert f"({hub_base}, rank-4 adapter; " in phrase and " parameters, " in phrase and " trainable)" in phrase


def test_the_saved_adapter_reloads_with_peft_to_the_stored_logits(trained):
    """data/teacher/adapter: safetensors only, loads with peft onto the base, and predicts the val logits
    the stage stored (fp16 there)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from kdlab import data
    from kdlab.lora import load_lora_teacher
    from kdlab.train import encode, make_accelerator, predict_logits

    layout = Layout(trained)
    folder = layout.teacher_adapter
    names = sorted(p.name for p in folder.iterdir())
    assert {"adapter_config.json", "adapter_model.safetensors", "kdlab_lora_teacher.json"} <= set(names)
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))] and "tiny_base" not in names
    model, tokenizer, meta = load_lora_teacher(folder)
    val = data.load_split(layout.prepared, "val")
    rows = encode(val["text"].tolist(), val["label"].to_numpy(), tokenizer, 32)
    accelerator = make_accelerator(yaml_optim(trained))
    got = predict_logits(accelerator, model, rows, 64, tokenizer.pad_token_id)
    stored = io.load_npz(layout.teacher_val_raw)["logits"]
    np.testing.assert_array_equal(got.astype(np.float16), stored)
    # plain peft, as a user without kdlab would: the same base, the adapter (with the trained head) on top
    base = AutoModelForSequenceClassification.from_pretrained(meta["spec"]["repo_id"], num_labels=meta["n_classes"])
    base.config.pad_token_id = tokenizer.pad_token_id
    plain = PeftModel.from_pretrained(base, str(folder))
    np.testing.assert_allclose(predict_logits(accelerator, plain, rows, 64, tokenizer.pad_token_id), got,
                               rtol=1e-5, atol=1e-5)


def yaml_optim(root: Path):
    from kdlab.config import load_config

    return load_config(root / "params.yaml").teacher.lora.optim


def test_an_interrupted_lora_teacher_resumes_from_adapter_only_checkpoints(prepared, hub_base, trained, tmp_path,
                                                                           monkeypatch, capsys):
    """The stage's checkpoints go through its model-state hook (adapter + head only); killed at step 7,
    the rerun resumes at step 5 and writes every file byte for byte as the uninterrupted run did."""
    from safetensors.torch import load_file

    from kdlab import checkpoint, fingerprint, train
    from kdlab.checkpoint import Checkpointing, ModelState

    root = lora_repo(prepared, hub_base, tmp_path / "repo")
    fingerprint_ = {"stage": "teacher", "cmd": "python -m kdlab.stages.teacher", "params": {}, "deps": {}}

    def checkpointing(stage_name, every, model_state=ModelState()):  # what a dvc.yaml stage would get
        return Checkpointing(checkpoint.checkpoint_folder(stage_name), fingerprint_, every, model_state)

    monkeypatch.setattr(fingerprint, "stage_checkpointing", checkpointing)
    real_step, steps = train.training_step, []

    def dies_at_step_7(*args, **kwargs):
        if len(steps) == 6:
            raise Died
        steps.append(1)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train, "training_step", dies_at_step_7)
    with pytest.raises(Died):
        stage("teacher", root)
    saved = root / "checkpoints" / "teacher" / "step-0000005"
    assert json.loads((root / "checkpoints" / "teacher" / "latest.json").read_text()) == {"folder": saved.name}
    tensors = load_file(str(saved / "model.safetensors"))
    assert tensors and all(".lora_A." in k or ".lora_B." in k or k.endswith("score.weight") for k in tensors)
    trainable = io.read_json(Layout(trained).teacher / "metadata.json")["backbone"]["trainable_parameters"]
    assert sum(v.numel() for v in tensors.values()) == trainable  # not the frozen base

    monkeypatch.setattr(train, "training_step", real_step)
    capsys.readouterr()
    stage("teacher", root)
    assert "resuming at step 5 " in capsys.readouterr().out
    assert not (root / "checkpoints" / "teacher").exists()
    got, expected = files(root), files(trained)
    assert got.keys() == expected.keys()
    assert [name for name in expected if got[name] != expected[name]] == []


def test_the_4bit_switch_is_refused_before_anything_loads_without_cuda(prepared, hub_base, tmp_path, monkeypatch,
                                                                       capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    root = lora_repo(prepared, hub_base, tmp_path / "repo")
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["teacher"]["lora"]["model"]["load_in_4bit"] = True
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    import kdlab.stages.teacher as teacher_stage

    with contextlib.chdir(root):
        assert teacher_stage.main([]) == 1
    err = capsys.readouterr().err
    assert "teacher.lora.model.load_in_4bit is true" in err and "no CUDA device is visible" in err
    assert not list(Layout(root).teacher.glob("*.npz"))
