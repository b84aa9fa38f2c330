"""params.yaml: every profile loads, profiles deep-merge, bad values stop with a clear message."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from kdlab.config import (
    Artifact,
    ConfigError,
    ExpectedCounts,
    config_from_mapping,
    deep_merge,
    load_config,
    resolve_profile,
)
from kdlab.errors import KdlabError

from conftest import REPO

COURSE_SHA256 = {  # ../shared/course-data/SOURCES.md
    "label_list": "7b300bfc28471fa0a115cd081e11a9ffc983d306e1a9ce9e732f91d74e9a5252",
    "label_merge_mapping": "c6d0f16ba07708a9e0c5a862c20072e2a6602055b6a0d9f0d5027aefb44e26da",
    "train_indices": "a303f6c0a98d8362cecffdb543a71603e2c2ce34dd56222bac3b3bdfa281f431",
    "val_indices": "5106946e24a1d09b80e7a9dfae50b84e12ffc9161153f353fd07c3896eb85cdf",
}
HUB_REVISION = "4783de6e089f8ef1dccb26e9f46d491ec0273c83"


def with_profile(raw: dict, profile: str) -> dict:
    raw = copy.deepcopy(raw)
    raw["profile"] = profile
    return raw


# --------------------------------------------------------------------------- #
# The real params.yaml, one profile at a time
# --------------------------------------------------------------------------- #
def test_train_profile_is_the_paper_recipe(params_raw):
    cfg = config_from_mapping(params_raw)
    assert cfg.profile == "train" and cfg.seed == 42 and cfg.arm_source == "train"
    assert cfg.source_file == "params.yaml"
    d = cfg.data
    assert d.source == "hub"
    assert d.hub_train == Artifact(repo_id="determined-ai/consumer_complaints_medium", repo_type="dataset",
                                   revision=HUB_REVISION, filename="data/train-*.parquet")
    assert d.hub_test.filename == "data/test-*.parquet" and d.hub_test.revision == HUB_REVISION
    for name, sha in COURSE_SHA256.items():
        artifact = getattr(d.course_files, name)
        assert artifact.sha256 == sha
        assert artifact.url.endswith(f"/a7b7c44d3d9dbab9dae693c6d25a09fcac3efe5e/data/{name}.json")
        assert artifact.local is None
    assert (d.text_column, d.label_column) == ("Consumer Complaint", "Issue")
    assert (d.head_classes, d.mid_classes, d.max_length) == (20, 40, 128)
    assert d.expected == ExpectedCounts(train=57846, val=6430, test=21432,
                                        val_tiers={"head": 5155, "mid": 1065, "tail": 210})
    assert cfg.student.source == "hub" and cfg.student.repo_id == "answerdotai/ModernBERT-base"
    o = cfg.optim
    assert (o.epochs, o.batch_size, o.learning_rate, o.weight_decay) == (3, 32, 5e-5, 0.01)
    assert o.require_gpu is True and o.precision == "auto" and o.max_train_samples is None
    assert cfg.teacher.source == "published" and cfg.teacher.need_train_logits is True
    assert cfg.teacher.expected_temperature == 1.2538
    assert cfg.teacher.published.train_test_raw.filename == "train_test_logits_qwen3_32b_canonical_raw.npz"
    assert cfg.teacher.published.val_final.filename == "val_logits_canonical_final.npz"
    assert cfg.arm_names[:2] == ["vanilla", "kd"] and cfg.baseline_arm == "vanilla"
    vanilla, kd = cfg.arm("vanilla"), cfg.arm("kd")
    assert vanilla.loss == "ce" and not vanilla.uses_teacher
    assert (kd.loss, kd.kd_temperature, kd.alpha, kd.top_k) == ("kd", 4.0, 0.7, None) and kd.uses_teacher
    assert kd.published.repo_id == "earino/ecbs5200-week6-distilled-student"
    assert kd.published.repo_type == "model" and kd.published.filename == "val_predictions.npz"
    ev = cfg.evaluation
    assert ev.ece_bins == 15 and ev.thresholds == (0.5, 0.6, 0.7, 0.8, 0.9)
    assert ev.calibration_fold_seed == 42 + 999 and ev.bootstrap.resamples == 10_000
    assert ev.bootstrap.loop_resamples == 200
    assert (cfg.headline_arm, cfg.raw_teacher_arm) == ("kd", "kd_raw_teacher")


def test_every_arm_of_params_yaml_is_consistent(params_raw):
    cfg = config_from_mapping(params_raw)
    assert len(set(cfg.arm_names)) == len(cfg.arm_names)
    for arm in cfg.arms:
        assert arm.uses_teacher == (arm.loss != "ce"), arm.name
        assert (arm.top_k is not None) == (arm.loss == "topk_kd"), arm.name
        pub = arm.published
        if pub is not None and pub.repo_id == "earino/ecbs5200-week6-grid-results":
            # STUDY.md §3: grid_Td{1,4,8}_a{70,90}_val_predictions.npz
            assert pub.repo_type == "dataset", arm.name
            assert pub.filename == f"grid_Td{arm.kd_temperature:g}_a{round(arm.alpha * 100)}_val_predictions.npz", \
                arm.name


def test_audit_profile_reads_published_predictions_and_keeps_the_recipe(params_raw):
    train = config_from_mapping(params_raw)
    cfg = config_from_mapping(with_profile(params_raw, "audit"))
    assert cfg.profile == "audit" and cfg.arm_source == "published"
    assert cfg.teacher.need_train_logits is False
    # everything the overlay does not name is the train recipe
    assert cfg.data == train.data and cfg.optim == train.optim and cfg.arms == train.arms
    assert cfg.teacher.published == train.teacher.published and cfg.teacher.source == "published"


def test_demo_profile_is_offline_and_small(params_raw):
    cfg = config_from_mapping(with_profile(params_raw, "demo"))
    assert cfg.profile == "demo" and cfg.arm_source == "train"
    assert cfg.data.source == "synthetic" and cfg.data.max_length == 64
    assert cfg.data.expected is None  # `expected: null` replaces the whole mapping
    assert cfg.data.synthetic.n_train == 6000 and cfg.data.head_classes == 20  # kept from the recipe
    assert cfg.student.source == "tiny" and cfg.student.tiny.hidden_size == 64
    o = cfg.optim
    assert (o.epochs, o.learning_rate, o.warmup_ratio, o.require_gpu, o.num_threads) == (3, 2e-3, 0.06, False, 2)
    assert (o.weight_decay, o.max_grad_norm, o.batch_size) == (0.01, 1.0, 32)  # merged, not replaced
    assert cfg.teacher.source == "trained" and cfg.teacher.expected_temperature is None
    assert cfg.teacher.trained.optim.epochs == 5
    assert cfg.evaluation.bootstrap.resamples == 1000 and cfg.evaluation.ece_bins == 15


def test_loading_does_not_modify_the_raw_mapping(params_raw):
    before = copy.deepcopy(params_raw)
    for profile in ("train", "audit", "demo"):
        raw = with_profile(params_raw, profile)
        snapshot = copy.deepcopy(raw)
        config_from_mapping(raw)
        assert raw == snapshot
    assert params_raw == before


def test_load_config_reads_the_repository_file():
    cfg = load_config(REPO / "params.yaml")
    assert cfg.profile == "train" and cfg.source_file == str(REPO / "params.yaml")


def test_load_config_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.yaml'}: not found")):
        load_config(tmp_path / "nope.yaml")


def test_load_config_error_names_the_file_it_read(tmp_path, params_raw):
    params_raw["optim"]["epoch"] = 3
    path = tmp_path / "my-params.yaml"
    path.write_text(yaml.safe_dump(params_raw))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "'epoch'" in str(info.value)


# --------------------------------------------------------------------------- #
# deep_merge
# --------------------------------------------------------------------------- #
def test_deep_merge_merges_mappings_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "lst": [1, 2, 3], "m": {"k": 1}, "s": 1, "keep": "me"}
    overlay = {"a": {"y": {"q": 20, "r": 30}}, "lst": [9], "m": None, "s": {"now": "a mapping"}, "new": [1]}
    base_copy, overlay_copy = copy.deepcopy(base), copy.deepcopy(overlay)
    merged = deep_merge(base, overlay)
    assert merged == {
        "a": {"x": 1, "y": {"p": 1, "q": 20, "r": 30}},
        "lst": [9],                    # lists are replaced, never concatenated
        "m": None,                     # null replaces a mapping
        "s": {"now": "a mapping"},     # a mapping replaces a scalar
        "keep": "me",
        "new": [1],
    }
    assert base == base_copy and overlay == overlay_copy  # inputs untouched
    merged["a"]["y"]["p"] = -1
    merged["new"].append(2)
    assert base["a"]["y"]["p"] == 1 and overlay["new"] == [1]  # no aliasing either way


def test_deep_merge_of_non_mappings_returns_the_overlay():
    assert deep_merge({"a": 1}, [1, 2]) == [1, 2]
    assert deep_merge(3, {"a": 1}) == {"a": 1}
    assert deep_merge({"a": 1}, {}) == {"a": 1}


def test_resolve_profile_train_ignores_overlays_and_drops_profiles(params_raw):
    params_raw["profiles"]["demo"]["optim"]["epochs"] = 99
    effective = resolve_profile(params_raw)
    assert "profiles" not in effective and effective["optim"]["epochs"] == 3
    assert resolve_profile(with_profile(params_raw, "demo"))["optim"]["epochs"] == 99


# --------------------------------------------------------------------------- #
# Bad params: a ConfigError naming params.yaml, the key, the expected and the found value
# --------------------------------------------------------------------------- #
def _set(*path_and_value):
    *path, value = path_and_value

    def edit(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _delete(*path):
    def edit(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


BAD = {
    "alpha above 1": (_set("arms", "kd", "alpha", 1.5), ["arms.kd.alpha", "[0, 1]", "found 1.5"]),
    "alpha below 0": (_set("arms", "kd", "alpha", -0.1), ["arms.kd.alpha", "[0, 1]", "found -0.1"]),
    "alpha not a number": (_set("arms", "kd", "alpha", "0.7"), ["alpha", "expected a number", "'0.7'"]),
    "T_d zero": (_set("arms", "kd", "kd_temperature", 0), ["arms.kd.kd_temperature", "T_d > 0", "found 0"]),
    "T_d negative": (_set("arms", "kd", "kd_temperature", -4), ["arms.kd.kd_temperature", "T_d > 0", "found -4"]),
    "unknown loss": (_set("arms", "kd", "loss", "kl"),
                     ["loss", "expected one of ['ce', 'kd', 'top1_kd', 'topk_kd']", "found 'kl'"]),
    "typo in optim": (_set("optim", "epoch", 3), ["optim", "unknown key(s) ['epoch']", "'epochs'"]),
    "typo at top level": (_set("baseline_armm", "vanilla"), ["unknown key(s) ['baseline_armm']", "'baseline_arm'"]),
    "typo in data": (_set("data", "val_fractoin", 0.2), ["data", "unknown key(s) ['val_fractoin']", "'val_fraction'"]),
    "typo in an artifact": (_set("data", "hub_train", "sha265", "ab"),
                            ["hub_train", "unknown key(s) ['sha265']", "'sha256'"]),
    "typo in an arm": (_set("arms", "kd", "alhpa", 0.5), ["unknown key(s) ['alhpa']", "'alpha'"]),
    "zero epochs": (_set("optim", "epochs", 0), ["optim.epochs", "positive integer", "found 0"]),
    "negative epochs": (_set("optim", "epochs", -2), ["optim.epochs", "positive integer", "found -2"]),
    "fractional epochs": (_set("optim", "epochs", 2.5), ["optim.epochs", "expected an integer", "found 2.5"]),
    "boolean epochs": (_set("optim", "epochs", True), ["optim.epochs", "expected an integer", "found True"]),
    "zero batch size": (_set("optim", "batch_size", 0), ["optim.batch_size", "positive integer", "found 0"]),
    "negative batch size": (_set("optim", "batch_size", -32), ["optim.batch_size", "positive integer", "found -32"]),
    "zero eval batch size": (_set("optim", "eval_batch_size", 0), ["optim.eval_batch_size", "found 0"]),
    "teacher zero epochs": (_set("teacher", "trained", "optim", "epochs", 0),
                            ["teacher.trained.optim.epochs", "found 0"]),
    "unknown profile": (_set("profile", "prod"), ["profile must be one of ['train', 'audit', 'demo']", "found 'prod'"]),
    "unknown profile overlay": (_set("profiles", "prod", {"seed": 1}), ["profiles has unknown entries ['prod']"]),
    "topk_kd without top_k": (_set("arms", "kd", "loss", "topk_kd"),
                              ["arms.kd.top_k", "'topk_kd' needs top_k >= 1", "found None"]),
    "topk_kd with top_k 0": (lambda raw: raw["arms"]["kd"].update(loss="topk_kd", top_k=0),
                             ["arms.kd.top_k", "found 0"]),
    "top_k on a kd arm": (_set("arms", "kd", "top_k", 5), ["arms.kd.top_k", "only loss 'topk_kd'", "found loss 'kd'"]),
    "baseline arm missing": (_set("arms", {"kd": {"loss": "kd"}, "top1": {"loss": "top1_kd"}}),
                             ["baseline_arm 'vanilla' is not among the arms ['kd', 'top1']"]),
    "baseline arm misspelt": (_set("baseline_arm", "vanila"),
                              ["baseline_arm 'vanila' is not among the arms ['vanilla', 'kd'"]),
    "headline arm misspelt": (_set("headline_arm", "kdd"),
                              ["headline_arm 'kdd' is not among the arms ['vanilla', 'kd'"]),
    "headline arm missing": (lambda raw: raw["arms"].pop("kd"), ["headline_arm 'kd' is not among the arms"]),
    "zero loop resamples": (_set("evaluation", "bootstrap", "loop_resamples", 0),
                            ["evaluation.bootstrap.loop_resamples", "positive integer", "found 0"]),
    "fractional loop resamples": (_set("evaluation", "bootstrap", "loop_resamples", 2.5),
                                  ["loop_resamples", "expected an integer", "found 2.5"]),
    "no arms": (_set("arms", {}), ["arms is empty"]),
    "arms as a list": (_set("arms", ["vanilla", "kd"]), ["arms must be a mapping", "['vanilla', 'kd']"]),
    "label smoothing 1": (_set("arms", "vanilla", "label_smoothing", 1.0),
                          ["arms.vanilla.label_smoothing", "[0, 1)", "found 1.0"]),
    "kd arm on train only": (_set("arms", "kd", "train_splits", "train"), ["arms.kd", "train_splits 'train'"]),
    "unknown data source": (_set("data", "source", "s3"),
                            ["data.source", "expected one of ['hub', 'local', 'synthetic']", "found 's3'"]),
    "local source without a file": (_set("data", "source", "local"), ["data.local_train is not set"]),
    "val fraction 1": (_set("data", "val_fraction", 1.0), ["data.val_fraction", "(0, 1)", "found 1.0"]),
    "tier names": (_set("data", "expected", "val_tiers", {"head": 1, "middle": 2, "tail": 3}),
                   ["data.expected.val_tiers", "['head', 'mid', 'tail']", "['head', 'middle', 'tail']"]),
    "missing section": (_delete("data", "course_files"), ["data", "missing required key 'course_files'"]),
    "wrong repo type": (_set("data", "hub_test", "repo_type", "datasets"),
                        ["hub_test.repo_type", "['model', 'dataset']", "found 'datasets'"]),
    "nan learning rate": (_set("optim", "learning_rate", float("nan")), ["learning_rate", "finite"]),
    # optional fields: a wrong type must give the same clear message, not a crash in the checker
    "top_k as text": (lambda raw: raw["arms"]["kd"].update(loss="topk_kd", top_k="five"),
                      ["arms.kd.top_k", "expected an integer", "found 'five'"]),
    "expected count as text": (_set("data", "expected", "train", "many"),
                               ["data.expected.train", "expected an integer", "found 'many'"]),
    "published artifact as a number": (_set("arms", "kd", "published", 3),
                                       ["arms.kd.published", "expected a mapping", "found 3"]),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_params_give_a_clear_error(params_raw, case):
    edit, fragments = BAD[case]
    edit(params_raw)
    with pytest.raises(ConfigError) as info:
        config_from_mapping(params_raw)
    message = str(info.value)
    assert message.startswith("params.yaml"), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_bad_value_in_the_selected_profile_overlay_is_caught(params_raw):
    params_raw["profiles"]["demo"]["optim"]["batch_size"] = 0
    config_from_mapping(params_raw)  # train profile: the demo overlay is not applied
    with pytest.raises(ConfigError, match=r"optim\.batch_size: expected a positive integer, found 0"):
        config_from_mapping(with_profile(params_raw, "demo"))


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"params.yaml: expected a mapping at the top level, found list"):
        config_from_mapping([1, 2])


def test_config_errors_are_kdlab_errors(params_raw):
    params_raw["arms"]["kd"]["alpha"] = 2
    with pytest.raises(KdlabError):
        config_from_mapping(params_raw)


def test_headline_arm_naming_no_arm_is_a_config_error(params_raw):
    params_raw["headline_arm"] = "distilled"
    with pytest.raises(ConfigError, match=re.escape("headline_arm 'distilled' is not among the arms")):
        config_from_mapping(params_raw)


def test_raw_teacher_arm_may_be_left_out_of_the_arms(params_raw):
    del params_raw["arms"]["kd_raw_teacher"]  # han_guo then reports it as not configured
    assert config_from_mapping(params_raw).raw_teacher_arm == "kd_raw_teacher"


def test_unknown_arm_lookup_lists_the_arms(params_raw):
    cfg = config_from_mapping(params_raw)
    with pytest.raises(ConfigError, match=re.escape("unknown arm 'kd2'; expected one of ['vanilla', 'kd'")):
        cfg.arm("kd2")


def test_new_arms_are_accepted(params_raw):
    params_raw["arms"]["top5"] = {"loss": "topk_kd", "top_k": 5, "alpha": 1.0, "kd_temperature": 1}
    params_raw["arms"]["vanilla_train_only2"] = {"loss": "ce", "train_splits": "train", "label_smoothing": 0.1}
    params_raw["arms"]["plain"] = None  # every setting at its default
    cfg = config_from_mapping(params_raw)
    assert cfg.arm_names[-3:] == ["top5", "vanilla_train_only2", "plain"]
    assert cfg.arm("top5").top_k == 5 and cfg.arm("top5").kd_temperature == 1.0
    assert cfg.arm("plain").loss == "ce" and cfg.arm("plain").published is None


@pytest.mark.parametrize("edit", [_set("arms", "kd", "loss", "kl"), _set("arms", "kd", "alhpa", 0.5)],
                         ids=["unknown loss", "typo"])
def test_type_errors_in_an_arm_name_the_arm(params_raw, edit):
    edit(params_raw)
    with pytest.raises(ConfigError) as info:
        config_from_mapping(params_raw)
    assert "arms.kd" in str(info.value), str(info.value)
