"""The `report` stage end to end and the paper it feeds.

A layout built from the in-memory study fixture (tests/report_fixture.py: every analysis computed,
the cards of a demo run, one arm unpublished) goes through the whole stage; the outputs are checked
as products: every table also as CSV and Markdown, figures 16:9 at 200 dpi with written captions and
no duplicate, findings citing only defined macros, no text-mode < > | in generated tables, labels
that follow the cards (demo, local data, audit), and reports/paper.tex compiled with pdflatex (where
installed) without an overfull box over 10 pt, an undefined reference or a float too large. The e2e
test does the same compile on the demo DAG's own outputs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from kdlab import cli, io
from kdlab.paths import Layout
from kdlab.report import captions
from kdlab.stages import report
from report_fixture import build_report_inputs, copy_paper

PDFLATEX = shutil.which("pdflatex")
MAX_OVERFULL_PT = 10.0
BODY_TABLES = ("paper_tiers", "paper_calibration", "paper_busbridge", "paper_stanton", "paper_sweep", "paper_coverage")


# --------------------------------------------------------------------------- #
# Checks (plain functions: the e2e test uses them on the demo's outputs)
# --------------------------------------------------------------------------- #
def _strip_group(text: str, start: int) -> int:
    """Index after the brace group that opens at ``text[start] == "{"``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{" and text[i - 1] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def text_mode_symbols(tex: str) -> list[str]:
    """The lines of ``tex`` holding a < > or | outside math mode (tabular column specs excluded)."""
    for opening in (r"\begin{tabular}", r"\begin{tabular}[t]"):
        while opening + "{" in tex:  # drop column specs such as >{\raggedright\arraybackslash}p{...}
            at = tex.index(opening + "{") + len(opening)
            tex = tex[:at - len(opening)] + "@TABULAR@" + tex[_strip_group(tex, at):]
    out = []
    for line in tex.splitlines():
        bare = re.sub(r"(?<!\\)\$[^$]*(?<!\\)\$", "", line)
        bare = re.sub(r"\\ensuremath\{[^{}]*\}", "", bare)
        bare = re.sub(r"\\ifdim\\width[<>]\\linewidth", "", bare)  # a TeX dimension test (latex.py's resize)
        if re.search(r"[<>|]", bare):
            out.append(line)
    return out


def compile_paper(reports: Path) -> str:
    """pdflatex twice in ``reports`` (log lines unwrapped); returns the log."""
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "max_print_line": "100000", "HOME": str(reports)}
    for _ in range(2):
        result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=reports,
                                capture_output=True, text=True, timeout=300, env={**env})
        assert result.returncode == 0, result.stdout[-3000:]
    return (reports / "paper.log").read_text(errors="replace")


def log_problems(log: str) -> list[str]:
    """Overfull boxes over MAX_OVERFULL_PT, undefined or multiply defined references, floats too large."""
    problems = [m.group(0) for m in re.finditer(r"Overfull \\[hv]box \(([\d.]+)pt too wide\)[^\n]*", log)
                if float(m.group(1)) > MAX_OVERFULL_PT]
    problems += re.findall(r"LaTeX Warning: (?:Reference|Citation|Label)[^\n]*(?:undefined|multiply defined)[^\n]*",
                           log)
    problems += re.findall(r"LaTeX Warning: There were (?:undefined|multiply-defined)[^\n]*", log)
    problems += re.findall(r"LaTeX Warning: Float too large[^\n]*", log)
    problems += re.findall(r"^! [^\n]*", log, flags=re.M)
    return problems


def body_pages(aux: str) -> int:
    """Pages before the appendix: the page of the first appendix section label minus one."""
    pages = [int(p) for p in re.findall(r"\\newlabel\{sec:teacher_diag\}\{\{A\}\{(\d+)\}", aux)]
    return pages[0] - 1


# --------------------------------------------------------------------------- #
# The stage on the fixture layout
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Layout:
    """The whole stage once, on a demo run's cards with top1_kd unpublished."""
    cfg, layout = build_report_inputs(tmp_path_factory.mktemp("paper"), "demo", unavailable=("top1_kd",))
    report.run(cfg, layout)
    copy_paper(layout)
    return layout


def macros(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^\\newcommand\{\\(kd[A-Za-z]+)\}\{(.*)\}$", path.read_text(), flags=re.M))


def test_every_table_is_also_csv_and_markdown(demo):
    tables = sorted(demo.tables.glob("*.tex"))
    assert {f"{t}.tex" for t in BODY_TABLES} <= {t.name for t in tables}
    for tex in tables:
        for ext in (".csv", ".md"):
            assert tex.with_suffix(ext).stat().st_size > 0, tex.with_suffix(ext)
        assert not text_mode_symbols(tex.read_text()), (tex.name, text_mode_symbols(tex.read_text()))
    for name in BODY_TABLES:  # the body's tables carry intervals (stacked under the estimate)
        assert r"{\scriptsize [" in (demo.tables / f"{name}.tex").read_text(), name


def test_figures_are_16_9_pngs_at_200_dpi_each_with_a_written_caption_and_shown_once(demo):
    stems = sorted(p.stem for p in demo.figures.glob("*.pdf"))
    assert set(stems) == set(captions.FIGURE_CAPTIONS)
    for stem in stems:
        with Image.open(demo.figures / f"{stem}.png") as im:
            assert im.size == (1440, 810) and round(im.info["dpi"][0]) == 200, stem
    shown = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{figures/([a-z0-9_]+)\.pdf\}",
                       (demo.reports / "paper.tex").read_text() + (demo.reports / "appendix.tex").read_text())
    assert sorted(shown) == stems  # every figure once: no duplicate (one reliability figure)
    assert "teacher diag support f1" not in (demo.reports / "appendix.tex").read_text()


def test_findings_and_paper_cite_only_defined_macros(demo):
    defined = set(macros(demo.reports / "numbers.tex")) | set(macros(demo.reports / "findings.tex"))
    for name in ("paper.tex", "findings.tex", "appendix.tex"):
        used = set(re.findall(r"\\(kd[A-Za-z]+)", (demo.reports / name).read_text()))
        assert used <= defined, (name, used - defined)
        assert used or name == "appendix.tex", name
    found = macros(demo.reports / "findings.tex")
    for key in ("kdFindingTiers", "kdFindingCalibration", "kdFindingStanton", "kdFindingSweep", "kdFindingCoverage"):
        assert not re.search(r"\d\.\d", found[key]), key  # numbers are macros, never literals
    assert "not available" in found["kdFindingBusbridge"]  # top1_kd is unpublished here


def test_demo_labels_and_the_published_section(demo):
    found, numbers = macros(demo.reports / "findings.tex"), macros(demo.reports / "numbers.tex")
    assert found["kdRunWarning"] == r"\textbf{DEMO: synthetic data, tiny models --- not the study's numbers}"
    assert "tiny ModernBERT" in found["kdRunDistilledFrom"] and "large" not in found["kdRunDistilledFrom"]
    assert r"\input" not in found["kdPublishedSection"] and "not compared" in found["kdPublishedSection"]
    assert r"\input{tables/published_check.tex}" in (demo.reports / "appendix.tex").read_text()
    assert "NOT APPLICABLE" in (demo.tables / "published_check.tex").read_text()
    assert numbers["kdRecipeTd"] == "4" and numbers["kdRecipeAlpha"] == "0.7"
    for table in demo.tables.glob("*.tex"):
        assert "DEMO: synthetic data, tiny models" in table.read_text(), table.name


def relabel(demo: Layout, dest: Path, data: str, teacher: dict, arm_source: str) -> Layout:
    """A copy of the fixture's inputs with other cards, through the stage without drawing (labels only)."""
    for rel in ("data", "runs", "metrics", "results", "reports"):
        shutil.copytree(demo.root / rel, dest / rel)
    layout = Layout(dest)
    io.write_json(layout.data_card, {**io.read_json(layout.data_card), "source": data})
    if teacher:  # the card a teacher of that source writes: nothing of the fixture's teacher left over
        io.write_json(layout.teacher_card, {**teacher, "temperature": io.read_json(layout.teacher_card)["temperature"]})
    for card_path in layout.root.glob("runs/*/arm.json"):
        card = io.read_json(card_path)
        if card.get("available"):
            card["source"] = arm_source
            if arm_source == "published":
                card.pop("backbone", None)
        io.write_json(card_path, card)
    return layout


@pytest.fixture
def no_drawing(monkeypatch):
    monkeypatch.setattr(report, "RENDER_ORDER", [])
    monkeypatch.setattr(report.overview, "write_figures", lambda *a: None)
    monkeypatch.setattr(report.appendix, "write_appendix", lambda *a, **k: None)


def test_local_data_with_the_demo_models_is_labelled_as_such(demo, tmp_path, no_drawing):
    from study_fixture import demo_config

    layout = relabel(demo, tmp_path, "local", {}, "trained")
    report.run(demo_config(100), layout)
    found = macros(layout.reports / "findings.tex")
    assert found["kdRunWarning"].startswith(r"\textbf{NOT THE STUDY'S SETUP: local data file, tiny models")
    assert "own data" in found["kdRunData"]
    for table in layout.tables.glob("*.tex"):
        text = table.read_text()
        assert "DEMO" not in text and "synthetic" not in text, table.name
        assert "local data file, tiny models" in text, table.name
    assert "not compared" in found["kdPublishedSection"]


def test_audit_cards_give_the_study_labels_and_the_published_section(demo, tmp_path, no_drawing):
    from study_fixture import demo_config

    layout = relabel(demo, tmp_path, "hub", {"source": "published"}, "published")
    report.run(demo_config(100), layout)
    found, numbers = macros(layout.reports / "findings.tex"), macros(layout.reports / "numbers.tex")
    assert found["kdRunWarning"] == "" and numbers["kdDemoNote"] == ""
    assert "Qwen3-32B + LoRA" in found["kdRunTeacher"] and "published student predictions" in found["kdRunStudents"]
    assert r"\input{tables/published_check.tex}" in found["kdPublishedSection"]
    check = (layout.tables / "published_check.tex").read_text()
    assert "NOT APPLICABLE" not in check and "median of 1,000 paired resamples" in check
    assert not any("DEMO" in t.read_text() for t in layout.tables.glob("*.tex"))


def test_kdlab_results_prints_the_headline_table(demo, capsys):
    assert cli.main(["results", "--root", str(demo.root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("|") and "| head (n = " in out and "DEMO: synthetic data" in out
    assert cli.main(["results", "nope", "--root", str(demo.root)]) == 1
    assert "paper_tiers" in capsys.readouterr().err


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex not on PATH (no TeX distribution)")
def test_the_paper_compiles_clean(demo, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(demo.reports, reports)
    log = compile_paper(reports)
    assert not log_problems(log), log_problems(log)
    assert 6 <= body_pages((reports / "paper.aux").read_text()) <= 13
    assert (reports / "paper.pdf").stat().st_size > 100_000


def test_the_checks_catch_what_they_look_for():
    assert text_mode_symbols("a & b <= c \\\\") and text_mode_symbols("KL(teacher || student)")
    assert not text_mode_symbols(r"a $\leq$ b \begin{tabular}{>{\raggedright}p{1cm}|r} $|x|$")
    log = ("Overfull \\hbox (144.8pt too wide) in paragraph\nOverfull \\hbox (2.7pt too wide) in alignment\n"
           "LaTeX Warning: Reference `tab:x' on page 3 undefined on input line 5.\n"
           "LaTeX Warning: Float too large for page by 97.4pt on input line 39.\n")
    assert len(log_problems(log)) == 3 and "144.8pt" in log_problems(log)[0]


# --------------------------------------------------------------------------- #
# The demo DAG's own outputs
# --------------------------------------------------------------------------- #
@pytest.mark.e2e
@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex not on PATH (no TeX distribution)")
def test_the_demo_paper_compiles_clean(demo_repo, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(Layout(demo_repo).reports, reports)
    shutil.copy2(Path(__file__).resolve().parents[1] / "reports" / "paper.tex", reports / "paper.tex")
    for table in (reports / "tables").glob("*.tex"):
        assert not text_mode_symbols(table.read_text()), table.name
    log = compile_paper(reports)
    assert not log_problems(log), log_problems(log)
    assert 6 <= body_pages((reports / "paper.aux").read_text()) <= 13
