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
from kdlab.stages.common import StageError, check_study, stage_main


def write_params(root, raw: dict):
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return config_from_mapping(raw, str(root / "params.yaml"))


def test_record_is_the_effective_configuration_of_the_profile(params_raw):
    train = config_record(config_from_mapping(params_raw))
    demo = config_record(config_from_mapping({**params_raw, "profile": "demo"}))
    assert "source_file" not in train and train["profile"] == "train" and demo["profile"] == "demo"
    assert train["student"]["source"] == "hub" and demo["student"]["source"] == "tiny"  # the overlay applied
    assert [a["name"] for a in train["arms"]] == list(params_raw["arms"])
    assert train["evaluation"]["bootstrap"]["resamples"] == params_raw["evaluation"]["bootstrap"]["resamples"]
    assert "profiles" not in train  # the overlays themselves are not configuration, their result is


def test_record_differences_lists_dotted_paths():
    a = {"arms": [{"alpha": 0.7}], "evaluation": {"bins": 15, "seed": 1}, "profile": "demo"}
    b = copy.deepcopy(a)
    assert record_differences(a, b) == []
    b["evaluation"]["bins"] = 20
    b["arms"][0]["alpha"] = 0.9
    b["extra"] = 1
    assert record_differences(a, b) == ["arms", "evaluation.bins", "extra"]


def test_check_passes_for_the_configuration_that_wrote_the_file(tmp_path, params_raw):
    cfg = write_params(tmp_path, {**params_raw, "profile": "demo"})
    study.run(cfg, Layout(tmp_path), None)
    assert io.read_json(Layout(tmp_path).study)["profile"] == "demo"
    check_study(cfg, Layout(tmp_path))


def test_check_stops_on_a_changed_param_and_names_it(tmp_path, params_raw):
    raw = {**params_raw, "profile": "demo"}
    study.run(write_params(tmp_path, raw), Layout(tmp_path), None)
    raw = copy.deepcopy(raw)
    raw["arms"]["kd"]["alpha"] = 0.5
    raw["profiles"]["demo"]["evaluation"]["bootstrap"]["resamples"] = 50
    cfg = write_params(tmp_path, raw)
    with pytest.raises(StageError) as info:
        check_study(cfg, Layout(tmp_path))
    message = str(info.value)
    assert "results/study.json" in message and "arms" in message and "evaluation.bootstrap.resamples" in message
    assert "dvc repro" in message


def test_check_stops_on_another_profile(tmp_path, params_raw):
    study.run(write_params(tmp_path, {**params_raw, "profile": "demo"}), Layout(tmp_path), None)
    with pytest.raises(StageError, match="differs in .*profile"):
        check_study(write_params(tmp_path, {**params_raw, "profile": "audit"}), Layout(tmp_path))


def test_missing_study_file_says_how_to_make_it(tmp_path, params_raw):
    with pytest.raises(StageError, match=r"study.json: not found; run `dvc repro`"):
        check_study(write_params(tmp_path, params_raw), Layout(tmp_path))


def test_entry_point_checks_before_running(tmp_path, params_raw, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {**params_raw, "profile": "demo"})
    ran = []
    assert stage_main("x", lambda cfg, layout, args: ran.append(1), [], needs_study=True) == 1
    assert not ran and "study.json: not found" in capsys.readouterr().err
    assert study.main([]) == 0
    assert stage_main("x", lambda cfg, layout, args: ran.append(1), [], needs_study=True) == 0 and ran == [1]
