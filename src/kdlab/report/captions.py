"""Written captions for every figure of the report: what it shows and what to look at.

One entry per figure stem (``reports/figures/<stem>.pdf``); the report stage writes them as
``\\kdCaption<Stem>`` macros (captions.tex) for the paper's body and uses them in the appendix,
and refuses to run when a figure has no caption. Captions describe how to read a figure, never
its result (the findings, worded from the numbers, do that).
"""

from __future__ import annotations

from kdlab.report import latex

FIGURE_CAPTIONS = {
    "long_tail": (
        "Training examples per class, classes sorted from the most to the least frequent (log scale) and coloured "
        "by tier; dashed lines mark the tier boundaries. Look at how fast the counts fall: the tail classes have "
        "a handful of examples each, so every tail metric rests on few examples."),
    "tier_f1_ece": (
        "Macro F1 (left, higher is better) and ECE (right, lower is better) of the teacher, the baseline and the "
        "distilled student, overall and per tier, full validation split (n under each tier). Compare bars within "
        "a tier; the differences between tiers are far larger than those between students. Intervals: the "
        "per-tier difference figure."),
    "tiers_deltas": (
        "Each student minus the baseline, overall and per tier: macro F1 (left) and ECE (right), with 95 % "
        "paired-bootstrap intervals. A bar whose interval crosses 0 is no detectable change; for ECE, below 0 is "
        "better. Look at the width of the tail's intervals before reading its bars."),
    "reliability": (
        "Reliability diagrams on the evaluation half: per confidence bin, accuracy (bars) against the diagonal "
        "(perfect calibration), with the bin's mean confidence as a black dot; below, examples per bin (log "
        "scale). Bars below the diagonal are over-confidence. Compare the baseline before and after temperature "
        "scaling with the distilled student; bins with few examples (bottom row) say little."),
    "calibration_suite_ece_bins": (
        "Binned ECE against the number of equal-width bins (log scale), full validation split (top) and "
        "evaluation half (bottom), overall and per tier, with shaded 95 % intervals; dashed: temperature-scaled. "
        "Look at how much one system's ECE moves with the bin count, most in the small tiers: trust an ordering "
        "of systems that holds at every bin count, not a single value."),
    "busbridge_calibration_vs_k": (
        "ECE (left) and NLL (right) against k, the number of teacher probabilities per example the student is "
        "trained on (log scale; the right-most point is the full distribution), overall and per tier, with 95 % "
        "intervals; dashed lines: the baseline trained without a teacher, same colour per tier. Look at the "
        "direction of each line as k grows."),
    "stanton_js": (
        "Jensen-Shannon divergence between the temperature-scaled teacher and each student, overall and per tier, "
        "with 95 % intervals (nats; 0 would be a copy of the teacher). Compare each distilled student's bar with "
        "the baseline's: shorter is closer to the teacher, and any bar above 0 is a gap left."),
    "sweep_heatmaps": (
        "Macro F1, ECE, NLL and tail macro F1 of every distillation temperature T_d (rows) and weight \u03b1 "
        "(columns); the black box marks the best cell of each panel, brighter is better. Read the spread across "
        "cells against the intervals of the sweep table before preferring a cell."),
    "coverage_curves": (
        "Left: accuracy on the covered examples as the most confident are kept first (full validation split). "
        "Middle and right: accuracy and coverage against the confidence threshold on the evaluation half, raw "
        "(solid) and temperature-scaled (dashed); dotted: the accuracy SLA. Look at where each curve crosses the "
        "SLA line and how much coverage is left there."),
    "teacher_diag_support_f1": (
        "The teacher's F1 on the validation split for each class against its training examples (log scale), by "
        "tier; Spearman's rho in the title. Look at the classes with little training data: what the teacher gets "
        "wrong there, a student cannot learn from it."),
}


def caption(stem: str, warning: str = "") -> str:
    """The caption of ``reports/figures/<stem>`` as LaTeX, the run's warning (plain text) appended in bold.
    Raises KeyError naming the stem when the figure has no written caption."""
    if stem not in FIGURE_CAPTIONS:
        raise KeyError(f"reports/figures/{stem}: no caption in kdlab.report.captions.FIGURE_CAPTIONS; write one "
                       "that says what the figure shows and what to look at")
    text = latex.escape_latex(FIGURE_CAPTIONS[stem])
    return text + (rf" \textbf{{{latex.escape_latex(warning)}.}}" if warning else "")


def macro_names() -> dict[str, str]:
    """stem -> the numbers-style macro name (``Caption<Stem>``) the paper cites."""
    return {stem: "Caption" + latex.macro_name(stem) for stem in FIGURE_CAPTIONS}
