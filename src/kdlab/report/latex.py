"""Booktabs tables and ``\\newcommand`` macros from the pipeline's numbers.

Tables are rendered by pandas ``Styler.to_latex(hrules=True)`` (booktabs rules);
row labels and plain-text headers are escaped by :func:`escape_latex` (which also
sets ``< > |`` in math mode). Data cells are built here from numbers only (fixed
decimals, optional confidence interval ``0.263 [0.251, 0.275]``, stacked on two
lines for narrow columns), so they need no escaping. The output needs only
``\\usepackage{booktabs}`` in the including document. :func:`write_table` also
writes the table as CSV and Markdown (:mod:`kdlab.report.export`).

Every file is written atomically (:func:`kdlab.io.write_text`).
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Callable, Hashable, Mapping, Optional, Sequence

import pandas as pd

from kdlab import io

# Direction of "better" per metric key (the keys of kdlab.metrics.summarize);
# a key missing here is never marked bold.
DIRECTIONS = {
    "accuracy": "higher", "macro_f1": "higher",
    "ece": "lower", "adaptive_ece": "lower", "mce": "lower", "smooth_ece": "lower",
    "nll": "lower", "brier": "lower",
}
# Column headers for metric keys; other keys are shown as they are.
METRIC_LABELS = {
    "accuracy": "Accuracy", "macro_f1": "Macro F1", "ece": "ECE", "adaptive_ece": "ACE",
    "mce": "MCE", "smooth_ece": "smECE", "nll": "NLL", "brier": "Brier", "temperature": "$T$",
    "mean_confidence": "Mean conf.", "mean_entropy": "Mean entropy",
}
MINUS = r"\ensuremath{-}"  # a true minus sign, valid in text and math mode
DAGGER = r"$^\dagger$"   # marks an interval that excludes its own estimate
OUTSIDE_NOTES = {
    "lead": "\u2020 The interval excludes its own full-sample estimate: the bootstrap distribution of this "
            "statistic is shifted, not centred on the estimate.",
    "binned": "Binned ECE is a biased estimator (upward in finite samples: |accuracy - confidence| per bin adds "
              "noise), and a resample repeats rows, so resampled ECEs sit above the full-sample value, most "
              "where the true miscalibration is small.",
    "macro_f1": "Macro F1 of one system: a resample misses some examples of rare classes, whose F1 then drops, "
                "so resampled values sit below the full-sample one.",
    "other": "The statistic is a non-linear function of the rows, so its resampled values need not centre on it.",
    "read": "Read the estimate as the value and the interval's width as the sampling noise; paired differences "
            "are far less affected.",
}
MISSING = "--"             # a NaN cell
_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
             "\u2014": "---", "\u2013": "--",
             # symbols go to math mode: a text-mode < > | prints as an inverted mark in OT1 fonts
             "<=": r"$\leq$", ">=": r"$\geq$", "||": r"$\|$", "<": "$<$", ">": "$>$", "|": "$|$",
             "\u2264": r"$\leq$", "\u2265": r"$\geq$", "\u2016": r"$\|$", "\u00d7": r"$\times$",
             "\u2212": "$-$", "\u03b1": r"$\alpha$", "\u03c1": r"$\rho$", "\u03c3": r"$\sigma$",
             "\u0394": r"$\Delta$", "\u2020": r"$^\dagger$"}
_ESCAPE = re.compile("|".join(re.escape(k) for k in sorted(_SPECIALS, key=len, reverse=True)))
_MACRO_NAME = re.compile(r"[A-Za-z]+")
_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


# --------------------------------------------------------------------------- #
# Text
# --------------------------------------------------------------------------- #
def escape_latex(text: str) -> str:
    """Plain text -> LaTeX text: escapes ``\\ & % $ # _ { } ~ ^``, em/en dashes to ---/--, and
    sets ``< > <= >= | ||`` (and ≤ ≥ × − α ρ σ Δ †) in math mode."""
    return _ESCAPE.sub(lambda m: _SPECIALS[m.group()], str(text))


def braces_balanced(tex: str) -> bool:
    """True when the unescaped ``{`` and ``}`` of ``tex`` pair up (``\\{`` and ``\\}`` do not count)."""
    depth = 0
    for match in re.finditer(r"\\.|[{}]", tex, flags=re.S):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def fixed(x: float, decimals: int = 3, sign: bool = False) -> str:
    """``x`` with ``decimals`` fixed decimals; a LaTeX minus for negatives, ``+`` when ``sign``;
    ``--`` for NaN or None."""
    if x is None or not math.isfinite(float(x)):
        return MISSING
    text = f"{float(x):+.{decimals}f}" if sign else f"{float(x):.{decimals}f}"
    return text.replace("-", MINUS, 1) if text.startswith("-") else text


def percent(share: float, decimals: int = 0, sign: bool = False) -> str:
    """A share as a percentage (0.137 -> ``13.7\\,\\%`` at one decimal; signed with ``sign``);
    ``--`` for NaN or None."""
    text = fixed(None if share is None else 100 * float(share), decimals, sign)
    return text if text == MISSING else text + r"\,\%"


def count(n: int) -> str:
    """An integer with thousands separators that work in text and math mode: ``6{,}430``."""
    return f"{int(n):,}".replace(",", "{,}")


def outside(x: Optional[float], low: Optional[float], high: Optional[float]) -> bool:
    """Whether an interval [low, high] (all finite) excludes its own estimate ``x``."""
    vals = (x, low, high)
    return all(v is not None and math.isfinite(float(v)) for v in vals) and not low <= x <= high


def cell(x: float, decimals: int = 3, low: Optional[float] = None, high: Optional[float] = None,
         bold: bool = False, signed: bool = False, stack: bool = False) -> str:
    """One table cell: ``0.263``, or ``0.263 [0.251, 0.275]`` when a CI (``low``, ``high``,
    both finite) is given; ``bold`` sets the point estimate in ``\\textbf``; ``signed`` writes
    ``+`` before positive numbers (deltas: ``+0.052 [+0.031, +0.070]``). An interval that excludes
    its estimate gets a dagger (see :data:`OUTSIDE_NOTES`). ``stack``: the interval on a second,
    smaller line (narrow columns; needs nothing beyond LaTeX's own tabular)."""
    text = fixed(x, decimals, signed)
    if text == MISSING:
        return text
    if bold:
        text = rf"\textbf{{{text}}}"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return text
    interval = f"[{fixed(low, decimals, signed)}, {fixed(high, decimals, signed)}]"
    if outside(x, low, high):
        interval += DAGGER
    if stack:
        return rf"\begin{{tabular}}[t]{{@{{}}r@{{}}}}{text}\\{{\scriptsize {interval}}}\end{{tabular}}"
    return f"{text} {interval}"


def outside_note(metric_keys: Sequence[str]) -> str:
    """Caption note (plain text) for cells whose interval excludes its estimate, by metric key."""
    keys = set(metric_keys)
    parts = [OUTSIDE_NOTES["lead"]]
    if keys & {"ece", "adaptive_ece", "mce"}:
        parts.append(OUTSIDE_NOTES["binned"])
    if keys & {"macro_f1", "tail_f1"}:
        parts.append(OUTSIDE_NOTES["macro_f1"])
    if keys - {"ece", "adaptive_ece", "mce", "macro_f1", "tail_f1"}:
        parts.append(OUTSIDE_NOTES["other"])
    return " ".join(parts + [OUTSIDE_NOTES["read"]])


def caption(title: str, *, n: int, fold: str, source: str, demo_note: str = "",
            resamples: Optional[int] = None, seed: Optional[int] = None, notes: Sequence[str] = ()) -> str:
    """Caption text (LaTeX) stating what, on which fold, n, the data source and, when given,
    the bootstrap resamples and seed. ``title``, ``fold``, ``source``, ``demo_note`` and
    ``notes`` are plain text (escaped here); a non-empty ``demo_note`` comes first, in bold."""
    parts = [rf"\textbf{{{escape_latex(demo_note)}.}}"] if demo_note else []
    parts.append(f"{escape_latex(title)}, {escape_latex(fold)}, $n = {count(n)}$.")
    if resamples is not None:
        seed_text = f", seed {seed}" if seed is not None else ""
        parts.append(f"Intervals: paired bootstrap, {count(resamples)} resamples{seed_text}.")
    parts.extend(escape_latex(note) for note in notes)
    parts.append(f"Data: {escape_latex(source)}.")
    return " ".join(parts)


# --------------------------------------------------------------------------- #
# Tables
# --------------------------------------------------------------------------- #
def metric_key(column: Hashable) -> str:
    """The metric key of a column: the last level of a tuple column, else the column itself."""
    return str(column[-1] if isinstance(column, tuple) else column)


def best_rows(values: pd.Series, direction: Optional[str], decimals: int) -> set:
    """Rows holding the best value of ``values`` as displayed (rounded to ``decimals``,
    so visible ties are all marked); ``direction`` "higher", "lower" or None (no best)."""
    shown = values.astype(float).round(decimals).dropna()
    if direction not in ("higher", "lower") or shown.empty:
        return set()
    target = shown.max() if direction == "higher" else shown.min()
    return set(shown.index[shown == target])


def _per_column(option, column: Hashable, default):
    """A render_table option for ``column``: one value, or a mapping by column or metric key."""
    if isinstance(option, Mapping):
        return option.get(column, option.get(metric_key(column), default))
    return option


def _cmidrules(columns: pd.Index, n_index: int = 1) -> str:
    """``\\cmidrule(lr){a-b}`` under each run of equal top-level names of a two-level column index."""
    rules, first = [], n_index + 1
    for _, group in itertools.groupby(c[0] for c in columns):
        width = len(list(group))
        rules.append(rf"\cmidrule(lr){{{first}-{first + width - 1}}}")
        first += width
    return " ".join(rules)


def _header(key: Hashable, headers: Mapping[str, str]) -> str:
    """A column header: ``headers[key]`` (LaTeX) when given, else the key as escaped text."""
    return headers.get(str(key), escape_latex(str(key)))


def table_cells(values: pd.DataFrame, *, decimals: int | Mapping[Hashable, int] = 3,
                low: Optional[pd.DataFrame] = None, high: Optional[pd.DataFrame] = None,
                unavailable: Optional[Mapping[Hashable, str]] = None,
                best_among: Optional[Sequence[Hashable]] = None, directions: Mapping[str, str] = DIRECTIONS,
                signed: bool | Mapping[Hashable, bool] = False, stack: bool = False,
                row_decimals: Optional[Mapping[Hashable, int]] = None,
                row_signed: Optional[Mapping[Hashable, bool]] = None) -> tuple[pd.DataFrame, list[str]]:
    """The LaTeX text of every cell (see :func:`render_table` for the options; unavailable rows are
    left empty) and the metric keys of the cells whose interval excludes its estimate."""
    unavailable = unavailable or {}
    rows = [r for r in values.index if r not in unavailable]
    candidates = [r for r in (best_among if best_among is not None else rows) if r in rows]
    text = pd.DataFrame("", index=values.index, columns=values.columns, dtype=object)
    flagged = []
    for col in values.columns:
        d, sign = int(_per_column(decimals, col, 3)), bool(_per_column(signed, col, False))
        best = best_rows(values.loc[[r for r in candidates if r not in (row_decimals or {})], col],
                         directions.get(metric_key(col)), d)
        for r in rows:
            lo, hi = (None if f is None else f.at[r, col] for f in (low, high))
            x = values.at[r, col]
            if outside(x, lo, hi):  # every level of the column: the metric may be any of them
                flagged += [str(c) for c in col] if isinstance(col, tuple) else [str(col)]
            text.at[r, col] = cell(x, int((row_decimals or {}).get(r, d)), lo, hi, bold=r in best,
                                   signed=bool((row_signed or {}).get(r, sign)), stack=stack)
    return text, list(dict.fromkeys(flagged))


def render_table(values: pd.DataFrame, *, caption_tex: str, label: str,
                 decimals: int | Mapping[Hashable, int] = 3,
                 low: Optional[pd.DataFrame] = None, high: Optional[pd.DataFrame] = None,
                 unavailable: Optional[Mapping[Hashable, str]] = None,
                 best_among: Optional[Sequence[Hashable]] = None,
                 directions: Mapping[str, str] = DIRECTIONS,
                 headers: Mapping[str, str] = METRIC_LABELS,
                 signed: bool | Mapping[Hashable, bool] = False, resize: bool = False,
                 size: str = r"\small", position: str = "htbp", stack: bool = False,
                 groups: Optional[Mapping[Hashable, str]] = None,
                 row_decimals: Optional[Mapping[Hashable, int]] = None,
                 row_signed: Optional[Mapping[Hashable, bool]] = None, compact: Optional[bool] = None) -> str:
    """A booktabs ``table`` (LaTeX source) from a frame of numbers.

    ``values``: rows = systems (the index: plain-text labels), columns = metric keys, either
    flat (``"ece"``) or two-level (``("head", "ece")``: the top level is grouped under a
    ``\\multicolumn`` header with a ``\\cmidrule``). ``low``/``high``: optional frames of the
    same shape, rendered as ``x [low, high]`` where both are finite (a dagger and a caption note
    where the interval excludes ``x``). Headers: ``headers[key]`` (LaTeX) for keys in ``headers``,
    else the escaped key; row labels are plain text (escaped by :func:`escape_latex`).
    ``decimals``: one int, or a mapping by column or metric key (default 3); ``signed`` (one bool or
    such a mapping, default False): ``+`` before positive cells (deltas); ``row_decimals`` and
    ``row_signed`` override both for whole rows (such rows never compete for bold). Per column the best
    value among ``best_among`` rows (default: every available row) is bold, by ``directions`` of its
    metric key. ``unavailable``: row -> reason (plain text), rendered as one cell spanning
    every metric column. ``groups``: row -> a group title (plain text) set above that row, after a rule.
    ``stack``: intervals on a second line (narrow columns). ``compact`` (default: as ``stack``): 4 pt
    between columns instead of 6 pt, for wide tables. ``caption_tex``: LaTeX (see :func:`caption`);
    ``label``: the \\label key. ``resize``: shrink the tabular to the line width when it is wider
    (``\\resizebox``, a last resort; needs graphicx).
    """
    unavailable = {r: why for r, why in (unavailable or {}).items() if r in values.index}
    text, flagged = table_cells(values, decimals=decimals, low=low, high=high, unavailable=unavailable,
                                best_among=best_among, directions=directions, signed=signed, stack=stack,
                                row_decimals=row_decimals, row_signed=row_signed)
    if flagged:
        caption_tex = f"{caption_tex} {escape_latex(outside_note(flagged))}"
    sentinels = {}
    for i, r in enumerate(unavailable):
        sentinels[f"@@KDLABNA{i}@@"] = escape_latex(unavailable[r])
        text.at[r, values.columns[0]] = f"@@KDLABNA{i}@@"
    two_level = isinstance(values.columns, pd.MultiIndex)
    text.columns = values.columns.map(
        lambda c: tuple(_header(p, headers) for p in c) if two_level else _header(c, headers))
    styler = text.style.format_index(escape_latex, axis=0)  # headers are LaTeX already (see _header)
    tex = styler.to_latex(hrules=True, caption=caption_tex, label=label, position=position,
                          position_float="centering", multicol_align="c",
                          column_format="l" + "r" * len(values.columns))
    k = len(values.columns)
    for token, reason in sentinels.items():
        tex = re.sub(re.escape(token) + r"(?:\s*&\s*)*\s*\\\\",
                     lambda _m, reason=reason: rf"\multicolumn{{{k}}}{{c}}{{\emph{{{reason}}}}} \\", tex)
    lines = tex.splitlines()
    if two_level:
        lines.insert(lines.index(r"\toprule") + 2, _cmidrules(values.columns))
    for row, title in (groups or {}).items():
        at = next(i for i, ln in enumerate(lines) if ln.startswith(escape_latex(row) + " &"))
        rule = [] if lines[at - 1] == r"\midrule" else [r"\midrule"]
        lines[at:at] = rule + [rf"\multicolumn{{{k + 1}}}{{l}}{{\emph{{{escape_latex(title)}}}}} \\"]
    tex = "\n".join(lines) + "\n"
    if size or (stack if compact is None else compact):
        colsep = "\\setlength{\\tabcolsep}{4pt}\n" if (stack if compact is None else compact) else ""
        tex = tex.replace("\\centering\n", f"\\centering\n{size}\n{colsep}" if size else f"\\centering\n{colsep}", 1)
    if resize:  # the natural width, or the line width when wider
        head, tail = tex.rsplit("\\end{tabular}", 1)  # the outer tabular's end: stacked cells hold tabulars too
        tex = (head.replace("\\begin{tabular}", "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else"
                            "\\width\\fi}{!}{%\n\\begin{tabular}", 1) + "\\end{tabular}}" + tail)
    if not braces_balanced(tex):  # a bug here, not in the data: never write broken LaTeX
        raise ValueError(f"table {label!r}: unbalanced braces in the rendered LaTeX")
    return tex


def write_table(path: str | Path, values: pd.DataFrame, **kwargs) -> str:
    """Render with :func:`render_table` (same keyword arguments) and write atomically, with the same
    table as ``.csv`` (numbers) and ``.md`` (as displayed) next to it (:mod:`kdlab.report.export`,
    for slides and the terminal); returns the LaTeX text."""
    from kdlab.report import export  # here, not at the top: export imports this module

    tex = render_table(values, **kwargs)
    io.write_text(path, tex)
    export.write_exports(Path(path), values, **kwargs)
    return tex


# --------------------------------------------------------------------------- #
# Headline numbers
# --------------------------------------------------------------------------- #
def macro_name(name: str) -> str:
    """A free name as TeX macro letters, CamelCase, digits spelled out:
    ``kd`` -> ``Kd``, ``td1_a07`` -> ``TdOneAZeroSeven``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    spelled = "".join(w[:1].upper() + w[1:] for w in words)
    return re.sub(r"\d", lambda m: _DIGITS[int(m.group())], spelled)


def numbers_tex(numbers: Mapping[str, float | int | str], decimals: int = 3, prefix: str = "kd",
                signed: Callable[[str], bool] = lambda name: False,
                header: str = "Headline numbers, written by the `report` stage (kdlab.stages.report)") -> str:
    """One ``\\newcommand{\\<prefix><Name>}{value}`` per entry, in the mapping's order.

    Names must be letters only (TeX macro names); floats are written with ``decimals``
    fixed decimals (``--`` for NaN; with a ``+`` or minus sign when ``signed(name)``), ints with
    thousands separators, strings verbatim (they are LaTeX: escape plain text with
    :func:`escape_latex` first; braces must balance).
    """
    if not _MACRO_NAME.fullmatch(prefix):
        raise ValueError(f"macro prefix must be letters only, found {prefix!r}")
    lines = [f"% {header}; do not edit.",
             "% \\input{this file} in a document, then cite e.g. \\" + prefix + "<Name>{}."]
    for name, value in numbers.items():
        if not isinstance(name, str) or not _MACRO_NAME.fullmatch(name):
            raise ValueError(f"macro name {name!r}: TeX macro names may use letters only (A-Z, a-z)")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"macro {name!r}: expected a float, int or str, found {type(value).__name__}")
        if isinstance(value, str):
            if not braces_balanced(value):
                raise ValueError(f"macro {name!r}: unbalanced braces in {value!r}")
            body = value
        elif isinstance(value, int):
            body = count(value)
        else:
            body = fixed(value, decimals, sign=signed(name))
        lines.append(rf"\newcommand{{\{prefix}{name}}}{{{body}}}")
    return "\n".join(lines) + "\n"


def write_numbers_tex(path: str | Path, numbers: Mapping[str, float | int | str], decimals: int = 3,
                      **options) -> None:
    """Write :func:`numbers_tex` (same options) to ``path`` atomically."""
    io.write_text(path, numbers_tex(numbers, decimals, **options))
