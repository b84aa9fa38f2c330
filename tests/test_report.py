"""The report toolkit: booktabs tables, numbers.tex macros, figures, and the `report` stage
on a small synthetic pipeline layout built in tmp_path (no training)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kdlab import analyses, calibration, io, metrics
from kdlab.config import TIERS, config_from_mapping
from kdlab.paths import Layout
from kdlab.predictions import Predictions, save_predictions
from kdlab.report import figures, latex, reproduction
from kdlab.stages import report, study

REPO = Path(__file__).resolve().parents[1]
NASTY = "Credit card protection / Debt protection & 100%_"


# --------------------------------------------------------------------------- #
# latex
# --------------------------------------------------------------------------- #
def frame():
    cols = pd.MultiIndex.from_tuples([(t, k) for t in ("overall", "head") for k in ("macro_f1", "ece")])
    return pd.DataFrame([[0.30, 0.02, 0.60, 0.03], [0.26, 0.13, 0.62, 0.12], [0.279, 0.05, 0.58, 0.05],
                         [np.nan] * 4], index=["teacher", NASTY, "kd", "td16"], columns=cols)


def body_row(tex, start):
    """The one table line that begins with ``start``."""
    (line,) = [ln for ln in tex.splitlines() if ln.startswith(start)]
    return line


def test_labels_are_escaped_like_pandas():
    tex = latex.render_table(frame(), caption_tex="c", label="tab:x")
    expected = NASTY.replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")
    assert latex.escape_latex(NASTY) == expected
    assert body_row(tex, expected + " &")
    assert NASTY not in tex


def test_bold_marks_best_by_direction_among_chosen_rows():
    tex = latex.render_table(frame(), caption_tex="c", label="tab:x", best_among=[NASTY, "kd", "td16"])
    kd, nasty = body_row(tex, "kd &"), body_row(tex, latex.escape_latex(NASTY))
    assert r"\textbf{0.279}" in kd and r"\textbf{0.050}" in kd  # F1 higher, ECE lower
    assert r"\textbf{0.620}" in nasty and r"\textbf{0.120}" not in nasty
    assert r"\textbf" not in body_row(tex, "teacher &")  # the teacher is outside best_among


def test_bold_ties_as_displayed_and_no_direction_no_bold():
    v = pd.DataFrame({"ece": [0.1234, 0.1231, 0.2], "temperature": [1.2, 1.5, 1.1]}, index=["a", "b", "c"])
    tex = latex.render_table(v, caption_tex="c", label="t")
    assert body_row(tex, "a &").count(r"\textbf") == 1 and body_row(tex, "b &").count(r"\textbf") == 1
    assert "1.100" in tex and r"\textbf{1.100}" not in tex and r"$T$" in tex


def test_ci_cells_and_negative_numbers():
    assert latex.cell(0.2634, 3, 0.2512, 0.2749) == "0.263 [0.251, 0.275]"
    assert latex.cell(0.2634, 3, np.nan, 0.27) == "0.263"
    assert latex.cell(np.nan, 3, 0.1, 0.2) == latex.MISSING
    assert latex.fixed(-0.0051, 3) == r"\ensuremath{-}0.005" and latex.fixed(0.02, 3, sign=True) == "+0.020"
    v = frame()
    tex = latex.render_table(v, caption_tex="c", label="t", low=v - 0.01, high=v + 0.01)
    assert r"\textbf{0.300} [0.290, 0.310]" in tex  # all rows compete by default


def test_unavailable_row_spans_the_metric_columns():
    tex = latex.render_table(frame(), caption_tex="c", label="t", unavailable={"td16": "not published (train mode)"})
    assert body_row(tex, "td16 &") == r"td16 & \multicolumn{4}{c}{\emph{not published (train mode)}} \\"
    assert "@@" not in tex


def test_table_structure_is_valid_latex():
    tex = latex.render_table(frame(), label="tab:tier", unavailable={"td16": "n/a_1"}, caption_tex=latex.caption(
        "Per tier", n=6430, fold="full val", source="x_y & z", demo_note=report.DEMO_NOTE, resamples=1000, seed=42))
    assert latex.braces_balanced(tex)
    lines = tex.splitlines()
    order = [r"\begin{table}[htbp]", r"\begin{tabular}{lrrrr}", r"\toprule", r"\midrule", r"\bottomrule",
             r"\end{tabular}", r"\end{table}"]
    assert [lines.index(x) for x in order] == sorted(lines.index(x) for x in order)
    assert r"\label{tab:tier}" in tex and r"\cmidrule(lr){2-3} \cmidrule(lr){4-5}" in tex
    cap = re.search(r"\\caption\{(.*)\}\n", tex).group(1)
    assert "$n = 6{,}430$" in cap and "1{,}000 resamples, seed 42" in cap and r"x\_y \& z" in cap
    assert cap.startswith(r"\textbf{DEMO: synthetic data, tiny models --- not the study's numbers}")
    for row in lines[lines.index(r"\midrule") + 1:lines.index(r"\bottomrule")]:  # 5 columns per row
        assert row.endswith(r"\\")
        spans = sum(int(n) - 1 for n in re.findall(r"\\multicolumn\{(\d+)\}", row))
        assert len(re.findall(r"(?<!\\)&", row)) + spans == 4, row


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH (no TeX distribution)")
def test_table_compiles_standalone_with_booktabs(tmp_path):
    v = frame()
    table = latex.render_table(v, low=v - 0.01, high=v + 0.01, unavailable={"td16": "not published (train mode)"},
                               label="tab:x", caption_tex=latex.caption("T", n=5, fold="f", source=NASTY))
    (tmp_path / "t.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                    + table + "\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


def test_braces_balanced():
    assert latex.braces_balanced(r"\textbf{a \{ b} \}")
    assert not latex.braces_balanced("{a}}{") and not latex.braces_balanced("{")


def test_numbers_tex_formats_and_validates(tmp_path):
    path = tmp_path / "numbers.tex"
    latex.write_numbers_tex(path, {"VanillaMacroFone": 0.26384, "NVal": 6430, "Lift": -0.0051, "Profile": "demo"})
    text = path.read_text()
    assert r"\newcommand{\kdVanillaMacroFone}{0.264}" in text and r"\newcommand{\kdNVal}{6{,}430}" in text
    assert r"\newcommand{\kdLift}{\ensuremath{-}0.005}" in text and r"\newcommand{\kdProfile}{demo}" in text
    for bad in ("Tail1", "tail_f1", "", "kd Lift", "Ünicode"):
        with pytest.raises(ValueError, match="letters only"):
            latex.numbers_tex({bad: 1.0})
    with pytest.raises(ValueError, match="unbalanced"):
        latex.numbers_tex({"Bad": "{oops"})
    with pytest.raises(TypeError):
        latex.numbers_tex({"Flag": True})
    assert latex.macro_name("td1_a07") == "TdOneAZeroSeven" and latex.macro_name("kd") == "Kd"
    assert latex.percent(1.371) == r"137\,\%" and latex.percent(np.nan) == latex.MISSING


# --------------------------------------------------------------------------- #
# figures
# --------------------------------------------------------------------------- #
def assert_figure_files(stem: Path):
    pdf, png = stem.with_name(stem.name + ".pdf"), stem.with_name(stem.name + ".png")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000


def test_figures_are_written_and_byte_stable(tmp_path):
    figures.set_style()
    rows = [{"system": s, "tier": t, "metric": m, "value": v, "low": v - 0.02, "high": v + 0.02}
            for s, base in (("vanilla", 0.3), ("kd", 0.35)) for t in ("overall",) + TIERS
            for m, v in (("macro_f1", base), ("ece", base / 5))]
    fig = figures.tier_bars(pd.DataFrame(rows), tier_n={"overall": 9, "head": 5, "mid": 3, "tail": 1}, note="DEMO")
    figures.save_figure(fig, tmp_path / "bars")
    assert_figure_files(tmp_path / "bars")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=200)
    bins = metrics.reliability_bins(probs, rng.integers(0, 5, 200), 15)
    for stem in ("rel_a", "rel_b"):
        figures.save_figure(figures.reliability_grid([("vanilla", bins), ("kd", bins)], note="n"), tmp_path / stem)
        assert_figure_files(tmp_path / stem)
    for ext in ("pdf", "png"):
        assert (tmp_path / f"rel_a.{ext}").read_bytes() == (tmp_path / f"rel_b.{ext}").read_bytes()
    figures.save_figure(figures.long_tail([50, 3, 20, 20, 1], ["head", "tail", "mid", "mid", "tail"]),
                        tmp_path / "tail")
    assert_figure_files(tmp_path / "tail")


# --------------------------------------------------------------------------- #
# The stage on a synthetic layout
# --------------------------------------------------------------------------- #
LABELS = ["Alpha", NASTY, "Gamma", "Delta", "Epsilon", "Zeta"]
CLASS_TIERS = ["head", "head", "mid", "mid", "tail", "tail"]
TRAIN_COUNTS = [50, 40, 20, 15, 5, 3]


def fake_predictions(rng, labels, tiers, skill):
    logits = rng.normal(size=(len(labels), len(LABELS))) + skill * np.eye(len(LABELS))[labels]
    return Predictions.from_logits(np.arange(len(labels)), logits, labels, tiers)


def build_layout(root: Path, params_raw: dict, unavailable: tuple[str, ...] = ()) -> tuple:
    """params.yaml (demo, arms vanilla, kd, td1_a09) and every input of the report stage."""
    raw = {**params_raw, "profile": "demo"}
    raw["arms"] = {"vanilla": raw["arms"]["vanilla"], "kd": raw["arms"]["kd"],
                   "td1_a09": {"loss": "kd", "kd_temperature": 1.0, "alpha": 0.9}}
    raw["sweep"] = {"kd_temperature": [8], "alpha": [0.7]}  # one cell: sweep@8-0.7
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg, layout = config_from_mapping(raw, "params.yaml"), Layout(root)
    study.run(cfg, layout, None)  # results/study.json, which the stage's entry point checks
    rng = np.random.default_rng(0)
    labels = rng.choice(len(LABELS), size=120, p=np.array(TRAIN_COUNTS) / sum(TRAIN_COUNTS))
    class_tiers = np.array([TIERS.index(t) for t in CLASS_TIERS])
    tiers = class_tiers[labels]
    io.write_json(layout.data_card, {
        "n_classes": len(LABELS), "labels": LABELS, "class_tiers": CLASS_TIERS, "train_class_counts": TRAIN_COUNTS,
        "tier_classes": {t: CLASS_TIERS.count(t) for t in TIERS}, "split_sizes": {"train": 133, "val": 120},
        "source": "synthetic", "profile": "demo"})
    teacher = fake_predictions(rng, labels, tiers, 3.0)
    io.save_npz(layout.teacher_val_final, logits=teacher.logits, labels=labels, tiers=tiers)
    io.write_json(layout.teacher_card, {"source": "trained", "temperature": 1.2538})
    ev = cfg.evaluation
    cal_idx, eval_idx = calibration.calibration_fold(len(labels), ev.calibration_fold_seed, ev.calibration_fold_size)

    def views(pred, temperature=None):
        def summary(p, t=1.0):
            return metrics.summarize(p.probs(t), p.labels, p.preds, p.tiers, class_tiers, ev.ece_bins)
        half = pred.subset(eval_idx)
        out = {"full_val": summary(pred), "eval_half": summary(half)}
        return out if temperature is None else {**out, "eval_half_ts": summary(half, temperature),
                                                "temperature": temperature}

    evaluate = {"profile": "demo", "n_val": len(labels), "eval_half_size": len(eval_idx),
                "teacher": views(teacher), "teacher_raw": views(teacher, 1.1), "arms": {}}
    cal = {"fold": {"seed": ev.calibration_fold_seed, "n": len(labels), "cal_size": len(cal_idx),
                    "eval_size": len(eval_idx)}, "teacher_raw": {"temperature": 1.1, "converged": True}, "arms": {}}
    for i, arm in enumerate(cfg.arm_names):
        if arm in unavailable:
            reason = {"available": False, "reason": "not published (train mode)"}
            io.write_json(layout.arm_card(arm), reason)
            evaluate["arms"][arm], cal["arms"][arm] = reason, reason
            continue
        pred = fake_predictions(rng, labels, tiers, 1.5 + 0.5 * i)
        save_predictions(layout.predictions(arm), pred)
        io.write_json(layout.arm_card(arm), {"available": True})
        temperature = 1.3 + 0.1 * i
        evaluate["arms"][arm] = {"available": True, **views(pred, temperature)}
        cal["arms"][arm] = {"temperature": temperature, "converged": True}
    io.write_json(layout.metrics / "evaluate.json", evaluate)
    io.write_json(layout.results / "calibration.json", cal)
    return cfg, layout, evaluate


OUTPUTS = ["tables/tier_f1_ece.tex", "tables/calibration_eval_half.tex", "tables/published_check.tex",
           "numbers.tex"] + [
    f"figures/{stem}.{ext}" for stem in ("tier_f1_ece", "reliability", "long_tail") for ext in ("pdf", "png")]


def macros(path: Path) -> dict[str, str]:
    return dict(re.findall(r"\\newcommand\{\\(kd[A-Za-z]+)\}\{(.*)\}$", path.read_text(), flags=re.M))


def without_analyses(patch) -> None:
    """The report stage without the analyses' tables, figures and numbers (those are tested in
    tests/test_analyses_*.py and, end to end, in test_e2e.py)."""
    patch.setattr(report, "RENDER_ORDER", [])
    patch.setattr(report, "analysis_numbers", lambda layout, taken: {})


def test_stage_writes_every_output(tmp_path, params_raw, monkeypatch):
    _, _, evaluate = build_layout(tmp_path, params_raw)
    monkeypatch.chdir(tmp_path)
    without_analyses(monkeypatch)
    assert report.main([]) == 0
    for rel in OUTPUTS:
        assert (tmp_path / "reports" / rel).stat().st_size > 0, rel
    m = macros(tmp_path / "reports" / "numbers.tex")
    arms = evaluate["arms"]
    assert m["kdKdMacroFone"] == f"{arms['kd']['full_val']['overall']['macro_f1']:.3f}"
    assert m["kdVanillaTemperature"] == f"{arms['vanilla']['temperature']:.3f}"
    lift = arms["kd"]["full_val"]["overall"]["macro_f1"] - arms["vanilla"]["full_val"]["overall"]["macro_f1"]
    assert m["kdKdMacroFoneLift"] == latex.fixed(lift, 3, sign=True)
    assert m["kdDemoNote"].startswith(r"\textbf{DEMO") and "kdTdOneAZeroNineMacroFone" in m
    # the published-numbers check: the evaluate.json rows are compared, the analyses' files are absent here
    listed = len(reproduction.load_reference())
    assert m["kdPublishedListed"] == str(listed) and int(m["kdPublishedCompared"]) >= 8
    check_tex = (tmp_path / "reports/tables/published_check.tex").read_text()
    assert "results/tiers.json not found" in check_tex and "Synthetic data: nothing here is expected" in check_tex
    cfg = config_from_mapping(yaml.safe_load((tmp_path / "params.yaml").read_text()))
    assert report.figure_note(cfg, report.Inputs.read(Layout(tmp_path)), "val", 3).startswith(report.DEMO_NOTE)
    tier_tex = (tmp_path / "reports/tables/tier_f1_ece.tex").read_text()
    assert latex.escape_latex(report.DEMO_NOTE) in tier_tex and "$n = 120$" in tier_tex
    assert [ln.split(" &")[0] for ln in tier_tex.splitlines() if ln.endswith(r"\\")][2:] == [
        "teacher", "vanilla", "kd", "td1\\_a09", "sweep@8-0.7"]


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory):
    """The stage run once on a layout whose arm td1_a09 is unavailable (shared by the tests below)."""
    params_raw = yaml.safe_load((REPO / "params.yaml").read_text())
    cfg, layout, _ = build_layout(tmp_path_factory.mktemp("audit"), params_raw, unavailable=("td1_a09",))
    with pytest.MonkeyPatch.context() as patch:
        without_analyses(patch)
        report.run(cfg, layout)
    return layout


def test_stage_marks_unavailable_arms(audit_run):
    tier_tex = (audit_run.tables / "tier_f1_ece.tex").read_text()
    assert r"td1\_a09 & \multicolumn{8}{c}{\emph{not published (train mode)}} \\" in tier_tex
    assert macros(audit_run.reports / "numbers.tex")["kdTdOneAZeroNineMacroFone"] == "--"


def _write_square(path: Path, x: int) -> None:
    if x < 0:
        raise ValueError(f"negative: {x}")
    path.write_text(str(x * x))


@pytest.mark.parametrize("workers", [1, 2])
def test_run_tasks_runs_every_task_in_any_number_of_processes(tmp_path, workers):
    report.run_tasks([(_write_square, (tmp_path / f"{x}.txt", x)) for x in range(5)], workers)
    assert [(tmp_path / f"{x}.txt").read_text() for x in range(5)] == ["0", "1", "4", "9", "16"]


@pytest.mark.parametrize("workers", [1, 2])
def test_run_tasks_raises_a_task_error(tmp_path, workers):
    with pytest.raises(ValueError, match="negative: -1"):
        report.run_tasks([(_write_square, (tmp_path / "a.txt", 2)), (_write_square, (tmp_path / "b.txt", -1))], workers)


def test_render_order_covers_every_analysis_once():
    assert sorted(report.RENDER_ORDER) == sorted(analyses.ANALYSES)
