"""The course files (docs/study.md §1) read and checked: label list, merge map, and the optional index files.

Each is a JSON file named by a ``data.course_files.<name>`` param; a file that is missing,
empty, not UTF-8, not JSON, or JSON of the wrong shape is refused with its path, its param,
what was expected and what was found, before any data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kdlab import config, data, io
from kdlab.records import json_type

KEY = "data.course_files"
SHAPES = {  # name -> (JSON type, what the file must hold)
    "label_list": (list, "a JSON list of the canonical label names"),
    "label_merge_mapping": (dict, "a JSON object mapping raw label -> canonical label"),
    "train_indices": (list, "a JSON list of raw-train row positions"),
    "val_indices": (list, "a JSON list of raw-train row positions"),
}


def read_course_json(path: Path, name: str):
    """One course file's JSON, checked to be of the type :data:`SHAPES` gives ``name``."""
    what = f"{KEY}.{name}"
    value = io.read_json(path, what)
    kind, expected = SHAPES[name]
    if not isinstance(value, kind):
        raise data.DataError(f"{path} ({what}): expected {expected}, found {json_type(value)}; "
                             "point the param at the right file")
    return value


def read_course_files(cf: config.CourseFiles, get: Callable[[config.Artifact, str], Path]) -> data.CourseFiles:
    """Fetch (``get(artifact, param key)`` -> local path) and check every course file."""
    label_path = get(cf.label_list, f"{KEY}.label_list")
    labels = read_course_json(label_path, "label_list")
    bad = [x for x in labels if not isinstance(x, str) or not x]
    twice = sorted({x for x in labels if labels.count(x) > 1}, key=str) if not bad else []
    if bad or twice or len(labels) < 2:
        found = (f"{json_type(bad[0])} {bad[0]!r}" if bad
                 else f"{twice[:3]} more than once" if twice else f"{len(labels)} label(s)")
        raise data.DataError(f"{label_path} ({KEY}.label_list): expected two or more distinct, non-empty label "
                             f"names, found {found}; point the param at the right file")
    merge_path = get(cf.label_merge_mapping, f"{KEY}.label_merge_mapping")
    merge = data.parse_merge_map(read_course_json(merge_path, "label_merge_mapping"),
                                 f"{merge_path} ({KEY}.label_merge_mapping)")
    given = {name: artifact is not None and artifact.given  # conf/ lists them with every source null
             for name, artifact in (("train_indices", cf.train_indices), ("val_indices", cf.val_indices))}
    if given["train_indices"] != given["val_indices"]:
        only = "train_indices" if given["train_indices"] else "val_indices"
        raise data.DataError(f"{KEY}: give both train_indices and val_indices, or neither; found {only} only "
                             "(without index files val is a seeded stratified split: data.val_fraction)")
    indices = {}
    for name in given:
        if not given[name]:
            indices[name] = None
            continue
        path = get(getattr(cf, name), f"{KEY}.{name}")
        indices[name] = read_course_json(path, name)
        bad = [i for i in indices[name] if isinstance(i, bool) or not isinstance(i, int)]
        if bad:
            raise data.DataError(f"{path} ({KEY}.{name}): expected integer row positions, found {json_type(bad[0])} "
                                 f"{bad[0]!r}; point the param at the right file")
    return data.CourseFiles(labels, merge, indices["train_indices"], indices["val_indices"])
