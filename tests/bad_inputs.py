"""The harness of the bad-input suite (issue 13): one table row per bad input, one way to check it.

A :class:`Case` breaks ONE input in a fresh copy of a good tiny repository, runs one entry point
(a stage's ``main`` or the ``kdlab`` command, in-process, in the copy's root) and checks what a
user sees (:func:`assert_refused`):

- a non-zero exit status;
- exactly one stderr line starting with ``kdlab: error: `` (other stderr lines may only be
  ``kdlab: warning:`` lines), and no traceback;
- that line names the file or params key (``Case.names``) and holds every ``Case.says`` fragment
  (the expected and the found value, what to do);
- no file of the repository changed: every output the run would have replaced is still the good one
  (temporary ``.*.tmp`` files aside).

The good repositories (:class:`GoodRepos`, built once per session by the ``good_repos`` fixture of
conftest.py, each in a few seconds and without training anything):

``study``  the demo profile with three arms and a 1 x 1 sweep (vanilla, kd, kd_raw_teacher, sweep@4-0.7):
           data/prepared (the real `prepare` stage on a small synthetic corpus), data/teacher (teacher
           logits written in the stage's format), runs/<arm>/ (predictions.npz and arm.json), then the
           real `study`, `calibrate`, `evaluate` and `analyze@<name>` stages (the report's inputs). Also
           local/: a small CSV data set with its course files, for `prepare` cases (:func:`use_local_data`).
``audit``  the audit profile on the same prepared data: published/ holds the published files (teacher
           val logits with tier names, metadata.json, val_predictions.npz of vanilla, kd and the sweep
           cell), every ``local:`` override points there; the real `teacher`, `train@<arm>`, `study`,
           `calibrate` and `evaluate` stages have run.

Writing a case: ``Case(name, repo, breaks, command, names, says)``; ``breaks`` is a function of the
copy's root, usually built with the helpers below (:func:`set_param`, :func:`edit_npz`,
:func:`write_file`, :func:`edit_json`, :func:`use_local_data`, :func:`chain`). Paths are relative to
the root. ``command`` is the entry point and its arguments: ``("calibrate",)``, ``("train", "--arm",
"kd")``, ``("kdlab", "results")``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io as _io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from kdlab import io
from kdlab.analyses import ANALYSES
from kdlab.config import TIERS, load_config
from kdlab.errors import DEBUG_ENV, PREFIX
from kdlab.paths import Layout
from kdlab.predictions import Predictions, save_predictions
from kdlab.stages.train import arm_record

from conftest import REPO, composed

ENTRY_POINTS = {
    "prepare": "kdlab.stages.prepare", "tokenizer": "kdlab.stages.tokenizer", "teacher": "kdlab.stages.teacher",
    "train": "kdlab.stages.train", "study": "kdlab.stages.study", "calibrate": "kdlab.stages.calibrate",
    "evaluate": "kdlab.stages.evaluate", "analyze": "kdlab.stages.analyze", "report": "kdlab.stages.report",
    "kdlab": "kdlab.cli",
}
ARMS = {"vanilla": {"loss": "ce"}, "kd": {"loss": "kd", "kd_temperature": 4.0, "alpha": 0.7},
        "kd_raw_teacher": {"loss": "kd", "kd_temperature": 4.0, "alpha": 0.7, "teacher_logits": "raw"}}
SWEEP = {"kd_temperature": [4], "alpha": [0.7]}
CELL = "sweep@4-0.7"
SIZES = {"n_train": 500, "n_val": 240, "n_test": 160}
TEACHER_T = 1.3


# --------------------------------------------------------------------------- #
# A case and its outcome
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Case:
    """One bad input: what breaks it, what runs, what the one error line must say."""

    name: str                       # the pytest id: what is wrong, in a few words
    repo: str                       # the good repository it starts from: "study" or "audit"
    breaks: Callable[[Path], None]  # edits ONE input of the copy (argument: the copy's root)
    command: tuple[str, ...]        # entry point (a key of ENTRY_POINTS) and its arguments
    names: str                      # the file (a path or its tail) or the params key the message names
    says: tuple[str, ...] = ()      # more fragments: expected and found values, what to do


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    changed: list[str] = field(default_factory=list)  # files that differ from the good copy after the run

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(PREFIX)]


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root``, temporary files (``.*.tmp``) aside."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (path.name.startswith(".") and path.name.endswith(io.TEMP_SUFFIX)):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def run_entry(command: tuple[str, ...], root: Path, debug: bool = False) -> tuple[int, str, str]:
    """Run an entry point in-process in ``root``; (exit status, stdout, stderr). An exception that
    escapes the entry point propagates: that is the traceback a user would see."""
    module = importlib.import_module(ENTRY_POINTS[command[0]])
    out, err = _io.StringIO(), _io.StringIO()
    saved = os.environ.get(DEBUG_ENV)
    os.environ[DEBUG_ENV] = "1" if debug else ""
    try:
        with contextlib.chdir(root), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = module.main(list(command[1:]))
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        if saved is None:
            os.environ.pop(DEBUG_ENV, None)
        else:
            os.environ[DEBUG_ENV] = saved
    return int(code), out.getvalue(), err.getvalue()


def run_subprocess(command: tuple[str, ...], root: Path, debug: bool = False) -> tuple[int, str, str]:
    """The same as a user runs it: ``python -m <module> ...`` in ``root`` (this checkout's kdlab)."""
    src = str(Path(importlib.import_module("kdlab").__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           DEBUG_ENV: "1" if debug else "", "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run([sys.executable, "-m", ENTRY_POINTS[command[0]], *command[1:]], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


def run_case(case: Case, good: "GoodRepos", workdir: Path, debug: bool = False,
             in_process: bool = True) -> Outcome:
    """Copy the good repository into ``workdir``, break it, run the command; the outcome and what changed."""
    root = good.copy(case.repo, workdir / "repo")
    case.breaks(root)
    before = snapshot(root)
    code, out, err = (run_entry if in_process else run_subprocess)(case.command, root, debug)
    return Outcome(code, out, err, changed_files(before, snapshot(root)))


def assert_refused(case: Case, outcome: Outcome, debug: bool = False) -> None:
    """What every bad input must give (see the module docstring)."""
    shown = f"\n--- stderr ---\n{outcome.stderr[-3000:]}\n--- stdout ---\n{outcome.stdout[-1500:]}"
    assert outcome.code != 0, f"{case.name}: exit status 0{shown}"
    assert len(outcome.error_lines) == 1, f"{case.name}: expected one '{PREFIX}' line{shown}"
    others = [line for line in outcome.stderr.splitlines()
              if line.strip() and not line.startswith((PREFIX, "kdlab: warning:"))]
    if debug:
        assert "Traceback (most recent call last)" in outcome.stderr, f"{case.name}: no traceback{shown}"
        assert outcome.stderr.rstrip().splitlines()[-1].startswith(PREFIX), f"{case.name}: error line not last{shown}"
    else:
        assert not others, f"{case.name}: stderr holds more than the error line{shown}"
    line = outcome.error_lines[0]
    for fragment in (case.names, *case.says):
        assert fragment in line, f"{case.name}: {fragment!r} not in the error line:\n{line}"
    assert not outcome.changed, f"{case.name}: the failed run changed {outcome.changed}"


# --------------------------------------------------------------------------- #
# Helpers that break one input (each returns a `breaks` function)
# --------------------------------------------------------------------------- #
DELETE = object()  # set_param(key, DELETE) removes the key


def _set_dotted(mapping: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        mapping = mapping[int(part)] if isinstance(mapping, list) else mapping[part]
    if value is DELETE:
        del mapping[last]
    elif isinstance(mapping, list):
        mapping[int(last)] = value
    else:
        mapping[last] = value


def read_params(root: Path) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text())


def write_params(root: Path, raw: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def set_param(key: str, value: Any, restudy: bool = False) -> Callable[[Path], None]:
    """params.yaml with ``key`` (dotted; list items by index) set to ``value`` (or DELETE). ``restudy``:
    then run the `study` stage, as `dvc repro` would before a stage that depends on results/study.json."""
    def breaks(root: Path) -> None:
        raw = read_params(root)
        _set_dotted(raw, key, value)
        write_params(root, raw)
        if restudy:
            code, _, err = run_entry(("study",), root)
            assert code == 0, f"the study stage refused {key}={value!r}: {err}"
    return breaks


def edit_params_text(edit: Callable[[str], str], file: str = "params.yaml") -> Callable[[Path], None]:
    """A text edit of a YAML file (params.yaml or conf/...), for syntax errors and duplicate keys."""
    def breaks(root: Path) -> None:
        path = root / file
        new = edit(path.read_text())
        assert new != path.read_text(), f"the edit of {file} changed nothing"
        path.write_text(new)
    return breaks


def edit_npz(relpath: str, **changes: Callable[[np.ndarray, dict], Any]) -> Callable[[Path], None]:
    """Rewrite an .npz with ``key=fn(array, all_arrays)`` for each change; fn returning DELETE drops the key
    (a key not in the file is added)."""
    def breaks(root: Path) -> None:
        path = root / relpath
        with np.load(path, allow_pickle=False) as handle:
            arrays = {k: handle[k] for k in handle.files}
        original = {k: v.copy() for k, v in arrays.items()}
        for key, fn in changes.items():
            value = fn(arrays.get(key), original)
            if value is DELETE:
                arrays.pop(key)
            else:
                arrays[key] = value
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    return breaks


def write_file(relpath: str, content: bytes | str) -> Callable[[Path], None]:
    def breaks(root: Path) -> None:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return breaks


def remove_file(relpath: str) -> Callable[[Path], None]:
    def breaks(root: Path) -> None:
        (root / relpath).unlink()
    return breaks


def edit_json(relpath: str, edit: Callable[[Any], Any]) -> Callable[[Path], None]:
    def breaks(root: Path) -> None:
        path = root / relpath
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return breaks


def use_local_data(changes: dict[str, Any] | None = None) -> Callable[[Path], None]:
    """params.yaml switched to the good local data set (local/: train.csv, test.csv and course files), as
    `-S data=local -S data.local_train=...` would compose it, then each dotted key below `data` of
    ``changes`` set (e.g. ``{"course_files.label_list.local": "local/other.json"}``; DELETE removes it)."""
    def breaks(root: Path) -> None:
        raw = read_params(root)
        raw["data"] = local_data_params()
        for key, value in (changes or {}).items():
            _set_dotted(raw["data"], key, value)
        write_params(root, raw)
    return breaks


def chain(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    """Several edits that together break one input (e.g. a file and the param that points to it)."""
    def breaks(root: Path) -> None:
        for step in steps:
            step(root)
    return breaks


# array edits for edit_npz
def shuffled(seed: int = 0) -> Callable[[np.ndarray, dict], np.ndarray]:
    """The rows in another order (the same permutation for every array that uses the same seed)."""
    def fn(a, arrays):
        return a[np.random.default_rng(seed).permutation(len(a))]
    return fn


def changed_labels(count: int, n_classes: int = 113) -> Callable[[np.ndarray, dict], np.ndarray]:
    """``count`` labels moved to another valid class id."""
    def fn(a, arrays):
        a = a.copy()
        a[:count] = (a[:count] + 1) % n_classes
        return a
    return fn


def set_at(index, value) -> Callable[[np.ndarray, dict], np.ndarray]:
    def fn(a, arrays):
        a = a.copy()
        a[index] = value
        return a
    return fn


# --------------------------------------------------------------------------- #
# The good repositories
# --------------------------------------------------------------------------- #
LOCAL_LABELS = ["Late fee", "Fraud", "Card lost", "Billing dispute", "Identity theft", "Overdraft", "Loan payoff",
                "Account closed"]


def local_data_params() -> dict:
    """The `data` section for the good local data set under local/ (relative paths: stages run in the root)."""
    course = {name: {"local": f"local/{name}.json", "sha256": None} for name in ("label_list", "label_merge_mapping")}
    course.update(train_indices=None, val_indices=None)
    return {**composed("profile=demo", "data=local")["data"], "local_train": "local/train.csv",
            "local_test": "local/test.csv", "course_files": course, "head_classes": 2, "mid_classes": 3,
            "text_column": "text", "label_column": "label", "val_fraction": 0.2,
            "min_train_rows": 20, "min_val_rows": 10}  # a deliberately small set: below the default minimums


def _write_local_data(folder: Path) -> None:
    """A small local data set in the Hub layout: 80 train rows and 16 test rows over 8 labels (long-tailed),
    one raw label merged by the merge map."""
    folder.mkdir(parents=True)
    counts = [20, 16, 12, 10, 8, 6, 5, 3]
    labels = [name for name, k in zip(LOCAL_LABELS, counts) for _ in range(k)]
    labels[0] = "Late fees (old)"
    rng = np.random.default_rng(3)
    order = rng.permutation(len(labels))
    train = pd.DataFrame({"text": [f"complaint {i} about {labels[j].lower()}" for i, j in enumerate(order)],
                          "label": [labels[j] for j in order]})
    train.to_csv(folder / "train.csv", index=False)
    test = pd.DataFrame({"text": [f"later complaint {i}" for i in range(16)], "label": LOCAL_LABELS * 2})
    test.to_csv(folder / "test.csv", index=False)
    (folder / "label_list.json").write_text(json.dumps(LOCAL_LABELS))
    (folder / "label_merge_mapping.json").write_text(json.dumps({"_comment": "old -> new",
                                                                 "Late fees (old)": "Late fee"}))


def _params(profile: str) -> dict:
    raw = composed(f"profile={profile}")
    raw["arms"] = {name: dict(spec) for name, spec in ARMS.items()}
    raw["sweep"] = dict(SWEEP)
    raw["evaluation"]["bootstrap"].update(resamples=50, loop_resamples=10)
    if profile == "demo":
        raw["data"]["synthetic"].update(SIZES)
    return raw


def _logits(rng, labels: np.ndarray, n_classes: int, strength: float) -> np.ndarray:
    z = rng.standard_normal((len(labels), n_classes)).astype(np.float32)
    z[np.arange(len(labels)), labels] += strength
    return z


def _must(command: tuple[str, ...], root: Path) -> None:
    code, out, err = run_entry(command, root)
    assert code == 0, f"building the good repository: {' '.join(command)} failed:\n{err}\n{out}"


def build_study(root: Path) -> None:
    root.mkdir(parents=True)
    write_params(root, _params("demo"))
    shutil.copytree(REPO / "conf", root / "conf")  # for `kdlab pin` (it reads conf/)
    _write_local_data(root / "local")
    _must(("prepare",), root)
    layout, cfg = Layout(root), load_config(root / "params.yaml")
    card = io.read_json(layout.data_card)
    splits = {name: pd.read_parquet(layout.split(name)) for name in ("train", "val", "test")}
    n_classes, rng = card["n_classes"], np.random.default_rng(5)
    val = splits["val"]
    val_labels = val["label"].to_numpy(np.int64)
    val_tiers = val["tier"].map({t: i for i, t in enumerate(TIERS)}).to_numpy(np.int8)
    tt_labels = np.concatenate([splits[name]["label"].to_numpy(np.int64) for name in ("train", "test")])
    raw_tt, raw_val = _logits(rng, tt_labels, n_classes, 4.0), _logits(rng, val_labels, n_classes, 4.0)
    io.save_npz(layout.teacher_train_test_raw, logits=raw_tt.astype(np.float16), labels=tt_labels)
    io.save_npz(layout.teacher_train_test_final, logits=(raw_tt / TEACHER_T).astype(np.float16), labels=tt_labels)
    io.save_npz(layout.teacher_val_raw, logits=raw_val.astype(np.float16), labels=val_labels, tiers=val_tiers)
    io.save_npz(layout.teacher_val_final, logits=(raw_val / TEACHER_T).astype(np.float16), labels=val_labels,
                tiers=val_tiers)
    io.write_json(layout.teacher / "metadata.json", {"source": "trained", "temperature": TEACHER_T})
    io.write_json(layout.teacher_card, {"source": "trained", "temperature": TEACHER_T})
    for i, arm in enumerate(cfg.all_arms):
        pred = Predictions.from_logits(val["row_id"].to_numpy(), _logits(rng, val_labels, n_classes, 2.0 + i),
                                       val_labels, val_tiers)
        save_predictions(layout.predictions(arm.name), pred)
        io.write_json(layout.arm_card(arm.name), {"arm": arm.name, "available": True, "source": "trained",
                                                  "config": arm_record(arm)})
    for command in (("study",), ("calibrate",), ("evaluate",), *(("analyze", "--name", a) for a in ANALYSES)):
        _must(command, root)


def build_audit(root: Path, study: Path) -> None:
    root.mkdir(parents=True)
    shutil.copytree(study / "data" / "prepared", root / "data" / "prepared")
    src, pub = Layout(study), root / "published"
    pub.mkdir()
    teacher = io.load_npz(src.teacher_val_final)
    np.savez(pub / "val_logits_canonical_final.npz", logits=teacher["logits"], labels=teacher["labels"],
             tiers=np.array(TIERS)[teacher["tiers"]])
    (pub / "metadata.json").write_text(json.dumps({"model": "fixture teacher",
                                                   "calibration": {"temperature": TEACHER_T}}))
    files = {"vanilla": "vanilla_val_predictions.npz", "kd": "kd_val_predictions.npz", CELL: "grid_Td4_a70.npz"}
    for arm, name in files.items():
        p = io.load_npz(src.predictions(arm))
        np.savez(pub / name, logits=p["logits"], preds=p["preds"], labels=p["labels"],
                 val_tiers=np.array(TIERS)[p["tiers"]])
    raw = _params("audit")

    def local(name: str) -> dict:
        return {"local": f"published/{name}", "sha256": None}

    raw["teacher"]["published"]["val_final"] = local("val_logits_canonical_final.npz")
    raw["teacher"]["published"]["metadata"] = local("metadata.json")
    raw["published"]["arms"] = {"vanilla": local(files["vanilla"]), "kd": local(files["kd"])}
    raw["published"]["sweep"] = [{"kd_temperature": 4, "alpha": 0.7, "file": local(files[CELL])}]
    write_params(root, raw)
    _must(("teacher",), root)
    for arm in [*ARMS, CELL]:
        _must(("train", "--arm", arm), root)
    for command in (("study",), ("calibrate",), ("evaluate",)):
        _must(command, root)


class GoodRepos:
    """The good repositories, built on first use under ``folder``; :meth:`copy` gives a fresh copy."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._built: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        if name not in self._built:
            root = self.folder / name
            if name == "study":
                build_study(root)
            elif name == "audit":
                build_audit(root, self.path("study"))
            else:
                raise KeyError(f"no good repository {name!r}; expected 'study' or 'audit'")
            self._built[name] = root
        return self._built[name]

    def copy(self, name: str, dest: Path) -> Path:
        shutil.copytree(self.path(name), dest)
        return dest
