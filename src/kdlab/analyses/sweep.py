"""The T_d x alpha sweep on the FULL val split: macro F1, ECE (15 bins), NLL and tail macro F1
of each cell, with bootstrap intervals, ranks and the paired delta to the recipe's cell (the
headline arm's T_d and alpha, 4 and 0.7).

The grid is declared once, in params (`sweep: {kd_temperature: [...], alpha: [...]}`); each cell
is its own DVC stage `sweep@<T_d>-<alpha>` (a dvc.yaml matrix) writing runs/sweep@<T_d>-<alpha>/,
trained (or, in audit mode, read from the published grid's file for that cell) like any arm.
A cell without predictions is reported with its reason.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdlab import stats
from kdlab.analyses.common import boot_record, clean, dash, flat, frames, note_text, resample_many
from kdlab.analyses.context import Study
from kdlab.config import Config
from kdlab.report import latex


KEYS = ("macro_f1", "ece", "nll", "tail_f1")
DIRECTION = {"macro_f1": "higher", "ece": "lower", "nll": "lower", "tail_f1": "higher"}
MACRO = {"macro_f1": "MacroFone", "ece": "Ece", "nll": "Nll", "tail_f1": "TailFone"}
TITLES = {"macro_f1": "macro F1", "ece": "ECE (15 bins)", "nll": "NLL", "tail_f1": "tail macro F1"}


def grid(cfg: Config) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(T_d values, alpha values) of the sweep, as floats, in params order."""
    return tuple(map(float, cfg.sweep.kd_temperature)), tuple(map(float, cfg.sweep.alpha))


def grid_arms(cfg: Config) -> dict[tuple[float, float], str]:
    """{(T_d, alpha): cell name} for every cell of the sweep."""
    return {(cell.kd_temperature, cell.alpha): cell.name for cell in cfg.sweep.cells()}


def default_cell(cfg: Config) -> tuple[float, float] | None:
    """The cell of the headline arm's recipe (T_d 4, alpha 0.7), if it is a plain KD arm on the grid."""
    arm = cfg.arm(cfg.headline_arm)
    plain = (arm.loss == "kd" and arm.teacher_logits == "final" and arm.train_splits == "train+test"
             and arm.label_smoothing == 0)
    cell = (arm.kd_temperature, arm.alpha)
    return cell if plain and cell in grid_arms(cfg) else None


def compute(study: Study) -> dict:
    """Rows: full val (tail F1: the tail rows, tail class ids); systems: the sweep's arms."""
    bins, seed = study.cfg.evaluation.ece_bins, study.seed
    cells = grid_arms(study.cfg)
    grid_t, grid_alpha = grid(study.cfg)
    recipe_cell = default_cell(study.cfg)
    ok = {c: a for c, a in cells.items() if a not in study.unavailable}
    y, tail = study.labels, study.scope_rows("tail")
    tail_ids = study.scope_class_ids("tail")
    main, tails = [], []
    for cell, arm in ok.items():
        p, pred = study.probs(arm), study.predictions(arm).preds
        main += [("macro_f1", dict(labels=y, preds=pred)), ("ece", dict(probs=p, labels=y, n_bins=bins)),
                 ("nll", dict(probs=p, labels=y))]
        tails.append(("macro_f1", dict(labels=y[tail], preds=pred[tail], class_ids=tail_ids)))
    it_main = iter(resample_many(main, study.bootstrap_indices(study.n), points=True))
    it_tail = iter(resample_many(tails, study.bootstrap_indices(len(tail)), points=True))
    got = {cell: {**{k: next(it_main) for k in KEYS[:3]}, "tail_f1": next(it_tail)} for cell in ok}
    pts = {cell: {k: v[0] for k, v in g.items()} for cell, g in got.items()}
    smp = {cell: {k: v[1] for k, v in g.items()} for cell, g in got.items()}
    ranks = {k: pd.Series({c: pts[c][k] for c in ok}, dtype=float).rank(ascending=DIRECTION[k] == "lower",
                                                                       method="min") for k in KEYS}
    records, numbers = [], {}
    for t in grid_t:
        for a in grid_alpha:
            cell, arm = (t, a), cells.get((t, a))
            rec = {"kd_temperature": t, "alpha": a, "arm": arm, "available": cell in ok,
                   "default": cell == recipe_cell}
            if cell not in ok:
                rec["reason"] = study.unavailable[arm]
                records.append(rec)
                continue
            for k in KEYS:
                rec.update(flat(k, stats.summarize(pts[cell][k], smp[cell][k], seed)))
                rec[f"rank_{k}"] = int(ranks[k][cell])
                if recipe_cell in ok and cell != recipe_cell:
                    d = stats.summarize(pts[cell][k] - pts[recipe_cell][k], smp[cell][k] - smp[recipe_cell][k], seed)
                    rec.update(flat(f"delta_{k}", d, median=False))
            records.append(rec)
    grids = {k: [[pts.get((t, a), {}).get(k) for a in grid_alpha] for t in grid_t] for k in KEYS}
    for k in KEYS:
        m = MACRO[k]
        if ok:
            best = ranks[k].idxmin()
            numbers.update({f"SweepBest{m}": pts[best][k], f"SweepBest{m}Td": f"{best[0]:g}",
                            f"SweepBest{m}Alpha": f"{best[1]:g}",
                            f"SweepSpread{m}": float(np.ptp([pts[c][k] for c in ok]))})
        numbers[f"SweepDefaultRank{m}"] = int(ranks[k][recipe_cell]) if recipe_cell in ok else None
    numbers["SweepCells"] = len(ok)
    return clean({"name": "sweep", "fold": "full val", "n": study.n, "n_tail": len(tail),
                  "bootstrap": boot_record(study),
                  "grid_t": grid_t, "grid_alpha": grid_alpha, "default_cell": recipe_cell,
                  "cells": {arm: [t, a] for (t, a), arm in cells.items()},
                  "unavailable": {arm: study.unavailable[arm] for arm in cells.values() if arm in study.unavailable},
                  "tables": {"grid": records}, "grids": grids,
                  "numbers": {k: dash(v) for k, v in numbers.items()}})


def _label(rec: dict) -> str:
    return f"{rec['kd_temperature']:g} / {rec['alpha']:g}"


def render(result: dict, out) -> None:
    """reports/tables/sweep_grid.tex; reports/figures/sweep_heatmaps.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    plt = figures.plt
    sns = figures.sns
    b, recs = result["bootstrap"], result["tables"]["grid"]
    rows = {_label(r): r for r in recs}
    keys = list(KEYS) + ["delta_macro_f1"]
    values, low, high = frames(rows, keys)
    recipe = result["default_cell"]
    against = (f"the delta is paired against the recipe's cell (T_d = {recipe[0]:g}, alpha = {recipe[1]:g})"
               if recipe else "no cell has the headline arm's recipe, so no delta is shown")
    latex.write_table(
        out.tables / "sweep_grid.tex", values, stack=True, signed={"delta_macro_f1": True}, low=low, high=high,
        unavailable={k: r["reason"] for k, r in rows.items() if not r["available"]},
        directions={**latex.DIRECTIONS, "tail_f1": "higher"}, size=r"\footnotesize", label="tab:sweep_grid",
        headers={**latex.METRIC_LABELS, "tail_f1": "Tail macro F1",
                 "delta_macro_f1": r"$\Delta$ macro F1"},
        caption_tex=latex.caption(
            "Distillation temperature T_d \u00d7 \u03b1 sweep", n=result["n"], fold="full validation split",
            source=out.source, demo_note=out.profile_note, resamples=b["resamples"], seed=b["seed"],
            notes=[f"Rows: T_d / alpha; each cell is its own run (stage sweep@T_d-alpha: KD from the "
                   f"temperature-scaled teacher on train+test). Tail macro F1 on the "
                   f"{result['n_tail']:,} tail examples. Best cell per column in bold; {against}. "
                   "Spread and ranks: results/sweep.json."]))
    figures.set_style()
    fig, axes = figures.subplots(2, 2, squeeze=False)
    for ax, k in zip(axes.flat, KEYS):
        grid = np.array([[math.nan if v is None else v for v in row] for row in result["grids"][k]], dtype=float)
        annot = np.array([["n/a" if math.isnan(v) else f"{v:.3f}" for v in row] for row in grid], dtype=object)
        frame = pd.DataFrame(grid, index=[f"{t:g}" for t in result["grid_t"]],
                             columns=[f"{a:g}" for a in result["grid_alpha"]])
        sns.heatmap(frame, ax=ax, annot=annot, fmt="", cbar=True, linewidths=0.5, linecolor="white",
                    cmap="cividis" if DIRECTION[k] == "higher" else "cividis_r", annot_kws={"fontsize": "small"})
        ax.grid(False)
        for i, j in zip(*np.nonzero(np.isnan(grid))):
            ax.text(j + 0.5, i + 0.5, "n/a", ha="center", va="center", fontsize="small", color="0.3")
        if np.isfinite(grid).any():
            i, j = np.unravel_index(np.nanargmax(grid) if DIRECTION[k] == "higher" else np.nanargmin(grid), grid.shape)
            ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=2))
        ax.set(title=f"{TITLES[k]} ({'higher' if DIRECTION[k] == 'higher' else 'lower'} is better)",
               xlabel=r"$\alpha$ (weight of the soft term)", ylabel=r"$T_d$")
    omitted = [f"T_d={r['kd_temperature']:g}, alpha={r['alpha']:g}: {r['reason']}" for r in recs if not r["available"]]
    extra = ([f"n/a cells: {'; '.join(omitted)}"] if omitted else []) + ["black box: best cell; brighter is better"]
    figures.add_note(fig, note_text(out, "full validation split", result["n"], extra))
    figures.save_figure(fig, out.figures / "sweep_heatmaps")
