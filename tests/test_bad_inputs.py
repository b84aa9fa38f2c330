"""Every bad input refused with one clear line (issue 13): params, stored predictions, teacher files,
published files, course files and the command line. One row of :data:`CASES` per bad input; the
harness (tests/bad_inputs.py) copies a good tiny repository, breaks one input, runs the entry point
and checks the exit status, the one ``kdlab: error:`` line (no traceback), what it names and says,
and that no good output changed. KDLAB_DEBUG=1 adds the traceback.
"""

from __future__ import annotations

import numpy as np
import pytest

from bad_inputs import (CELL, DELETE, Case, assert_refused, chain, changed_labels, edit_json, edit_npz,
                        edit_params_text, remove_file, run_case, set_at, set_param, shuffled, use_local_data,
                        write_file)

N_VAL, C = 240, 113  # the good repositories' val split and classes
PRED = "runs/kd/predictions.npz"
T_RAW, T_FINAL = "data/teacher/val_logits_raw.npz", "data/teacher/val_logits_final.npz"
TT_FINAL, TT_RAW = "data/teacher/train_test_logits_final.npz", "data/teacher/train_test_logits_raw.npz"
PUB_KD, PUB_TEACHER, PUB_META = ("published/kd_val_predictions.npz", "published/val_logits_canonical_final.npz",
                                 "published/metadata.json")
ALL_KEYS = ("row_id", "logits", "preds", "labels", "tiers")
GARBAGE = b"this is not an npz archive, just some bytes\n" * 20


def logits_with(value, row=3, col=5):
    return set_at((row, col), value)


def fp64(value, row=3, col=5):
    def fn(a, arrays):
        a = a.astype(np.float64)
        a[row, col] = value
        return a
    return fn


def insert_after(anchor: str, text: str):
    return lambda s: s.replace(anchor, anchor + text, 1)


# --------------------------------------------------------------------------- #
# params.yaml and conf/
# --------------------------------------------------------------------------- #
PARAMS = [
    Case("params: duplicate key", "study", edit_params_text(insert_after("arms:\n", "  kd:\n    loss: ce\n")),
         ("study",), "params.yaml:", ("duplicate key 'kd'", "first at line", "again at line")),
    Case("params: unclosed bracket", "study", edit_params_text(lambda s: s.replace("seed: 42", "seed: [42", 1)),
         ("study",), "params.yaml:", ("not valid YAML", "expected ',' or ']'")),
    Case("params: tab indentation", "study", edit_params_text(lambda s: s.replace("  loss: ce", "\tloss: ce", 1)),
         ("calibrate",), "params.yaml:", ("not valid YAML",)),
    Case("params: not UTF-8", "study", write_file("params.yaml", b"seed: 42\nprofile: d\xe9mo\n"),
         ("study",), "params.yaml", ("not UTF-8 text",)),
    Case("params: empty file", "study", write_file("params.yaml", ""), ("study",), "params.yaml",
         ("is empty", "dvc exp run -S profile=")),
    Case("params: missing file", "study", lambda root: None, ("study", "--params", "nope.yaml"), "nope.yaml",
         ("not found", "repository root")),
    Case("params: unknown key", "study", set_param("optim.epoch", 3), ("study",), "optim",
         ("unknown key(s) ['epoch']",)),
    Case("params: wrong type", "study", set_param("optim.epochs", "three"), ("evaluate",), "optim.epochs",
         ("expected an integer, found 'three'",)),
    Case("params: unknown profile", "study", set_param("profile", "demoo"), ("study",), "profile",
         ("found 'demoo'",)),
    Case("params: alpha above 1", "study", set_param("arms.kd.alpha", 1.5), ("study",), "arms.kd.alpha",
         ("[0, 1]", "1.5")),
    Case("params: headline arm missing", "study", set_param("headline_arm", "kd_big"), ("study",), "headline_arm",
         ("'kd_big'",)),
    Case("params: calibration fold size 0", "study", set_param("evaluation.calibration_fold_size", 0), ("study",),
         "evaluation.calibration_fold_size", ("found 0",)),
    Case("params: calibration fold larger than val", "study",
         set_param("evaluation.calibration_fold_size", 5000, restudy=True), ("calibrate",),
         "evaluation.calibration_fold_size", (f"expected 1..{N_VAL - 1}", f"{N_VAL} rows", "found 5,000")),
    Case("params: calibration fold = all of val", "study",
         set_param("evaluation.calibration_fold_size", N_VAL, restudy=True), ("analyze", "--name", "tiers"),
         "evaluation.calibration_fold_size", (f"found {N_VAL}",)),
    Case("params: negative bootstrap seed", "study", set_param("evaluation.bootstrap.seed", -1), ("study",),
         "evaluation.bootstrap.seed", ("found -1",)),
    Case("params: seed beyond numpy's range", "study", set_param("seed", 2**32), ("study",), "seed",
         (f"found {2**32}",)),
    Case("params: negative teacher temperature", "study", set_param("teacher.expected_temperature", -1.0),
         ("study",), "teacher.expected_temperature", ("found -1.0",)),
    Case("params: max_grad_norm 0", "study", set_param("optim.max_grad_norm", 0.0), ("study",),
         "optim.max_grad_norm", ("found 0.0",)),
    Case("params: num_threads 0", "study", set_param("optim.num_threads", 0), ("study",), "optim.num_threads",
         ("found 0",)),
    Case("params: no thresholds", "study", set_param("evaluation.thresholds", []), ("study",),
         "evaluation.thresholds", ("found []",)),
    Case("params: infinite kd temperature", "study", set_param("arms.kd.kd_temperature", float("inf")), ("study",),
         "arms.kd.kd_temperature", ("finite",)),
    Case("params: top_k beyond the classes", "study", set_param("arms.topk_big", {"loss": "topk_kd", "top_k": 500}),
         ("train", "--arm", "topk_big"), "arms.topk_big.top_k", (f"expected 1..{C}", "found 500")),
    Case("conf: duplicate key", "study",
         edit_params_text(insert_after("optim:\n", "  epochs: 9\n"), "conf/profile/demo.yaml"),
         ("kdlab", "pin", "--dry-run"), "conf/profile/demo.yaml:", ("duplicate key 'epochs'", "line", "column")),
    Case("conf: syntax error", "study",
         edit_params_text(lambda s: s.replace("source: trained", "source: [trained", 1), "conf/teacher/trained.yaml"),
         ("kdlab", "pin", "--dry-run"), "conf/teacher/trained.yaml:", ("not valid YAML",)),
]

# --------------------------------------------------------------------------- #
# Stored predictions: runs/<arm>/predictions.npz
# --------------------------------------------------------------------------- #
PREDICTIONS = [
    Case("predictions: rows shuffled with their row ids", "study", edit_npz(PRED, **{k: shuffled() for k in ALL_KEYS}),
         ("calibrate",), PRED, ("row ids (row_id) differ from the prepared data", "data/prepared/val.parquet",
                                "dvc repro")),
    Case("predictions: 50 labels changed", "study", edit_npz(PRED, labels=changed_labels(50)), ("evaluate",), PRED,
         (f"labels differ from the prepared data in 50 of {N_VAL} rows", "expected", "found")),
    Case("predictions: one tier changed", "study", edit_npz(PRED, tiers=lambda a, _: np.where(
        np.arange(len(a)) == 7, (a + 1) % 3, a).astype(np.int8)), ("analyze", "--name", "tiers"), PRED,
         (f"tiers differ from the prepared data in 1 of {N_VAL} rows (first: row 7",)),
    Case("predictions: tier code 3", "study", edit_npz(PRED, tiers=set_at(0, 3)), ("calibrate",), PRED,
         ("tier codes must be 0..2", "found 0..3")),
    Case("predictions: 112 columns", "study", edit_npz(PRED, logits=lambda a, _: a[:, :112]), ("calibrate",), PRED,
         (f"logits have shape ({N_VAL}, 112); expected ({N_VAL}, {C})", "data_card.json")),
    Case("predictions: a row missing", "study", edit_npz(PRED, **{k: (lambda a, _: a[:-1]) for k in ALL_KEYS}),
         ("evaluate",), PRED, (f"shape ({N_VAL - 1}, {C}); expected ({N_VAL}, {C})",)),
    Case("predictions: NaN logit", "study", edit_npz(PRED, logits=logits_with(np.nan)), ("calibrate",), PRED,
         ("logits contain NaN or inf in 1 rows (first: row 3)",)),
    Case("predictions: infinite logit", "study", edit_npz(PRED, logits=logits_with(np.inf)),
         ("analyze", "--name", "tiers"), PRED, ("NaN or inf",)),
    Case("predictions: preds not the argmax", "study",
         edit_npz(PRED, preds=lambda a, arrays: (arrays["logits"].astype(np.float32).argmin(axis=1))),
         ("calibrate",), PRED, ("stored preds are not an argmax of the stored logits",)),
    Case("predictions: pred out of range", "study", edit_npz(PRED, preds=set_at(0, C)), ("evaluate",), PRED,
         (f"preds must be class ids in 0..{C - 1}", f"..{C}")),
    Case("predictions: preds missing", "study", edit_npz(PRED, preds=lambda a, _: DELETE), ("calibrate",), PRED,
         ("missing array 'preds'",)),
    Case("predictions: float labels", "study", edit_npz(PRED, labels=lambda a, _: a.astype(np.float32)),
         ("calibrate",), PRED, ("array 'labels' has dtype float32",)),
    Case("predictions: garbage bytes", "study", write_file(PRED, GARBAGE), ("calibrate",), PRED,
         ("not an .npz archive", "found bytes")),
    Case("predictions: empty file", "study", write_file(PRED, b""), ("evaluate",), PRED, ("is empty (0 bytes)",)),
    Case("predictions: truncated file", "study",
         lambda root: (root / PRED).write_bytes((root / PRED).read_bytes()[:2000]), ("calibrate",), PRED,
         ("not a readable .npz file",)),
    Case("predictions: a .npy named .npz", "study", lambda root: np.save(open(root / PRED, "wb"), np.zeros(3)),
         ("calibrate",), PRED, ("a single .npy array",)),
    Case("predictions: pickled object array", "study",
         edit_npz(PRED, tiers=lambda a, _: np.array([str(t) for t in a], dtype=object)), ("calibrate",), PRED,
         ("pickled object array", "never loads")),
    Case("predictions: file missing", "study", remove_file(PRED), ("calibrate",), PRED, ("not found",)),
    Case("predictions: arm.json not JSON", "study", write_file("runs/kd/arm.json", "{available: yes"),
         ("calibrate",), "runs/kd/arm.json", ("not valid JSON",)),
    Case("predictions: arm.json without `available`", "study", edit_json("runs/kd/arm.json", lambda d: {"arm": "kd"}),
         ("evaluate",), "runs/kd/arm.json", ("expected `available` as true or false, found no such key", "dvc repro train@kd")),
]

# --------------------------------------------------------------------------- #
# The teacher's files: data/teacher/*.npz
# --------------------------------------------------------------------------- #
TEACHER = [
    Case("teacher: infinite raw val logit", "study", edit_npz(T_RAW, logits=logits_with(np.inf)), ("calibrate",),
         T_RAW, ("logits contain NaN or inf",)),
    Case("teacher: val rows shuffled", "study",
         edit_npz(T_FINAL, **{k: shuffled() for k in ("logits", "labels", "tiers")}), ("evaluate",), T_FINAL, ("labels differ from the prepared data",)),
    Case("teacher: val tiers missing", "study", edit_npz(T_FINAL, tiers=lambda a, _: DELETE),
         ("analyze", "--name", "tiers"), T_FINAL, ("missing array 'tiers'",)),
    Case("teacher: val logits with 112 columns", "study", edit_npz(T_RAW, logits=lambda a, _: a[:, :112]),
         ("evaluate",), T_RAW, ("(240, 112)", f"expected ({N_VAL}, {C})")),
    Case("teacher: val file missing", "study", remove_file(T_FINAL), ("evaluate",), T_FINAL, ("not found",)),
    Case("teacher: train+test labels out of order", "study", edit_npz(TT_FINAL, labels=lambda a, _: a[::-1].copy()),
         ("train", "--arm", "kd"), TT_FINAL,
         ("labels differ from the prepared data", "train.parquet then test.parquet")),
    Case("teacher: train+test rows missing", "study",
         edit_npz(TT_RAW, logits=lambda a, _: a[:-5], labels=lambda a, _: a[:-5]), ("train", "--arm", "kd_raw_teacher"),
         TT_RAW, ("logits have shape",)),
]

# --------------------------------------------------------------------------- #
# Published files (audit profile): the teacher and train stages convert them
# --------------------------------------------------------------------------- #
PUBLISHED = [
    Case("published: 112 columns", "audit", edit_npz(PUB_KD, logits=lambda a, _: a[:, :112]), ("train", "--arm", "kd"),
         PUB_KD, (f"logits have shape ({N_VAL}, 112); expected ({N_VAL}, {C})", "download the file again")),
    Case("published: rows shuffled", "audit",
         edit_npz(PUB_KD, **{k: shuffled() for k in ("logits", "preds", "labels", "val_tiers")}),
         ("train", "--arm", "kd"), PUB_KD, ("labels differ from the prepared data",)),
    Case("published: fp64 logits beyond float16", "audit", edit_npz(PUB_KD, logits=fp64(1e6)), ("train", "--arm", "kd"),
         PUB_KD, ("exceed the float16 range", "65,504", "would write inf")),
    Case("published: garbage bytes", "audit", write_file(PUB_KD, GARBAGE), ("train", "--arm", "kd"), PUB_KD,
         ("not an .npz archive",)),
    Case("published: unknown tier name", "audit",
         edit_npz(PUB_KD, val_tiers=lambda a, _: np.where(np.arange(len(a)) == 4, "tale", a)), ("train", "--arm", "kd"),
         PUB_KD, ("unknown tier names ['tale']",)),
    Case("published: sweep file missing", "audit", remove_file("published/grid_Td4_a70.npz"),
         ("train", "--arm", CELL), "published.sweep[0].file", ("does not exist",)),
    Case("published: pinned sha256 differs", "audit",
         set_param("published.arms.vanilla.sha256", "0" * 64), ("train", "--arm", "vanilla"),
         "published.arms.vanilla", ("sha256 mismatch",)),
    Case("published teacher: infinite logit", "audit", edit_npz(PUB_TEACHER, logits=logits_with(-np.inf)),
         ("teacher",), PUB_TEACHER, ("NaN or inf",)),
    Case("published teacher: labels misaligned", "audit", edit_npz(PUB_TEACHER, labels=lambda a, _: np.roll(a, 1)),
         ("teacher",), PUB_TEACHER, ("labels differ from the prepared data",)),
    Case("published teacher: tier codes out of range", "audit",
         edit_npz(PUB_TEACHER, tiers=lambda a, _: np.full(len(a), 7)), ("teacher",), PUB_TEACHER,
         ("tier codes must be 0..2", "found 7..7")),
    Case("published teacher: metadata.json not JSON", "audit", write_file(PUB_META, "{temperature: 1.3"),
         ("teacher",), PUB_META, ("teacher.published.metadata", "not valid JSON")),
    Case("published teacher: metadata.json empty", "audit", write_file(PUB_META, ""), ("teacher",), PUB_META,
         ("is empty",)),
    Case("published teacher: temperature that overflows float16", "audit",
         write_file(PUB_META, '{"temperature": 100000.0}'), ("teacher",), PUB_TEACHER,
         ("x temperature 100000", "exceed the float16 range", "metadata.json")),
]

# --------------------------------------------------------------------------- #
# Course files (prepare on the good local data set)
# --------------------------------------------------------------------------- #
LABELS_JSON, MERGE_JSON = "local/label_list.json", "local/label_merge_mapping.json"
COURSE = [
    Case("course: label list not JSON", "study", chain(use_local_data(), write_file(LABELS_JSON, '["Late fee", ')),
         ("prepare",), LABELS_JSON, ("data.course_files.label_list", "not valid JSON")),
    Case("course: label list is an object", "study", chain(use_local_data(), write_file(LABELS_JSON, '{"a": 1}')),
         ("prepare",), LABELS_JSON, ("expected a JSON list of the canonical label names", "found an object")),
    Case("course: duplicate label names", "study",
         chain(use_local_data(), write_file(LABELS_JSON, '["Fraud", "Fraud", "Late fee"]')), ("prepare",), LABELS_JSON,
         ("distinct", "['Fraud'] more than once")),
    Case("course: numeric label names", "study", chain(use_local_data(), write_file(LABELS_JSON, "[1, 2, 3]")),
         ("prepare",), LABELS_JSON, ("non-empty label names", "found a number 1")),
    Case("course: merge map is a list", "study", chain(use_local_data(), write_file(MERGE_JSON, '["a", "b"]')),
         ("prepare",), MERGE_JSON, ("data.course_files.label_merge_mapping", "expected a JSON object", "found a list")),
    Case("course: label list empty file", "study", chain(use_local_data(), write_file(LABELS_JSON, "")),
         ("prepare",), LABELS_JSON, ("is empty",)),
    Case("course: label list not UTF-8", "study", chain(use_local_data(), write_file(LABELS_JSON, b'["caf\xe9"]')),
         ("prepare",), LABELS_JSON, ("not UTF-8 text",)),
]

# --------------------------------------------------------------------------- #
# Other stored outputs the later stages read, and the command line
# --------------------------------------------------------------------------- #
OUTPUTS = [
    Case("outputs: study.json is a list", "study", write_file("results/study.json", "[]"), ("calibrate",),
         "results/study.json", ("expected a JSON object", "dvc repro")),
    Case("outputs: calibration.json without an arm", "study",
         edit_json("results/calibration.json",
                   lambda d: {**d, "arms": {k: v for k, v in d["arms"].items() if k != "kd"}}),
         ("evaluate",), "results/calibration.json", ("no fitted temperature for kd", "dvc repro calibrate")),
    Case("outputs: data card without n_classes", "study",
         edit_json("data/prepared/data_card.json", lambda d: {k: v for k, v in d.items() if k != "n_classes"}),
         ("calibrate",), "data/prepared/data_card.json", ("expected `n_classes` as a number, found no such key", "dvc repro prepare")),
    Case("outputs: calibration.json is a folder", "study",
         chain(remove_file("results/calibration.json"), lambda root: (root / "results/calibration.json").mkdir()),
         ("calibrate",), "results/calibration.json", ("Is a directory", "file-system problem")),
    Case("report: an analysis result without its name", "study", write_file("results/tiers.json", "{}"), ("report",),
         "results/tiers.json", ("expected `name` as a string", "dvc repro analyze@tiers")),
    Case("report: another analysis' result", "study",
         lambda root: (root / "results/coverage.json").write_bytes((root / "results/tiers.json").read_bytes()),
         ("report",), "results/coverage.json", ("holds the result of 'tiers', expected 'coverage'",)),
    Case("report: evaluate.json without arms", "study",
         edit_json("metrics/evaluate.json", lambda d: {k: v for k, v in d.items() if k != "arms"}), ("report",),
         "metrics/evaluate.json", ("expected `arms` as an object", "dvc repro evaluate")),
    Case("report: teacher card is a list", "study", write_file("data/teacher/teacher_card.json", "[1]"), ("report",),
         "data/teacher/teacher_card.json", ("expected a JSON object, found a list",)),
    Case("report: arm card without `available`", "study", edit_json(f"runs/{CELL}/arm.json", lambda d: {"arm": CELL}),
         ("report",), f"runs/{CELL}/arm.json", ("expected `available`", f"dvc repro {CELL}")),
    Case("outputs: val.parquet is text", "study", write_file("data/prepared/val.parquet", "row_id,label\n0,1\n"),
         ("calibrate",), "data/prepared/val.parquet", ("not a readable parquet file", "dvc repro prepare")),
]
COMMAND_LINE = [
    Case("cli: unknown table", "study", lambda root: None, ("kdlab", "results", "nope"), "reports/tables/nope.md",
         ("not found",)),
    Case("cli: table not UTF-8", "study", write_file("reports/tables/paper_tiers.md", b"| caf\xe9 |\n"),
         ("kdlab", "results"), "reports/tables/paper_tiers.md", ("not UTF-8 text", "dvc repro report")),
    Case("cli: unknown option", "study", lambda root: None, ("kdlab", "results", "--bogus"), "--bogus",
         ("unrecognized arguments", "kdlab --help")),
    Case("cli: malformed notebook", "study", write_file("lab.ipynb", "{not json"),
         ("kdlab", "student-notebook", "lab.ipynb"), "lab.ipynb", ("not a readable ipynb notebook",)),
    Case("stage: unknown option", "study", lambda root: None, ("calibrate", "--bogus"), "--bogus",
         ("unrecognized arguments",)),
    Case("stage: unknown arm", "study", lambda root: None, ("train", "--arm", "nope"), "params.yaml",
         ("unknown arm 'nope'",)),
    Case("stage: unknown analysis", "study", lambda root: None, ("analyze", "--name", "nope"), "--name",
         ("invalid choice: 'nope'",)),
]

CASES = PARAMS + PREDICTIONS + TEACHER + PUBLISHED + COURSE + OUTPUTS + COMMAND_LINE


def test_the_cases_are_distinct():
    assert len({c.name for c in CASES}) == len(CASES)
    assert len(CASES) >= 45


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_in_one_line(case, good_repos, tmp_path):
    assert_refused(case, run_case(case, good_repos, tmp_path))


DEBUGGED = [c for c in CASES if c.name in ("predictions: rows shuffled with their row ids", "params: duplicate key",
                                             "published teacher: metadata.json not JSON",
                                             "course: label list is an object")]


@pytest.mark.parametrize("case", DEBUGGED, ids=[c.name for c in DEBUGGED])
def test_kdlab_debug_adds_the_traceback(case, good_repos, tmp_path):
    assert_refused(case, run_case(case, good_repos, tmp_path, debug=True), debug=True)


def test_a_real_process_prints_one_line_and_exits_1(good_repos, tmp_path):
    case = next(c for c in CASES if c.name == "predictions: 50 labels changed")
    outcome = run_case(case, good_repos, tmp_path, in_process=False)
    assert outcome.code == 1
    assert_refused(case, outcome)


def test_the_good_repositories_run_cleanly(good_repos, tmp_path):
    """The cases fail because of what they break: the same commands succeed on the good copies."""
    from bad_inputs import run_entry

    study = good_repos.copy("study", tmp_path / "study")
    for command in (("calibrate",), ("evaluate",), ("analyze", "--name", "tiers")):
        code, _, err = run_entry(command, study)
        assert code == 0, err
    use_local_data()(study)
    code, out, err = run_entry(("prepare",), study)
    assert code == 0 and "prepare:" in out, err
    audit = good_repos.copy("audit", tmp_path / "audit")
    for command in (("teacher",), ("train", "--arm", "kd"), ("train", "--arm", CELL)):
        code, _, err = run_entry(command, audit)
        assert code == 0, err
