"""params.yaml: composed from conf/ for every profile, typed, and bad values stop with a clear message."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from kdlab.compose import write_params
from kdlab.config import Artifact, ConfigError, ExpectedCounts, config_from_mapping, load_config
from kdlab.errors import KdlabError

from conftest import REPO, composed

COURSE_SHA256 = {  # the course repository's files (docs/study.md)
    "label_list": "7b300bfc28471fa0a115cd081e11a9ffc983d306e1a9ce9e732f91d74e9a5252",
    "label_merge_mapping": "c6d0f16ba07708a9e0c5a862c20072e2a6602055b6a0d9f0d5027aefb44e26da",
    "train_indices": "a303f6c0a98d8362cecffdb543a71603e2c2ce34dd56222bac3b3bdfa281f431",
    "val_indices": "5106946e24a1d09b80e7a9dfae50b84e12ffc9161153f353fd07c3896eb85cdf",
}
HUB_REVISION = "4783de6e089f8ef1dccb26e9f46d491ec0273c83"
MODERNBERT_REVISION = "8949b909ec900327062f0ebf497f51aef5e6f0c8"


# --------------------------------------------------------------------------- #
# Each profile's composition
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
    assert d.local_train is None and d.synthetic is None  # only the hub source's keys
    assert (d.text_column, d.label_column) == ("Consumer Complaint", "Issue")
    assert (d.head_classes, d.mid_classes, d.max_length) == (20, 40, 128)
    assert d.expected == ExpectedCounts(train=57846, val=6430, test=21432,
                                        val_tiers={"head": 5155, "mid": 1065, "tail": 210})
    assert cfg.student.source == "hub" and cfg.student.repo_id == "answerdotai/ModernBERT-base"
    assert cfg.student.revision == MODERNBERT_REVISION and cfg.student.tiny is None
    o = cfg.optim
    assert (o.epochs, o.batch_size, o.learning_rate, o.weight_decay) == (3, 32, 5e-5, 0.01)
    assert o.require_gpu is True and o.precision == "auto" and o.max_train_samples is None
    assert cfg.teacher.source == "published" and cfg.teacher.need_train_logits is True
    assert cfg.teacher.expected_temperature == 1.2538 and cfg.teacher.trained is None
    assert cfg.teacher.published.train_test_raw.filename == "train_test_logits_qwen3_32b_canonical_raw.npz"
    assert cfg.teacher.published.val_final.filename == "val_logits_canonical_final.npz"
    assert cfg.arm_names[:2] == ["vanilla", "kd"] and cfg.baseline_arm == "vanilla"
    vanilla, kd = cfg.arm("vanilla"), cfg.arm("kd")
    assert vanilla.loss == "ce" and not vanilla.uses_teacher
    assert (kd.loss, kd.kd_temperature, kd.alpha, kd.top_k) == ("kd", 4.0, 0.7, None) and kd.uses_teacher
    assert cfg.published is None
    ev = cfg.evaluation
    assert ev.ece_bins == 15 and ev.thresholds == (0.5, 0.6, 0.7, 0.8, 0.9)
    assert ev.calibration_fold_seed == 42 + 999 and ev.bootstrap.resamples == 10_000
    assert ev.bootstrap.loop_resamples == 200
    assert (cfg.headline_arm, cfg.raw_teacher_arm) == ("kd", "kd_raw_teacher")


def test_the_sweep_is_declared_once_and_each_cell_is_a_kd_arm(params_raw):
    cfg = config_from_mapping(params_raw)
    assert (cfg.sweep.kd_temperature, cfg.sweep.alpha) == ((1, 4, 8), (0.7, 0.9))
    cells = [a for a in cfg.all_arms if a.is_sweep_cell]
    assert [c.name for c in cells] == ["sweep@1-0.7", "sweep@1-0.9", "sweep@4-0.7", "sweep@4-0.9", "sweep@8-0.7",
                                       "sweep@8-0.9"]
    for cell in cells:
        assert (cell.loss, cell.teacher_logits, cell.train_splits, cell.label_smoothing) == ("kd", "final",
                                                                                             "train+test", 0.0)
        assert cfg.arm(cell.name) == cell
    assert cfg.arm("sweep@4-0.7").kd_temperature == 4.0 and cfg.arm("sweep@4-0.7").alpha == 0.7
    assert not any(a.is_sweep_cell for a in cfg.arms)  # params.yaml's arms hold no grid


def test_every_arm_of_params_yaml_is_consistent(params_raw):
    cfg = config_from_mapping(params_raw)
    assert len(set(cfg.arm_names)) == len(cfg.arm_names)
    for arm in cfg.all_arms:
        assert arm.uses_teacher == (arm.loss != "ce"), arm.name
        assert (arm.top_k is not None) == (arm.loss == "topk_kd"), arm.name


def test_audit_profile_reads_published_predictions_and_keeps_the_recipe(params_raw):
    train = config_from_mapping(params_raw)
    cfg = config_from_mapping(composed("profile=audit"))
    assert cfg.profile == "audit" and cfg.arm_source == "published"
    assert cfg.teacher.need_train_logits is False
    assert cfg.data == train.data and cfg.optim == train.optim and cfg.arms == train.arms
    assert cfg.teacher.published == train.teacher.published and cfg.teacher.source == "published"
    kd, key = cfg.published.artifact(cfg.arm("kd"))
    assert key == "published.arms.kd" and kd.repo_id == "earino/ecbs5200-week6-distilled-student"
    assert kd.repo_type == "model" and kd.filename == "val_predictions.npz"
    assert cfg.published.artifact(cfg.arm("top1_kd"))[0] is None  # never published
    for cell in cfg.sweep.cells():  # docs/study.md §3: grid_Td{1,4,8}_a{70,90}_val_predictions.npz
        artifact, key = cfg.published.artifact(cell)
        assert artifact.repo_id == "earino/ecbs5200-week6-grid-results" and artifact.repo_type == "dataset"
        assert artifact.filename == \
            f"grid_Td{cell.kd_temperature:g}_a{round(cell.alpha * 100)}_val_predictions.npz", cell.name
        assert key.startswith("published.sweep[")


def test_demo_profile_is_offline_and_small():
    cfg = config_from_mapping(composed("profile=demo"))
    assert cfg.profile == "demo" and cfg.arm_source == "train"
    assert cfg.data.source == "synthetic" and cfg.data.max_length == 64
    assert cfg.data.expected is None and cfg.data.hub_train is None and cfg.data.course_files is None
    assert cfg.data.synthetic.n_train == 6000 and cfg.data.head_classes == 20  # kept from the recipe
    assert cfg.student.source == "tiny" and cfg.student.tiny.hidden_size == 64
    o = cfg.optim
    assert (o.epochs, o.learning_rate, o.warmup_ratio, o.require_gpu, o.num_threads) == (3, 2e-3, 0.06, False, 2)
    assert (o.weight_decay, o.max_grad_norm, o.batch_size) == (0.01, 1.0, 32)  # merged, not replaced
    assert cfg.teacher.source == "trained" and cfg.teacher.published is None
    assert cfg.teacher.trained.optim.epochs == 5
    assert cfg.evaluation.bootstrap.resamples == 1000 and cfg.evaluation.ece_bins == 15


def test_the_lora_teachers_compose_the_studys_size_and_the_demos_tiny_one():
    """-S teacher=lora: Qwen3-32B at a commit, rank 16 on q/v, a GPU; -S teacher=lora_tiny wins over the demo
    profile's own teacher and needs neither a GPU nor a download."""
    big = config_from_mapping(composed("teacher=lora")).teacher
    m = big.lora.model
    assert big.source == "lora" and big.own is big.lora and big.trained is None and big.published is None
    assert (m.source, m.repo_id, m.revision) == ("hub", "Qwen/Qwen3-32B", "9216db5781bf21249d130ec9da846c4624c16137")
    assert (m.rank, m.alpha, m.target_modules, m.load_in_4bit) == (16, 32, ("q_proj", "v_proj"), False)
    assert big.lora.optim.require_gpu and m.gradient_checkpointing
    demo = config_from_mapping(composed("profile=demo", "teacher=lora_tiny"))
    assert demo.teacher.source == "lora" and demo.teacher.lora.model.source == "tiny"
    assert not demo.teacher.lora.optim.require_gpu and demo.trains_models
    assert config_from_mapping(composed("profile=audit")).teacher.own is None


def test_an_explicit_setting_wins_over_the_profile():
    cfg = config_from_mapping(composed("profile=demo", "data=local", "data.local_train=/data/mine.csv",
                                       "optim.epochs=1"))
    assert cfg.profile == "demo" and cfg.data.source == "local" and cfg.data.local_train == "/data/mine.csv"
    assert cfg.data.synthetic is None and cfg.optim.epochs == 1 and cfg.student.source == "tiny"


def test_a_source_value_without_its_section_stops_naming_the_conflict():
    with pytest.raises(ConfigError) as info:
        config_from_mapping(composed("profile=demo", "data.source=local"))
    assert "data.source is 'local' but data.local_train is not set" in str(info.value)
    assert "-S data=local" in str(info.value)


def test_course_file_overrides_need_no_plus():
    """Every artifact states `local: null`, so -S data.course_files.label_list.local=... works as written."""
    raw = composed("data.course_files.label_list.local=/tmp/labels.json")
    assert config_from_mapping(raw).data.course_files.label_list.local == "/tmp/labels.json"


def test_committed_params_yaml_is_the_demo_composition(tmp_path):
    """params.yaml is what `dvc exp run -S profile=demo` writes from conf/ (the run dvc.lock records)."""
    write_params(REPO / "conf", tmp_path / "params.yaml", ["profile=demo"])
    assert (REPO / "params.yaml").read_text() == (tmp_path / "params.yaml").read_text(), \
        "conf/ changed: regenerate params.yaml with `dvc exp run -S profile=demo`"


def test_loading_does_not_modify_the_raw_mapping(params_raw):
    for profile in ("train", "audit", "demo"):
        raw = composed(f"profile={profile}")
        snapshot = copy.deepcopy(raw)
        config_from_mapping(raw)
        assert raw == snapshot


def test_load_config_reads_the_repository_file():
    cfg = load_config(REPO / "params.yaml")
    assert cfg.profile == "demo" and cfg.source_file == str(REPO / "params.yaml")


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


def test_a_duplicate_key_names_both_lines(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: train\narms:\n  kd:\n    loss: kd\n  kd:\n    loss: ce\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:5:3: not valid YAML: duplicate key 'kd' (first at line 3"), info.value


def test_a_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: train\narms: [vanilla,\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3:1: not valid YAML")):
        load_config(path)


def test_profiles_overlays_are_refused_with_the_new_way(params_raw):
    params_raw["profiles"] = {"demo": {"seed": 1}}
    with pytest.raises(ConfigError, match="conf/profile/<name>.yaml"):
        config_from_mapping(params_raw)


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


def _lora(*path_and_value):
    """Select conf/teacher/lora.yaml, then set the key under teacher.lora."""
    def edit(raw):
        raw["teacher"] = composed("teacher=lora")["teacher"]
        _set("teacher", "lora", *path_and_value)(raw)
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
    "teacher zero epochs": (lambda raw: raw.update(teacher=dict(composed("profile=demo")["teacher"],
                                                                 trained=dict(composed("profile=demo")["teacher"]["trained"],
                                                                              optim={"epochs": 0}))),
                            ["teacher.trained.optim.epochs", "found 0"]),
    "trained teacher without its section": (_set("teacher", "source", "trained"),
                                            ["teacher.source is 'trained' but teacher.trained is not set",
                                             "-S teacher=trained"]),
    "unknown profile": (_set("profile", "prod"), ["profile must be one of ['train', 'audit', 'demo', 'cpu']", "found 'prod'"]),
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
    "missing section": (_delete("data", "course_files"), ["data.source is 'hub' but data.course_files is not set",
                                                          "-S data=hub"]),
    "wrong repo type": (_set("data", "hub_test", "repo_type", "datasets"),
                        ["hub_test.repo_type", "['model', 'dataset']", "found 'datasets'"]),
    "nan learning rate": (_set("optim", "learning_rate", float("nan")), ["learning_rate", "finite"]),
    # optional fields: a wrong type must give the same clear message, not a crash in the checker
    "top_k as text": (lambda raw: raw["arms"]["kd"].update(loss="topk_kd", top_k="five"),
                      ["arms.kd.top_k", "expected an integer", "found 'five'"]),
    "expected count as text": (_set("data", "expected", "train", "many"),
                               ["data.expected.train", "expected an integer", "found 'many'"]),
    "published artifact as a number": (_set("published", {"arms": {"kd": 3}}),
                                       ["published.arms.kd", "expected a mapping", "found 3"]),
    "published without the audit": (_set("arm_source", "published"), ["arm_source is 'published' but `published` is null"]),
    "student without a revision": (_set("student", "revision", None), ["student", "needs repo_id and revision"]),
    "empty sweep": (_set("sweep", "alpha", []), ["sweep.alpha", "at least one value"]),
    "repeated sweep value": (_set("sweep", "kd_temperature", [1, 1.0]), ["sweep.kd_temperature", "must differ"]),
    "sweep alpha above 1": (_set("sweep", "alpha", [0.7, 1.5]), ["sweep.alpha", "[0, 1]"]),
    "negative checkpoint interval": (_set("optim", "checkpoint_every", -1),
                                     ["optim.checkpoint_every", "0 (epoch ends only) or a positive", "found -1"]),
    "launcher without -m": (_set("optim", "launcher", "accelerate launch --num_processes 2"),
                            ["optim.launcher", "'accelerate launch [options] -m'",
                             "found 'accelerate launch --num_processes 2'"]),
    "launcher of another tool": (_set("optim", "launcher", "torchrun -m"), ["optim.launcher", "found 'torchrun -m'"]),
    "a launcher for the teacher": (lambda raw: raw.update(teacher=dict(composed("profile=demo")["teacher"], trained=dict(
        composed("profile=demo")["teacher"]["trained"], optim={"launcher": "accelerate launch -m"}))),
                                   ["teacher.trained.optim.launcher", "always runs as 'python -m kdlab.stages.teacher'"]),
    "lora teacher without its section": (_set("teacher", "source", "lora"),
                                         ["teacher.source is 'lora' but teacher.lora is not set", "-S teacher=lora"]),
    "lora base at a branch": (_lora("model", "revision", "main"),
                              ["teacher.lora.model.revision", "40-character commit sha", "found 'main'"]),
    "lora rank 0": (_lora("model", "rank", 0), ["teacher.lora.model.rank", "positive integer", "found 0"]),
    "lora unknown module": (_lora("model", "target_modules", ["q_proj", "qkv"]),
                            ["teacher.lora.model.target_modules", "found ['q_proj', 'qkv']"]),
    "lora typo": (_lora("model", "ranq", 8), ["teacher.lora.model", "unknown key(s) ['ranq']", "'rank'"]),
    "lora calibration fraction": (_lora("calibration_fraction", 1.0),
                                  ["teacher.lora.calibration_fraction", "(0, 1)", "found 1.0"]),
    "lora launcher": (_lora("optim", "launcher", "accelerate launch -m"),
                      ["teacher.lora.optim.launcher", "always runs as 'python -m kdlab.stages.teacher'"]),
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
    assert [a.name for a in cfg.arms][-3:] == ["top5", "vanilla_train_only2", "plain"]
    assert cfg.arm("top5").top_k == 5 and cfg.arm("top5").kd_temperature == 1.0
    assert cfg.arm("plain").loss == "ce"


@pytest.mark.parametrize("edit", [_set("arms", "kd", "loss", "kl"), _set("arms", "kd", "alhpa", 0.5)],
                         ids=["unknown loss", "typo"])
def test_type_errors_in_an_arm_name_the_arm(params_raw, edit):
    edit(params_raw)
    with pytest.raises(ConfigError) as info:
        config_from_mapping(params_raw)
    assert "arms.kd" in str(info.value), str(info.value)


@pytest.mark.parametrize("overrides, says", [
    (("data=local", "data.local_train=/data/mine.csv"),
     "-S teacher=modernbert or -S teacher=lora (a GPU), or -S teacher=trained"),
    (("profile=audit", "data=local", "data.local_train=/data/mine.csv"), "belong to the Hub data"),
], ids=["published teacher", "published predictions"])
def test_the_published_files_need_the_hub_data(overrides, says):
    """The published teacher logits and predictions are aligned with the Hub splits: with other data the run
    stops before any download, saying which teacher to use instead."""
    with pytest.raises(ConfigError) as info:
        config_from_mapping(composed(*overrides))
    assert says in str(info.value) and "data.source is 'local'" in str(info.value)


def test_own_data_on_a_gpu_composes_with_plain_overrides():
    """The README's GPU command: ModernBERT students and a ModernBERT teacher kdlab trains on the file."""
    cfg = config_from_mapping(composed("data=local", "teacher=modernbert", "data.local_train=/data/mine.csv",
                                       "data.course_files.train_indices.local=/data/train_idx.json",
                                       "data.course_files.val_indices.local=/data/val_idx.json"))
    assert cfg.profile == "train" and cfg.student.repo_id == "answerdotai/ModernBERT-base"
    backbone = cfg.teacher.trained.backbone
    assert (backbone.source, backbone.repo_id, backbone.revision) == ("hub", cfg.student.repo_id, cfg.student.revision)
    assert cfg.teacher.trained.optim.require_gpu and cfg.teacher.trained.optim.learning_rate == cfg.optim.learning_rate
    assert cfg.data.course_files.train_indices.given and cfg.data.course_files.val_indices.local == "/data/val_idx.json"


@pytest.mark.parametrize("launcher", ["python -m", "accelerate launch -m",
                                      "accelerate launch --multi_gpu --num_processes 2 -m",
                                      "accelerate launch --cpu --num_processes 2 -m"])
def test_the_launchers_dvc_yaml_can_start_a_training_stage_with(params_raw, launcher):
    params_raw["optim"]["launcher"] = launcher
    assert config_from_mapping(params_raw).optim.launcher == launcher
