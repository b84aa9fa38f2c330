"""Every LaTeX table also as CSV (the numbers) and Markdown (as displayed), for slides and the terminal.

``write_exports(path, values, **table_options)`` writes ``<stem>.csv`` and ``<stem>.md`` next to
``<stem>.tex`` from the same frames and options as :func:`kdlab.report.latex.render_table`:

* CSV: one row per table row, a ``row`` column with the label, then per column its value and,
  when the table has intervals, ``<column> low`` / ``<column> high``; ``note`` holds the reason
  of an unavailable row. Floats with 6 significant digits.
* Markdown: the cells as the PDF shows them (``0.263 [0.251, 0.275]``, best values in bold),
  padded so the table reads in a terminal, then the caption as plain text.

:func:`plain` turns the LaTeX these tables use (cells, headers, captions) into plain text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Hashable, Mapping, Optional

import pandas as pd

from kdlab import io
from kdlab.report import latex

_SYMBOLS = {r"\leq": "≤", r"\geq": "≥", r"\|": "‖", r"\times": "×", r"\alpha": "α", r"\rho": "ρ",
            r"\sigma": "σ", r"\Delta": "Δ", r"\dagger": "†", r"\pm": "±", r"\approx": "≈"}
_ESCAPED = {r"\%": "%", r"\&": "&", r"\_": "_", r"\#": "#", r"\$": "$", r"\{": "{", r"\}": "}",
            r"\textbackslash{}": "\\", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^"}


def plain(tex: str, bold: str = "**") -> str:
    """LaTeX text of a cell, header or caption -> plain text (``bold`` marks ``\\textbf``)."""
    text = str(tex)
    text = re.sub(r"\\begin\{tabular\}\[t\]\{@\{\}r@\{\}\}(.*?)\\\\\{\\scriptsize (.*?)\}\\end\{tabular\}",
                  r"\1 \2", text)
    text = text.replace(latex.MINUS, "-").replace("{,}", ",").replace(r"\,", " ").replace(r"\ ", " ")
    text = text.replace("---", "—").replace("--", "–") if text != latex.MISSING else text
    for pattern, repl in ((r"\\textbf\{((?:[^{}]|\{[^{}]*\})*)\}", bold + r"\1" + bold),
                          (r"\\emph\{((?:[^{}]|\{[^{}]*\})*)\}", r"\1"),
                          (r"\\texttt\{((?:[^{}]|\{[^{}]*\})*)\}", r"\1")):
        text = re.sub(pattern, repl, text)
    for key, value in _ESCAPED.items():
        text = text.replace(key, value)
    for key, value in _SYMBOLS.items():
        text = re.sub(re.escape(key) + r"(?![A-Za-z])", value, text)
    text = re.sub(r"(?<!\\)\$", "", text)          # math shifts
    text = re.sub(r"\\[A-Za-z]+\*?", "", text)       # any other command (\scriptsize, \ttfamily)
    text = re.sub(r"(?<!\\)[{}]", "", text).replace("^", "")
    return re.sub(r"\s+", " ", text).strip()


def _flat(column: Hashable) -> str:
    return " ".join(str(c) for c in column) if isinstance(column, tuple) else str(column)


def csv_frame(values: pd.DataFrame, low: Optional[pd.DataFrame] = None, high: Optional[pd.DataFrame] = None,
              unavailable: Optional[Mapping[Hashable, str]] = None) -> pd.DataFrame:
    """The CSV's frame: ``row``, each column (with ``low``/``high`` columns when given) and ``note``."""
    out = pd.DataFrame({"row": [str(r) for r in values.index]})
    for col in values.columns:
        name = _flat(col)
        out[name] = values[col].to_numpy(dtype=float)
        for suffix, frame in (("low", low), ("high", high)):
            if frame is not None and frame[col].notna().any():
                out[f"{name} {suffix}"] = frame[col].to_numpy(dtype=float)
    out["note"] = [(unavailable or {}).get(r, "") for r in values.index]
    return out


def markdown(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    """A padded pipe table (first column left-aligned, the others right-aligned), then ``caption``."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    text = "\n".join([line(header), rule] + [line(r) for r in rows])
    return text + (f"\n\n{caption}\n" if caption else "\n")


def markdown_table(values: pd.DataFrame, *, caption_tex: str = "", headers: Mapping[str, str] = latex.METRIC_LABELS,
                   unavailable: Optional[Mapping[Hashable, str]] = None,
                   groups: Optional[Mapping[Hashable, str]] = None, **options) -> str:
    """The table as displayed (same options as render_table) in Markdown."""
    unavailable = {r: why for r, why in (unavailable or {}).items() if r in values.index}
    text, flagged = latex.table_cells(values, unavailable=unavailable, **{
        k: v for k, v in options.items() if k in ("decimals", "low", "high", "best_among", "directions", "signed",
                                                  "row_decimals", "row_signed")})
    head = [""] + [plain(" ".join(headers.get(str(p), latex.escape_latex(str(p))) for p in
                                  (c if isinstance(c, tuple) else (c,)))) for c in values.columns]
    rows = []
    for r in values.index:
        if groups and r in groups:
            rows.append([f"*{groups[r]}*"] + [""] * len(values.columns))
        cells = [f"*{unavailable[r]}*"] + [""] * (len(values.columns) - 1) if r in unavailable else \
            [plain(text.at[r, c]) for c in values.columns]
        rows.append([str(r)] + cells)
    note = plain(caption_tex, bold="")
    if flagged:
        note += " " + latex.outside_note(flagged)
    return markdown(head, rows, note)


def write_exports(path: Path, values: pd.DataFrame, **options) -> None:
    """``path`` with .csv and .md suffixes (see the module docstring); ``options`` as for render_table."""
    frame = csv_frame(values, options.get("low"), options.get("high"), options.get("unavailable"))
    with io.atomic_path(path.with_suffix(".csv")) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    keep = {k: v for k, v in options.items() if k not in ("label", "resize", "size", "position", "stack", "compact")}
    io.write_text(path.with_suffix(".md"), markdown_table(values, **keep))
