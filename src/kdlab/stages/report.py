"""Stage `report`: the tables, figures, numbers and worded findings that reports/paper.tex includes.

Inputs: metrics/evaluate.json, results/calibration.json, every results/<analysis>.json,
data/prepared/data_card.json and data_report.json, data/tokenizer/lengths.json (when the
students' tokenizer exists), data/teacher/teacher_card.json and runs/<arm>/arm.json for the
arms listed in params (never a glob of runs/). The run's labels come from those cards
(kdlab.report.provenance), not from params. Outputs (stable names; every table also as .csv
and .md next to its .tex, every figure as .pdf and a 200-dpi 16:9 .png):

    reports/tables/paper_*.tex      the body's tables, one per question, with paired-bootstrap CIs
    reports/tables/<analysis>_*.tex every analysis' full tables (the appendix)
    reports/tables/{tier_f1_ece,calibration_eval_half,published_check}.tex
    reports/tables/{data_inputs,data_splits}.tex   what prepare read and dropped, what the splits hold
    reports/figures/*.{pdf,png}     every figure (kdlab.report.captions has each one's caption)
    reports/numbers.tex             \\kd<Name> macros for every number the prose and slides cite
    reports/findings.tex            \\kdFinding<Question> paragraphs worded by rules on those numbers,
                                    the run's labels, the published-numbers section, figure captions
    reports/appendix.tex            the full tables and the figures the body does not show

Arms that are not available (audit mode: not published) are shown as such, and their macros
are ``--``; every number comes from the files above.
"""

from __future__ import annotations

import argparse
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from kdlab import analyses, io
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.report import appendix, captions, data_tables, findings, headline, latex, overview, paper_tables, provenance
from kdlab.report.inputs import Inputs, Out, make_out
from kdlab.stages.common import StageError, fixed_name, run_stage, stage_main

__all__ = ["Out", "run", "main"]
MAX_WORKERS = 4  # processes for drawing; more gains little (10 figures) and costs memory
_SLOWEST_TO_DRAW = ("calibration_suite", "sweep", "coverage", "teacher_diag", "tiers", "busbridge", "stanton")
# every analysis, the slowest to draw first (balances the workers; the outputs do not depend on it)
RENDER_ORDER = sorted(analyses.ANALYSES, key=lambda name: _SLOWEST_TO_DRAW.index(name)
                      if name in _SLOWEST_TO_DRAW else len(_SLOWEST_TO_DRAW))


def render_analysis(name: str, result_path: Path, out: Out) -> None:
    """One analysis' tables and figures from its results/<name>.json."""
    analyses.get(name).render(io.read_json(result_path), out)


def run_tasks(tasks: list[tuple[Callable, tuple]], workers: int) -> None:
    """Call each ``fn(*args)``; with ``workers`` > 1 in that many processes. Every task writes its
    own files, so the outputs do not depend on the order or the process; the first error is raised."""
    if workers <= 1:
        for fn, args in tasks:
            fn(*args)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(fn, *args) for fn, args in tasks]:
            future.result()


def write_paper_tables(inp: Inputs, out: Out) -> None:
    """The body's tables (kdlab.report.paper_tables), one per question."""
    from kdlab.analyses.busbridge import row_label

    r = inp.results
    paper_tables.tiers(r["tiers"], out)
    paper_tables.calibration(r["calibration_suite"], r["han_guo"], out)
    paper_tables.busbridge(r["busbridge"], out, row_label(r["busbridge"]))
    paper_tables.stanton(r["stanton"], out)
    paper_tables.sweep(r["sweep"], out)
    paper_tables.coverage(r["coverage"], out)


def findings_macros(cfg: Config, inp: Inputs, numbers: dict) -> dict[str, str]:
    """Every macro of findings.tex: the findings, the run's labels, the published section, the captions."""
    n, r, facts = findings.Numbers(numbers), inp.results, inp.facts
    kd, base = cfg.headline_arm, cfg.baseline_arm
    out = {"FindingSummary": findings.summary(n, r["han_guo"], kd, base),
           "FindingTiers": findings.tiers(n, kd, base),
           "FindingCalibration": findings.calibration(n, r["han_guo"], kd, base),
           "FindingBusbridge": findings.busbridge(n, r["busbridge"]),
           "FindingStanton": findings.stanton(n, r["stanton"]),
           "FindingConfound": findings.confound(n, r["confound"]),
           "FindingSweep": findings.sweep(n, r["sweep"]),
           "FindingCoverage": findings.coverage(n, r["coverage"]),
           "PublishedSection": findings.published_section(facts, n),
           **findings.run_labels(facts)}
    warning = provenance.warning(facts)
    out.update({name: captions.caption(stem, warning) for stem, name in captions.macro_names().items()})
    return out


def run(cfg: Config, layout: Layout, args: argparse.Namespace | None = None) -> None:
    inp = Inputs.read(cfg, layout)
    missing = [a for a in cfg.arm_names if a not in inp.evaluate["arms"]]
    profile = getattr(cfg, "profile", inp.profile)
    if missing or inp.profile != profile:
        raise StageError(f"metrics/evaluate.json is stale (profile {inp.profile!r}, missing arms {missing}) for "
                         f"params (profile {profile!r}); run dvc repro")
    tags = [latex.macro_name(s) for s in headline.systems(cfg)]
    if len(set(tags)) != len(tags):
        raise StageError(f"arm names {cfg.arm_names} give clashing macro names {tags}; rename an arm")
    for folder in (layout.tables, layout.figures):  # the stage's outputs only: no stale file survives a rerun
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    out = make_out(cfg, layout, inp)
    numbers = headline.evaluate_numbers(cfg, inp)
    numbers.update(headline.analysis_numbers(inp.results, set(numbers)))
    numbers.update(headline.derived(inp.results))
    overview.write_tables(cfg, inp, out)
    data_tables.write_data_tables(layout, out)
    numbers.update(overview.write_published_check(cfg, inp, layout, out))
    write_paper_tables(inp, out)
    # drawing is most of this stage's time and each figure is independent: use the machine's cores
    # (DVC runs one stage at a time); the slowest renders go first
    tasks = [(render_analysis, (name, layout.results / f"{name}.json", out)) for name in RENDER_ORDER]
    tasks.insert(2, (overview.write_figures, (cfg, inp, out)))
    run_tasks(tasks, workers=min(len(tasks), os.cpu_count() or 1, MAX_WORKERS))
    applies, _ = provenance.published_applies(inp.facts)
    appendix.write_appendix(layout.reports / "appendix.tex", layout.tables, layout.figures, out.profile_note,
                            published_in_body=applies)
    latex.write_numbers_tex(layout.reports / "numbers.tex", numbers, signed=headline.signed)
    latex.write_numbers_tex(layout.reports / "findings.tex", findings_macros(cfg, inp, numbers),
                            header="Findings worded by rules on numbers.tex, the run's labels and figure captions")
    print(f"report: wrote {layout.tables}, {layout.figures}, numbers.tex and findings.tex "
          f"({len(list(layout.tables.glob('*.tex')))} tables)")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, needs_study=True, stage_name=fixed_name("report"))


if __name__ == "__main__":
    run_stage(main)
