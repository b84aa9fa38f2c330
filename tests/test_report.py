"""The report toolkit: booktabs tables (LaTeX, CSV, Markdown), numbers.tex macros, the palette map,
figures, and the stage's process pool. The stage end to end, on a layout built from the in-memory
study fixture, is tested in tests/test_paper.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kdlab import analyses, metrics
from kdlab.config import TIERS
from kdlab.report import export, figures, latex, palette
from kdlab.stages import report

NASTY = "Credit card protection / Debt protection & 100%_"
DEMO = "DEMO: synthetic data, tiny models \u2014 not the study's numbers"


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
        "Per tier", n=6430, fold="full val", source="x_y & z", demo_note=DEMO, resamples=1000, seed=42))
    assert latex.braces_balanced(tex)
    lines = tex.splitlines()
    order = [r"\begin{table}[htbp]", r"\begin{tabular}{lrrrr}", r"\toprule", r"\midrule", r"\bottomrule",
             r"\end{tabular}", r"\end{table}"]
    assert [lines.index(x) for x in order] == sorted(lines.index(x) for x in order)
    assert r"\label{tab:tier}" in tex and r"\cmidrule(lr){2-3} \cmidrule(lr){4-5}" in tex
    cap = re.search(r"\\caption\{(.*)\}\n", tex).group(1)
    assert "$n = 6{,}430$" in cap and "1{,}000 resamples, seed 42" in cap and r"x\_y \& z" in cap
    assert cap.startswith(r"\textbf{DEMO: synthetic data, tiny models --- not the study's numbers.}")
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


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH (no TeX distribution)")
def test_a_wide_stacked_table_is_shrunk_to_the_line_width(tmp_path):
    """resize=True around stacked cells (which are tabulars themselves): the box closes after the outer
    tabular, and a table wider than the line compiles with no overfull box."""
    rng = np.random.default_rng(0)
    v = pd.DataFrame(rng.uniform(-1, 1, (3, 10)), index=["vanilla", "vanilla + T", "kd"],
                     columns=[f"metric {i}" for i in range(10)])
    table = latex.render_table(v, low=v - 0.5, high=v + 0.5, stack=True, signed=True, resize=True,
                               label="tab:wide", caption_tex="wide")
    assert table.count("\\resizebox") == 1
    assert table.rstrip().endswith("\\end{tabular}}\n\\end{table}"), table[-200:]
    (tmp_path / "t.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs,graphicx}\n"
                                    "\\begin{document}\n" + table + "\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Overfull" not in (tmp_path / "t.log").read_text()


def test_symbols_are_set_in_math_mode():
    text = latex.escape_latex("KL(teacher || student) <= 1, a < b > c | d \u2265 \u03b1 \u00d7 2")
    assert text == (r"KL(teacher $\|$ student) $\leq$ 1, a $<$ b $>$ c $|$ d $\geq$ $\alpha$ $\times$ 2")
    assert not re.search(r"[<>|]", re.sub(r"\$[^$]*\$", "", text))


def test_an_interval_that_excludes_its_estimate_is_marked_and_explained():
    v = pd.DataFrame({"ece": [0.023, 0.05], "macro_f1": [0.3, 0.31]}, index=["teacher", "kd"])
    low, high = v.copy(), v.copy()
    low.loc["teacher", "ece"], high.loc["teacher", "ece"] = 0.024, 0.053  # the teacher ECE
    low.loc["kd"], high.loc["kd"] = [0.04, 0.29], [0.06, 0.33]
    tex = latex.render_table(v, low=low, high=high, caption_tex="c", label="t", best_among=[])
    assert r"0.023 [0.024, 0.053]$^\dagger$" in tex and tex.count(r"$^\dagger$") == 2  # cell and caption
    assert "Binned ECE is a biased estimator" in tex and "Macro F1 of one system" not in tex
    plain = latex.render_table(v.loc[["kd"]], low=low.loc[["kd"]], high=high.loc[["kd"]], caption_tex="c", label="t")
    assert "dagger" not in plain


def test_stacked_cells_groups_and_row_overrides():
    v = pd.DataFrame({"ece": [0.1, 0.02, 1.371]}, index=["a", "b", "share (%)"])
    tex = latex.render_table(v, low=v - 0.01, high=v + 0.01, caption_tex="c", label="t", stack=True,
                             groups={"share (%)": "Shares"}, row_decimals={"share (%)": 1}, row_signed={"b": True})
    assert r"\begin{tabular}[t]{@{}r@{}}\textbf{+0.020}\\{\scriptsize [+0.010, +0.030]}\end{tabular}" in tex
    assert r"\midrule" + "\n" + r"\multicolumn{2}{l}{\emph{Shares}} \\" in tex and "1.4" in tex
    assert r"\textbf{+0.020}" in tex and r"\textbf{1.4}" not in tex  # lower ECE is better; overridden rows never compete
    assert r"\setlength{\tabcolsep}{4pt}" in tex and latex.braces_balanced(tex)


def test_write_table_writes_csv_and_markdown_next_to_the_tex(tmp_path):
    v = frame()
    latex.write_table(tmp_path / "t.tex", v, low=v - 0.01, high=v + 0.01, unavailable={"td16": "not published"},
                      best_among=["kd", NASTY], label="tab:t", caption_tex=latex.caption("Title", n=5, fold="f",
                                                                                          source=NASTY))
    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns)[:4] == ["row", "overall macro_f1", "overall macro_f1 low", "overall macro_f1 high"]
    assert csv.loc[csv["row"] == "kd", "overall macro_f1"].item() == pytest.approx(0.279)
    assert csv.loc[csv["row"] == "td16", "note"].item() == "not published"
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0].startswith("|") and md[1].startswith("|---") and "---:|" in md[1]
    (kd_row,) = [ln for ln in md if ln.startswith("| kd ")]
    assert "**0.279** [0.269, 0.289]" in kd_row and "\\" not in kd_row
    assert any(ln.startswith("| td16") and "*not published*" in ln for ln in md)
    assert f"Data: {NASTY}." in md[-1]  # the caption, as plain text


def test_plain_text_of_latex():
    assert export.plain(r"\textbf{0.2} [\ensuremath{-}0.1, 6{,}430] $\geq 0.7$ 95\,\% x\_y") == \
        "**0.2** [-0.1, 6,430] ≥ 0.7 95 % x_y"
    assert export.plain(latex.cell(0.5, 3, 0.4, 0.6, stack=True)) == "0.500 [0.400, 0.600]"


def test_palette_one_colour_per_system_and_lighter_when_scaled():
    pal = palette.system_palette(["vanilla", "kd", "td1", "top1_kd"], "vanilla", "kd", featured=["top1_kd"])
    assert pal == palette.system_palette(["vanilla", "kd", "td1", "top1_kd"], "vanilla", "kd", featured=["top1_kd"])
    assert pal["vanilla"] == palette.SYSTEM_COLORS[0] and pal["kd"] == palette.SYSTEM_COLORS[1]
    assert pal["top1_kd"] == palette.SYSTEM_COLORS[2] and pal["td1"] == palette.SYSTEM_COLORS[3]
    assert len({pal[s] for s in ("teacher", "teacher_raw", "vanilla", "kd", "td1", "top1_kd")}) == 6
    assert pal["vanilla + T"] == palette.lighter(pal["vanilla"]) != pal["vanilla"]
    assert palette.color(pal, "new + T") == "#999999" and palette.color(pal, "kd + T") == pal["kd + T"]
    assert not set(palette.TIER_COLORS.values()) & set(pal.values())


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


def test_figures_are_16_by_9_at_200_dpi_and_notes_wrap(tmp_path):
    figures.set_style()
    fig = figures.long_tail([50, 3, 20, 20, 1], ["head", "tail", "mid", "mid", "tail"], note="x " * 200)
    (title,) = [t for t in [fig._suptitle] if t is not None]
    assert max(len(line) for line in title.get_text().splitlines()) < 140
    figures.save_figure(fig, tmp_path / "tail")
    with Image.open(tmp_path / "tail.png") as im:
        assert im.size == (1440, 810) and round(im.info["dpi"][0]) == 200


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
# The stage's process pool
# --------------------------------------------------------------------------- #
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
