"""The study's analyses: each module reads stored predictions, never retrains.

Every module here exposes ``compute(study) -> dict`` (JSON-serialisable; the
stage `analyze@<name>` writes it to results/<name>.json) and
``render(result, out)`` (the `report` stage turns it into LaTeX tables,
figures and ``\\newcommand`` numbers). Drawing code imports
:mod:`kdlab.report.figures` (matplotlib, seaborn) inside the functions that
draw, so the nine `analyze@` processes never pay for a plotting library they
do not use.
"""

from __future__ import annotations

import importlib

ANALYSES = {  # name -> section title in the paper's appendix
    "teacher_diag": "Teacher diagnostics",
    "tiers": "Every arm against the vanilla student, per tier",
    "calibration_suite": "Calibration, estimator by estimator",
    "busbridge": "Busbridge et al. (2025): calibration against how much of the distribution crosses",
    "han_guo": "Han Guo et al. (2021): temperature scaling and distillation",
    "stanton": "Stanton et al. (2021): fidelity to the teacher",
    "confound": "The data confound: more data or distillation?",
    "coverage": "Thresholds, coverage and the accuracy SLA",
    "sweep": "The distillation temperature and weight sweep",
}


def get(name: str):
    """The analysis module ``name`` (imported on demand)."""
    if name not in ANALYSES:
        raise KeyError(f"unknown analysis {name!r}; expected one of {list(ANALYSES)}")
    return importlib.import_module(f"kdlab.analyses.{name}")
