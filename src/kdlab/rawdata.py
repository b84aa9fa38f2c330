"""Reading the raw inputs of `prepare`: data files (parquet or CSV) and the course's JSON files.

Every reader names the param and the file it read, says what it expected and what it found, and
what to do, in one :class:`~kdlab.data.DataError`: a text file named .parquet, a CSV that is not
UTF-8 or is empty, a missing column, a label column of numbers, a text column without a single
text, a course file that is not the JSON its role needs. Nothing here writes anything.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdlab.data import DataError, is_empty_text

PARQUET = (".parquet", ".pq")
DELIMITED = {".csv": ",", ".tsv": "\t"}
PARQUET_MAGIC = b"PAR1"  # a parquet file starts and ends with these four bytes


def _head(raw: bytes, n: int = 24) -> str:
    return repr(raw[:n])


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    with open(path, "rb") as handle:
        start = handle.read(4)
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(size - 4, 0))
        end = handle.read(4)
    if start != PARQUET_MAGIC or end != PARQUET_MAGIC:
        with open(path, "rb") as handle:
            head = handle.read(24)
        found = "an empty file" if size == 0 else f"bytes starting {_head(head)}"
        raise DataError(f"{what}: {path} is named {path.suffix} but is not a Parquet file (expected the "
                        f"'PAR1' signature, found {found}); export it again as Parquet, or save it as .csv "
                        f"and point {what} at that file")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several error types for damaged files
        raise DataError(f"{what}: {path} could not be read as Parquet ({type(exc).__name__}: {exc}); "
                        "the file is damaged: export it again") from None


def _read_delimited(path: Path, what: str, sep: str) -> pd.DataFrame:
    raw = path.read_bytes()
    kind = "TSV" if sep == "\t" else "CSV"
    if not raw.strip():
        raise DataError(f"{what}: {path} is empty; expected a {kind} file with a header line naming the "
                        "columns and one row per complaint")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{what}: {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}, "
                        f"line {line}); expected UTF-8: save it as 'CSV UTF-8' or convert it, e.g. "
                        f"`iconv -f cp1252 -t utf-8 {path.name} > fixed{path.suffix}`") from None
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig")  # -sig: Excel's byte-order mark is not a name
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split())  # pandas' message spans lines: the error is one line
        raise DataError(f"{what}: {path} is not a well-formed {kind} file ({detail}); expected the same number "
                        "of fields on every line: quote texts that hold the separator or line breaks") from None
    if frame.empty:
        raise DataError(f"{what}: {path} has a header line ({', '.join(map(str, frame.columns))}) but no rows; "
                        "expected one row per complaint")
    return frame


def read_table(path: str | Path, what: str = "data file") -> pd.DataFrame:
    """The rows of a parquet, CSV or TSV file (by its suffix); ``what`` names the param it came from."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET:
        return _read_parquet(path, what)
    if suffix in DELIMITED:
        return _read_delimited(path, what, DELIMITED[suffix])
    raise DataError(f"{what}: {path}: unsupported file type {path.suffix or '(no suffix)'!r}; expected .parquet, "
                    ".csv or .tsv (rename the file if it is one of those)")


def check_columns(frame: pd.DataFrame, what: str, path: str | Path, text_column: str, label_column: str) -> None:
    """Refuse a raw frame whose text or label column is missing, holds numbers, or holds nothing."""
    found = [str(c) for c in frame.columns]
    for column, key, role in ((text_column, "data.text_column", "the complaint text"),
                              (label_column, "data.label_column", "the label")):
        if column not in frame.columns:
            raise DataError(f"{what}: {path} has no column {column!r} ({key}); found columns {found}. "
                            f"Set -S {key}='<name>' to the column that holds {role}")
    labels, texts = frame[label_column], frame[text_column]
    if labels.isna().all():
        raise DataError(f"{what}: {path}: the label column {label_column!r} is empty in all {len(frame):,} rows; "
                        "expected a label name per row")
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        shown = ", ".join(str(v) for v in pd.unique(labels.dropna())[:5])
        raise DataError(f"{what}: {path}: the label column {label_column!r} holds numbers (e.g. {shown}); "
                        "expected label names as in the label list (data.course_files.label_list). Replace each "
                        "id by its name, or point data.label_column at the column of names")
    if pd.api.types.is_numeric_dtype(texts) and not texts.isna().all():
        raise DataError(f"{what}: {path}: the text column {text_column!r} holds numbers, not complaint texts; "
                        "check data.text_column and data.label_column (swapped?)")
    if is_empty_text(texts).all():
        raise DataError(f"{what}: {path}: the text column {text_column!r} is empty in all {len(frame):,} rows; "
                        "expected the complaint narratives (is data.text_column the right column?)")


# --------------------------------------------------------------------------- #
# Course files (JSON)
# --------------------------------------------------------------------------- #
