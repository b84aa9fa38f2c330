"""Macro F1 over a tier's classes present in val (the course's list) next to docs/study.md's all-classes
definition: the metric option against scikit-learn, and the tiers analysis' two columns and class counts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from kdlab import metrics
from kdlab.analyses import tiers
from kdlab.analyses.context import SCOPES
from kdlab.config import TIERS
from study_fixture import make_study


def test_present_only_is_the_course_tier_list():
    rng = np.random.default_rng(4)
    labels = rng.choice([0, 1, 2, 5, 7], size=300)  # classes 3, 4, 6 have no row
    preds = np.where(rng.random(300) < 0.6, labels, rng.integers(0, 9, size=300))
    tier = np.array([0, 1, 3, 4, 5, 6])  # a tier of six classes, three of them present
    assert metrics.present_class_ids(labels, tier).tolist() == [0, 1, 5]
    assert metrics.present_class_ids(labels).tolist() == [0, 1, 2, 5, 7]
    course = sorted(set(labels[np.isin(labels, tier)]))
    rows = np.isin(labels, tier)
    want = f1_score(labels[rows], preds[rows], labels=course, average="macro", zero_division=0)
    assert metrics.macro_f1(labels[rows], preds[rows], tier, present_only=True) == pytest.approx(want, abs=1e-12)
    all_classes = f1_score(labels[rows], preds[rows], labels=tier, average="macro", zero_division=0)
    assert metrics.macro_f1(labels[rows], preds[rows], tier) == pytest.approx(all_classes, abs=1e-12)
    # three absent classes at F1 = 0: the all-classes mean is exactly half the present-classes mean
    assert all_classes == pytest.approx(want * 3 / 6, abs=1e-12)


@pytest.fixture(scope="module")
def study():
    return make_study(n=600, resamples=50)


@pytest.fixture(scope="module")
def result(study):
    return tiers.compute(study)


def test_tiers_count_the_classes_present_per_scope(study, result):
    for scope in SCOPES:
        rows = study.scope_rows(scope)
        ids = np.arange(len(study.class_tiers)) if scope == "overall" else \
            np.flatnonzero(study.class_tiers == TIERS.index(scope))
        present = np.intersect1d(ids, study.labels[rows])
        assert result["classes"][scope] == {"all": int(ids.size), "present": int(present.size)}
    assert result["classes"]["tail"]["present"] < result["classes"]["tail"]["all"]  # the fixture's tail has gaps


def test_tiers_report_macro_f1_over_present_classes(study, result):
    values = result["tables"]["values"]
    for scope in TIERS:
        rows = study.scope_rows(scope)
        y, p = study.labels[rows], study.predictions("vanilla").preds[rows]
        course = sorted(set(y))  # the course: sorted(set(val_labels[val_tiers == tier]))
        tier_ids = np.flatnonzero(study.class_tiers == TIERS.index(scope))
        present = next(r for r in values if (r["system"], r["scope"], r["metric"]) == ("vanilla", scope,
                                                                                        "macro_f1_present"))
        every = next(r for r in values if (r["system"], r["scope"], r["metric"]) == ("vanilla", scope, "macro_f1"))
        assert present["estimate"] == pytest.approx(
            f1_score(y, p, labels=course, average="macro", zero_division=0), abs=1e-12)
        assert every["estimate"] == pytest.approx(
            f1_score(y, p, labels=tier_ids, average="macro", zero_division=0), abs=1e-12)
        c = result["classes"][scope]
        assert every["estimate"] == pytest.approx(present["estimate"] * c["present"] / c["all"], abs=1e-12)


def test_tier_tables_say_how_many_classes_are_present(result, tmp_path):
    from test_analyses_comparisons import Out

    out = Out(tmp_path / "tables", tmp_path / "figures")
    tiers.render(result, out)
    c = result["classes"]
    for name in ("tiers_value_macro_f1", "tiers_value_macro_f1_present", "tiers_delta_macro_f1_present"):
        tex = (out.tables / f"{name}.tex").read_text()
        assert f"tail {c['tail']['present']} of {c['tail']['all']}" in tex, name
    assert "Classes with a val row" not in (out.tables / "tiers_value_ece.tex").read_text()
