"""The demo DAG end to end through DVC, in a temporary copy of the repository.

Runs `dvc exp run -S profile=demo` (the documented switch) once per session and
checks what the stages wrote. Marked ``e2e``: minutes, not seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from kdlab import io, metrics
from kdlab.config import load_config
from kdlab.paths import Layout
from kdlab.predictions import load_predictions
from conftest import run

pytestmark = pytest.mark.e2e


def test_documented_switch_selects_demo(demo_repo):
    assert load_config(demo_repo / "params.yaml").profile == "demo"
    card = io.read_json(Layout(demo_repo).data_card)
    assert card["source"] == "synthetic" and card["n_classes"] == 113


def test_nothing_changed_means_nothing_runs(demo_repo):
    status = run(["dvc", "status"], demo_repo)
    assert "changed" not in status.stdout, status.stdout
    again = run(["dvc", "repro"], demo_repo)
    assert "Running stage" not in again.stdout, again.stdout


def test_prepared_splits_and_tiers(demo_repo):
    import pandas as pd

    layout = Layout(demo_repo)
    card = io.read_json(layout.data_card)
    for name in ("train", "val", "test"):
        frame = pd.read_parquet(layout.split(name))
        assert list(frame.columns)[:5] == ["row_id", "text", "label", "label_name", "tier"]
        assert len(frame) == card["split_sizes"][name]
        assert frame["row_id"].tolist() == list(range(len(frame)))
    assert card["tier_classes"] == {"head": 20, "mid": 40, "tail": 53}


def test_teacher_files_match_published_format(demo_repo):
    layout = Layout(demo_repo)
    card = io.read_json(layout.data_card)
    n_tt = card["split_sizes"]["train"] + card["split_sizes"]["test"]
    for path in (layout.teacher_train_test_raw, layout.teacher_train_test_final):
        arrays = io.load_npz(path)
        assert arrays["logits"].dtype == np.float16 and arrays["logits"].shape == (n_tt, 113)
    val = io.load_npz(layout.teacher_val_final)
    assert set(val) == {"logits", "labels", "tiers"} and val["logits"].shape == (card["split_sizes"]["val"], 113)
    teacher_card = io.read_json(layout.teacher_card)
    assert teacher_card["temperature"] > 0
    assert 0 < teacher_card["final"]["overall"]["macro_f1"] <= 1


def test_arms_outputs_and_metrics(demo_repo):
    layout = Layout(demo_repo)
    cfg = load_config(demo_repo / "params.yaml")
    evaluation = io.read_json(layout.metrics / "evaluate.json")
    for arm in cfg.arm_names:
        pred = load_predictions(layout.predictions(arm))
        assert pred.logits.shape == (evaluation["n_val"], 113)
        assert (layout.run(arm) / "model.safetensors").stat().st_size > 0
        log = (layout.run(arm) / "train_log.csv").read_text().splitlines()
        assert log[0] == "step,epoch,loss,lr" and len(log) > 3
        overall = evaluation["arms"][arm]["full_val"]["overall"]
        assert 0 <= overall["ece"] <= 1 and overall["nll"] > 0
        # the demo is a real learning problem: head clearly learnt, tail much weaker
        tiers = evaluation["arms"][arm]["full_val"]
        assert tiers["head"]["macro_f1"] > 0.4 > tiers["tail"]["macro_f1"]
        # temperature scaling never changes the argmax, so F1 is unchanged exactly
        assert evaluation["arms"][arm]["eval_half_ts"]["overall"]["macro_f1"] == \
            evaluation["arms"][arm]["eval_half"]["overall"]["macro_f1"]


def test_kd_student_is_closer_to_teacher_than_vanilla(demo_repo):
    """Holds only if the KD path (teacher rows, soft targets, T^2) is wired right."""
    layout = Layout(demo_repo)
    teacher = io.load_npz(layout.teacher_val_final)
    p_teacher = metrics.softmax(teacher["logits"].astype(np.float32))
    js = {arm: metrics.js_divergence(p_teacher, load_predictions(layout.predictions(arm)).probs()).mean()
          for arm in ("vanilla", "kd")}
    assert js["kd"] < js["vanilla"], js


def test_rerun_is_bit_identical(demo_repo):
    layout = Layout(demo_repo)
    before = layout.predictions("vanilla").read_bytes()
    run(["dvc", "repro", "-f", "-s", "train@vanilla"], demo_repo)
    assert layout.predictions("vanilla").read_bytes() == before


def test_report_rerun_is_byte_identical(demo_repo):
    """The report draws in parallel processes; its tables, figures (PDF and PNG) and numbers must not
    depend on which process drew what, nor carry dates."""
    reports = Layout(demo_repo).reports
    files = sorted(p for p in reports.rglob("*") if p.is_file() and p.name != "paper.tex")
    before = {p: p.read_bytes() for p in files}
    assert len([p for p in files if p.suffix == ".png"]) >= 10
    run(["dvc", "repro", "-f", "-s", "report"], demo_repo)
    assert sorted(p for p in reports.rglob("*") if p.is_file() and p.name != "paper.tex") == files
    changed = [str(p.relative_to(reports)) for p in files if p.read_bytes() != before[p]]
    assert not changed, changed


def test_dvc_plots_render_every_declared_plot(demo_repo, tmp_path):
    """`dvc plots show` renders the training curves and each declared figure (from the demo run)."""
    images = [p for p in yaml.safe_load((demo_repo / "dvc.yaml").read_text())["plots"] if isinstance(p, str)]
    assert {"reports/figures/reliability.png", "reports/figures/coverage_curves.png"} <= set(images)
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], demo_repo)
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "training loss" in page and all(f"{arm}/train_log.csv" in page for arm in ("vanilla", "kd", "top1_kd"))
    rendered = {p.name for p in (tmp_path / "plots" / "static").iterdir()}
    for image in images:
        assert "workspace_" + image.replace("/", "_") in rendered, image


def test_every_published_number_is_located_in_the_demo_outputs(demo_repo):
    """Each reference row of the published-numbers check resolves to a value of this run, except
    those that name no kdlab output (the TF-IDF baseline); so the reference paths are right."""
    from kdlab.report import reproduction

    values = dict(re.findall(r"\\newcommand\{\\kd(Published[A-Za-z]+)\}\{(.*)\}",
                             (Layout(demo_repo).reports / "numbers.tex").read_text()))
    rows = reproduction.load_reference()
    assert int(values["PublishedListed"]) == len(rows)
    assert int(values["PublishedCompared"]) == sum(r["file"] is not None for r in rows)
    assert "not in this run" not in (Layout(demo_repo).tables / "published_check.tex").read_text()


def defined_macros(path) -> set[str]:
    return set(re.findall(r"\\newcommand\{\\(kd[A-Za-z]+)\}", path.read_text()))


def test_report_outputs_and_paper_references(demo_repo):
    """Every macro paper.tex cites is defined and every file it includes exists."""
    reports = Layout(demo_repo).reports
    paper = (reports / "paper.tex").read_text()
    used = set(re.findall(r"\\(kd[A-Za-z]+)", paper))
    defined = defined_macros(reports / "numbers.tex") | defined_macros(reports / "findings.tex")
    assert used and used <= defined, used - defined
    for rel in re.findall(r"\\(?:input|includegraphics(?:\[[^]]*\])?)\{([^}]+)\}", paper):
        assert (reports / rel).exists(), rel
    for table in (reports / "tables").glob("*.tex"):
        text = table.read_text()
        assert "\\begin{tabular}" in text and "DEMO" in text, table.name


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH (no TeX distribution)")
def test_paper_compiles_with_pdflatex(demo_repo, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(Layout(demo_repo).reports, reports)
    cmd = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"]
    for _ in range(2):  # the second pass resolves \ref
        result = subprocess.run(cmd, cwd=reports, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:]
    log = (reports / "paper.log").read_text(errors="replace")
    assert "undefined" not in log.lower(), "undefined macro or reference in paper.tex"
    assert (reports / "paper.pdf").stat().st_size > 10_000


def test_each_arm_folder_is_a_model_people_can_use(demo_repo):
    """runs/<arm>/ loads with transformers' pipeline and no other argument, returns a real issue name,
    and carries its model card."""
    from transformers import pipeline

    layout = Layout(demo_repo)
    labels = io.read_json(layout.data_card)["labels"]
    classify = pipeline("text-classification", model=str(layout.run("kd")))
    out = classify("I was charged a late fee after I paid my credit card bill on time.", truncation=True)
    assert out[0]["label"] in labels and 0 < out[0]["score"] <= 1
    card = (layout.run("kd") / "README.md").read_text()
    assert card.startswith("---") and "DEMO model" in card
