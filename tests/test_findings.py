"""The findings are worded by rules on the intervals and cite numbers.tex's macros, never literals."""

from __future__ import annotations

import re

import pytest

from kdlab.report import findings
from kdlab.report.findings import Numbers


def lifts(**tiers) -> dict:
    """numbers.tex values of the tiers analysis: name, nameLow, nameHigh per (tier, metric)."""
    out = {}
    for tier in ("Overall", "Head", "Mid", "Tail"):
        for tag, default in (("FoneLift", (0.0, -0.01, 0.01)), ("EceDelta", (0.0, -0.01, 0.01))):
            est, low, high = tiers.get(f"{tier}{tag}", default)
            out.update({f"Kd{tier}{tag}": est, f"Kd{tier}{tag}Low": low, f"Kd{tier}{tag}High": high})
    return out


def test_side_of_an_interval():
    assert findings.side(0.1, 0.2) == "above" and findings.side(-0.2, -0.1) == "below"
    assert findings.side(-0.1, 0.1) == "includes" and findings.side(None, 0.1) is None
    assert findings.side(1.1, 1.5, ref=1.0) == "above"


def test_tier_finding_follows_the_intervals():
    n = Numbers(lifts(HeadFoneLift=(0.021, 0.007, 0.036), MidFoneLift=(0.019, -0.009, 0.047),
                      TailEceDelta=(-0.05, -0.08, -0.02)))
    text = findings.tiers(n, "kd", "vanilla")
    head = re.search(r"macro F1 on the head changes by ([^;]*)", text).group(1)
    assert head == r"\kdKdHeadFoneLift{} [\kdKdHeadFoneLiftLow{}, \kdKdHeadFoneLiftHigh{}] " \
                   "(the interval excludes 0: better)"
    assert "macro F1 on the mid tier changes by" in text and "(the interval includes 0)" in text
    assert "ECE on the tail changes by" in text and "excludes 0: better" in text.split("ECE on the tail")[1]
    assert "A macro F1 gain is detectable on the head;" in text
    assert not re.search(r"\d\.\d", text)  # every number is a macro


def test_no_detectable_gain_is_said_so():
    assert "No tier shows a macro F1 gain whose interval excludes 0." in findings.tiers(Numbers(lifts()), "kd", "v")


def test_a_missing_macro_is_an_error_not_a_silent_number():
    with pytest.raises(KeyError, match="KdOverallFoneLift, which numbers.tex does not define"):
        findings.tiers(Numbers({}), "kd", "vanilla")


@pytest.mark.parametrize("low, high, words", [
    (1.1, 1.6, "more than"), (0.2, 0.8, "part of"), (0.5, 1.4, "consistent with"), (-1.5, 1.6, "not determined"),
    (-0.8, -0.1, "below 0"), (-0.3, 0.6, "is not excluded"), (None, 0.5, "not available"),
])
def test_share_words_against_0_and_100_percent(low, high, words):
    assert words in findings.share_words(low, high, "the whole gain", "no gain")


def test_published_section_only_for_the_study_setup():
    from kdlab.report.provenance import RunFacts

    n = Numbers({"PublishedMatched": 20, "PublishedCompared": 23})
    study = RunFacts.from_cards({"source": "hub"}, {"source": "published"}, [])
    demo = RunFacts.from_cards({"source": "synthetic"}, {"source": "trained"}, [])
    assert r"\input{tables/published_check.tex}" in findings.published_section(study, n)
    text = findings.published_section(demo, n)
    assert r"\input" not in text and "not compared with this run" in text and "synthetic" in text


def test_sweep_finding_compares_the_best_cell_with_the_recipe():
    base = {"SweepCells": 6, "SweepBestMacroFone": 0.21, "SweepBestMacroFoneTd": "1", "SweepBestMacroFoneAlpha": "0.7",
            "SweepRecipeTd": "4", "SweepRecipeAlpha": "0.7", "SweepDefaultRankMacroFone": 4,
            "SweepSpreadMacroFone": 0.02, "SweepSpreadEce": 0.01}
    delta = {"SweepBestMacroFoneDelta": 0.02, "SweepBestMacroFoneDeltaLow": 0.002, "SweepBestMacroFoneDeltaHigh": 0.04}
    text = findings.sweep(Numbers({**base, **delta}), {})
    assert r"beats the recipe by \kdSweepBestMacroFoneDelta{}" in text and "excludes 0" in text
    text = findings.sweep(Numbers({**base, **delta, "SweepBestMacroFoneDeltaLow": -0.01}), {})
    assert "is not detectable (the interval includes 0)" in text
    same = {**base, "SweepBestMacroFoneTd": "4"}
    assert "The recipe's cell is the best." in findings.sweep(Numbers({**same, **delta}), {})
