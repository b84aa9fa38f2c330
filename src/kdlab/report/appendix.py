"""``reports/appendix.tex``: every full table and every figure the body does not show.

One section per analysis (kdlab.analyses.ANALYSES, in that order), then the report's own tables;
each figure with its written caption (:mod:`kdlab.report.captions`). The tables and figures the
paper's body already includes (:data:`IN_BODY`) are left out, so no label is defined twice; the
published-numbers table is here only when the body omits it (a run that is not the study's).
"""

from __future__ import annotations

from pathlib import Path

from kdlab import analyses, io
from kdlab.report import captions, latex

# tables and figures paper.tex shows in its body (each once), besides the paper_*.tex tables
IN_BODY_TABLES = {"confound_lifts"}
IN_BODY = {"long_tail", "tiers_deltas", "reliability", "busbridge_calibration_vs_k", "stanton_js", "sweep_heatmaps",
           "coverage_curves"}
OWN_TABLES = ("tier_f1_ece", "calibration_eval_half")  # the report stage's own full tables
DATA_TABLES = ("data_inputs", "data_splits")  # kdlab.report.data_tables


def figure_tex(stem: str, warning: str) -> str:
    return "\n".join([r"\begin{figure}[htbp]", r"  \centering",
                      rf"  \includegraphics[width=\linewidth]{{figures/{stem}.pdf}}",
                      rf"  \caption{{{captions.caption(stem, warning)}}}\label{{fig:{stem}}}", r"\end{figure}"])


def appendix_tex(tables: Path, figures: Path, warning: str, published_in_body: bool) -> str:
    """The appendix's LaTeX: a section per analysis with its tables and the figures not in the body."""
    parts = ["% Written by the report stage: one section per analysis (kdlab.analyses.ANALYSES); do not edit."]
    for name, title in analyses.ANALYSES.items():
        parts.append(rf"\section{{{latex.escape_latex(title)}}}\label{{sec:{name}}}")
        parts += [rf"\input{{tables/{t.name}}}" for t in sorted(tables.glob(f"{name}_*.tex"))
                  if t.stem not in IN_BODY_TABLES]
        parts += [figure_tex(f.stem, warning) for f in sorted(figures.glob(f"{name}_*.pdf")) if f.stem not in IN_BODY]
        parts.append(r"\clearpage")
    data = [t for t in DATA_TABLES if (tables / f"{t}.tex").is_file()]
    if data:
        parts.append(r"\section{The data}\label{sec:data}")
        parts += [rf"\input{{tables/{t}.tex}}" for t in data]
    parts.append(r"\section{Every system per tier, and the published numbers}\label{sec:overview}")
    parts += [rf"\input{{tables/{t}.tex}}" for t in OWN_TABLES]
    parts.append(figure_tex("tier_f1_ece", warning))
    if not published_in_body:
        parts.append(r"\input{tables/published_check.tex}")
    return "\n\n".join(parts) + "\n"


def write_appendix(path: Path, tables: Path, figures: Path, warning: str, published_in_body: bool) -> None:
    """Write :func:`appendix_tex` atomically; every figure in ``figures`` must have a written caption."""
    missing = [f.stem for f in sorted(figures.glob("*.pdf")) if f.stem not in captions.FIGURE_CAPTIONS]
    if missing:
        raise KeyError(f"{figures}: no written caption for {missing} (kdlab.report.captions.FIGURE_CAPTIONS)")
    io.write_text(path, appendix_tex(tables, figures, warning, published_in_body))
