"""Canonical data processing (docs/study.md §1), shared by every data source.

The raw inputs, whatever their source (Hub parquet, a user's local files, the
bundled synthetic corpus), are two frames in the Hub layout (a label column and
a text column) plus the course files. :func:`prepare_splits` turns them into the
three splits and counts what it dropped per raw input (:class:`Account`: a label
outside the label list; an empty text, dropped unless the data keep every row);
:func:`canonicalize` is docs/study.md §1's processing exactly. :func:`assign_tiers`
defines head / mid / tail by canonical-train frequency. :func:`check_drops`,
:func:`check_sizes` and :func:`check_counts` refuse splits that lost too many
rows, are too small to train or evaluate, or differ from data.expected.
Everything here is a pure function of its inputs (reading files: kdlab.rawdata).
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


@dataclass(frozen=True)
class Account:
    """What canonical processing did to one raw selection (a file, or its rows at an index file).

    ``rows``: raw rows that entered; ``unknown_label``: dropped because the (merged) label is not
    in the label list (a missing label included), with ``unknown_labels`` raw label -> rows, most
    frequent first; ``empty_text``: rows with a known label and an empty text, dropped when
    ``empty_dropped``. A row is counted under the first reason only.
    """

    rows: int
    unknown_label: int
    empty_text: int
    empty_dropped: bool
    unknown_labels: tuple[tuple[str, int], ...] = ()

    @property
    def dropped(self) -> int:
        return self.unknown_label + (self.empty_text if self.empty_dropped else 0)

    @property
    def kept(self) -> int:
        return self.rows - self.dropped

    def as_dict(self, top: int = 10) -> dict:
        return {"rows": self.rows, "kept": self.kept, "dropped_unknown_label": self.unknown_label,
                "empty_text": self.empty_text, "empty_text_dropped": self.empty_dropped,
                "unknown_labels": [{"label": lab, "rows": n} for lab, n in self.unknown_labels[:top]]}


MISSING_LABEL = "(missing)"  # how a row without a label is named among the unknown labels


def _process(frame: pd.DataFrame, course: CourseFiles, text_col: str, label_col: str,
             drop_empty_text: bool = False) -> tuple[pd.DataFrame, Account]:
    """Merge labels, keep the canonical ones (and, with ``drop_empty_text``, the non-empty texts),
    attach label ids. Keeps row order."""
    label_to_id = {name: i for i, name in enumerate(course.label_list)}
    merged = frame[label_col].map(lambda lab: course.merge_map.get(lab, lab))
    known = merged.isin(label_to_id)
    empty = is_empty_text(frame[text_col]) & known
    keep = known & ~empty if drop_empty_text else known
    unknown = frame.loc[~known, label_col].map(lambda lab: MISSING_LABEL if pd.isna(lab) else str(lab))
    counts = sorted(unknown.value_counts().items(), key=lambda item: (-item[1], item[0]))
    account = Account(rows=len(frame), unknown_label=int((~known).sum()), empty_text=int(empty.sum()),
                      empty_dropped=drop_empty_text, unknown_labels=tuple((str(k), int(v)) for k, v in counts))
    out = pd.DataFrame({
        "text": frame.loc[keep, text_col].fillna("").astype(str).to_numpy(),
        "label": merged[keep].map(label_to_id).astype(np.int64).to_numpy(),
        "label_name": merged[keep].astype(str).to_numpy(),
        "source_index": frame.index[keep].to_numpy(np.int64),
    })
    return out, account


def is_empty_text(texts: pd.Series) -> pd.Series:
    """(N,) bool: a missing value or only whitespace."""
    return texts.isna() | texts.astype(str).str.strip().eq("")


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


@dataclass(frozen=True)
class Canonical:
    """The canonical splits and what processing did to each raw selection (:class:`Account`):
    keys ``train``, ``val`` and ``test`` with index files, ``train+val`` and ``test`` without."""

    splits: dict[str, pd.DataFrame]
    accounts: dict[str, Account]


INDEX_PARAMS = {"train_indices": "data.course_files.train_indices", "val_indices": "data.course_files.val_indices"}


def _check_indices(course: CourseFiles, n_raw: int) -> None:
    for name, idx in (("train_indices", course.train_indices), ("val_indices", course.val_indices)):
        what = INDEX_PARAMS[name]
        bad = [i for i in idx if isinstance(i, bool) or not isinstance(i, (int, np.integer))]
        if bad:
            raise DataError(f"{what}: entries must be integer row positions, found {bad[0]!r}")
        n_dup = len(idx) - len(set(idx))
        if n_dup:
            raise DataError(f"{what}: {n_dup} duplicate indices; expected each raw row at most once")
        if len(idx) and (min(idx) < 0 or max(idx) >= n_raw):
            raise DataError(
                f"{what}: indices must lie in [0, {n_raw}) of the raw train file ({n_raw:,} rows), "
                f"found range [{min(idx)}, {max(idx)}]; the index file does not belong to this data file: "
                "give the index files made for it, or set both index files to null for a seeded stratified split"
            )
    overlap = set(course.train_indices) & set(course.val_indices)
    if overlap:
        raise DataError(f"{INDEX_PARAMS['train_indices']} and {INDEX_PARAMS['val_indices']} overlap in "
                        f"{len(overlap)} rows; expected disjoint splits")


def prepare_splits(
    hub_train: pd.DataFrame,
    hub_test: pd.DataFrame | None,
    course: CourseFiles,
    text_column: str,
    label_column: str,
    val_fraction: float = 0.1,
    seed: int = 42,
    drop_empty_text: bool = False,
) -> Canonical:
    """The canonical ``train``, ``val`` and ``test`` splits (without tiers) and their accounts.

    With index files, train/val are the raw-train rows at those positions
    (then merged and filtered), test is the whole raw test split; without them,
    val is a seeded stratified split of the filtered raw-train rows.
    ``drop_empty_text`` also drops rows whose text is empty (docs/study.md §1's processing keeps them).
    """
    hub_train = hub_train.reset_index(drop=True)
    accounts = {}
    if course.train_indices is not None and course.val_indices is not None:
        _check_indices(course, len(hub_train))
        train, accounts["train"] = _process(hub_train.iloc[list(course.train_indices)], course, text_column,
                                            label_column, drop_empty_text)
        val, accounts["val"] = _process(hub_train.iloc[list(course.val_indices)], course, text_column,
                                        label_column, drop_empty_text)
    else:
        processed, accounts["train+val"] = _process(hub_train, course, text_column, label_column, drop_empty_text)
        train_pos, val_pos = stratified_val_split(processed["label"].to_numpy(), val_fraction, seed)
        train, val = processed.iloc[train_pos], processed.iloc[val_pos]
    if hub_test is not None:
        test, accounts["test"] = _process(hub_test.reset_index(drop=True), course, text_column, label_column,
                                          drop_empty_text)
    else:
        test = train.iloc[:0]
    splits = {}
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame = frame.reset_index(drop=True)
        frame.insert(0, "row_id", np.arange(len(frame), dtype=np.int64))
        splits[name] = frame
    return Canonical(splits, accounts)


def canonicalize(hub_train: pd.DataFrame, hub_test: pd.DataFrame | None, course: CourseFiles, text_column: str,
                 label_column: str, val_fraction: float = 0.1, seed: int = 42) -> dict[str, pd.DataFrame]:
    """docs/study.md §1's processing exactly (empty texts kept): :func:`prepare_splits`' splits."""
    return prepare_splits(hub_train, hub_test, course, text_column, label_column, val_fraction, seed).splits


def assign_tiers(train_labels: np.ndarray, n_classes: int, head: int, mid: int) -> np.ndarray:
    """Tier code per class (C,) int8: 0 head, 1 mid, 2 tail.

    Classes are ranked by canonical-train frequency, most frequent first, ties
    broken by the smaller label id; the first ``head`` are head, the next
    ``mid`` are mid, the rest tail.
    """
    if head + mid >= n_classes:
        raise DataError(f"data.head_classes ({head}) + data.mid_classes ({mid}) must be fewer than the label "
                        f"list's {n_classes} classes (the rest are the tail); set smaller values, e.g. "
                        f"-S data.head_classes={max(1, n_classes // 6)} -S data.mid_classes={max(1, n_classes // 3)}")
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


def check_drops(accounts: dict[str, Account], max_fraction: float, sources: dict[str, str]) -> None:
    """Refuse a raw selection that lost more than ``max_fraction`` of its rows (data.max_dropped_fraction).

    ``sources``: account key -> where its rows came from (the param and the file), for the message."""
    for key, acc in accounts.items():
        if acc.rows == 0 or acc.dropped / acc.rows <= max_fraction:
            continue
        reasons = []
        if acc.unknown_label:
            top = ", ".join(f"{lab!r} ({n:,})" for lab, n in acc.unknown_labels[:5])
            reasons.append(f"{acc.unknown_label:,} with a label not in the label list (most frequent: {top})")
        if acc.empty_dropped and acc.empty_text:
            reasons.append(f"{acc.empty_text:,} with an empty text")
        raise DataError(
            f"{sources.get(key, key)}: {acc.dropped:,} of {acc.rows:,} rows would be dropped "
            f"({acc.dropped / acc.rows:.1%}): {'; '.join(reasons)}; data.max_dropped_fraction allows "
            f"{max_fraction:.1%}. Fix the labels (or add them to the label list or the merge map) and fill in "
            f"the texts, or accept the loss with -S data.max_dropped_fraction={min(1.0, _ceil2(acc.dropped / acc.rows))}"
        )


def _ceil2(x: float) -> float:
    return float(np.ceil(x * 100) / 100)


def check_sizes(splits: dict[str, pd.DataFrame], label_list: Sequence[str], min_train_rows: int,
                min_val_rows: int, source: str) -> None:
    """Refuse splits too small to train on or to evaluate, whatever data.expected says: fewer rows than
    data.min_train_rows / data.min_val_rows, or fewer than 2 classes in train or in val."""
    problems = []
    for name, minimum, key in (("train", min_train_rows, "data.min_train_rows"),
                               ("val", min_val_rows, "data.min_val_rows")):
        n = len(splits[name])
        if n < minimum:
            problems.append(f"the {name} split has {n:,} rows, expected at least {minimum:,} ({key})")
    for name in ("train", "val"):
        present = sorted(set(splits[name]["label"].tolist()))
        if len(splits[name]) and len(present) < 2:
            names = [label_list[i] for i in present]
            problems.append(f"the {name} split holds {len(present)} class ({names}), expected at least 2 "
                            f"(macro F1 and calibration compare classes)")
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems) + ". Give more labelled rows (or another "
                        "data.val_fraction / other index files), or lower the minimum if the data are right")


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
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid (a ValueError), ArrowIOError (an OSError)
        raise DataError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc}); "
                        "rerun `dvc repro prepare`") from None


def class_tiers_from_card(card: dict) -> np.ndarray:
    return np.array([TIERS.index(t) for t in card["class_tiers"]], dtype=np.int8)


def tier_codes_of(frame: pd.DataFrame) -> np.ndarray:
    """A prepared split's ``tier`` column as int8 codes (0 head, 1 mid, 2 tail)."""
    return frame["tier"].map({t: i for i, t in enumerate(TIERS)}).to_numpy(np.int8)
