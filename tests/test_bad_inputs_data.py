"""Every bad data input of `prepare` refused with one clear line, and nothing half-written (issues 11, 13).

One row of :data:`CASES` per bad input, in the bad-input suite's format (tests/bad_inputs.py:
``Case(name, repo, breaks, command, names, says)``), checked by its ``assert_refused``: a good
repository (the cpu profile on tests/fixtures/own_complaints.csv, `prepare` already run) is copied,
ONE input is broken, ``prepare``'s entry point runs in-process in the copy, and the test checks a
non-zero exit, exactly one ``kdlab: error:`` line (other stderr lines only ``kdlab: warning:``), no
traceback, that the line names the file or params key and says the expected and found values and
what to do, and that no file of the copy changed (the previous data/prepared is intact).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from bad_inputs import (Case, Outcome, _set_dotted, assert_refused, chain, changed_files, read_params, run_entry,
                        snapshot, write_file, write_params)
from conftest import REPO, composed, run

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CSV, LABELS, MERGE = "local/own_complaints.csv", "local/own_label_list.json", "local/own_merge_mapping.json"
TEXT, LABEL = "Consumer Complaint", "Issue"
ERROR, WARNING = "kdlab: error: ", "kdlab: warning: "
COURSE_LABEL_LIST_SHA = composed("data=local")["data"]["course_files"]["label_list"]["sha256"]


# --------------------------------------------------------------------------- #
# The good repository and the helpers that break one input
# --------------------------------------------------------------------------- #
def good_params() -> dict:
    """The documented own-data command's params: profile cpu, data local, the fixture's own label list."""
    raw = composed("profile=cpu", "data=local", f"data.local_train={CSV}",
                   f"data.course_files.label_list.local={LABELS}", "data.course_files.label_list.sha256=null",
                   f"data.course_files.label_merge_mapping.local={MERGE}",
                   "data.course_files.label_merge_mapping.sha256=null", "data.head_classes=4", "data.mid_classes=6")
    return raw


def set_data(**changes: Any) -> Callable[[Path], None]:
    """params.yaml with ``data.<key>`` set for each change (dotted keys as ``a__b``)."""
    def breaks(root: Path) -> None:
        raw = read_params(root)
        for key, value in changes.items():
            _set_dotted(raw["data"], key.replace("__", "."), value)
        write_params(root, raw)
    return breaks


def edit_csv(edit: Callable[[pd.DataFrame], pd.DataFrame], relpath: str = CSV) -> Callable[[Path], None]:
    """The fixture CSV rewritten by ``edit`` (as UTF-8 CSV, or parquet for a .parquet path)."""
    def breaks(root: Path) -> None:
        frame = edit(pd.read_csv(FIXTURES / "own_complaints.csv"))
        path = root / relpath
        (frame.to_parquet if path.suffix == ".parquet" else frame.to_csv)(path, index=False)
    return breaks


def index_files(train: Any, val: Any) -> Callable[[Path], None]:
    """Index files under local/ (JSON values, or raw text) and the params that point at them."""
    def breaks(root: Path) -> None:
        for name, value in (("train", train), ("val", val)):
            text = value if isinstance(value, str) else json.dumps(value)
            (root / f"local/{name}_idx.json").write_text(text)
        set_data(course_files__train_indices__local="local/train_idx.json",
                 course_files__val_indices__local="local/val_idx.json")(root)
    return breaks


@pytest.fixture(scope="module")
def good_repo(tmp_path_factory) -> Path:
    """params.yaml, dvc.yaml and .dvc/ (so `prepare` reads only the params dvc.yaml lists for it), local/ and
    data/prepared."""
    root = tmp_path_factory.mktemp("own-data") / "repo"
    (root / "local").mkdir(parents=True)
    for name in ("own_complaints.csv", "own_label_list.json", "own_merge_mapping.json"):
        shutil.copy2(FIXTURES / name, root / "local" / name)
    shutil.copy2(REPO / "dvc.yaml", root / "dvc.yaml")
    run(["dvc", "init", "--no-scm", "-q"], root)
    write_params(root, good_params())
    code, out, err = run_entry(("prepare",), root)
    assert code == 0, err
    return root


# --------------------------------------------------------------------------- #
# The cases
# --------------------------------------------------------------------------- #
def numeric_labels(frame: pd.DataFrame) -> pd.DataFrame:
    codes = {name: i for i, name in enumerate(sorted(frame[LABEL].dropna().unique()))}
    return frame.assign(**{LABEL: frame[LABEL].map(codes).fillna(0).astype(int)})


def half_unknown(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[::2], LABEL] = "Some other issue"
    return frame


def most_texts_missing(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[: int(0.77 * len(frame))], TEXT] = None  # a CFPB export: most rows without a narrative
    return frame


def one_class_in_val(frame: pd.DataFrame) -> pd.DataFrame:
    """200 rows of one issue and one row of five others: a stratified val split gets only the first."""
    issues = frame[LABEL].dropna().unique()[:6]
    labels = [issues[0]] * 200 + list(issues[1:])
    return pd.DataFrame({LABEL: labels, TEXT: [f"complaint number {i} about my account" for i in range(len(labels))]})


REAL_PARQUET = edit_csv(lambda f: f, "local/own.parquet")
DATA = [
    Case("data: a CSV text named .parquet", "local",
         chain(write_file("local/own.parquet", (FIXTURES / "own_complaints.csv").read_bytes()),
               set_data(local_train="local/own.parquet")),
         ("prepare",), "local/own.parquet", ("data.local_train", "not a Parquet file", "'PAR1'", "save it as .csv")),
    Case("data: an empty file named .parquet", "local",
         chain(write_file("local/own.parquet", b""), set_data(local_train="local/own.parquet")),
         ("prepare",), "local/own.parquet", ("not a Parquet file", "found an empty file")),
    Case("data: a damaged parquet file", "local",
         chain(write_file("local/own.parquet", b"PAR1" + b"\x00garbage" * 40 + b"PAR1"),
               set_data(local_train="local/own.parquet")),
         ("prepare",), "local/own.parquet", ("could not be read as Parquet", "export it again")),
    Case("data: a CSV that is not UTF-8", "local",
         write_file(CSV, (FIXTURES / "own_complaints.csv").read_bytes().replace(b"my account", b"my acc\xf6unt", 1)),
         ("prepare",), CSV, ("data.local_train", "not UTF-8 text", "byte 0xf6", "line ", "CSV UTF-8")),
    Case("data: an empty CSV", "local", write_file(CSV, b""), ("prepare",), CSV,
         ("is empty", "a header line naming the columns")),
    Case("data: a CSV with only a header", "local", write_file(CSV, "Issue,Consumer Complaint\n"), ("prepare",), CSV,
         ("has a header line", "but no rows")),
    Case("data: a CSV with a broken line", "local",
         write_file(CSV, "Issue,Consumer Complaint\nLate fee,charged twice\nLate fee,a, b, c, d\n"), ("prepare",), CSV,
         ("not a well-formed CSV", "quote texts")),
    Case("data: an Excel file", "local",
         chain(write_file("local/own.xlsx", b"PK\x03\x04 not really"), set_data(local_train="local/own.xlsx")),
         ("prepare",), "local/own.xlsx", ("unsupported file type '.xlsx'", "expected .parquet, .csv or .tsv")),
    Case("data: a comma file named .tsv", "local",
         chain(write_file("local/own.tsv", (FIXTURES / "own_complaints.csv").read_bytes()),
               set_data(local_train="local/own.tsv")),
         ("prepare",), "local/own.tsv", ("has no column 'Consumer Complaint'", "data.text_column")),
    Case("data: a folder instead of a file", "local",
         chain(lambda root: (root / "local" / "folder.csv").mkdir(), set_data(local_train="local/folder.csv")),
         ("prepare",), "local/folder.csv", ("data.local_train", "is a folder", "a parquet or CSV file")),
    Case("data: the file does not exist", "local", set_data(local_train="local/nowhere.csv"), ("prepare",),
         "local/nowhere.csv", ("data.local_train", "does not exist", "-S data.local_train=")),
    Case("data: no local_train given", "local", set_data(local_train=None), ("prepare",), "data.local_train",
         ("is not set", "-S data.local_train=/path/to/file")),
    Case("data: text column missing", "local", set_data(text_column="Narrative"), ("prepare",), "data.text_column",
         (CSV, "no column 'Narrative'", "found columns", "-S data.text_column=")),
    Case("data: label column missing", "local", set_data(label_column="Category"), ("prepare",), "data.label_column",
         (CSV, "no column 'Category'", "found columns")),
    Case("data: label ids instead of names (CSV)", "local", edit_csv(numeric_labels), ("prepare",), CSV,
         ("label column 'Issue' holds numbers", "e.g. ", "expected label names as in the label list")),
    Case("data: label ids instead of names (parquet)", "local",
         chain(edit_csv(numeric_labels, "local/own.parquet"), set_data(local_train="local/own.parquet")),
         ("prepare",), "local/own.parquet", ("holds numbers", "Replace each id by its name")),
    Case("data: label ids in the test file", "local",
         chain(edit_csv(numeric_labels, "local/test.csv"), set_data(local_test="local/test.csv")),
         ("prepare",), "local/test.csv", ("data.local_test", "holds numbers")),
    Case("data: every text empty", "local", edit_csv(lambda f: f.assign(**{TEXT: None})), ("prepare",), CSV,
         ("text column 'Consumer Complaint' is empty in all 407 rows", "data.text_column")),
    Case("data: text column of numbers", "local",
         chain(edit_csv(lambda f: f.assign(**{"Complaint ID": range(len(f))})), set_data(text_column="Complaint ID")),
         ("prepare",), CSV, ("text column 'Complaint ID' holds numbers", "swapped")),
    Case("data: every label empty", "local", edit_csv(lambda f: f.assign(**{LABEL: None})), ("prepare",), CSV,
         ("label column 'Issue' is empty in all 407 rows",)),
    Case("data: half the labels unknown", "local", edit_csv(half_unknown), ("prepare",), CSV,
         ("data.local_train", "rows would be dropped", "with a label not in the label list",
          "'Some other issue' (204)", "data.max_dropped_fraction allows 5.0%", "-S data.max_dropped_fraction=0.")),
    Case("data: most narratives missing", "local", edit_csv(most_texts_missing), ("prepare",), CSV,
         ("with an empty text", "allows 5.0%", "fill in the texts")),
    Case("data: too few rows to train", "local", edit_csv(lambda f: f.iloc[:60]), ("prepare",), "data.min_train_rows",
         ("expected at least 100", "the train split has")),
    Case("data: val too small", "local", set_data(val_fraction=0.02), ("prepare",), "data.min_val_rows",
         ("the val split has", "expected at least 20")),
    Case("data: one class in val", "local", edit_csv(one_class_in_val), ("prepare",), "the val split holds 1 class",
         ("expected at least 2",)),
    Case("data: expected counts differ", "local", set_data(expected={"train": 999}), ("prepare",), "data.expected",
         ("train: expected 999 rows, found 354",)),
    Case("data: more head and mid classes than labels", "local", set_data(head_classes=20, mid_classes=40),
         ("prepare",), "data.head_classes", ("label list's 16 classes", "-S data.mid_classes=")),
    Case("data: own file changed since pinned", "local", set_data(local_train_sha256="ab" * 32), ("prepare",),
         "data.local_train", ("your own file", "changed since you pinned it", "-S data.local_train_sha256=")),
    Case("data: own label list under the course's pin", "local",
         set_data(course_files__label_list__sha256=COURSE_LABEL_LIST_SHA), ("prepare",), LABELS,
         ("sha256 mismatch", "a file on this machine", "not a download",
          "-S data.course_files.label_list.sha256=null")),
    Case("params: max_dropped_fraction above 1", "local", set_data(max_dropped_fraction=1.5), ("prepare",),
         "data.max_dropped_fraction", ("[0, 1]", "1.5")),
    Case("params: min_val_rows of 1", "local", set_data(min_val_rows=1), ("prepare",), "data.min_val_rows",
         ("at least 2", "found 1")),
    Case("params: a sha256 that is not one", "local", set_data(local_train_sha256="not-a-hash"), ("prepare",),
         "data.local_train_sha256", ("64 hex digits", "'not-a-hash'")),
]
INDEX = [
    Case("index: train indices out of range", "local", index_files([0, 1, 5000], [2, 3]), ("prepare",),
         "data.course_files.train_indices", ("must lie in [0, 407)", "found range [0, 5000]",
                                             "does not belong to this data file")),
    Case("index: negative val index", "local", index_files([0, 1], [-1, 3]), ("prepare",),
         "data.course_files.val_indices", ("found range [-1, 3]",)),
    Case("index: only the train file", "local",
         chain(write_file("local/train_idx.json", "[0, 1]"),
               set_data(course_files__train_indices__local="local/train_idx.json")),
         ("prepare",), "data.course_files", ("give both train_indices and val_indices, or neither",
                                             "found train_indices only")),
    Case("index: an object, not a list", "local", index_files({"rows": [0, 1]}, [2]), ("prepare",),
         "local/train_idx.json", ("data.course_files.train_indices", "expected a JSON list of raw-train row positions",
                                  "found an object")),
    Case("index: positions as strings", "local", index_files(["0", "1"], [2]), ("prepare",), "local/train_idx.json",
         ("expected integer row positions", "found a string '0'")),
    Case("index: not JSON", "local", index_files("[0, 1,", [2]), ("prepare",), "local/train_idx.json",
         ("not valid JSON", "line 1")),
    Case("index: overlapping files", "local", index_files(list(range(0, 300)), list(range(290, 400))), ("prepare",),
         "data.course_files.val_indices", ("overlap in 10 rows", "disjoint")),
    Case("index: duplicate positions", "local", index_files(list(range(300)) + [5], list(range(300, 400))),
         ("prepare",), "data.course_files.train_indices", ("1 duplicate indices",)),
]
CASES = DATA + INDEX


# --------------------------------------------------------------------------- #
# The tests
# --------------------------------------------------------------------------- #
def run_case(case: Case, good: Path, workdir: Path) -> Outcome:
    """Copy the good own-data repository, break it, run ``prepare`` in-process; the outcome."""
    root = workdir / "repo"
    shutil.copytree(good, root)
    case.breaks(root)
    before = snapshot(root)
    code, out, err = run_entry(case.command, root)
    return Outcome(code, out, err, changed_files(before, snapshot(root)))


def test_the_cases_are_distinct():
    assert len({c.name for c in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_data_is_refused_in_one_line(case, good_repo, tmp_path):
    assert_refused(case, run_case(case, good_repo, tmp_path))


def test_the_good_repository_prepares_cleanly(good_repo, tmp_path):
    """The baseline every case breaks: the fixture passes every check, with the expected warnings."""
    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    code, out, err = run_entry(("prepare",), root)
    assert code == 0, err
    assert "prepare: 354 train / 39 val / 0 test rows (14 of 407 rows read dropped)" in out
    assert f"{WARNING}3 of the label list's 16 classes have no train row ('Overlimit fee', 'Convenience checks', " \
           "'Rewards')" in err
    assert all(line.startswith(WARNING) for line in err.splitlines() if line.strip())


def test_an_excel_utf8_csv_with_a_byte_order_mark_is_read(good_repo, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    (root / CSV).write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "own_complaints.csv").read_bytes())
    code, out, err = run_entry(("prepare",), root)
    assert code == 0, err


def test_a_large_drop_is_accepted_when_allowed(good_repo, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    edit_csv(half_unknown)(root)
    set_data(max_dropped_fraction=0.55, val_fraction=0.2)(root)
    code, out, err = run_entry(("prepare",), root)
    assert code == 0, err
    report = json.loads((root / "data/prepared/data_report.json").read_text())
    assert report["inputs"]["train+val"]["unknown_labels"][0] == {"label": "Some other issue", "rows": 204}


def test_without_a_gpu_the_train_profile_points_to_the_cpu_profile(good_repo, tmp_path):
    """The GPU command on a CPU stops before reading anything and names the CPU command for one's own data."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: the train profile runs")
    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    write_params(root, composed("data=local", "teacher=modernbert", f"data.local_train={CSV}"))
    before = snapshot(root)
    code, _, err = run_entry(("prepare",), root)
    assert code == 1 and err.startswith(ERROR) and len(err.strip().splitlines()) == 1, err
    assert "needs a CUDA GPU" in err and "dvc exp run -S profile=cpu -S data=local -S data.local_train=" in err
    assert snapshot(root) == before
