"""The data the run used, as two tables: what prepare read and dropped, and what the splits hold.

Reads ``data/prepared/data_report.json`` (stage `prepare`, :mod:`kdlab.data_report`) and, when the
students' tokenizer exists, ``data/tokenizer/lengths.json`` (stage `tokenizer`). Writes
``reports/tables/data_inputs.{tex,csv,md}`` (rows read, dropped for a label outside the label list,
with an empty text, kept; the most frequent unknown labels in the caption) and
``reports/tables/data_splits.{tex,csv,md}`` (rows, classes present, duplicate texts, token lengths and
the share truncated at data.max_length; classes without a train or val row named in the caption).
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

import pandas as pd

from kdlab import io
from kdlab.paths import Layout
from kdlab.report import latex

TABLES = ("data_inputs", "data_splits")
NAMED = 8  # labels named in a caption; the JSON has them all
HEADERS = {"rows": "Rows read", "unknown": "Unknown label", "empty": "Empty text", "kept": "Kept",
           "split_rows": "Rows", "classes": "Classes", "duplicates": "Duplicate texts",
           "truncated": r"Truncated (\%)", "p50": "Tokens p50", "p95": "p95", "max": "max"}


def _names(names, n: int = NAMED) -> str:
    shown = "; ".join(str(x) for x in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def inputs_frame(report: Mapping) -> pd.DataFrame:
    """Rows = the raw inputs (train, val, test, or train+val without index files); counts as floats."""
    rows = {key: {"rows": a["rows"], "unknown": a["dropped_unknown_label"], "empty": a["empty_text"], "kept": a["kept"]}
            for key, a in report["inputs"].items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["rows", "unknown", "empty", "kept"]).astype(float)


def splits_frame(report: Mapping, lengths: Optional[Mapping]) -> pd.DataFrame:
    """Rows = train, val, test; token columns NaN (shown --) when nothing was tokenized."""
    rows = {}
    for name, s in report["splits"].items():
        tokens = (lengths or {}).get(name) or {}
        share = tokens.get("share_truncated")
        rows[name] = {"split_rows": s["rows"], "classes": s["classes_present"], "duplicates": s["duplicate_texts"],
                      "truncated": math.nan if share is None else 100 * share,
                      **{k: math.nan if tokens.get(k) is None else tokens[k] for k in ("p50", "p95", "max")}}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(rows["train"])).astype(float)


def inputs_notes(report: Mapping) -> list[str]:
    s = report["settings"]
    notes = [f"{key}: {a['source']}." for key, a in report["inputs"].items()]
    for key, a in report["inputs"].items():
        if a["unknown_labels"]:
            top = "; ".join(f"{u['label']} ({u['rows']:,})" for u in a["unknown_labels"][:NAMED])
            notes.append(f"Most frequent labels not in the label list ({key}): {top}.")
    notes.append("Rows with an empty text are " + ("dropped" if s["drop_empty_text"] else "kept (data.drop_empty_text "
                 "is false: the canonical splits keep every row)") + f"; prepare refuses an input that loses more "
                 f"than {s['max_dropped_fraction']:.0%} of its rows (data.max_dropped_fraction). A row is counted "
                 "under its first reason: unknown label, then empty text.")
    return notes


def splits_notes(report: Mapping, lengths: Optional[Mapping]) -> list[str]:
    n = report["n_classes"]
    notes = [f"Classes: label-list classes with at least one row in the split (of {n})."]
    for split, names in report["absent_classes"].items():
        if names:
            notes.append(f"No {split} row for {len(names)} of the {n} classes ({_names(names)}).")
    notes.append(f"Duplicate texts: rows whose text repeats an earlier row of the split; val rows whose text also "
                 f"occurs in the training data (train + test): {report['val_texts_in_training_data']:,}.")
    if lengths:
        max_length = next(iter(lengths.values()))["max_length"]
        notes.append(f"Tokens: the students' tokenizer, special tokens included; truncated: longer than "
                     f"data.max_length = {max_length} tokens, the part the students never see.")
    else:
        notes.append("Token lengths: not computed (nothing is tokenized when no stage trains).")
    return notes


def write_data_tables(layout: Layout, out) -> None:
    """reports/tables/data_inputs and data_splits (with .csv and .md) from the data and length reports."""
    report = io.read_json(layout.data_report)
    lengths = io.read_json(layout.token_lengths) if layout.token_lengths.is_file() else None
    read = sum(a["rows"] for a in report["inputs"].values())
    latex.write_table(out.tables / "data_inputs.tex", inputs_frame(report), label="tab:data_inputs", decimals=0,
                      headers=HEADERS, directions={}, size=r"\footnotesize",
                      caption_tex=latex.caption("What prepare read and dropped, per raw input", n=read,
                                                fold="before filtering", source=out.source, demo_note=out.profile_note,
                                                notes=inputs_notes(report)))
    splits = report["splits"]
    latex.write_table(out.tables / "data_splits.tex", splits_frame(report, lengths), label="tab:data_splits",
                      decimals={k: 1 if k == "truncated" else 0 for k in HEADERS}, headers=HEADERS, directions={},
                      size=r"\footnotesize",
                      caption_tex=latex.caption("The canonical splits: rows, classes, duplicates and token lengths",
                                                n=sum(s["rows"] for s in splits.values()), fold="after filtering",
                                                source=out.source, demo_note=out.profile_note,
                                                notes=splits_notes(report, lengths)))
