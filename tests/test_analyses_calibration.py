"""Content tests of teacher_diag, calibration_suite, han_guo, coverage and sweep on an in-memory
study (tests/study_fixture.py), and on the same with two arms 'not published (train mode)'."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from kdlab import metrics, selective
from kdlab.analyses import calibration_suite, coverage, han_guo, sweep, teacher_diag
from kdlab.arms import ArmOutput
from kdlab.report import latex

from study_fixture import make_study

MODULES = {m.__name__.rsplit(".", 1)[-1]: m for m in (teacher_diag, calibration_suite, han_guo, coverage, sweep)}
MISSING = ("kd_raw_teacher", "sweep@8-0.9")
REASON = "not published (train mode)"
LOOP = 40


@dataclass
class Out:
    tables: Path
    figures: Path
    profile_note: str = "DEMO: synthetic data, tiny models - not the study's numbers"
    source: str = "in-memory test fixture"
    palette: dict = field(default_factory=dict)  # the report's palette map (empty: default colours)


@pytest.fixture(scope="module")
def study():
    return make_study(n=600, resamples=100)


@pytest.fixture(scope="module")
def study_missing(study):
    """``study`` as make_study(unavailable=MISSING) builds it (the same arm cards and calibration
    records, see tests/study_fixture.py) without refitting 17 temperatures (~5 s)."""
    gone = {"available": False, "reason": REASON}
    arms = {n: ArmOutput(n, dict(gone), None) if n in MISSING else a for n, a in study.arms.items()}
    cal = {**study.calibration, "arms": {n: dict(gone) if n in MISSING else r
                                         for n, r in study.calibration["arms"].items()}}
    return dataclasses.replace(study, arms=arms, calibration=cal, _cache={})


def _compute_all(study) -> dict:
    # the looped metrics (adaptive ECE, smECE) cost ~1 ms per resample: 40 of the 100 resamples here
    ev = study.cfg.evaluation
    cfg = dataclasses.replace(study.cfg, evaluation=dataclasses.replace(
        ev, bootstrap=dataclasses.replace(ev.bootstrap, loop_resamples=LOOP)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(study, "cfg", cfg)
        return {name: mod.compute(study) for name, mod in MODULES.items()}


@pytest.fixture(scope="module")
def results(study):
    return _compute_all(study)


@pytest.fixture(scope="module")
def results_missing(study_missing):
    return _compute_all(study_missing)


def _row(rows, system):
    return next(r for r in rows if r["system"] == system)


def test_temperature_scaling_leaves_macro_f1_unchanged(study, results):
    course = results["han_guo"]["tables"]["course"]
    for arm in ("vanilla", "kd"):
        assert _row(course, arm)["macro_f1"] == _row(course, f"{arm} + T")["macro_f1"]
        assert results["han_guo"]["argmax_unchanged_by_T"][arm] is True
        ev = study.fold[1]
        raw, scaled = study.probs(arm)[ev].argmax(1), study.probs(arm, scaled=True)[ev].argmax(1)
        assert metrics.macro_f1(study.labels[ev], raw) == metrics.macro_f1(study.labels[ev], scaled)
        assert _row(course, f"{arm} + T")["temperature"] == pytest.approx(study.temperature(arm))


def test_han_guo_share_is_computed_from_the_tables_own_numbers(study, results):
    res = results["han_guo"]
    course, shares = res["tables"]["course"], {r["metric"]: r for r in res["tables"]["course_shares"]}
    ev = study.fold[1]
    assert res["fold"]["course"] == f"eval half, n={len(ev)}, seed 1041"
    # the table's ECE is the eval-half ECE of the raw vanilla arm
    assert _row(course, "vanilla")["ece"] == metrics.ece(study.probs("vanilla")[ev], study.labels[ev], 15)
    for key in ("ece", "nll"):
        v, vt, kd = (_row(course, s)[key] for s in ("vanilla", "vanilla + T", "kd"))
        assert shares[key]["share"] == pytest.approx((v - vt) / (v - kd), rel=1e-12)
        assert shares[key]["numerator"] == pytest.approx(v - vt, rel=1e-12)
        assert shares[key]["denominator"] == pytest.approx(v - kd, rel=1e-12)
    assert res["numbers"]["HanGuoShareEce"] == latex.percent(shares["ece"]["share"], 0)
    # the paper's quantity, from its own table
    paper, pshare = res["tables"]["paper"], res["tables"]["paper_shares"][0]
    e = {r["system"]: r["ece"] for r in paper}
    assert pshare["share"] == pytest.approx((e["kd_raw_teacher"] - e["kd"]) / (e["teacher_raw"] - e["teacher"]))


def test_share_intervals_are_ordered(results):
    res = results["han_guo"]
    for r in res["tables"]["course_shares"] + res["tables"]["paper_shares"]:
        assert r["share_low"] <= r["share_median"] <= r["share_high"]
    assert res["bootstrap"] == {"resamples": 100, "seed": 42}


def test_han_guo_paper_reported_unavailable(results_missing):
    res = results_missing["han_guo"]
    assert res["unavailable"]["kd_raw_teacher"] == REASON
    for r in res["tables"]["paper_shares"]:
        assert r["available"] is False and "kd_raw_teacher" in r["reason"] and REASON in r["reason"]
    assert _row(res["tables"]["paper"], "kd_raw_teacher") == {"system": "kd_raw_teacher", "arm": "kd_raw_teacher",
                                                              "available": False, "reason": REASON}
    assert res["numbers"]["HanGuoPaperShareEce"] == "--"
    assert all(r["available"] for r in res["tables"]["course_shares"])  # (a) does not need that arm


def test_coverage_table_equals_metrics(study, results):
    res, th = results["coverage"], list(study.cfg.evaluation.thresholds)
    rows = res["tables"]["coverage"]
    for view, system, arm, scaled, idx in (("full", "teacher", "teacher", False, np.arange(study.n)),
                                           ("full", "kd", "kd", False, np.arange(study.n)),
                                           ("eval", "vanilla + T", "vanilla", True, study.fold[1])):
        expected = selective.coverage_table(study.probs(arm, scaled)[idx], study.labels[idx], th)
        got = [{k: r[k] for k in ("threshold", "coverage", "accuracy", "n_covered")}
               for r in rows if r["view"] == view and r["system"] == system]
        assert got == [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in e.items()}
                       for e in expected]


def test_sla_threshold_is_the_lowest_meeting_the_target(study, results):
    res, target = results["coverage"], study.cfg.evaluation.sla_accuracy
    cov = res["tables"]["coverage"]
    for s in res["tables"]["sla"]:
        table = [r for r in cov if r["view"] == s["view"] and r["system"] == s["system"]]
        ok = [r["threshold"] for r in table if r["accuracy"] is not None and r["accuracy"] >= target]
        assert s["sla_threshold"] == (min(ok) if ok else None)
        if s["sla_threshold_fine"] is not None:
            assert s["accuracy_at_sla_fine"] >= target
            assert s["sla_threshold_fine"] <= (s["sla_threshold"] or 1.0)
    assert any(s["sla_threshold"] is not None for s in res["tables"]["sla"])
    # the fine grid: no lower grid threshold meets the target
    probs = study.probs("kd")
    fine = selective.coverage_table(probs, study.labels, coverage.FINE)
    kd = _row([s for s in res["tables"]["sla"] if s["view"] == "full"], "kd")
    assert kd["sla_threshold_fine"] == selective.sla_threshold(fine, target)


def test_sweep_cells_are_the_grid_of_params(study, results):
    cells = {(r["kd_temperature"], r["alpha"]): r for r in results["sweep"]["tables"]["grid"]}
    assert sorted(cells) == [(1.0, 0.7), (1.0, 0.9), (4.0, 0.7), (4.0, 0.9), (8.0, 0.7), (8.0, 0.9)]
    assert cells[(1.0, 0.7)]["arm"] == "sweep@1-0.7" and cells[(4.0, 0.7)]["default"] is True
    f1 = metrics.macro_f1(study.labels, study.predictions("sweep@1-0.7").preds)
    assert cells[(1.0, 0.7)]["macro_f1"] == f1
    assert results["sweep"]["grids"]["macro_f1"][0][0] == f1  # rows T_d (1, 4, 8), columns alpha (0.7, 0.9)
    # the grid comes from params: a smaller grid gives fewer cells, and no recipe cell when (4, 0.7) is gone
    small = dataclasses.replace(study.cfg, sweep=dataclasses.replace(study.cfg.sweep, kd_temperature=(1, 8)))
    res = sweep.compute(dataclasses.replace(study, cfg=small))
    assert [(r["kd_temperature"], r["alpha"]) for r in res["tables"]["grid"]] == \
        [(1.0, 0.7), (1.0, 0.9), (8.0, 0.7), (8.0, 0.9)]
    assert res["default_cell"] is None and not any(r["default"] for r in res["tables"]["grid"])


def test_unavailable_arms_appear_with_their_reason(results_missing):
    cells = {(r["kd_temperature"], r["alpha"]): r for r in results_missing["sweep"]["tables"]["grid"]}
    assert cells[(8.0, 0.9)]["available"] is False and cells[(8.0, 0.9)]["reason"] == REASON
    assert results_missing["sweep"]["grids"]["ece"][2][1] is None
    assert results_missing["coverage"]["unavailable"] == {a: REASON for a in MISSING}
    assert not any(r["system"] in MISSING for r in results_missing["coverage"]["tables"]["coverage"])
    temps = {t["system"]: t for t in results_missing["han_guo"]["tables"]["temperature"]}
    assert temps["kd_raw_teacher"] == {"system": "kd_raw_teacher", "available": False, "reason": REASON}


def test_intervals_are_ordered_and_contain_linear_estimates(results):
    suite = results["calibration_suite"]["tables"]["suite"]
    for r in suite:
        for key in ("ece", "mce", "brier", "nll", "adaptive_ece", "smooth_ece"):
            assert r[f"{key}_low"] <= r[f"{key}_median"] <= r[f"{key}_high"]
        for key in ("brier", "nll"):  # means: the percentile interval holds the full-sample value
            assert r[f"{key}_low"] <= r[key] <= r[f"{key}_high"]
            if f"delta_{key}" in r:
                assert r[f"delta_{key}_low"] <= r[f"delta_{key}"] <= r[f"delta_{key}_high"]
    for r in results["teacher_diag"]["tables"]["tiers"]:
        for key in ("nll", "accuracy", "mean_entropy", "mean_confidence"):
            assert r[f"{key}_low"] <= r[key] <= r[f"{key}_high"]
    for r in results["sweep"]["tables"]["grid"]:
        assert r["nll_low"] <= r["nll"] <= r["nll_high"]


def test_tier_ece_flagged_when_too_few_examples_per_bin(study, results):
    ev = study.cfg.evaluation
    for r in results["calibration_suite"]["tables"]["suite"] + results["teacher_diag"]["tables"]["tiers"]:
        assert r["ece_unstable"] == (r["n"] / ev.ece_bins < ev.min_tier_examples_per_bin)
    assert _row([r for r in results["teacher_diag"]["tables"]["tiers"] if r["scope"] == "tail"],
                "teacher")["ece_unstable"] is True
    assert results["calibration_suite"]["bootstrap"]["loop_resamples"] == LOOP


def test_results_are_json_and_numbers_are_macros(results):
    for name, res in results.items():
        json.dumps(res, allow_nan=False)
        assert res["name"] == name and res["tables"] and res["numbers"]
        for macro, value in res["numbers"].items():
            assert re.fullmatch(r"[A-Z][A-Za-z]*", macro), macro
            assert isinstance(value, (int, float, str)) and not isinstance(value, bool)
    assert latex.numbers_tex({k: v for res in results.values() for k, v in res["numbers"].items()})
    names = [k for res in results.values() for k in res["numbers"]]
    assert len(names) == len(set(names))


def test_render_writes_valid_files(results_missing, tmp_path):
    out = Out(tmp_path / "tables", tmp_path / "figures")
    for name, mod in MODULES.items():
        mod.render(results_missing[name], out)
    tables = sorted(out.tables.glob("*.tex"))
    assert {p.name for p in tables} >= {"teacher_diag_tiers.tex", "calibration_suite_full_ece.tex",
                                        "calibration_suite_eval_smece.tex", "han_guo_course_shares.tex",
                                        "han_guo_paper_shares.tex", "han_guo_temperature.tex", "coverage_sla.tex",
                                        "coverage_eval.tex", "sweep_grid.tex"}
    for path in tables:
        tex = path.read_text()
        assert latex.braces_balanced(tex) and r"\toprule" in tex and r"\bottomrule" in tex, path.name
        assert r"\caption{\textbf{DEMO" in tex and "$n = " in tex, path.name
        if re.search(r"\d \[", tex):  # a cell with an interval: the caption says resamples and seed
            assert re.search(r"\d+ resamples, seed 42", tex.replace("{,}", ",")), path.name
    assert all(REASON in (out.tables / f).read_text() for f in ("han_guo_paper_shares.tex", "sweep_grid.tex"))
    assert "137" in (out.tables / "han_guo_course_shares.tex").read_text()
    # the eval-half reliability diagrams are drawn once, by the report stage (reports/figures/reliability)
    assert not (out.figures / "calibration_suite_reliability.pdf").exists()
    for stem in ("teacher_diag_support_f1", "calibration_suite_ece_bins", "coverage_curves", "sweep_heatmaps"):
        assert (out.figures / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
        assert (out.figures / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_sweep_cell_is_read_from_its_own_run(study, results):
    """The (4, 0.7) cell is its own run (in audit mode: the published grid's file), never the headline arm's
    predictions, even though both have the same recipe."""
    cell = next(r for r in results["sweep"]["tables"]["grid"] if (r["kd_temperature"], r["alpha"]) == (4.0, 0.7))
    own = metrics.macro_f1(study.labels, study.predictions("sweep@4-0.7").preds)
    headline = metrics.macro_f1(study.labels, study.predictions("kd").preds)
    assert own != headline and cell["macro_f1"] == own
