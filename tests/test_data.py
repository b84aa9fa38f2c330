"""Canonical data processing (docs/study.md §1): splits, tiers, count checks and the prepare stage."""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kdlab import data
from kdlab.config import ExpectedCounts, config_from_mapping
from kdlab.data import CourseFiles, DataError
from kdlab.io import ArtifactError
from kdlab.paths import Layout
from kdlab.stages import prepare

TEXT, LABEL = "Consumer Complaint", "Issue"
LABELS = ["A", "B", "C", "D", "E"]
RAW_MAP = {"_comment": "A", "a-old": "A", "B-old": "B", "Z-old": "Zed"}


def raw_frame(labels, texts=None, index=None) -> pd.DataFrame:
    texts = texts if texts is not None else [f"t{i}" for i in range(len(labels))]
    return pd.DataFrame({LABEL: labels, TEXT: texts, "Product": "x"}, index=index)


@pytest.fixture
def small_course() -> CourseFiles:
    return CourseFiles(LABELS, data.parse_merge_map(RAW_MAP), [9, 0, 1, 2, 3, 8], [4, 5, 6, 7])


@pytest.fixture
def small_raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = raw_frame(["A", "a-old", "Unknown", "B-old", "C", "_comment", "D", "Z-old", "E", "B"],
                      texts=["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", None, "t9"],
                      index=range(100, 110))  # a non-default index: source_index must be a position
    test = raw_frame(["E", "Unknown", "a-old"])
    return train, test


# --------------------------------------------------------------------------- #
# parse_merge_map
# --------------------------------------------------------------------------- #
def test_parse_merge_map_drops_comment_keys():
    assert data.parse_merge_map(RAW_MAP) == {"a-old": "A", "B-old": "B", "Z-old": "Zed"}


def test_parse_merge_map_refuses_non_string_values():
    with pytest.raises(DataError, match=r"mymap: values must be label strings; non-string values for keys \['x'\]"):
        data.parse_merge_map({"_c": 1, "x": 3, "y": "Y"}, "mymap")


# --------------------------------------------------------------------------- #
# canonicalize with index files
# --------------------------------------------------------------------------- #
def test_canonicalize_with_index_files(small_course, small_raw):
    raw_train, raw_test = small_raw
    splits = data.canonicalize(raw_train, raw_test, small_course, TEXT, LABEL)
    assert set(splits) == {"train", "val", "test"}
    train, val, test = splits["train"], splits["val"], splits["test"]
    assert list(train.columns) == ["row_id", "text", "label", "label_name", "source_index"]
    # index-file order is kept; row 2 (unknown label) is filtered; 'a-old' and 'B-old' are merged
    assert train["source_index"].tolist() == [9, 0, 1, 3, 8]
    assert train["label_name"].tolist() == ["B", "A", "A", "B", "E"]
    assert train["label"].tolist() == [1, 0, 0, 1, 4]
    assert train["text"].tolist() == ["t9", "t0", "t1", "t3", ""]  # missing text -> ""
    assert train["row_id"].tolist() == [0, 1, 2, 3, 4]
    # the '_comment' key is not a merge rule, 'Z-old' maps to a non-canonical label: both filtered
    assert val["source_index"].tolist() == [4, 6] and val["label_name"].tolist() == ["C", "D"]
    assert val["row_id"].tolist() == [0, 1]
    assert test["source_index"].tolist() == [0, 2] and test["label"].tolist() == [4, 0]
    assert test["row_id"].tolist() == [0, 1]
    for frame in splits.values():
        assert frame["row_id"].dtype == np.int64 and frame["label"].dtype == np.int64
        assert frame["source_index"].dtype == np.int64


def test_canonicalize_without_test_split(small_course, small_raw):
    splits = data.canonicalize(small_raw[0], None, small_course, TEXT, LABEL)
    assert len(splits["test"]) == 0 and list(splits["test"].columns) == list(splits["train"].columns)


def test_canonicalize_does_not_modify_its_inputs(small_course, small_raw):
    raw_train, raw_test = small_raw
    before = raw_train.copy()
    data.canonicalize(raw_train, raw_test, small_course, TEXT, LABEL)
    pd.testing.assert_frame_equal(raw_train, before)


@pytest.mark.parametrize("train_idx, found", [([0, 10], "[0, 10]"), ([-1, 3], "[-1, 3]")])
def test_indices_outside_the_raw_split_are_refused(small_raw, train_idx, found):
    course = CourseFiles(LABELS, {}, train_idx, [4])
    with pytest.raises(DataError) as info:
        data.canonicalize(small_raw[0], None, course, TEXT, LABEL)
    message = str(info.value)
    assert message.startswith("train_indices: indices must lie in [0, 10) of the raw train split")
    assert f"found range {found}" in message and "does not belong to this dataset" in message


def test_val_indices_outside_the_raw_split_are_refused(small_raw):
    course = CourseFiles(LABELS, {}, [0, 1], [5, 64250])
    with pytest.raises(DataError, match=re.escape("val_indices: indices must lie in [0, 10) of the raw train "
                                                  "split, found range [5, 64250]")):
        data.canonicalize(small_raw[0], None, course, TEXT, LABEL)


def test_overlapping_indices_are_refused(small_raw):
    course = CourseFiles(LABELS, {}, [0, 1, 2, 3], [3, 2, 7])
    with pytest.raises(DataError, match="train_indices and val_indices overlap in 2 rows; expected disjoint"):
        data.canonicalize(small_raw[0], None, course, TEXT, LABEL)


def test_duplicate_indices_are_refused(small_raw):
    course = CourseFiles(LABELS, {}, [0, 1, 1, 3], [4])
    with pytest.raises(DataError, match="train_indices"):
        data.canonicalize(small_raw[0], None, course, TEXT, LABEL)


def test_non_integer_indices_are_refused(small_raw):
    course = CourseFiles(LABELS, {}, [0, "1"], [4])
    with pytest.raises(DataError, match="train_indices"):
        data.canonicalize(small_raw[0], None, course, TEXT, LABEL)


@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_columns_are_named(small_course, small_raw, split):
    raw_train, raw_test = small_raw
    frames = {"train": raw_train, "test": raw_test}
    frames[split] = frames[split].rename(columns={TEXT: "complaint_what"})
    with pytest.raises(DataError) as info:
        data.canonicalize(frames["train"], frames["test"], small_course, TEXT, LABEL)
    message = str(info.value)
    assert f"raw {split} split: missing column(s) ['Consumer Complaint']" in message
    assert "found ['Issue', 'complaint_what', 'Product']" in message
    assert "data.text_column" in message and "params.yaml" in message


# --------------------------------------------------------------------------- #
# canonicalize without index files: the seeded stratified split
# --------------------------------------------------------------------------- #
@pytest.fixture
def unindexed_raw() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    counts = {"A": 40, "B": 17, "C": 6, "D": 3, "E": 1, "Nope": 9}
    labels = [lab for lab, n in counts.items() for _ in range(n)]
    return raw_frame(list(rng.permutation(labels)))


def test_stratified_split_is_deterministic_and_keeps_every_class(unindexed_raw):
    course = CourseFiles(LABELS, {})
    a = data.canonicalize(unindexed_raw, None, course, TEXT, LABEL, val_fraction=0.25, seed=7)
    b = data.canonicalize(unindexed_raw, None, course, TEXT, LABEL, val_fraction=0.25, seed=7)
    for name in ("train", "val"):
        pd.testing.assert_frame_equal(a[name], b[name])
    train, val = a["train"], a["val"]
    n_val = val["label_name"].value_counts().to_dict()
    n_train = train["label_name"].value_counts().to_dict()
    # round(0.25 * n) rows of each class go to val
    assert n_val == {"A": 10, "B": 4, "C": 2, "D": 1}
    assert n_train == {"A": 30, "B": 13, "C": 4, "D": 2, "E": 1}
    kept = np.flatnonzero(unindexed_raw[LABEL].isin(LABELS).to_numpy())
    assert sorted(train["source_index"].tolist() + val["source_index"].tolist()) == kept.tolist()
    assert not set(train["source_index"]) & set(val["source_index"])
    assert train["source_index"].is_monotonic_increasing and val["source_index"].is_monotonic_increasing
    assert train["row_id"].tolist() == list(range(len(train))) and val["row_id"].tolist() == list(range(len(val)))
    other = data.canonicalize(unindexed_raw, None, course, TEXT, LABEL, val_fraction=0.25, seed=8)
    assert other["val"]["source_index"].tolist() != val["source_index"].tolist()  # the seed matters


def test_stratified_val_split_positions():
    labels = np.array([0, 0, 1, 2, 2, 2, 2, 1, 0, 0])
    train, val = data.stratified_val_split(labels, 0.5, seed=1)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 1, 2]
    assert np.bincount(labels[train], minlength=3).tolist() == [2, 1, 2]
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    single = data.stratified_val_split(np.array([3]), 0.9, seed=1)
    assert single[0].tolist() == [0] and single[1].tolist() == []
    # round(0.9 * n) would empty a class's train rows: one row always stays in train
    labels = np.array([0, 1, 1, 2, 2, 2])
    train, val = data.stratified_val_split(labels, 0.9, seed=1)
    assert np.bincount(labels[train], minlength=3).tolist() == [1, 1, 1]
    assert np.bincount(labels[val], minlength=3).tolist() == [0, 1, 2]


# --------------------------------------------------------------------------- #
# Tiers
# --------------------------------------------------------------------------- #
def labels_with_counts(counts, seed=0) -> np.ndarray:
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


def test_assign_tiers_by_frequency_with_ties_broken_by_label_id():
    # class 1 is the most frequent; classes 0, 2, 3, 4, 5 tie on 3 rows across both tier boundaries
    counts = [3, 7, 3, 3, 3, 3, 0, 5]
    tiers = data.assign_tiers(labels_with_counts(counts), n_classes=8, head=3, mid=3)
    # rank: 1 (7), 7 (5), 0 (3), 2 (3), 3 (3), 4 (3), 5 (3), 6 (0)
    assert tiers.dtype == np.int8
    assert tiers.tolist() == [0, 0, 1, 1, 1, 2, 2, 0]
    shuffled = data.assign_tiers(labels_with_counts(counts, seed=5), n_classes=8, head=3, mid=3)
    assert shuffled.tolist() == tiers.tolist()  # row order does not matter


def test_assign_tiers_study_sizes():
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 500, size=113)
    tiers = data.assign_tiers(labels_with_counts(counts), 113, head=20, mid=40)
    assert np.bincount(tiers, minlength=3).tolist() == [20, 40, 53]
    assert counts[tiers == 0].min() >= counts[tiers == 1].max() >= counts[tiers == 1].min() >= counts[tiers == 2].max()


def test_assign_tiers_needs_a_tail():
    with pytest.raises(DataError, match=r"head \(3\) \+ mid \(2\) classes must be fewer than the 5 classes"):
        data.assign_tiers(np.arange(5), 5, 3, 2)


def test_add_tiers_orders_columns_and_uses_the_tier_names(small_course, small_raw):
    splits = data.canonicalize(*small_raw, small_course, TEXT, LABEL)
    class_tiers = np.array([0, 1, 2, 2, 1], dtype=np.int8)
    out = data.add_tiers(splits, class_tiers)
    assert list(out["train"].columns) == data.COLUMNS
    assert out["train"]["tier"].astype(str).tolist() == ["mid", "head", "head", "mid", "mid"]
    assert list(out["val"]["tier"].cat.categories) == ["head", "mid", "tail"]
    assert data.tier_codes_of(out["val"]).tolist() == [2, 2]
    assert "tier" not in splits["train"].columns  # the input is not modified


# --------------------------------------------------------------------------- #
# check_counts
# --------------------------------------------------------------------------- #
def tiered_splits(n_train, n_test, val_tiers) -> dict[str, pd.DataFrame]:
    val_tier_names = [t for t, n in val_tiers.items() for _ in range(n)]
    return {"train": pd.DataFrame({"x": range(n_train)}), "test": pd.DataFrame({"x": range(n_test)}),
            "val": pd.DataFrame({"tier": pd.Categorical(val_tier_names, categories=["head", "mid", "tail"])})}


def test_check_counts_passes_and_skips_nulls():
    splits = tiered_splits(5, 3, {"head": 2, "mid": 1, "tail": 0})
    data.check_counts(splits, None, "x")
    data.check_counts(splits, ExpectedCounts(), "x")
    data.check_counts(splits, ExpectedCounts(train=5, val=3, test=3, val_tiers={"head": 2, "mid": 1, "tail": 0}), "x")
    data.check_counts(splits, ExpectedCounts(train=5, val=None, test=None), "x")


def test_check_counts_names_expected_and_found():
    splits = tiered_splits(57845, 21432, {"head": 5155, "mid": 1066, "tail": 210})
    expected = ExpectedCounts(train=57846, val=6430, test=21432, val_tiers={"head": 5155, "mid": 1065, "tail": 210})
    with pytest.raises(DataError) as info:
        data.check_counts(splits, expected, "prepare (hub)")
    message = str(info.value)
    assert message.startswith("prepare (hub): the prepared data do not match data.expected in params.yaml")
    assert "train: expected 57,846 rows, found 57,845" in message
    assert "val: expected 6,430 rows, found 6,431" in message
    assert "val mid tier: expected 1,065 rows, found 1,066" in message
    assert "test:" not in message and "head tier" not in message
    assert "set data.expected to null" in message


def test_check_counts_missing_tier():
    splits = tiered_splits(1, 1, {"head": 2, "mid": 1, "tail": 0})
    with pytest.raises(DataError, match="val tail tier: expected 4 rows, found 0"):
        data.check_counts(splits, ExpectedCounts(val_tiers={"head": 2, "mid": 1, "tail": 4}), "x")


# --------------------------------------------------------------------------- #
# training_frame, read_table, data_card
# --------------------------------------------------------------------------- #
def test_training_frame_is_train_then_test_with_teacher_rows(small_course, small_raw):
    splits = data.canonicalize(*small_raw, small_course, TEXT, LABEL)
    frame = data.training_frame(splits, ["train", "test"])
    assert len(frame) == len(splits["train"]) + len(splits["test"]) == 7
    assert frame["split"].tolist() == ["train"] * 5 + ["test"] * 2
    assert frame["teacher_row"].tolist() == list(range(7)) and frame["teacher_row"].dtype == np.int64
    assert frame["label"].tolist() == splits["train"]["label"].tolist() + splits["test"]["label"].tolist()
    assert frame["row_id"].tolist() == [0, 1, 2, 3, 4, 0, 1]  # the split's own row ids are kept
    only_train = data.training_frame(splits, ["train"])
    assert only_train["teacher_row"].tolist() == list(range(5)) and set(only_train["split"]) == {"train"}


def test_read_table_formats(tmp_path):
    frame = raw_frame(["A", "B"], texts=['says "hi", then, leaves', "line\nbreak"])
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    for name in ("a.csv", "a.tsv", "a.parquet"):
        pd.testing.assert_frame_equal(data.read_table(tmp_path / name), frame)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'a.json'}: unsupported file type '.json'; "
                                                  "expected .parquet or .csv")):
        data.read_table(tmp_path / "a.json")


def test_load_split_missing_names_the_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'val.parquet'}: not found; run `dvc repro prepare`")):
        data.load_split(tmp_path, "val")


# --------------------------------------------------------------------------- #
# The real course files (../shared/course-data)
# --------------------------------------------------------------------------- #
def test_real_course_files_select_the_canonical_rows(course_data):
    label_list = json.loads((course_data / "label_list.json").read_text())
    raw_map = json.loads((course_data / "label_merge_mapping.json").read_text())
    train_idx = json.loads((course_data / "train_indices.json").read_text())
    val_idx = json.loads((course_data / "val_indices.json").read_text())
    merge = data.parse_merge_map(raw_map)
    assert len(label_list) == len(set(label_list)) == 113
    assert len(merge) == 36 and not any(k.startswith("_") for k in merge)
    assert set(merge.values()) <= set(label_list)

    n_raw = max(max(train_idx), max(val_idx)) + 1
    assert n_raw == 64292  # the Hub train split's size (docs/study.md §1)
    rng = np.random.default_rng(42)
    vocabulary = np.array(label_list + sorted(merge))  # canonical labels and old ones that merge into them
    raw_labels = rng.choice(vocabulary, size=n_raw)
    unused = np.setdiff1d(np.arange(n_raw), np.union1d(train_idx, val_idx))
    raw_labels[unused] = "not a label"  # rows outside both index files never reach a split
    raw_train = raw_frame(raw_labels.tolist())
    raw_test = raw_frame(rng.choice(np.array(label_list), size=21439).tolist())

    course = CourseFiles(label_list, merge, train_idx, val_idx)
    splits = data.canonicalize(raw_train, raw_test, course, TEXT, LABEL)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (57846, 6430, 21439)
    assert splits["train"]["source_index"].tolist() == train_idx
    assert splits["val"]["source_index"].tolist() == val_idx
    expected_names = [merge.get(x, x) for x in raw_labels[val_idx]]
    assert splits["val"]["label_name"].tolist() == expected_names
    assert [label_list[i] for i in splits["val"]["label"]] == expected_names
    data.check_counts(splits, ExpectedCounts(train=57846, val=6430), "real course files")
    tiers = data.assign_tiers(splits["train"]["label"].to_numpy(), 113, 20, 40)
    assert np.bincount(tiers, minlength=3).tolist() == [20, 40, 53]


# --------------------------------------------------------------------------- #
# The prepare stage end to end on local files
# --------------------------------------------------------------------------- #
PREP_LABELS = ["Billing dispute", "Late fee", "Fraud", "Identity theft", "Loan payoff",
               "Account closed", "Card lost", "Wire transfer"]
# canonical train counts per class (after merging) -> tiers with head 2, mid 3:
# head: Billing dispute (10), Late fee (8); mid: Fraud, Identity theft, Loan payoff; tail: the rest
TRAIN_COUNTS = [10, 8, 6, 5, 4, 3, 2, 1]
VAL_CLASSES = [0, 1, 2, 3, 4, 5, 7]  # val tiers: head 2, mid 3, tail 2


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def local_inputs(tmp_path):
    """Raw train CSV + test parquet in the Hub layout and course files, all on disk."""
    rng = np.random.default_rng(3)
    train_rows = [PREP_LABELS[c] for c, n in enumerate(TRAIN_COUNTS) for _ in range(n)]
    train_rows[10:14] = ["Late fees (old)"] * 4  # old label, merged into "Late fee"
    train_rows += ["Not canonical"] * 3
    val_rows = [PREP_LABELS[c] for c in VAL_CLASSES] + ["Not canonical"]
    roles = ["train"] * len(train_rows) + ["val"] * len(val_rows) + ["none"] * 2
    labels = train_rows + val_rows + ["Fraud", "Fraud"]
    order = rng.permutation(len(labels))  # raw position of each row
    raw = [None] * len(labels)
    for i, pos in enumerate(order):
        raw[pos] = labels[i]
    texts = [f'complaint {i}: "they charged me", twice' for i in range(len(raw))]
    texts[int(order[0])] = ""  # an empty field in the CSV
    train_idx = [int(order[i]) for i, r in enumerate(roles) if r == "train"]
    val_idx = [int(order[i]) for i, r in enumerate(roles) if r == "val"]
    rng.shuffle(train_idx)  # index files need not be sorted: their order is kept
    d = tmp_path / "inputs"
    d.mkdir()
    pd.DataFrame({LABEL: raw, TEXT: texts, "Product": "p"}).to_csv(d / "train.csv", index=False)
    test = pd.DataFrame({LABEL: ["Fraud", "Card lost", "Nope", "Late fees (old)"], TEXT: list("wxyz")})
    test.to_parquet(d / "test.parquet", index=False)
    (d / "label_list.json").write_text(json.dumps(PREP_LABELS))
    (d / "label_merge_mapping.json").write_text(json.dumps({"_comment": "old -> new", "Late fees (old)": "Late fee"}))
    (d / "train_indices.json").write_text(json.dumps(train_idx))
    (d / "val_indices.json").write_text(json.dumps(val_idx))
    return {"dir": d, "raw": raw, "train_idx": train_idx, "val_idx": val_idx}


def local_params(params_raw, inputs, **course_overrides) -> dict:
    d = inputs["dir"]
    course = {name: {"local": str(d / f"{name}.json"), "sha256": None}
              for name in ("label_list", "label_merge_mapping", "train_indices", "val_indices")}
    course["label_list"]["sha256"] = sha256(d / "label_list.json")
    for name, spec in course_overrides.items():
        course[name] = spec
    raw = copy.deepcopy(params_raw)
    raw["optim"]["require_gpu"] = False  # the train profile's GPU guard; prepare itself runs on a CPU
    raw["data"].update(source="local", local_train=str(d / "train.csv"), local_test=str(d / "test.parquet"),
                       course_files=course, head_classes=2, mid_classes=3,
                       expected={"train": 39, "val": 7, "test": 3, "val_tiers": {"head": 2, "mid": 3, "tail": 2}})
    return raw


def test_prepare_stage_on_local_files(tmp_path, params_raw, local_inputs, capsys):
    cfg = config_from_mapping(local_params(params_raw, local_inputs))
    layout = Layout(tmp_path / "repo")
    prepare.run(cfg, layout, argparse.Namespace())
    assert "prepare: 39 train / 7 val / 3 test rows" in capsys.readouterr().out

    train = pd.read_parquet(layout.split("train"))
    val = pd.read_parquet(layout.split("val"))
    test = pd.read_parquet(layout.split("test"))
    assert list(train.columns) == data.COLUMNS
    raw = local_inputs["raw"]
    kept = [i for i in local_inputs["train_idx"] if raw[i] != "Not canonical"]
    assert train["source_index"].tolist() == kept  # index-file order
    assert train["row_id"].tolist() == list(range(39))
    assert train["label_name"].value_counts().to_dict() == dict(zip(PREP_LABELS, TRAIN_COUNTS))
    assert "" in train["text"].tolist() + val["text"].tolist()
    assert val["source_index"].tolist() == [i for i in local_inputs["val_idx"] if raw[i] != "Not canonical"]
    assert val["tier"].tolist() == ["head", "head", "mid", "mid", "mid", "tail", "tail"]
    assert test["label_name"].tolist() == ["Fraud", "Card lost", "Late fee"]
    assert test["tier"].tolist() == ["mid", "tail", "head"]

    card = json.loads(layout.data_card.read_text())
    assert card["source"] == "local" and card["labels"] == PREP_LABELS
    assert card["source_description"] == "your own complaints (train.csv)"  # no host path
    assert card["class_tiers"] == ["head", "head", "mid", "mid", "mid", "tail", "tail", "tail"]
    assert card["split_sizes"] == {"train": 39, "val": 7, "test": 3}
    assert card["val_tier_sizes"] == {"head": 2, "mid": 3, "tail": 2}
    assert card["train_class_counts"] == TRAIN_COUNTS

    sources = {r["what"]: r for r in json.loads((layout.prepared / "sources.json").read_text())}
    d = local_inputs["dir"]
    assert set(sources) == {"data.course_files.label_list", "data.course_files.label_merge_mapping",
                            "data.course_files.train_indices", "data.course_files.val_indices",
                            "data.local_train", "data.local_test"}
    assert sources["data.course_files.label_list"]["pinned"] is True
    assert sources["data.course_files.val_indices"]["pinned"] is False
    assert sources["data.local_train"]["sha256"] == sha256(d / "train.csv")
    assert sources["data.local_test"]["sha256"] == sha256(d / "test.parquet")
    assert sources["data.course_files.train_indices"]["source"] == "local file (data.course_files.train_indices.local)"
    assert str(d) not in json.dumps(sources)  # no host path in a tracked output


def test_prepare_stage_without_index_files(tmp_path, params_raw, local_inputs):
    raw = local_params(params_raw, local_inputs, train_indices=None, val_indices=None)
    raw["data"]["expected"] = None
    raw["data"]["val_fraction"] = 0.2
    cfg = config_from_mapping(raw)
    layout = Layout(tmp_path / "repo")
    prepare.run(cfg, layout, argparse.Namespace())
    card = json.loads(layout.data_card.read_text())
    canonical = sum(1 for x in local_inputs["raw"] if x != "Not canonical" and x != "Nope")
    assert card["split_sizes"]["train"] + card["split_sizes"]["val"] == canonical == 48
    assert min(card["train_class_counts"]) >= 1


def test_prepare_needs_both_index_files_or_neither(tmp_path, params_raw, local_inputs):
    cfg = config_from_mapping(local_params(params_raw, local_inputs, val_indices=None))
    with pytest.raises(DataError, match="data.course_files: give both train_indices and val_indices, or neither"):
        prepare.run(cfg, Layout(tmp_path / "repo"), argparse.Namespace())


def test_prepare_wrong_sha256_names_the_param(tmp_path, params_raw, local_inputs):
    d = local_inputs["dir"]
    wrong = "0" * 64
    raw = local_params(params_raw, local_inputs,
                       label_merge_mapping={"local": str(d / "label_merge_mapping.json"), "sha256": wrong})
    cfg = config_from_mapping(raw)
    layout = Layout(tmp_path / "repo")
    with pytest.raises(ArtifactError) as info:
        prepare.run(cfg, layout, argparse.Namespace())
    message = str(info.value)
    assert "(data.course_files.label_merge_mapping): sha256 mismatch" in message
    assert f"expected {wrong}, found {sha256(d / 'label_merge_mapping.json')}" in message
    assert str(d / "label_merge_mapping.json") in message
    assert not layout.prepared.exists()  # nothing written


def test_prepare_expected_counts_mismatch(tmp_path, params_raw, local_inputs):
    raw = local_params(params_raw, local_inputs)
    raw["data"]["expected"]["train"] = 40
    with pytest.raises(DataError, match="prepare \\(local\\): .*train: expected 40 rows, found 39"):
        prepare.run(config_from_mapping(raw), Layout(tmp_path / "repo"), argparse.Namespace())


def test_prepare_missing_local_file(tmp_path, params_raw, local_inputs):
    raw = local_params(params_raw, local_inputs)
    raw["data"]["local_train"] = str(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match=re.escape(f"data.local_train: file {tmp_path / 'nowhere.csv'} does not exist")):
        prepare.run(config_from_mapping(raw), Layout(tmp_path / "repo"), argparse.Namespace())


def test_prepare_entry_point_reports_errors_in_one_line(tmp_path, params_raw, local_inputs, monkeypatch, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    params = repo / "params.yaml"
    params.write_text(yaml.safe_dump(local_params(params_raw, local_inputs)))
    assert prepare.main(["--params", str(params)]) == 0
    assert (repo / "data" / "prepared" / "train.parquet").is_file()

    bad = local_params(params_raw, local_inputs)
    bad["data"]["course_files"]["label_list"]["sha256"] = "f" * 64
    params.write_text(yaml.safe_dump(bad))
    capsys.readouterr()
    assert prepare.main(["--params", str(params)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdlab: error: ") and "(data.course_files.label_list): sha256 mismatch" in err
    assert "Traceback" not in err
