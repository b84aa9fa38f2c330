"""The comparison analyses (tiers, stanton, busbridge, confound) on the in-memory fixture study:
numbers checked against kdlab.metrics / scikit-learn, intervals, unavailable arms, rendered files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from kdlab import metrics, stats
from kdlab.analyses import busbridge, confound, stanton, tiers
from kdlab.analyses.context import SCOPES
from kdlab.report import latex
from study_fixture import make_study

MODULES = {"tiers": tiers, "stanton": stanton, "busbridge": busbridge, "confound": confound}
REASON = "not published (train mode)"


@dataclass
class Out:
    tables: Path
    figures: Path
    profile_note: str = "DEMO: synthetic data, tiny models \u2014 not the study's numbers"
    source: str = "fixture"
    palette: dict = field(default_factory=dict)  # the report\'s palette map (empty: default colours)


@pytest.fixture(scope="module")
def study():
    return make_study(resamples=200, unavailable=("top1_kd",))


@pytest.fixture(scope="module")
def small():
    """Few resamples (for plain loops) and the train-only arm missing."""
    return make_study(n=400, resamples=20, unavailable=("vanilla_train_only",))


@pytest.fixture(scope="module")
def results(study):
    return {name: mod.compute(study) for name, mod in MODULES.items()}


@pytest.fixture(scope="module")
def rendered(results, tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    out = Out(root / "tables", root / "figures")
    for name, mod in MODULES.items():
        mod.render(results[name], out)
    return out


def find(table, **key):
    (row,) = [r for r in table if all(r.get(k) == v for k, v in key.items())]
    return row


def scope_data(study, scope, system):
    rows = study.scope_rows(scope)
    return rows, study.labels[rows], study.predictions(system).preds[rows], study.probs(system)[rows]


# --------------------------------------------------------------------------- #
# The resampled values are the metrics on the shared indices
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("scope", ["overall", "mid"])
def test_resamples_equal_a_plain_loop_with_sklearn_and_metrics(small, scope):
    s = small
    got = tiers.measure(s, scope, ["vanilla", "kd"], ("macro_f1", "ece", "nll", "js"))
    ids = s.scope_class_ids(scope)
    teacher = s.probs("teacher")[s.scope_rows(scope)]
    for system in ("vanilla", "kd"):
        rows, labels, preds, probs = scope_data(s, scope, system)
        for b, i in enumerate(s.bootstrap_indices(len(rows))):
            f1 = f1_score(labels[i], preds[i], labels=ids, average="macro", zero_division=0)
            assert got[system]["macro_f1"][1][b] == pytest.approx(f1, abs=1e-12)
            assert got[system]["ece"][1][b] == pytest.approx(metrics.ece(probs[i], labels[i], 15), abs=1e-12)
            assert got[system]["nll"][1][b] == pytest.approx(metrics.nll(probs[i], labels[i]), abs=1e-12)
            js = metrics.js_divergence(teacher[i], probs[i]).mean()
            assert got[system]["js"][1][b] == pytest.approx(js, abs=1e-12)


def test_paired_deltas_equal_stats_paired_samples_and_self_is_zero(study):
    got = tiers.measure(study, "tail", ["vanilla", "kd"], tiers.METRICS)
    rows, labels, preds_v, probs_v = scope_data(study, "tail", "vanilla")
    _, _, preds_k, probs_k = scope_data(study, "tail", "kd")
    idx = study.bootstrap_indices(len(rows))
    est, deltas = stats.paired_samples("ece", idx, {"probs": probs_k}, {"probs": probs_v}, labels=labels)
    assert np.allclose(got["kd"]["ece"][1] - got["vanilla"]["ece"][1], deltas, atol=1e-12)
    assert tiers.delta(got["kd"]["ece"], got["vanilla"]["ece"], study)["estimate"] == pytest.approx(est, abs=1e-12)
    for m in tiers.METRICS:
        rec = tiers.delta(got["vanilla"][m], got["vanilla"][m], study)
        assert rec["estimate"] == rec["median"] == rec["low"] == rec["high"] == 0.0
    closed = stanton.gap_closed(got["kd"]["ece"], got["kd"]["ece"], "js", study)
    assert closed["estimate"] == closed["low"] == closed["high"] == 0.0


# --------------------------------------------------------------------------- #
# tiers
# --------------------------------------------------------------------------- #
def test_tiers_point_estimates_are_metrics_on_the_full_rows(study, results):
    res = results["tiers"]
    for scope in SCOPES:
        ids = study.scope_class_ids(scope)
        _, labels, pv, qv = scope_data(study, scope, "vanilla")
        _, _, pk, qk = scope_data(study, scope, "kd")
        expect = {"macro_f1": metrics.macro_f1(labels, pk, ids) - metrics.macro_f1(labels, pv, ids),
                  "accuracy": metrics.accuracy(labels, pk) - metrics.accuracy(labels, pv),
                  "ece": metrics.ece(qk, labels, 15) - metrics.ece(qv, labels, 15),
                  "nll": metrics.nll(qk, labels) - metrics.nll(qv, labels)}
        for m, value in expect.items():
            assert find(res["tables"]["deltas"], arm="kd", scope=scope, metric=m)["estimate"] == value
        f1 = find(res["tables"]["values"], system="kd", scope=scope, metric="macro_f1")["estimate"]
        assert f1 == f1_score(labels, pk, labels=ids, average="macro", zero_division=0)
    assert res["numbers"]["KdTailFoneLift"] == find(res["tables"]["deltas"], arm="kd", scope="tail",
                                                    metric="macro_f1")["estimate"]
    assert not any(d["arm"] == "vanilla" for d in res["tables"]["deltas"] if "arm" in d)


def test_intervals_are_ordered_and_say_resamples_and_seed(study, results):
    for name, res in results.items():
        assert res["bootstrap"] == {"resamples": 200, "seed": 42} and res["fold"] == "full val"
        assert res["n"] == {s: len(study.scope_rows(s)) for s in SCOPES}
        measured = [r for table in res["tables"].values() for r in table if "estimate" in r]
        assert measured, name
        for r in measured:
            assert r["low"] <= r["median"] <= r["high"], (name, r)
            assert (r["resamples"], r["seed"], r["n"]) == (200, 42, res["n"][r["scope"]])
            if r.get("quantity") != "ratio":  # the point estimate lies near its resamples
                assert abs(r["estimate"] - r["median"]) <= r["high"] - r["low"] + 1e-12, (name, r)
            if r.get("metric") in ("accuracy", "nll", "js", "kl", "agreement") and "system" in r:
                assert r["estimate_in_interval"], (name, r)


def test_tier_ece_is_flagged_unstable_below_the_per_bin_minimum(study, results):
    ev = study.cfg.evaluation
    flags = results["tiers"]["ece_unstable"]
    for scope in SCOPES:
        assert flags[scope] == (len(study.scope_rows(scope)) / ev.ece_bins < ev.min_tier_examples_per_bin)
    assert flags["tail"] and not flags["overall"]  # 80 tail rows over 15 bins
    row = find(results["tiers"]["tables"]["values"], system="kd", scope="tail", metric="ece")
    assert row["unstable"] and not find(results["tiers"]["tables"]["values"], system="kd", scope="tail",
                                        metric="nll")["unstable"]


# --------------------------------------------------------------------------- #
# stanton, busbridge, confound: derived numbers from the tables' own numbers
# --------------------------------------------------------------------------- #
def test_stanton_gap_shares_follow_from_the_values(results):
    res = results["stanton"]
    for scope in SCOPES:
        v = {(s, m): find(res["tables"]["values"], system=s, scope=scope, metric=m)["estimate"]
             for s in ("vanilla", "kd") for m in stanton.METRICS}
        share = {"agreement": (v["kd", "agreement"] - v["vanilla", "agreement"]) / (1 - v["vanilla", "agreement"]),
                 "kl": (v["vanilla", "kl"] - v["kd", "kl"]) / v["vanilla", "kl"],
                 "js": (v["vanilla", "js"] - v["kd", "js"]) / v["vanilla", "js"]}
        for m in stanton.METRICS:
            gap = find(res["tables"]["gap_closed"], arm="kd", scope=scope, metric=m)
            assert gap["estimate"] == pytest.approx(share[m], rel=1e-12)
            change = find(res["tables"]["deltas"], arm="kd", scope=scope, metric=m)
            assert change["estimate"] == pytest.approx(v["kd", m] - v["vanilla", m], abs=1e-12)
            assert gap["verdict"] == stanton.verdict(change, gap, m) == res["summary"][f"{scope}/{m}"]
    # the fixture's KD arm is pulled towards the teacher: closer, but not the teacher
    assert res["summary"]["overall/js"] == "reduces but does not close the gap"


def test_busbridge_orders_by_k_and_compares_with_full_kd(study, results):
    res = results["busbridge"]
    assert [(r["arm"], r["k"]) for r in res["ladder"]] == [("top1_kd", 1), ("topk5_kd", 5), ("topk20_kd", 20),
                                                           ("kd", 113)]
    for scope in SCOPES:
        for m in busbridge.METRICS:
            full = find(res["tables"]["values"], system="kd", scope=scope, metric=m)["estimate"]
            arm = find(res["tables"]["values"], system="topk5_kd", scope=scope, metric=m)["estimate"]
            assert find(res["tables"]["vs_full"], arm="topk5_kd", scope=scope, metric=m)["estimate"] == \
                pytest.approx(arm - full, abs=1e-12)
    _, labels, _, probs = scope_data(study, "overall", "topk20_kd")
    assert find(res["tables"]["values"], system="topk20_kd", scope="overall", metric="ece")["estimate"] == \
        metrics.ece(probs, labels, 15)
    assert "22-39" in res["published"] and "0.1-0.6" in res["published"]


def test_confound_ratio_is_data_lift_over_kd_lift(results):
    res = results["confound"]
    for scope in SCOPES:
        f1 = {s: find(res["tables"]["values"], system=s, scope=scope)["estimate"]
              for s in ("vanilla_train_only", "vanilla", "kd")}
        q = {k: find(res["tables"]["lifts"], quantity=k, scope=scope) for k in confound.QUANTITIES}
        assert q["data_lift"]["estimate"] == pytest.approx(f1["vanilla"] - f1["vanilla_train_only"], abs=1e-12)
        assert q["kd_lift"]["estimate"] == pytest.approx(f1["kd"] - f1["vanilla"], abs=1e-12)
        assert q["ratio"]["estimate"] == pytest.approx(q["data_lift"]["estimate"] / q["kd_lift"]["estimate"])
        assert q["ratio"]["unstable"] == (q["kd_lift"]["low"] <= 0 <= q["kd_lift"]["high"])
        assert res["numbers"][f"DataKdRatio{scope.capitalize()}High"] == q["ratio"]["high"]


# --------------------------------------------------------------------------- #
# Unavailable arms, numbers, rendered files
# --------------------------------------------------------------------------- #
def test_unavailable_arms_are_listed_with_their_reason(results, small):
    for name in ("tiers", "stanton", "busbridge"):
        res = results[name]
        assert res["unavailable"]["top1_kd"] == REASON
        for table in res["tables"].values():
            assert find(table, system="top1_kd", available=False)["reason"] == REASON
            assert not [r for r in table if "estimate" in r and "top1_kd" in (r.get("system"), r.get("arm"))]
    assert results["busbridge"]["numbers"]["BusbridgeTopOneKdOverallEce"] == "--"
    assert "top1_kd" not in results["confound"]["unavailable"]
    res = confound.compute(small)
    assert res["unavailable"] == {"vanilla_train_only": REASON}
    assert {r["quantity"] for r in res["tables"]["lifts"] if "quantity" in r} == {"kd_lift"}
    assert res["numbers"]["DataKdRatioOverall"] == "--" and isinstance(res["numbers"]["ConfoundKdFoneLiftTail"],
                                                                          float)


def test_results_are_json_and_numbers_are_macro_safe(results):
    names = []
    for res in results.values():
        json.dumps(res, allow_nan=False)
        for key, value in res["numbers"].items():
            assert re.fullmatch(r"[A-Za-z]+", key) and (isinstance(value, float) or value == "--"), key
        latex.numbers_tex(res["numbers"])
        names += list(res["numbers"])
    assert len(names) == len(set(names))  # no macro defined twice across the four analyses
    assert {"KdTailFoneLift", "KdTailFoneLiftLow", "KdTailFoneLiftHigh"} <= set(names)


def test_render_writes_valid_tables_and_figures(rendered, results):
    tables = sorted(rendered.tables.glob("*.tex"))
    prefixes = {p.name.split("_")[0] for p in tables}
    assert prefixes == set(MODULES) and len(tables) == 20
    for path in tables:
        tex = path.read_text()
        assert latex.braces_balanced(tex), path
        assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\bottomrule" in tex, path
        assert "full val, $n = 900$" in tex and "200 resamples, seed 42" in tex, path
        assert "DEMO" in tex and "nan" not in tex.lower(), path
    ece = (rendered.tables / "tiers_value_ece.tex").read_text()
    assert "tail ($n=80$; unstable)" in ece and "ECE unstable for tail: 80 examples over 15 bins" in ece
    assert r"\textbf{" in (rendered.tables / "tiers_value_macro_f1.tex").read_text()
    na = r"top1\_kd & \multicolumn{4}{c}{\emph{not published (train mode)}} \\"
    for name in ("tiers_delta_ece", "tiers_value_nll", "stanton_js", "busbridge_ece"):
        text = (rendered.tables / f"{name}.tex").read_text()
        assert na in text or na.replace("top1\\_kd &", "top1\\_kd (k=1) &") in text, name
    assert "Busbridge et al. (2025" in (rendered.tables / "busbridge_ece.tex").read_text()
    for stem in ("tiers_deltas", "stanton_js", "busbridge_calibration_vs_k"):
        assert (rendered.figures / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (rendered.figures / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not shown: top1_kd (not published (train mode))" in tiers.figure_note(results["tiers"], rendered)
