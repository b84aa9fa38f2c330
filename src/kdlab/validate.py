"""Stored logits checked against the prepared rows they belong to: one set of rules for every reader.

Every array file kdlab reads holds one row per example of the prepared data: a run's
predictions (runs/<arm>/predictions.npz), the teacher's val logits (data/teacher/val_logits_*.npz)
and the published files the audit converts follow data/prepared/val.parquet row by row; the
teacher's train+test logits follow the train rows, then the test rows. :class:`PreparedRows` is
what such a file must match, read from the prepared splits; :func:`check_arrays` checks the
arrays of one file against it, in this order: the shape of every array, finite logits that
survive the cast to float16, row ids, labels, tiers, then preds (class ids, an argmax of the
logits). Each refusal names the file, the expected and the found value, and what to do.
Values that can only be checked against the data (the calibration fold's size) are checked
here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from kdlab import calibration, records
from kdlab.config import TIERS, EvaluationConfig, ParamsError
from kdlab.io import ArtifactError
from kdlab.paths import Layout

# what to do, by where a file comes from
REBUILD = "rebuild it with `dvc repro` (or restore the copy DVC recorded with `dvc checkout`)"
DOWNLOAD = "check the dataset revision and the course files, or download the file again"
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65,504: the largest logit kdlab can store


@dataclass(frozen=True)
class PreparedRows:
    """The prepared rows a stored file must follow, in order.

    ``labels`` (N,) int64 class ids; ``row_id`` (N,) int64 and ``tiers`` (N,) int8 codes
    (0 head, 1 mid, 2 tail) for the val split, None for train+test; ``n_classes`` C is the
    number of logit columns; ``source`` names the prepared file(s) in messages."""

    source: str
    labels: np.ndarray
    n_classes: int
    row_id: Optional[np.ndarray] = None
    tiers: Optional[np.ndarray] = None

    @property
    def n(self) -> int:
        return int(len(self.labels))


def _split_frame(layout: Layout, name: str, n_classes: int):
    """A prepared split with its row_id, label and tier columns checked."""
    from kdlab import data  # pandas: only the stages that read stored arrays pay for it

    path = layout.split(name)
    frame = data.load_split(layout.prepared, name)
    missing = [c for c in ("row_id", "label", "tier") if c not in frame.columns]
    if missing:
        raise ArtifactError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}; "
                            "rerun `dvc repro prepare`")
    labels = frame["label"].to_numpy()
    if labels.dtype.kind not in "iu":
        raise ArtifactError(f"{path}: label must hold integer class ids, found dtype {labels.dtype}; "
                            "rerun `dvc repro prepare`")
    if labels.size and not 0 <= labels.min() <= labels.max() < n_classes:
        raise ArtifactError(f"{path}: labels must be class ids in 0..{n_classes - 1} (data_card.json), found "
                            f"{labels.min()}..{labels.max()}; rerun `dvc repro prepare`")
    unknown = sorted(set(frame["tier"].astype(str)) - set(TIERS))
    if unknown:
        raise ArtifactError(f"{path}: unknown tiers {unknown[:5]}; expected {list(TIERS)}; rerun `dvc repro prepare`")
    return frame


def prepared_val(layout: Layout) -> PreparedRows:
    """The rows of data/prepared/val.parquet (ids, labels, tiers) and the class count of data_card.json."""
    from kdlab import data

    n_classes = records.data_card(layout)["n_classes"]
    val = _split_frame(layout, "val", n_classes)
    return PreparedRows(str(layout.split("val")), val["label"].to_numpy(np.int64), n_classes,
                        row_id=val["row_id"].to_numpy(np.int64), tiers=data.tier_codes_of(val))


def prepared_train_test(layout: Layout, splits: dict, n_classes: int) -> PreparedRows:
    """The teacher's train+test rows: the train split's labels, then the test split's (``splits`` as loaded)."""
    labels = np.concatenate([splits[name]["label"].to_numpy(np.int64) for name in ("train", "test")])
    return PreparedRows(f"{layout.split('train')} then {layout.split('test').name}", labels, n_classes)


# --------------------------------------------------------------------------- #
# One array at a time
# --------------------------------------------------------------------------- #
def check_shapes(path, arrays: dict[str, np.ndarray], rows: PreparedRows, remedy: str,
                 logits_key: str = "logits") -> None:
    """Logits (N, C) and every other array (N,)."""
    logits = arrays[logits_key]
    want = (rows.n, rows.n_classes)
    if logits.shape != want:
        raise ArtifactError(
            f"{path}: {logits_key} have shape {logits.shape}; expected ({rows.n:,}, {rows.n_classes}): one row per "
            f"example of {rows.source} and one column per class of data_card.json; the file belongs to another "
            f"data version or another task: {remedy}")
    for key, value in arrays.items():
        if key != logits_key and value.shape != (rows.n,):
            raise ArtifactError(f"{path}: {key} have shape {value.shape}; expected ({rows.n},), one per row of "
                                f"{rows.source}: {remedy}")


def check_finite(path, values: np.ndarray, key: str, remedy: str) -> None:
    """Every value finite (NaN and inf refused), in the array's own dtype."""
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
        raise ArtifactError(f"{path}: {key} contain NaN or inf in {rows.size} rows (first: row {rows[0]}); "
                            f"expected finite numbers; {remedy}")


def as_float16(path, values: np.ndarray, remedy: str, key: str = "logits") -> np.ndarray:
    """``values`` cast to float16 (kdlab's storage type), refused when the cast would create inf."""
    check_finite(path, values, key, remedy)
    with np.errstate(over="ignore"):  # an overflow is refused below, with the file's name, not warned about
        cast = np.asarray(values).astype(np.float16)
    over = ~np.isfinite(cast)
    if over.any():
        rows = np.flatnonzero(over.reshape(len(cast), -1).any(axis=1))
        largest = float(np.abs(np.asarray(values, dtype=np.float64)).max())
        raise ArtifactError(
            f"{path}: {key} exceed the float16 range in {rows.size} rows (first: row {rows[0]}; largest |value| "
            f"{largest:.4g}, float16 holds up to {FLOAT16_MAX:,.0f}); kdlab stores logits as float16 and would "
            f"write inf; {remedy}")
    return cast


NOUNS = {"row_id": "row ids (row_id)"}  # how a message names an array, when its key is not a plural noun


def check_column(path, key: str, stored: np.ndarray, expected: np.ndarray, source: str, remedy: str) -> None:
    """A 1-D array equal to the prepared one row by row."""
    mismatch = np.flatnonzero(stored.astype(np.int64) != expected.astype(np.int64))
    if mismatch.size:
        i = int(mismatch[0])
        raise ArtifactError(
            f"{path}: {NOUNS.get(key, key)} differ from the prepared data in {mismatch.size:,} of {len(expected):,} "
            f"rows (first: row {i}, expected {int(expected[i])} as in {source}, found {int(stored[i])}); the rows are "
            f"misaligned or from another split: {remedy}")


def tier_codes(path, values: np.ndarray, remedy: str, key: str = "tiers") -> np.ndarray:
    """Tiers stored as names (head/mid/tail, any case) or codes 0-2 -> int8 codes."""
    if values.dtype.kind in "US":
        names = np.char.lower(values.astype(str))
        unknown = sorted(set(names.tolist()) - set(TIERS))
        if unknown:
            raise ArtifactError(f"{path}: {key} holds unknown tier names {unknown[:5]}; expected {list(TIERS)}: "
                                f"{remedy}")
        return np.array([TIERS.index(n) for n in names], dtype=np.int8)
    if values.dtype.kind in "iu":
        if values.size and (values.min() < 0 or values.max() >= len(TIERS)):
            raise ArtifactError(f"{path}: {key}: tier codes must be 0..{len(TIERS) - 1} ({', '.join(TIERS)}), found "
                                f"{values.min()}..{values.max()}: {remedy}")
        return values.astype(np.int8)
    raise ArtifactError(f"{path}: {key} have dtype {values.dtype}; expected names or integer codes: {remedy}")


def check_preds(path, preds: np.ndarray, logits: np.ndarray, remedy: str) -> None:
    """Each stored prediction is a class id that reaches its row's maximum logit (ties allowed)."""
    n, c = logits.shape
    if preds.size and (preds.min() < 0 or preds.max() >= c):
        raise ArtifactError(f"{path}: preds must be class ids in 0..{c - 1}, found {preds.min()}..{preds.max()}; "
                            f"{remedy}")
    chosen = logits[np.arange(n), preds]
    off = np.flatnonzero(chosen < logits.max(axis=1))
    if off.size:
        raise ArtifactError(
            f"{path}: {off.size} stored preds are not an argmax of the stored logits (first row {off[0]}); "
            f"the file is inconsistent: {remedy}")


# --------------------------------------------------------------------------- #
# A whole file
# --------------------------------------------------------------------------- #
def check_arrays(path: str | Path, arrays: dict[str, np.ndarray], rows: PreparedRows, remedy: str, *,
                 tiers_key: Optional[str] = None, row_id: bool = False, preds: bool = False) -> dict[str, np.ndarray]:
    """Check one file's arrays (dtype kinds already checked by :func:`kdlab.io.load_npz`) against ``rows``.

    ``arrays`` holds ``logits`` and ``labels``; ``tiers_key`` names its tier array (names or codes)
    when ``rows`` has tiers to compare with; ``row_id`` / ``preds``: the file stores those too.
    Returns ``logits`` (N, C) float16, ``labels`` int64, and ``tiers`` int8 / ``row_id`` int64 /
    ``preds`` int64 when asked for."""
    keys = ["logits", "labels"] + ([tiers_key] if tiers_key else []) + (["row_id"] if row_id else []) \
        + (["preds"] if preds else [])
    check_shapes(path, {k: arrays[k] for k in keys}, rows, remedy)
    out = {"logits": as_float16(path, arrays["logits"], remedy), "labels": arrays["labels"].astype(np.int64)}
    if row_id:
        out["row_id"] = arrays["row_id"].astype(np.int64)
        check_column(path, "row_id", out["row_id"], rows.row_id, rows.source, remedy)
    check_column(path, "labels", out["labels"], rows.labels, rows.source, remedy)
    if tiers_key:
        out["tiers"] = tier_codes(path, arrays[tiers_key], remedy, tiers_key)
        check_column(path, tiers_key, out["tiers"], rows.tiers, rows.source, remedy)
    if preds:
        out["preds"] = arrays["preds"].astype(np.int64)
        check_preds(path, out["preds"], out["logits"], remedy)
    return out


# --------------------------------------------------------------------------- #
# Values that need the data to be checked
# --------------------------------------------------------------------------- #
def calibration_fold(evaluation: EvaluationConfig, n: int,
                     source: str = "params.yaml") -> tuple[np.ndarray, np.ndarray]:
    """The study's (calibration, evaluation) halves of ``n`` val rows (:func:`kdlab.calibration.calibration_fold`
    with ``evaluation.calibration_fold_seed`` and ``_size``); a size that leaves a half empty is refused here,
    where the val size is known, naming the param."""
    size = evaluation.calibration_fold_size
    if n < 2:
        raise ParamsError(f"the prepared val split has {n} rows; the calibration and evaluation halves need at "
                          "least 2: prepare more data")
    if size is not None and not 1 <= size <= n - 1:
        raise ParamsError(f"{source}: evaluation.calibration_fold_size: expected 1..{n - 1:,} (the prepared val split "
                          f"has {n:,} rows and both halves need one; null takes half), found {size:,}")
    return calibration.calibration_fold(n, evaluation.calibration_fold_seed, size)
