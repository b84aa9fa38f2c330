"""The published numbers against this run: reports/tables/published_check.tex.

``published_numbers.json`` (next to this module, a dependency of the report
stage) lists each number of docs/study.md §7 with the pipeline output it is
compared with: a file under the repository root and a path into its JSON.
A path step is a key, a list position, or a ``{key: value}`` filter that picks
the one record of a list whose fields equal those values (numbers compared
with a relative tolerance of 1e-9); ``{baseline}`` and ``{headline}`` inside a
path stand for params.yaml's ``baseline_arm`` and ``headline_arm``.

A value *matches* when, scaled by the row's ``scale`` (e.g. 100 for a share
published in %), it is within half a unit of the published value's last
decimal. In audit mode this is the reproduction check of issue 4 ("to four
decimals"); in the demo it shows the code path on synthetic data, where
nothing is expected to match.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from kdlab import io
from kdlab.errors import KdlabError
from kdlab.report import latex

REFERENCE = Path(__file__).with_name("published_numbers.json")
ROWS_PER_FLOAT = 14  # rows of the published-numbers table per float (a page holds about 16)


class ReferenceError(KdlabError):
    """published_numbers.json names a value that the pipeline's outputs do not hold."""


def load_reference(path: Path = REFERENCE) -> list[dict]:
    """The rows of ``published_numbers.json``."""
    return json.loads(path.read_text(encoding="utf-8"))["rows"]


def _fill(value: Any, roles: dict[str, str]) -> Any:
    return value.format(**roles) if isinstance(value, str) else value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def locate(document: Any, path: Sequence, roles: dict[str, str], where: str = "") -> Any:
    """The value at ``path`` in a JSON document (see the module docstring for the steps).

    Raises ReferenceError naming ``where`` and the step that fails (a missing key, no
    record or several records matching a filter).
    """
    node = document
    for step in path:
        if isinstance(step, dict):
            wanted = {k: _fill(v, roles) for k, v in step.items()}
            hits = [r for r in node if isinstance(r, dict) and all(_equal(r.get(k), v) for k, v in wanted.items())]
            if len(hits) != 1:
                raise ReferenceError(f"{where}: {len(hits)} records match {wanted}, expected exactly one")
            node = hits[0]
        elif isinstance(step, int):
            node = node[step]
        else:
            key = _fill(step, roles)
            if not isinstance(node, dict) or key not in node:
                raise ReferenceError(f"{where}: no key {key!r}")
            node = node[key]
    return node


def matches(value: float, published: float, decimals: int, scale: float = 1.0) -> bool:
    """Whether ``value * scale`` is within half a unit of the last published decimal."""
    return abs(value * scale - published) <= 0.5 * 10.0 ** -decimals + 1e-12


def check(rows: list[dict], read: Callable[[str], Optional[dict]], roles: dict[str, str]) -> list[dict]:
    """One record per reference row: quantity, published, this run (None where unavailable),
    match (True/False, None when there is nothing to compare) and where the value came from.

    ``read(file)`` returns the parsed JSON output (None when the file does not exist). A value
    that is missing is reported in the record's ``why``, never guessed: its arm is not available
    (audit: not published), it is null (e.g. a share with no KD gain), or the path does not
    resolve (e.g. params.yaml without that arm; the demo run in tests/test_e2e.py resolves every
    row, so the reference paths themselves are checked).
    """
    out = []
    for row in rows:
        scale = float(row.get("scale", 1.0))
        rec = {"quantity": row["quantity"], "published": row["published"], "decimals": int(row["decimals"]),
               "approx": bool(row.get("approx", False)), "value": None, "match": None, "scale": scale}
        if row.get("file") is None:
            rec["source"] = row.get("why_not", "not computed")
            out.append(rec)
            continue
        path = [_fill(s, roles) if not isinstance(s, dict) else {k: _fill(v, roles) for k, v in s.items()}
                for s in row["path"]]
        rec["source"] = f"{row['file']}: " + ".".join(  # spaces inside filters: the column can break there
            "[" + ", ".join(f"{k}={v}" for k, v in s.items()) + "]" if isinstance(s, dict) else str(s) for s in path)
        document = read(row["file"])
        if document is None:
            rec["why"] = f"{row['file']} not found"
            out.append(rec)
            continue
        try:
            value = locate(document, path, roles, row["file"])
        except ReferenceError as exc:  # e.g. params.yaml without the arm a published number is about
            rec["why"] = unavailable_reason(document, path) or f"not in this run's outputs ({exc})"
            out.append(rec)
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            rec["value"] = float(value)
            rec["match"] = matches(float(value), float(row["published"]), rec["decimals"], scale)
        else:
            rec["why"] = "not computed in this run"
        out.append(rec)
    return out


def unavailable_reason(document: Any, path: list) -> Optional[str]:
    """Why a path that does not resolve names no value, when the cause is an unavailable arm:
    an arm named in the path is listed in the document's ``unavailable`` mapping (analyses), or
    the path runs into a record marked ``available: false`` (evaluate, calibrate, the sweep)."""
    unavailable = document.get("unavailable", {}) if isinstance(document, dict) else {}
    named = [v for s in path for v in (s.values() if isinstance(s, dict) else [s]) if isinstance(v, str)]
    for name in named:
        if name in unavailable:
            return f"{name}: {unavailable[name]}"
    node = document
    for step in path:
        if isinstance(node, dict) and node.get("available") is False:
            return node.get("reason", "not available")
        if isinstance(step, dict):
            hits = [r for r in node if isinstance(r, dict) and all(_equal(r.get(k), v) for k, v in step.items())] \
                if isinstance(node, list) else []
            node = hits[0] if len(hits) == 1 else None
        elif isinstance(node, (dict, list)):
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return None
        else:
            return None
    return node.get("reason", "not available") if isinstance(node, dict) and node.get("available") is False else None


def summary(records: list[dict]) -> dict[str, int]:
    """Counts for numbers.tex: compared (a value in this run) and matched."""
    compared = [r for r in records if r["match"] is not None]
    return {"PublishedCompared": len(compared), "PublishedMatched": sum(bool(r["match"]) for r in compared),
            "PublishedListed": len(records)}


def _shown(value: Optional[float], decimals: int, scale: float, approx: bool = False) -> str:
    if value is None:
        return latex.MISSING
    text = latex.fixed(value * scale, decimals)
    return (r"$\approx$\," if approx else "") + text


def write_table(path: Path, records: list[dict], caption_tex: str) -> str:
    """A booktabs table: quantity | published | this run | match | from (the output and path); the text
    columns are ragged-right paragraphs (needs the array package). Also as .csv and .md next to it."""
    rows = []
    for r in records:
        verdict = {True: "yes", False: "no", None: "--"}[r["match"]]
        rows.append({
            "Quantity": latex.escape_latex(r["quantity"]),
            "Published": _shown(r["published"], r["decimals"], 1.0, r["approx"]),
            "This run": _shown(r["value"], r["decimals"], r["scale"]),
            "Match": verdict,
            "From": r"{\scriptsize\ttfamily " + latex.escape_latex(r.get("why") or r["source"]) + "}",
        })
    frame = pd.DataFrame(rows)
    ragged = r">{\raggedright\arraybackslash}"
    parts = []  # at most ROWS_PER_FLOAT rows per float: one float taller than a page cannot be placed
    for i, start in enumerate(range(0, len(frame), ROWS_PER_FLOAT)):
        part = frame.iloc[start:start + ROWS_PER_FLOAT]
        tex = part.style.hide(axis="index").to_latex(
            hrules=True, caption=caption_tex if i == 0 else "The published numbers against this run (continued).",
            label="tab:published_check" if i == 0 else f"tab:published_check_{i + 1}", position="htbp",
            position_float="centering",
            column_format=f"{ragged}p{{0.31\\linewidth}}rrc{ragged}p{{0.40\\linewidth}}")
        parts.append(tex.replace("\\centering\n", "\\centering\n\\scriptsize\n\\setlength{\\tabcolsep}{4pt}\n", 1))
    tex = "".join(parts)
    if not latex.braces_balanced(tex):
        raise ValueError("published_check: unbalanced braces in the rendered LaTeX")
    io.write_text(path, tex)
    _write_exports(path, records, frame, caption_tex)
    return tex


def _write_exports(path: Path, records: list[dict], frame: pd.DataFrame, caption_tex: str) -> None:
    """published_check.csv (the numbers and where each comes from) and .md (as displayed)."""
    from kdlab.report import export

    table = pd.DataFrame({"quantity": [r["quantity"] for r in records],
                          "published": [r["published"] for r in records],
                          "this_run": [None if r["value"] is None else r["value"] * r["scale"] for r in records],
                          "match": [{True: "yes", False: "no", None: ""}[r["match"]] for r in records],
                          "from": [r.get("why") or r["source"] for r in records]})
    with io.atomic_path(path.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    rows = [[export.plain(c) for c in row] for row in frame.astype(str).itertuples(index=False)]
    io.write_text(path.with_suffix(".md"), export.markdown([str(c) for c in frame.columns], rows,
                                                           export.plain(caption_tex, bold="")))
