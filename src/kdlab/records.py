"""The JSON records stages hand to each other, read back with the fields their readers use checked.

A record that is not a JSON object, or that lacks a field a later stage reads, is refused here,
naming the file, what it should hold and the stage that rebuilds it, instead of failing later as
a KeyError deep in a renderer. (Arrays are checked by :mod:`kdlab.validate`.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from kdlab.config import TIERS, stage_of
from kdlab.io import ArtifactError, read_json
from kdlab.paths import Layout

# field -> JSON type(s) a record must hold it as
DATA_CARD = {"n_classes": int, "labels": list, "class_tiers": list, "train_class_counts": list,
             "tier_classes": dict, "split_sizes": dict, "source": str}
TEACHER_CARD = {"source": str, "temperature": (int, float)}
EVALUATION = {"profile": str, "n_val": int, "eval_half_size": int, "teacher": dict, "arms": dict}
RESULT = {"name": str}
_JSON = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
         bool: "true or false", type(None): "null"}


def json_type(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words ("an object", "a list", "a number"...)."""
    return _JSON.get(type(value), type(value).__name__)


def read_record(path: Path, fields: Mapping[str, type | tuple], redo: str) -> dict:
    """``path``'s JSON object with each of ``fields`` present and of its type; ``redo`` says what rebuilds it."""
    record = read_json(path)
    if not isinstance(record, dict):
        raise ArtifactError(f"{path}: expected a JSON object, found {json_type(record)}; {redo}")
    for key, kind in fields.items():
        value = record.get(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if key not in record or (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = " or ".join(dict.fromkeys(_JSON[k] for k in kinds))
            found = "no such key" if key not in record else f"{json_type(value)} {value!r:.60}"
            raise ArtifactError(f"{path}: expected `{key}` as {expected}, found {found}; {redo}")
    return record


def data_card(layout: Layout) -> dict:
    """data/prepared/data_card.json, its class count and class tiers consistent."""
    path, redo = layout.data_card, "rerun `dvc repro prepare`"
    card = read_record(path, DATA_CARD, redo)
    n, tiers = card["n_classes"], card["class_tiers"]
    if n < 2:
        raise ArtifactError(f"{path}: n_classes must be >= 2, found {n}; {redo}")
    if len(tiers) != n or not set(tiers) <= set(TIERS) or len(card["labels"]) != n:
        raise ArtifactError(f"{path}: labels and class_tiers must list {n} classes (n_classes), class_tiers with "
                            f"values in {list(TIERS)}; found {len(card['labels'])} labels and {len(tiers)} class "
                            f"tiers {sorted(set(map(str, tiers)))}; {redo}")
    return card


def teacher_card(layout: Layout) -> dict:
    return read_record(layout.teacher_card, TEACHER_CARD, "rerun `dvc repro teacher`")


def arm_card(layout: Layout, name: str) -> dict:
    """runs/<name>/arm.json: ``available`` true or false (and, when false, the reason)."""
    return read_record(layout.arm_card(name), {"available": bool}, f"rerun `dvc repro {stage_of(name)}`")


def evaluation(layout: Layout) -> dict:
    return read_record(layout.metrics / "evaluate.json", EVALUATION, "rerun `dvc repro evaluate`")


def result(layout: Layout, name: str) -> dict:
    """results/<name>.json, written by analyze@<name> (its ``name`` says so)."""
    path, redo = layout.results / f"{name}.json", f"rerun `dvc repro analyze@{name}`"
    record = read_record(path, RESULT, redo)
    if record["name"] != name:
        raise ArtifactError(f"{path}: holds the result of {record['name']!r}, expected {name!r}; {redo}")
    return record


def temperatures(path: Path, systems: Sequence[str]) -> dict:
    """results/calibration.json, with a positive finite temperature for ``teacher_raw`` and each of
    ``systems`` (the available arms)."""
    redo = "it was written for other arms or changed: run `dvc repro calibrate`"
    cal = read_record(path, {"teacher_raw": dict, "arms": dict, "fold": dict}, redo)
    for name in ["teacher_raw", *systems]:
        record = cal["teacher_raw"] if name == "teacher_raw" else cal["arms"].get(name)
        t = record.get("temperature") if isinstance(record, dict) else None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf:
            raise ArtifactError(f"{path}: no fitted temperature for {name} (expected a positive number, found "
                                f"{t!r}); {redo}")
    return cal
