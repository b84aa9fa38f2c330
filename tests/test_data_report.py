"""What prepare and tokenizer say about the data: drops counted per input, empty texts dropped, the data
report's counts against a direct count of the fixture CSV, the warnings, token lengths and truncation as
the students encode them, the report's two data tables, and an output folder replaced only as a whole."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import composed
from kdlab import data, data_report
from kdlab.config import config_from_mapping
from kdlab.folders import staged_folder, staging_path
from kdlab.paths import Layout
from kdlab.stages import prepare, tokenizer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEXT, LABEL = "Consumer Complaint", "Issue"
OWN_COURSE = (f"data.course_files.label_list.local={FIXTURES / 'own_label_list.json'}",  # plain -S overrides
              "data.course_files.label_list.sha256=null",
              f"data.course_files.label_merge_mapping.local={FIXTURES / 'own_merge_mapping.json'}",
              "data.course_files.label_merge_mapping.sha256=null")


def frame(labels, texts) -> pd.DataFrame:
    return pd.DataFrame({LABEL: labels, TEXT: texts})


# --------------------------------------------------------------------------- #
# Accounts: what canonical processing drops, and why
# --------------------------------------------------------------------------- #
def test_unknown_labels_and_empty_texts_are_counted_under_their_first_reason():
    course = data.CourseFiles(["A", "B"], {"a-old": "A"})
    raw = frame(["A", "a-old", "B", "Z", "Z", None, "B", "A"],
                ["one", "two", "  ", "four", "", "six", None, "eight"])
    kept = data.prepare_splits(raw, None, course, TEXT, LABEL, val_fraction=0.1, drop_empty_text=True)
    acc = kept.accounts["train+val"]
    assert (acc.rows, acc.unknown_label, acc.empty_text, acc.dropped, acc.kept) == (8, 3, 2, 5, 3)
    assert acc.unknown_labels == (("Z", 2), (data.MISSING_LABEL, 1))  # "" text of a Z row counts as unknown label
    texts = pd.concat([kept.splits["train"], kept.splits["val"]])["text"]
    assert sorted(texts) == ["eight", "one", "two"]
    course_rule = data.prepare_splits(raw, None, course, TEXT, LABEL, val_fraction=0.1)  # docs/study.md §1: keep empties
    assert course_rule.accounts["train+val"].kept == 5 and course_rule.accounts["train+val"].empty_text == 2
    assert data.canonicalize(raw, None, course, TEXT, LABEL, 0.1)["train"].equals(course_rule.splits["train"])


def test_drops_above_the_threshold_name_the_input_and_the_labels():
    acc = data.Account(rows=200, unknown_label=30, empty_text=5, empty_dropped=True,
                       unknown_labels=(("Billing", 20), ("3", 10)))
    data.check_drops({"test": acc}, 0.2, {"test": "data.local_test (t.csv)"})  # 17.5 %: allowed
    with pytest.raises(data.DataError) as info:
        data.check_drops({"test": acc}, 0.1, {"test": "data.local_test (t.csv)"})
    message = str(info.value)
    assert message.startswith("data.local_test (t.csv): 35 of 200 rows would be dropped (17.5%): 30 with a label not "
                              "in the label list (most frequent: 'Billing' (20), '3' (10)); 5 with an empty text;")
    assert "allows 10.0%" in message and "-S data.max_dropped_fraction=0.18" in message
    kept = data.Account(rows=200, unknown_label=0, empty_text=150, empty_dropped=False)
    data.check_drops({"train": kept}, 0.0, {})  # empty texts kept (hub) are no drop


def test_minimum_sizes_are_checked_without_expected_counts():
    splits = {"train": pd.DataFrame({"label": [0, 1, 1]}), "val": pd.DataFrame({"label": [1, 1]}),
              "test": pd.DataFrame({"label": []})}
    with pytest.raises(data.DataError) as info:
        data.check_sizes(splits, ["A", "B"], 5, 2, "prepare (local)")
    message = str(info.value)
    assert "the train split has 3 rows, expected at least 5 (data.min_train_rows)" in message
    assert "the val split holds 1 class (['B']), expected at least 2" in message
    data.check_sizes({**splits, "val": pd.DataFrame({"label": [0, 1]})}, ["A", "B"], 3, 2, "x")


# --------------------------------------------------------------------------- #
# The data report of the fixture, counted independently
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    """prepare and tokenizer on tests/fixtures/own_complaints.csv with the cpu profile (no dvc.yaml)."""
    raw = composed("profile=cpu", "data=local", f"data.local_train={FIXTURES / 'own_complaints.csv'}", *OWN_COURSE,
                   "data.head_classes=4", "data.mid_classes=6")
    cfg = config_from_mapping(raw)
    layout = Layout(tmp_path_factory.mktemp("fixture-run"))
    prepare.run(cfg, layout, argparse.Namespace())
    tokenizer.run(cfg, layout, argparse.Namespace())
    return cfg, layout


def test_the_fixture_report_matches_a_direct_count(fixture_run):
    cfg, layout = fixture_run
    report = json.loads(layout.data_report.read_text())
    raw = pd.read_csv(FIXTURES / "own_complaints.csv", keep_default_na=False)
    labels = json.loads((FIXTURES / "own_label_list.json").read_text())
    merged = raw[LABEL].replace({"Incorrect information on credit report": "Incorrect information on your report"})
    known = merged.isin(labels)
    empty = raw[TEXT].str.strip().eq("") & known
    acc = report["inputs"]["train+val"]
    assert acc["source"] == "data.local_train (own_complaints.csv)"  # the file's name, no host path
    assert (acc["rows"], acc["dropped_unknown_label"], acc["empty_text"], acc["kept"]) == \
        (len(raw), int((~known).sum()), int(empty.sum()), int((known & ~empty).sum()))
    assert acc["unknown_labels"] == [{"label": "Account question", "rows": 4},
                                     {"label": "Mortgage escrow question", "rows": 3},
                                     {"label": "(missing)", "rows": 1}]
    train, val = (pd.read_parquet(layout.split(s)) for s in ("train", "val"))
    assert not train["text"].str.strip().eq("").any() and not val["text"].str.strip().eq("").any()
    assert report["class_counts"]["train"] == np.bincount(train["label"], minlength=len(labels)).tolist()
    assert report["absent_classes"]["train"] == ["Overlimit fee", "Convenience checks", "Rewards"]
    assert report["absent_classes"]["val"][0] == "Struggling to pay your mortgage"  # 4 rows: none go to val
    assert report["splits"]["train"]["duplicate_texts"] == int(train["text"].duplicated().sum()) >= 1
    assert report["splits"]["val"]["classes_present"] == val["label"].nunique()
    assert str(FIXTURES) not in layout.data_report.read_text()


def test_token_lengths_and_truncation_are_the_students(fixture_run):
    """lengths.json counts what train.py's encoding cuts: texts whose untruncated encoding is longer than
    data.max_length are exactly those the truncating encoder shortens."""
    from kdlab.tokenization import load_tokenizer

    cfg, layout = fixture_run
    lengths = json.loads(layout.token_lengths.read_text())
    tok = load_tokenizer(layout.tokenizer)
    texts = pd.read_parquet(layout.split("train"))["text"].tolist()
    full = [len(ids) for ids in tok(texts, truncation=False)["input_ids"]]
    cut = [len(ids) for ids in tok(texts, truncation=True, max_length=cfg.data.max_length)["input_ids"]]
    shortened = sum(c < f for c, f in zip(cut, full))
    s = lengths["train"]
    assert s["n"] == len(texts) and s["truncated"] == shortened > 0
    assert s["share_truncated"] == pytest.approx(shortened / len(texts))
    assert s["p50"] == np.percentile(full, 50) and s["max"] == max(full)
    assert lengths["test"] == data_report.length_summary([], cfg.data.max_length)  # no test file: n = 0


def test_length_summary_against_numpy():
    x = [3, 10, 200, 129, 128, 50]
    s = data_report.length_summary(x, 128)
    assert (s["n"], s["truncated"], s["max"]) == (6, 2, 200)
    assert s["share_truncated"] == pytest.approx(2 / 6) and s["p90"] == pytest.approx(np.percentile(x, 90))


def test_warnings_name_the_absent_classes():
    report = {"n_classes": 30, "absent_classes": {"train": [f"L{i}" for i in range(12)], "val": []},
              "inputs": {"test": {"empty_text": 4, "empty_text_dropped": False}}, "val_texts_in_training_data": 2}
    lines = data_report.warnings(report)
    assert lines[0].startswith("12 of the label list's 30 classes have no train row ('L0', 'L1', ")
    assert "'L9' and 2 more)" in lines[0] and "never be predicted correctly" in lines[0]
    assert lines[1] == "4 rows with an empty text are kept (data.drop_empty_text is false)"
    assert lines[2].startswith("2 val rows have a text that also occurs in the training data")


def test_the_report_tables(fixture_run, tmp_path):
    from kdlab.report.data_tables import write_data_tables
    from test_analyses_comparisons import Out

    _, layout = fixture_run
    out = Out(tmp_path / "tables", tmp_path / "figures")
    write_data_tables(layout, out)
    inputs = pd.read_csv(out.tables / "data_inputs.csv", index_col=0)
    report = json.loads(layout.data_report.read_text())
    assert inputs.loc["train+val", ["rows", "unknown", "empty", "kept"]].tolist() == [407, 8, 6, 393]
    assert report["inputs"]["train+val"]["kept"] == 393
    splits = (out.tables / "data_splits.md").read_text()
    lengths = json.loads(layout.token_lengths.read_text())
    assert f"{100 * lengths['train']['share_truncated']:.1f}" in splits
    assert "No train row for 3 of the 16 classes (Overlimit fee; Convenience checks; Rewards)" in splits
    tex = (out.tables / "data_inputs.tex").read_text()
    assert "Account question (4)" in tex and r"\begin{tabular}" in tex


# --------------------------------------------------------------------------- #
# An output folder replaced as a whole
# --------------------------------------------------------------------------- #
def test_a_failed_block_leaves_the_folder_as_it_was(tmp_path):
    target = tmp_path / "prepared"
    target.mkdir()
    (target / "train.parquet").write_text("old")
    staging_path(target).mkdir()  # left by a killed run
    (staging_path(target) / "half.parquet").write_text("half")
    with pytest.raises(RuntimeError):
        with staged_folder(target) as staging:
            assert not (staging / "half.parquet").exists()  # the stale staging folder was cleared
            (staging / "train.parquet").write_text("new")
            raise RuntimeError("a check failed")
    assert (target / "train.parquet").read_text() == "old" and not staging_path(target).exists()
    with staged_folder(target) as staging:
        (staging / "val.parquet").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["val.parquet"]  # no stale file survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_a_refused_input_keeps_the_previous_outputs(fixture_run, tmp_path):
    cfg, layout = fixture_run
    copy = Layout(tmp_path / "repo")
    shutil.copytree(layout.prepared, copy.prepared)
    before = {p.name: p.read_bytes() for p in copy.prepared.iterdir()}
    bad = tmp_path / "numbers.csv"
    pd.read_csv(FIXTURES / "own_complaints.csv").assign(**{LABEL: 3}).to_csv(bad, index=False)
    raw = composed("profile=cpu", "data=local", f"data.local_train={bad}", *OWN_COURSE)
    with pytest.raises(data.DataError, match="holds numbers"):
        prepare.run(config_from_mapping(raw), copy, argparse.Namespace())
    assert {p.name: p.read_bytes() for p in copy.prepared.iterdir()} == before
