"""What `prepare` and `tokenizer` say about the data: the data report and the token-length report.

``data/prepared/data_report.json`` (:func:`data_report`, written by `prepare`): per raw input the rows
read, dropped for a label outside the label list (with the most frequent such labels) and with an
empty text (dropped, or kept and counted for the Hub data); per split the rows, duplicate texts and
per-class counts; the label-list classes with no row in train and in val; val texts that also occur
in the training data (train + test).

``data/tokenizer/lengths.json`` (:func:`length_summary` per split, written by `tokenizer`): token
counts of every text as the students' tokenizer encodes it (special tokens included, no truncation),
their percentiles and the share longer than ``data.max_length`` (those the students see truncated).

Everything here is a pure function of its inputs; no host path enters a report.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kdlab.data import SPLITS, Account

PERCENTILES = (50, 90, 95, 99)
TOP_UNKNOWN = 10    # unknown labels listed per input
NAMED_ABSENT = 10   # absent classes named in a warning (all of them are in the report)


def duplicate_texts(texts: pd.Series) -> int:
    """Rows whose (non-empty) text equals an earlier row's text."""
    texts = texts[texts.str.strip().ne("")]
    return int(texts.duplicated().sum())


def conflicting_texts(frame: pd.DataFrame) -> int:
    """Distinct non-empty texts that occur with more than one label."""
    frame = frame[frame["text"].str.strip().ne("")]
    return int((frame.groupby("text")["label"].nunique() > 1).sum())


def class_counts(splits: Mapping[str, pd.DataFrame], n_classes: int) -> dict[str, list[int]]:
    """split -> (C,) rows per class id."""
    return {name: np.bincount(splits[name]["label"].to_numpy(np.int64), minlength=n_classes).tolist()
            for name in SPLITS}


def absent_classes(counts: Mapping[str, Sequence[int]], label_list: Sequence[str]) -> dict[str, list[str]]:
    """train / val -> the label-list names with no row there, in label-id order."""
    return {name: [label_list[i] for i, n in enumerate(counts[name]) if n == 0] for name in ("train", "val")}


def data_report(splits: Mapping[str, pd.DataFrame], accounts: Mapping[str, Account], label_list: Sequence[str],
                sources: Mapping[str, str], settings: Mapping) -> dict:
    """The JSON data report (see the module docstring); ``sources``: account key -> the param it was read
    from, ``settings``: the data params that shaped it (drop_empty_text, max_dropped_fraction, ...)."""
    counts = class_counts(splits, len(label_list))
    training = set(splits["train"]["text"]) | set(splits["test"]["text"])
    val_texts = splits["val"]["text"]
    return {
        "settings": dict(settings),
        "inputs": {key: {"source": sources.get(key, key), **acc.as_dict(TOP_UNKNOWN)} for key, acc in accounts.items()},
        "splits": {name: {"rows": int(len(splits[name])), "classes_present": int(np.count_nonzero(counts[name])),
                          "duplicate_texts": duplicate_texts(splits[name]["text"]),
                          "texts_with_several_labels": conflicting_texts(splits[name])} for name in SPLITS},
        "val_texts_in_training_data": int(val_texts[val_texts.str.strip().ne("")].isin(training).sum()),
        "n_classes": len(label_list),
        "class_counts": {"labels": list(label_list), **counts},
        "absent_classes": absent_classes(counts, label_list),
    }


def warnings(report: Mapping) -> list[str]:
    """The lines `prepare` prints as ``kdlab: warning:``: label-list classes without training rows
    (named), classes absent from val, empty texts kept, val texts that the students train on."""
    out = []
    absent, n = report["absent_classes"], report["n_classes"]
    for split, effect in (("train", "the students never see them, so they can never be predicted correctly"),
                          ("val", "they cannot be evaluated; the tier tables report macro F1 over all of a tier's "
                                  "classes and over the classes present")):
        names = absent[split]
        if names:
            shown = ", ".join(repr(x) for x in names[:NAMED_ABSENT])
            more = f" and {len(names) - NAMED_ABSENT} more" if len(names) > NAMED_ABSENT else ""
            out.append(f"{len(names)} of the label list's {n} classes have no {split} row ({shown}{more}): "
                       f"{effect} (all are listed in data/prepared/data_report.json)")
    kept = sum(acc["empty_text"] for acc in report["inputs"].values() if not acc["empty_text_dropped"])
    if kept:
        out.append(f"{kept:,} rows with an empty text are kept (data.drop_empty_text is false)")
    leak = report["val_texts_in_training_data"]
    if leak:
        out.append(f"{leak:,} val rows have a text that also occurs in the training data (train + test); "
                   "their scores are optimistic")
    return out


# --------------------------------------------------------------------------- #
# Token lengths (the tokenizer stage)
# --------------------------------------------------------------------------- #
def length_summary(lengths: Sequence[int], max_length: int) -> dict:
    """Token counts (N,) of one split -> {n, max_length, truncated, share_truncated, mean, p50, p90, p95, p99,
    max}; a text is truncated when it has more than ``max_length`` tokens. Percentiles by numpy's default
    (linear) method; None for an empty split."""
    x = np.asarray(lengths, dtype=np.int64)
    out = {"n": int(x.size), "max_length": int(max_length), "truncated": int((x > max_length).sum())}
    if x.size == 0:
        return {**out, "share_truncated": None, "mean": None, **{f"p{q}": None for q in PERCENTILES}, "max": None}
    return {**out, "share_truncated": float(out["truncated"] / x.size), "mean": float(x.mean()),
            **{f"p{q}": float(np.percentile(x, q)) for q in PERCENTILES}, "max": int(x.max())}


def token_lengths(tokenizer, texts: Sequence[str], batch_size: int = 1024) -> np.ndarray:
    """(N,) tokens per text as the students encode it (special tokens included), without truncation."""
    out = []
    for start in range(0, len(texts), batch_size):
        ids = tokenizer(list(texts[start:start + batch_size]), truncation=False, add_special_tokens=True,
                        verbose=False)["input_ids"]
        out.extend(len(x) for x in ids)
    return np.asarray(out, dtype=np.int64)
