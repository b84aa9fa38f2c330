"""Published files at their real layout and sizes (docs/study.md §2-§3): accepted when right, refused clearly when not.

Every fixture is generated here: val predictions 6,430 x 113 float16 with preds, labels
and val_tiers (as names and as codes); teacher logits 79,278 x 113 (train + test rows).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdlab import teacher
from kdlab.config import TIERS, config_from_mapping
from kdlab.io import ArtifactError
from kdlab.paths import Layout
from kdlab.predictions import Predictions, load_predictions, save_predictions
from kdlab.published import convert_published_predictions

from conftest import composed

N_VAL, N_TRAIN, N_TEST, C = 6430, 57846, 21432, 113
TIER_NAMES = np.array(TIERS)


def class_tiers() -> np.ndarray:
    """20 head, 40 mid, 53 tail classes, spread over the ids like frequency ranks would."""
    order = np.random.default_rng(11).permutation(C)
    codes = np.full(C, 2, dtype=np.int8)
    codes[order[:20]], codes[order[20:60]] = 0, 1
    return codes


def fp16_logits(rng, n) -> np.ndarray:
    return (rng.standard_normal((n, C), dtype=np.float32) * 3).astype(np.float16)


@pytest.fixture(scope="module")
def val():
    """The prepared val split's labels and tier codes, and published arrays aligned with them."""
    rng = np.random.default_rng(2024)
    labels = rng.integers(0, C, N_VAL).astype(np.int64)
    tiers = class_tiers()[labels]
    logits = fp16_logits(rng, N_VAL)
    preds = logits.astype(np.float32).argmax(axis=1).astype(np.int64)
    arrays = {"logits": logits, "preds": preds, "labels": labels.copy(), "val_tiers": TIER_NAMES[tiers]}
    return {"labels": labels, "tiers": tiers, "arrays": arrays}


def write(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def convert(path, val):
    return convert_published_predictions(path, val["labels"], val["tiers"], C)


# --------------------------------------------------------------------------- #
# Audit mode: published val_predictions.npz -> kdlab's Predictions
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tier_format", ["names", "upper-case names", "bytes", "int64 codes", "uint8 codes"])
def test_convert_published_predictions(tmp_path, val, tier_format):
    arrays = dict(val["arrays"])
    arrays["val_tiers"] = {
        "names": TIER_NAMES[val["tiers"]],
        "upper-case names": np.char.upper(TIER_NAMES[val["tiers"]]),
        "bytes": TIER_NAMES[val["tiers"]].astype("S4"),
        "int64 codes": val["tiers"].astype(np.int64),
        "uint8 codes": val["tiers"].astype(np.uint8),
    }[tier_format]
    path = write(tmp_path / "val_predictions.npz", **arrays)
    pred = convert(path, val)
    assert isinstance(pred, Predictions) and pred.n_classes == C
    assert pred.row_id.tolist() == list(range(N_VAL)) and pred.row_id.dtype == np.int64
    assert pred.logits.dtype == np.float16 and pred.logits.shape == (N_VAL, C)
    np.testing.assert_array_equal(pred.logits, val["arrays"]["logits"])
    assert pred.preds.dtype == np.int64 and np.array_equal(pred.preds, val["arrays"]["preds"])
    assert pred.labels.dtype == np.int64 and np.array_equal(pred.labels, val["labels"])
    assert pred.tiers.dtype == np.int8 and np.array_equal(pred.tiers, val["tiers"])
    assert np.bincount(pred.tiers, minlength=3).sum() == N_VAL


def test_converted_predictions_round_trip(tmp_path, val):
    pred = convert(write(tmp_path / "p.npz", **val["arrays"]), val)
    save_predictions(tmp_path / "predictions.npz", pred)
    back = load_predictions(tmp_path / "predictions.npz")
    for field in ("row_id", "logits", "preds", "labels", "tiers"):
        assert np.array_equal(getattr(back, field), getattr(pred, field)), field


def test_preds_may_break_fp16_ties_either_way(tmp_path, val):
    arrays = {k: v.copy() for k, v in val["arrays"].items()}
    row = arrays["logits"][0]
    top = int(arrays["preds"][0])
    other = (top + 1) % C
    row[other] = row[top]  # an exact tie in float16
    arrays["preds"][0] = other
    pred = convert(write(tmp_path / "p.npz", **arrays), val)
    assert pred.preds[0] == other


def _edit(**changes):
    """Return a function that turns the good arrays into bad ones."""
    def edit(arrays, val):
        arrays = {k: v.copy() for k, v in arrays.items()}
        for key, fn in changes.items():
            if fn is None:
                del arrays[key]
            else:
                arrays[key] = fn(arrays[key], val)
        return arrays
    return edit


def _set_at(index, value):
    def fn(a, val):
        a = a.copy()
        a[index] = value
        return a
    return fn


def _not_argmax(a, val):
    a = a.copy()
    a[5] = (a[5] + 1) % C
    return a


BAD_FILES = {
    "missing key": (_edit(val_tiers=None),
                    "missing array 'val_tiers'; expected keys ['labels', 'logits', 'preds', 'val_tiers'], "
                    "found ['labels', 'logits', 'preds']"),
    "missing logits": (_edit(logits=None), "missing array 'logits'"),
    "wrong number of classes": (_edit(logits=lambda a, v: a[:, :112]),
                                "logits have shape (6430, 112); expected (6,430, 113)"),
    "wrong number of rows": (_edit(logits=lambda a, v: a[:-1]), "logits have shape (6429, 113); expected (6,430, 113)"),
    "1-d logits": (_edit(logits=lambda a, v: a[:, 0]), "logits have shape (6430,); expected (6,430, 113)"),
    "NaN logits": (_edit(logits=_set_at((17, 3), np.nan)), "logits contain NaN or inf in 1 rows"),
    "inf logits": (_edit(logits=_set_at((slice(0, 4), 0), np.inf)), "logits contain NaN or inf in 4 rows"),
    "integer logits": (_edit(logits=lambda a, v: a.astype(np.int64)),
                       "array 'logits' has dtype int64; expected kind 'f'"),
    "misaligned labels": (_edit(labels=lambda a, v: np.roll(a, 1)), "labels differ from the prepared data in"),
    "labels of another length": (_edit(labels=lambda a, v: a[:-3]), "labels have shape (6427,); expected (6430,)"),
    "float labels": (_edit(labels=lambda a, v: a.astype(np.float32)), "array 'labels' has dtype float32"),
    "wrong tiers": (_edit(val_tiers=lambda a, v: TIER_NAMES[(v["tiers"] + 1) % 3]),
                    "val_tiers differ from the prepared data in 6,430 rows"),
    "one wrong tier": (_edit(val_tiers=lambda a, v: TIER_NAMES[np.where(np.arange(N_VAL) == 9, (v["tiers"] + 1) % 3,
                                                                       v["tiers"])]),
                       "val_tiers differ from the prepared data in 1 rows (first: row 9"),
    "unknown tier name": (_edit(val_tiers=_set_at(3, "tale")), "unknown tier names ['tale']; expected ['head', 'mid', 'tail']"),
    "tier code 3": (_edit(val_tiers=lambda a, v: np.where(np.arange(N_VAL) == 0, 3, v["tiers"]).astype(np.int64)),
                    "tier codes must be 0..2, found 0..3"),
    "float tiers": (_edit(val_tiers=lambda a, v: v["tiers"].astype(np.float64)),
                    "array 'val_tiers' has dtype float64; expected kind 'iuUS'"),
    "preds not argmax": (_edit(preds=_not_argmax),
                         "1 stored preds are not an argmax of the stored logits (first row 5)"),
    "preds out of range": (_edit(preds=_set_at(0, C)), "preds must be class ids in 0..112"),
    "float preds": (_edit(preds=lambda a, v: a.astype(np.float64)), "array 'preds' has dtype float64; expected kind 'iu'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_bad_published_predictions_are_refused(tmp_path, val, case):
    edit, fragment = BAD_FILES[case]
    path = write(tmp_path / "val_predictions.npz", **edit(val["arrays"], val))
    with pytest.raises(ArtifactError) as info:
        convert(path, val)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message


def test_misaligned_labels_message_names_expected_and_found(tmp_path, val):
    labels = val["arrays"]["labels"].copy()
    labels[[100, 200]] = (labels[[100, 200]] + 1) % C
    path = write(tmp_path / "p.npz", **{**val["arrays"], "labels": labels})
    with pytest.raises(ArtifactError) as info:
        convert(path, val)
    assert (f"labels differ from the prepared data in 2 rows (first: row 100, expected {val['labels'][100]}, "
            f"found {labels[100]})") in str(info.value)


def test_preds_of_the_wrong_length_are_refused(tmp_path, val):
    path = write(tmp_path / "p.npz", **{**val["arrays"], "preds": val["arrays"]["preds"][:-1]})
    with pytest.raises(ArtifactError) as info:
        convert(path, val)
    assert str(path) in str(info.value) and "preds" in str(info.value) and "(6429,)" in str(info.value)


UNPICKLED: list[str] = []


def _record_unpickling(tag):
    UNPICKLED.append(tag)
    return tag


class Trap:
    """Unpickling this object leaves a trace in UNPICKLED."""

    def __reduce__(self):
        return _record_unpickling, ("unpickled",)


def test_pickled_object_array_is_refused_without_unpickling(tmp_path, val):
    path = tmp_path / "val_predictions.npz"
    trap = np.empty(N_VAL, dtype=object)
    trap[:] = [Trap() for _ in range(N_VAL)]
    np.savez(path, logits=val["arrays"]["logits"], preds=val["arrays"]["preds"], labels=val["arrays"]["labels"],
             val_tiers=trap)
    UNPICKLED.clear()
    with pytest.raises(ArtifactError) as info:
        convert(path, val)
    assert UNPICKLED == []
    message = str(info.value)
    assert message.startswith(f"{path}: holds a pickled object array, which kdlab never loads")


def test_truncated_file_is_refused(tmp_path, val):
    path = write(tmp_path / "val_predictions.npz", **val["arrays"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(ArtifactError) as info:
        convert(path, val)
    assert str(info.value).startswith(str(path))


def test_missing_file_is_named(tmp_path, val):
    with pytest.raises(ArtifactError, match="nope.npz: not found"):
        convert(tmp_path / "nope.npz", val)


# --------------------------------------------------------------------------- #
# The audit stage's step: fetch (local override + sha256) -> convert -> save
# --------------------------------------------------------------------------- #
@pytest.fixture
def audit_setup(tmp_path, val, params_raw):
    (tmp_path / "published").mkdir()
    path = write(tmp_path / "published" / "val_predictions.npz", **val["arrays"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    frame = pd.DataFrame({"row_id": np.arange(N_VAL), "label": val["labels"],
                          "tier": pd.Categorical.from_codes(val["tiers"], categories=list(TIERS))})

    def cfg_with(sha256):
        raw = composed("profile=audit")
        raw["published"]["arms"]["kd"] = {"local": str(path), "sha256": sha256}
        raw["published"]["sweep"][0]["file"] = {"local": str(path), "sha256": sha256}  # same bytes will do here
        raw["arms"]["topk"] = {"loss": "topk_kd", "top_k": 5}
        return config_from_mapping(raw)

    layout = Layout(tmp_path / "repo")
    layout.prepared.mkdir(parents=True)
    frame.to_parquet(layout.split("val"))  # the prepared val split the labels and tiers are checked against
    return {"path": path, "digest": digest, "cfg_with": cfg_with, "layout": layout}


def test_from_published_converts_a_local_copy(audit_setup, val):
    from kdlab.stages.train import NOT_PUBLISHED, from_published

    s = audit_setup
    cfg = s["cfg_with"](s["digest"])
    record = from_published(cfg, s["layout"], cfg.arm("kd"), C)
    assert record["available"] is True and record["source"] == "published" and record["arm"] == "kd"
    assert record["file"]["sha256"] == s["digest"] and record["file"]["pinned"] is True
    assert record["file"]["source"] == "local file (published.arms.kd.local)"
    assert record["file"]["what"] == "published.arms.kd" and record["config"]["alpha"] == 0.7
    assert str(s["path"]) not in json.dumps(record)  # arm.json is serialisable and names no host path
    pred = load_predictions(s["layout"].predictions("kd"))
    assert np.array_equal(pred.labels, val["labels"]) and np.array_equal(pred.tiers, val["tiers"])
    np.testing.assert_array_equal(pred.logits, val["arrays"]["logits"])
    cell = from_published(cfg, s["layout"], cfg.arm("sweep@1-0.7"), C)
    assert cell["file"]["what"] == "published.sweep[0].file"
    grid = load_predictions(s["layout"].predictions("sweep@1-0.7"))
    np.testing.assert_array_equal(grid.logits, val["arrays"]["logits"])

    missing = from_published(cfg, s["layout"], cfg.arm("topk"), C)
    assert missing["available"] is False and missing["reason"] == NOT_PUBLISHED
    assert not s["layout"].predictions("topk").exists()  # nothing is faked


def test_from_published_refuses_a_wrong_checksum(audit_setup):
    from kdlab.stages.train import from_published

    s = audit_setup
    wrong = "9" * 64
    cfg = s["cfg_with"](wrong)
    with pytest.raises(ArtifactError) as info:
        from_published(cfg, s["layout"], cfg.arm("kd"), C)
    message = str(info.value)
    assert message.startswith(f"{s['path']} (published.arms.kd): sha256 mismatch: expected {wrong}, "
                              f"found {s['digest']}")
    assert not s["layout"].predictions("kd").exists()


# --------------------------------------------------------------------------- #
# Teacher logits: train+test (79,278 x 113) and val with tiers
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def train_test(tmp_path_factory):
    rng = np.random.default_rng(7)
    train_labels = rng.integers(0, C, N_TRAIN).astype(np.int64)
    test_labels = rng.integers(0, C, N_TEST).astype(np.int64)
    labels = np.concatenate([train_labels, test_labels])  # train rows then test rows
    logits = fp16_logits(rng, N_TRAIN + N_TEST)
    path = tmp_path_factory.mktemp("teacher") / "train_test_logits_qwen3_32b_canonical_final.npz"
    np.savez(path, logits=logits, labels=labels)
    return {"path": path, "labels": labels, "logits": logits, "train": train_labels, "test": test_labels}


def test_load_train_test_logits(train_test):
    assert len(train_test["labels"]) == 79278
    out = teacher.load_published_logits(train_test["path"], train_test["labels"], C)
    assert set(out) == {"logits", "labels"}
    assert out["logits"].dtype == np.float16 and out["logits"].shape == (79278, C)
    np.testing.assert_array_equal(out["logits"], train_test["logits"])
    assert out["labels"].dtype == np.int64 and np.array_equal(out["labels"], train_test["labels"])


def test_train_test_logits_in_the_wrong_order_are_refused(train_test):
    test_then_train = np.concatenate([train_test["test"], train_test["train"]])
    with pytest.raises(ArtifactError) as info:
        teacher.load_published_logits(train_test["path"], test_then_train, C)
    message = str(info.value)
    assert message.startswith(str(train_test["path"])) and "labels differ from the prepared data in" in message
    assert "misaligned" in message


def test_train_only_labels_do_not_fit_train_test_logits(train_test):
    with pytest.raises(ArtifactError) as info:
        teacher.load_published_logits(train_test["path"], train_test["train"], C)
    assert f"{train_test['path']}: logits have shape (79278, 113); expected (57,846, 113)" in str(info.value)


@pytest.mark.parametrize("tier_format", ["names", "codes"])
def test_load_val_logits_with_tiers(tmp_path, val, tier_format):
    tiers = TIER_NAMES[val["tiers"]] if tier_format == "names" else val["tiers"].astype(np.int64)
    path = write(tmp_path / "val_logits_canonical_final.npz", logits=val["arrays"]["logits"], labels=val["labels"],
                 tiers=tiers)
    out = teacher.load_published_logits(path, val["labels"], C, tiers=val["tiers"])
    assert out["tiers"].dtype == np.int8 and np.array_equal(out["tiers"], val["tiers"])
    assert out["logits"].shape == (N_VAL, C)


def test_val_logits_with_wrong_or_missing_tiers(tmp_path, val):
    wrong = write(tmp_path / "wrong.npz", logits=val["arrays"]["logits"], labels=val["labels"],
                  tiers=(val["tiers"] + 1) % 3)
    with pytest.raises(ArtifactError, match=r"wrong\.npz: tiers differ from the prepared data in 6,430 rows"):
        teacher.load_published_logits(wrong, val["labels"], C, tiers=val["tiers"])
    missing = write(tmp_path / "missing.npz", logits=val["arrays"]["logits"], labels=val["labels"])
    with pytest.raises(ArtifactError, match=r"missing\.npz: missing array 'tiers'"):
        teacher.load_published_logits(missing, val["labels"], C, tiers=val["tiers"])
    # without prepared tiers to check, the file's tiers are not needed
    out = teacher.load_published_logits(missing, val["labels"], C)
    assert "tiers" not in out


@pytest.mark.parametrize("temperature", [1.2538, 1.0, 5.0, 0.8])
def test_implied_temperature_recovers_the_scale(temperature):
    raw = fp16_logits(np.random.default_rng(1), 2000)
    final = (raw.astype(np.float32) / np.float32(temperature)).astype(np.float16)
    assert teacher.implied_temperature(raw, final) == pytest.approx(temperature, rel=1e-3)
    assert teacher.implied_temperature(raw, raw) == 1.0


def test_implied_temperature_of_near_zero_logits_is_nan():
    tiny = np.full((3, 4), 0.1, dtype=np.float16)
    assert np.isnan(teacher.implied_temperature(tiny, tiny))


def test_temperature_from_metadata_finds_a_nested_key(tmp_path):
    meta = {"model": "Qwen/Qwen3-32B", "lora": {"rank": 16},
            "calibration": {"method": "temperature scaling", "fitted": [{"split": "val"}, {"Optimal_Temperature": 1.2538}]}}
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(meta))
    assert teacher.temperature_from_metadata(path) == 1.2538


def test_temperature_from_metadata_skips_non_positive_and_non_numbers(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps({"temperature": 0, "temperature_note": "1.3", "calib": {"temperature_T": 1.5}}))
    assert teacher.temperature_from_metadata(path) == 1.5
    path.write_text(json.dumps({"model": "x", "scale": 1.25}))
    assert teacher.temperature_from_metadata(path) is None
    assert teacher.temperature_from_metadata(None) is None


def test_temperature_from_metadata_ignores_boolean_flags(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps({"temperature_scaled": True, "temperature": 1.2538}))
    assert teacher.temperature_from_metadata(path) == 1.2538


def test_temperature_from_metadata_bad_json_names_the_file(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match="metadata.json"):
        teacher.temperature_from_metadata(path)
