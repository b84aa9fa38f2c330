"""Canonical data processing (docs/study.md §1), shared by every data source.

The raw inputs, whatever their source (Hub parquet, a user's local files, the
bundled synthetic corpus), are two frames in the Hub layout (a label column and
a text column) plus the course files. :func:`canonicalize` turns them into the
three splits; :func:`assign_tiers` defines head / mid / tail by canonical-train
frequency. Everything here is a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kdlab.config import TIERS, ExpectedCounts
from kdlab.errors import KdlabError

SPLITS = ("train", "val", "test")
COLUMNS = ["row_id", "text", "label", "label_name", "tier", "source_index"]


class DataError(KdlabError):
    """Input data do not match what the study expects."""


@dataclass(frozen=True)
class CourseFiles:
    """The canonical label and split files (docs/study.md §1), already parsed."""

    label_list: list[str]
    merge_map: dict[str, str]
    train_indices: list[int] | None = None
    val_indices: list[int] | None = None


def parse_merge_map(raw: dict, source: str = "label_merge_mapping") -> dict[str, str]:
    """Drop comment keys (starting with ``_``) and check values are strings."""
    merge = {k: v for k, v in raw.items() if not k.startswith("_")}
    bad = [k for k, v in merge.items() if not isinstance(v, str)]
    if bad:
        raise DataError(f"{source}: values must be label strings; non-string values for keys {bad[:5]}")
    return merge


def _process(frame: pd.DataFrame, course: CourseFiles, text_col: str, label_col: str) -> pd.DataFrame:
    """Merge labels, keep the canonical ones, attach label ids. Keeps row order."""
    label_to_id = {name: i for i, name in enumerate(course.label_list)}
    merged = frame[label_col].map(lambda lab: course.merge_map.get(lab, lab))
    keep = merged.isin(label_to_id)
    out = pd.DataFrame({
        "text": frame.loc[keep, text_col].fillna("").astype(str).to_numpy(),
        "label": merged[keep].map(label_to_id).astype(np.int64).to_numpy(),
        "label_name": merged[keep].astype(str).to_numpy(),
        "source_index": frame.index[keep].to_numpy(np.int64),
    })
    return out


def stratified_val_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split of positions 0..N-1 into (train, val), both sorted.

    Each class sends ``round(val_fraction * count)`` rows to val but keeps at
    least one row in train, so every class stays learnable.
    """
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        n_val = min(int(round(val_fraction * rows.size)), rows.size - 1)
        if n_val > 0:
            val.append(rng.permutation(rows)[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), val_idx)
    return train_idx, val_idx


def canonicalize(
    hub_train: pd.DataFrame,
    hub_test: pd.DataFrame | None,
    course: CourseFiles,
    text_column: str,
    label_column: str,
    val_fraction: float = 0.1,
    seed: int = 42,
) -> dict[str, pd.DataFrame]:
    """Return the canonical ``train``, ``val`` and ``test`` splits (without tiers).

    With index files, train/val are the Hub-train rows at those positions
    (then merged and filtered), test is the whole Hub test split; without them,
    val is a seeded stratified split of the filtered Hub-train rows.
    """
    for name, frame in (("train", hub_train), ("test", hub_test)):
        if frame is None:
            continue
        missing = [c for c in (text_column, label_column) if c not in frame.columns]
        if missing:
            raise DataError(
                f"raw {name} split: missing column(s) {missing}; found {list(frame.columns)}; "
                "set data.text_column / data.label_column in params.yaml"
            )
    hub_train = hub_train.reset_index(drop=True)
    if course.train_indices is not None and course.val_indices is not None:
        for name, idx in (("train_indices", course.train_indices), ("val_indices", course.val_indices)):
            bad = [i for i in idx if isinstance(i, bool) or not isinstance(i, (int, np.integer))]
            if bad:
                raise DataError(f"{name}: entries must be integer row positions, found {bad[0]!r}")
            n_dup = len(idx) - len(set(idx))
            if n_dup:
                raise DataError(f"{name}: {n_dup} duplicate indices; expected each raw row at most once")
            if len(idx) and (min(idx) < 0 or max(idx) >= len(hub_train)):
                raise DataError(
                    f"{name}: indices must lie in [0, {len(hub_train)}) of the raw train split, "
                    f"found range [{min(idx)}, {max(idx)}]; the index file does not belong to this dataset"
                )
        overlap = set(course.train_indices) & set(course.val_indices)
        if overlap:
            raise DataError(f"train_indices and val_indices overlap in {len(overlap)} rows; expected disjoint splits")
        train = _process(hub_train.iloc[list(course.train_indices)], course, text_column, label_column)
        val = _process(hub_train.iloc[list(course.val_indices)], course, text_column, label_column)
    else:
        processed = _process(hub_train, course, text_column, label_column)
        train_pos, val_pos = stratified_val_split(processed["label"].to_numpy(), val_fraction, seed)
        train, val = processed.iloc[train_pos], processed.iloc[val_pos]
    if hub_test is not None:
        test = _process(hub_test.reset_index(drop=True), course, text_column, label_column)
    else:
        test = train.iloc[:0]
    splits = {}
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame = frame.reset_index(drop=True)
        frame.insert(0, "row_id", np.arange(len(frame), dtype=np.int64))
        splits[name] = frame
    return splits


def assign_tiers(train_labels: np.ndarray, n_classes: int, head: int, mid: int) -> np.ndarray:
    """Tier code per class (C,) int8: 0 head, 1 mid, 2 tail.

    Classes are ranked by canonical-train frequency, most frequent first, ties
    broken by the smaller label id; the first ``head`` are head, the next
    ``mid`` are mid, the rest tail.
    """
    if head + mid >= n_classes:
        raise DataError(f"head ({head}) + mid ({mid}) classes must be fewer than the {n_classes} classes")
    counts = np.bincount(train_labels, minlength=n_classes)
    order = np.lexsort((np.arange(n_classes), -counts))  # last key is primary: count desc, then id asc
    tiers = np.full(n_classes, 2, dtype=np.int8)
    tiers[order[:head]] = 0
    tiers[order[head:head + mid]] = 1
    return tiers


def add_tiers(splits: dict[str, pd.DataFrame], class_tiers: np.ndarray) -> dict[str, pd.DataFrame]:
    out = {}
    for name, frame in splits.items():
        frame = frame.copy()
        frame["tier"] = pd.Categorical.from_codes(class_tiers[frame["label"].to_numpy()], categories=list(TIERS))
        out[name] = frame[COLUMNS]
    return out


def check_counts(splits: dict[str, pd.DataFrame], expected: ExpectedCounts | None, source: str) -> None:
    """Fail if a split or val-tier size differs from the params (null skips a check)."""
    if expected is None:
        return
    problems = []
    for name in SPLITS:
        want = getattr(expected, name)
        if want is not None and len(splits[name]) != want:
            problems.append(f"{name}: expected {want:,} rows, found {len(splits[name]):,}")
    if expected.val_tiers:
        found = splits["val"]["tier"].value_counts()
        for tier, want in expected.val_tiers.items():
            if int(found.get(tier, 0)) != want:
                problems.append(f"val {tier} tier: expected {want:,} rows, found {int(found.get(tier, 0)):,}")
    if problems:
        raise DataError(
            f"{source}: the prepared data do not match data.expected in params.yaml: " + "; ".join(problems)
            + ". Check the dataset revision and course files; for your own data set data.expected to null."
        )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a parquet or CSV file in the Hub layout."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; expected .parquet or .csv")


def training_frame(splits: dict[str, pd.DataFrame], which: Sequence[str]) -> pd.DataFrame:
    """Concatenate splits in order (train then test) with ``teacher_row`` = position in the concatenation.

    The published teacher logits are aligned with train rows followed by test
    rows, so ``teacher_row`` indexes them directly.
    """
    frame = pd.concat([splits[name].assign(split=name) for name in which], ignore_index=True)
    frame["teacher_row"] = np.arange(len(frame), dtype=np.int64)
    return frame


def data_card(splits: dict[str, pd.DataFrame], label_list: list[str], class_tiers: np.ndarray) -> dict:
    """Class counts and tier membership that later stages and reports read."""
    train_counts = np.bincount(splits["train"]["label"].to_numpy(), minlength=len(label_list))
    val_counts = np.bincount(splits["val"]["label"].to_numpy(), minlength=len(label_list))
    return {
        "n_classes": len(label_list),
        "labels": list(label_list),
        "class_tiers": [TIERS[t] for t in class_tiers],
        "train_class_counts": train_counts.tolist(),
        "val_class_counts": val_counts.tolist(),
        "tier_classes": {t: int((class_tiers == i).sum()) for i, t in enumerate(TIERS)},
        "split_sizes": {name: len(frame) for name, frame in splits.items()},
        "val_tier_sizes": {t: int((splits["val"]["tier"] == t).sum()) for t in TIERS},
    }


def load_split(prepared_dir: str | Path, name: str) -> pd.DataFrame:
    path = Path(prepared_dir) / f"{name}.parquet"
    if not path.exists():
        raise DataError(f"{path}: not found; run `dvc repro prepare` first")
    return pd.read_parquet(path)


def class_tiers_from_card(card: dict) -> np.ndarray:
    return np.array([TIERS.index(t) for t in card["class_tiers"]], dtype=np.int8)


def tier_codes_of(frame: pd.DataFrame) -> np.ndarray:
    """A prepared split's ``tier`` column as int8 codes (0 head, 1 mid, 2 tail)."""
    return frame["tier"].map({t: i for i, t in enumerate(TIERS)}).to_numpy(np.int8)
