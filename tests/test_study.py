"""Stage `study` and the check that the stages after training run with the configuration DVC recorded."""

from __future__ import annotations

import copy

import pytest
import yaml

from kdlab import io
from kdlab.config import config_from_mapping
from kdlab.resolved import config_record, record_differences
from kdlab.paths import Layout
from kdlab.stages import study
from kdlab.stages.common import STUDY_KEYS, StageError, check_study, fixed_name, stage_main

from conftest import composed

KEYS = list(STUDY_KEYS)


def write_params(root, raw: dict):
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return config_from_mapping(raw, str(root / "params.yaml"))


def demo_raw() -> dict:
    return composed("profile=demo")


def test_record_holds_the_keys_the_later_stages_read(params_raw):
    train = config_record(config_from_mapping(params_raw), KEYS)
    demo = config_record(config_from_mapping(demo_raw()), KEYS)
    assert sorted(train) == sorted(KEYS) and train["profile"] == "train" and demo["profile"] == "demo"
    assert sorted(train["arms"]) == sorted(params_raw["arms"]) and train["arms"]["kd"]["alpha"] == 0.7
    assert train["sweep"] == {"kd_temperature": [1, 4, 8], "alpha": [0.7, 0.9]}
    assert train["evaluation"]["bootstrap"]["resamples"] == params_raw["evaluation"]["bootstrap"]["resamples"]
    assert demo["evaluation"]["bootstrap"]["resamples"] == 1000
    assert "optim" not in train and "student" not in train  # not read after training


def test_an_edit_the_later_stages_do_not_read_leaves_the_record_alone():
    raw = demo_raw()
    before = config_record(config_from_mapping(raw), KEYS)
    raw["optim"]["log_every"] = 99
    raw["data"]["max_length"] = 32
    assert config_record(config_from_mapping(raw), KEYS) == before


def test_record_differences_lists_dotted_paths():
    a = {"arms": [{"alpha": 0.7}], "evaluation": {"bins": 15, "seed": 1}, "profile": "demo"}
    b = copy.deepcopy(a)
    assert record_differences(a, b) == []
    b["evaluation"]["bins"] = 20
    b["arms"][0]["alpha"] = 0.9
    b["extra"] = 1
    assert record_differences(a, b) == ["arms", "evaluation.bins", "extra"]


def test_check_passes_for_the_configuration_that_wrote_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_params(tmp_path, demo_raw())
    study.run(cfg, Layout(tmp_path), None)
    assert io.read_json(Layout(tmp_path).study)["config"]["profile"] == "demo"
    check_study(cfg, Layout(tmp_path), KEYS)


def test_check_stops_on_a_changed_param_and_names_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = demo_raw()
    study.run(write_params(tmp_path, raw), Layout(tmp_path), None)
    raw = copy.deepcopy(raw)
    raw["arms"]["kd"]["alpha"] = 0.5
    raw["evaluation"]["bootstrap"]["resamples"] = 50
    cfg = write_params(tmp_path, raw)
    with pytest.raises(StageError) as info:
        check_study(cfg, Layout(tmp_path), KEYS)
    message = str(info.value)
    assert "results/study.json" in message and "arms" in message and "evaluation.bootstrap.resamples" in message
    assert "dvc repro" in message


def test_check_stops_on_another_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study.run(write_params(tmp_path, demo_raw()), Layout(tmp_path), None)
    with pytest.raises(StageError, match="differs in .*profile"):
        check_study(write_params(tmp_path, composed("profile=audit")), Layout(tmp_path), KEYS)


def test_missing_study_file_says_how_to_make_it(tmp_path, params_raw):
    with pytest.raises(StageError, match=r"study.json: not found; run `dvc repro`"):
        check_study(write_params(tmp_path, params_raw), Layout(tmp_path), KEYS)


def test_entry_point_checks_before_running(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, demo_raw())
    ran = []
    name = fixed_name("evaluate")
    assert stage_main("x", lambda cfg, layout, args: ran.append(1), [], needs_study=True, stage_name=name) == 1
    assert not ran and "study.json: not found" in capsys.readouterr().err
    assert study.main([]) == 0
    assert stage_main("x", lambda cfg, layout, args: ran.append(cfg), [], needs_study=True, stage_name=name) == 0
    assert ran and ran[0].arm_names[:2] == ["vanilla", "kd"]
