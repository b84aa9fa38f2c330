"""Figures of the report: per-tier bars, reliability diagrams, the class-frequency long tail.

Every function takes plain data (tidy frames, arrays, dicts) and returns a
matplotlib Figure of one size, :data:`FIGSIZE` (16:9, so a PNG drops onto a slide);
:func:`save_figure` writes it as ``<stem>.pdf`` (for LaTeX) and ``<stem>.png`` at
200 dpi (for ``dvc plots`` and slides), atomically and byte-stable across reruns
(no creation date or software stamp in the files). The ``note`` argument of each
figure is printed as its super-title, wrapped to the figure's width (:func:`add_note`):
the run's warning (e.g. the demo banner), the fold and n. Colours: one per system
across every figure (:mod:`kdlab.report.palette`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from kdlab import io  # noqa: E402
from kdlab.config import TIERS  # noqa: E402
from kdlab.report import palette as colours  # noqa: E402

PALETTE = "colorblind"  # seaborn's colour-blind-safe palette (Wong 2011 family), the default cycle
FIGSIZE = (7.2, 4.05)   # inches, 16:9: 1440 x 810 px at PNG_DPI; the paper scales it to the text width
NOTE_POINTS = 8.0       # font size of the super-title note
TIER_ORDER = ("overall",) + TIERS
METRIC_TITLES = {"macro_f1": "Macro F1 (higher is better)", "ece": "ECE (lower is better)",
                 "nll": "NLL (lower is better)", "accuracy": "Accuracy (higher is better)"}
PNG_DPI = 200


def set_style() -> None:
    """Seaborn paper theme, white grid, colour-blind palette; deterministic file output."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"savefig.dpi": PNG_DPI, "figure.constrained_layout.use": True,
                         "svg.hashsalt": "kdlab", "axes.titlesize": "medium"})


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` at :data:`FIGSIZE` (every figure of the report has the same 16:9 size)."""
    return plt.subplots(nrows, ncols, figsize=FIGSIZE, **kwargs)


def add_note(fig: matplotlib.figure.Figure, note: str) -> None:
    """``note`` as the super-title, each line wrapped to the figure's width so nothing is clipped."""
    if not note:
        return
    width = int(fig.get_figwidth() * 72 / (0.55 * NOTE_POINTS))  # characters per line at NOTE_POINTS
    lines = [textwrap.fill(line, width) for line in note.splitlines() if line]
    fig.suptitle("\n".join(lines), fontsize=NOTE_POINTS)


def shared_legend(fig: matplotlib.figure.Figure, axes, max_cols: int = 5, **kwargs) -> None:
    """One legend under the panels with every labelled artist of ``axes`` once, in order of appearance."""
    handles: dict = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(len(handles), max_cols), fontsize="x-small", title_fontsize="x-small", **kwargs)


def system_colors(names: Sequence[str], palette: Optional[Mapping[str, str]]) -> dict[str, str]:
    """name -> colour from the report's palette map (:func:`kdlab.report.palette.system_palette`);
    without one (tests, notebooks), the colour-blind cycle in the order given."""
    if not palette:
        palette = colours.system_palette([n for n in names if n not in colours.TEACHER_COLORS], "", "")
    return {n: colours.color(palette, n) for n in names}


def save_figure(fig: matplotlib.figure.Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` atomically, without timestamps; close ``fig``.

    Returns the two paths. PDF: no CreationDate/ModDate; PNG: no Software tag, so a
    rerun on the same inputs and library versions gives identical bytes.
    """
    stem = Path(stem)
    written = []
    for fmt, metadata in (("pdf", {"CreationDate": None, "ModDate": None, "Producer": None}),
                          ("png", {"Software": None})):
        path = stem.with_name(f"{stem.name}.{fmt}")
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=metadata)
        written.append(path)
        fig.set_layout_engine("none")  # keep the layout of the first save: same geometry, half the time
    plt.close(fig)
    return written


def _log_counts(ax: matplotlib.axes.Axes, axis: str = "y") -> None:
    """Log scale with plain numbers (1, 10, 100) as labels and unlabelled minor ticks."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    target.set_minor_formatter(mticker.NullFormatter())


def _tier_tick(tier: str, tier_n: Optional[Mapping[str, int]]) -> str:
    return f"{tier}\n(n={tier_n[tier]:,})" if tier_n and tier in tier_n else tier


def tier_bars(data: pd.DataFrame, metrics: Sequence[str] = ("macro_f1", "ece"),
              tier_n: Optional[Mapping[str, int]] = None, note: str = "",
              palette: Optional[Mapping[str, tuple]] = None) -> matplotlib.figure.Figure:
    """Grouped bars: one panel per metric, tiers on x, systems side by side.

    ``data``: tidy rows with columns ``system``, ``tier`` (overall/head/mid/tail),
    ``metric``, ``value`` and optionally ``low``/``high`` (a CI: drawn as error bars
    where both are finite). Systems keep their order of first appearance.
    ``tier_n``: examples per tier, shown under the tick labels. ``palette``: system ->
    colour (default :func:`colors` in order of appearance).
    """
    systems = list(dict.fromkeys(data["system"]))
    tiers = [t for t in TIER_ORDER if t in set(data["tier"])]
    palette = system_colors(systems, palette)
    fig, axes = subplots(1, len(metrics), squeeze=False)
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(tiers))
    for ax, metric in zip(axes[0], metrics):
        sub = data[data["metric"] == metric].set_index(["system", "tier"])
        for i, system in enumerate(systems):
            rows = [sub.loc[(system, t)] if (system, t) in sub.index else None for t in tiers]
            values = np.array([np.nan if r is None else r["value"] for r in rows], dtype=float)
            pos = x - 0.4 + width * (i + 0.5)
            yerr = None
            if {"low", "high"} <= set(sub.columns):
                low = np.array([np.nan if r is None else r["low"] for r in rows], dtype=float)
                high = np.array([np.nan if r is None else r["high"] for r in rows], dtype=float)
                ok = np.isfinite(low) & np.isfinite(high)
                yerr = np.clip(np.where(ok, [values - low, high - values], 0.0), 0.0, None)
            ax.bar(pos, values, width, yerr=yerr, capsize=2, label=system, color=palette[system],
                   error_kw={"elinewidth": 0.8})
        ax.set_xticks(x, [_tier_tick(t, tier_n) for t in tiers])
        ax.set_title(METRIC_TITLES.get(metric, metric))
        ax.set_ylim(bottom=0)
        ax.grid(axis="x", visible=False)
    shared_legend(fig, axes)
    add_note(fig, note)
    return fig


def reliability_grid(panels: Sequence[tuple[str, Mapping[str, np.ndarray]]], note: str = "",
                     titles: Optional[Mapping[str, str]] = None,
                     palette: Optional[Mapping[str, tuple]] = None) -> matplotlib.figure.Figure:
    """Reliability diagrams in small multiples, per-bin counts underneath.

    ``panels``: (system, bins) pairs, ``bins`` as returned by
    :func:`kdlab.metrics.reliability_bins` (``edges``, ``count``, ``accuracy``,
    ``confidence``). Top row: accuracy per bin (bars) against the diagonal, with each
    bin's mean confidence as a dot; bottom row: examples per bin (log scale, shared).
    ``titles``: system -> panel title (default the name); ``palette``: system -> colour.
    """
    k = max(len(panels), 1)
    fig, axes = subplots(2, k, sharex=True, squeeze=False, gridspec_kw={"height_ratios": [3, 1.2]})
    palette = system_colors([name for name, _ in panels], palette)
    for j, (name, bins) in enumerate(panels):
        edges = np.asarray(bins["edges"], dtype=float)
        centre, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        acc = np.asarray(bins["accuracy"], dtype=float)
        conf = np.asarray(bins["confidence"], dtype=float)
        n = np.asarray(bins["count"])
        full = n > 0
        top, bottom = axes[0][j], axes[1][j]
        top.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.4", label="perfect calibration")
        top.bar(centre[full], acc[full], width[full], color=palette[name], edgecolor="white",
                lw=0.4, label="accuracy")
        top.scatter(conf[full], conf[full], s=8, color="black", zorder=3, label="mean confidence")
        top.set(xlim=(0, 1), ylim=(0, 1), title=(titles or {}).get(name, name))
        bottom.bar(centre[full], n[full], width[full], color=palette[name], edgecolor="white", lw=0.4)
        if j:
            bottom.sharey(axes[1][0])  # same count scale in every panel
        _log_counts(bottom)
        bottom.set_ylim(bottom=0.5)  # a bin of one example stays visible on the log scale
        bottom.set_xlabel("confidence (top-1)")
        if j == 0:
            top.set_ylabel("accuracy")
            bottom.set_ylabel("examples")
    if not panels:
        axes[0][0].text(0.5, 0.5, "no system available", ha="center", va="center")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    add_note(fig, note)
    return fig


def long_tail(counts: Sequence[int], class_tiers: Sequence[str], note: str = "",
              ylabel: str = "training examples per class") -> matplotlib.figure.Figure:
    """Class frequencies sorted in decreasing order (ties by class id), coloured by tier,
    log y, a dashed line at each tier boundary.

    ``counts`` (C,) examples per class and ``class_tiers`` (C,) tier names, as in
    ``data_card.json`` (``train_class_counts``, ``class_tiers``).
    """
    counts = np.asarray(counts, dtype=np.int64)
    tiers = np.asarray(class_tiers)
    order = np.lexsort((np.arange(len(counts)), -counts))  # last key first: -count, then id
    ranks = np.arange(1, len(counts) + 1)
    fig, ax = subplots()
    for tier in TIERS:
        sel = tiers[order] == tier
        if sel.any():
            ax.bar(ranks[sel], np.maximum(counts[order][sel], 0.5), width=1.0, color=colours.tier_color(tier),
                   label=f"{tier} ({int(sel.sum())} classes)", lw=0)
    changes = np.flatnonzero(tiers[order][1:] != tiers[order][:-1])
    for c in changes:
        ax.axvline(c + 1.5, color="0.3", ls="--", lw=0.8)
    _log_counts(ax)
    ax.grid(axis="x", visible=False)  # the dashed tier boundaries are the only verticals
    ax.set(xlim=(0.5, len(counts) + 0.5), xlabel="class rank by training frequency", ylabel=ylabel)
    ax.legend(loc="upper right", fontsize="small")
    add_note(fig, note)
    return fig
