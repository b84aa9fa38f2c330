"""The published-numbers check: locating values in the pipeline's outputs, matching, the table."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from kdlab.report import latex, reproduction
from kdlab.report.reproduction import ReferenceError, check, locate, matches

STUDY = Path(__file__).resolve().parents[1] / "docs" / "study.md"  # the repository's spec of the study
ROLES = {"baseline": "vanilla", "headline": "kd"}


def outputs(vanilla_f1=0.26384, kd_available=True) -> dict[str, dict]:
    """Minimal pipeline outputs holding the values the reference rows below point at."""
    arms = {"vanilla": {"available": True, "full_val": {"overall": {"macro_f1": vanilla_f1}}},
            "kd": ({"available": True, "full_val": {"overall": {"macro_f1": 0.2789}}} if kd_available
                   else {"available": False, "reason": "not published (train mode)"})}
    deltas = [{"arm": "kd", "baseline": "vanilla", "scope": s, "metric": "macro_f1", "estimate": e}
              for s, e in (("head", 0.0214), ("mid", 0.0186))]
    return {"metrics/evaluate.json": {"arms": arms},
            "results/tiers.json": {"tables": {"deltas": deltas if kd_available else []},
                                   "unavailable": {} if kd_available else {"kd": "not published (train mode)"}},
            "results/han_guo.json": {"tables": {"course_shares": [{"metric": "ece", "share": 1.3712},
                                                                  {"metric": "nll", "share": 0.8}]}}}


ROWS = [
    {"quantity": "vanilla F1", "published": 0.2638, "decimals": 4, "file": "metrics/evaluate.json",
     "path": ["arms", "{baseline}", "full_val", "overall", "macro_f1"]},
    {"quantity": "kd F1", "published": 0.2789, "decimals": 4, "file": "metrics/evaluate.json",
     "path": ["arms", "{headline}", "full_val", "overall", "macro_f1"]},
    {"quantity": "head delta", "published": 0.021, "decimals": 3, "file": "results/tiers.json",
     "path": ["tables", "deltas", {"arm": "{headline}", "scope": "head"}, "estimate"]},
    {"quantity": "share", "published": 137, "decimals": 0, "scale": 100, "file": "results/han_guo.json",
     "path": ["tables", "course_shares", {"metric": "ece"}, "share"]},
    {"quantity": "baseline", "published": 0.1324, "decimals": 4, "file": None, "path": None, "why_not": "no stage"},
]


def test_locate_follows_keys_positions_and_filters():
    doc = {"a": [{"k": "x", "t": 0.7, "v": 1}, {"k": "y", "t": 0.7000000001, "v": 2}], "b": [10, 20]}
    assert locate(doc, ["a", {"k": "{headline}"}, "v"], {"headline": "y"}) == 2
    assert locate(doc, ["b", 1], ROLES) == 20
    assert locate(doc, ["a", {"t": 0.7, "k": "x"}, "v"], ROLES) == 1  # numbers compared with a tolerance
    with pytest.raises(ReferenceError, match=r"here: 2 records match \{'t': 0.7\}, expected exactly one"):
        locate(doc, ["a", {"t": 0.7}, "v"], ROLES, "here")
    with pytest.raises(ReferenceError, match="0 records match"):
        locate(doc, ["a", {"k": "z"}], ROLES)
    with pytest.raises(ReferenceError, match="no key 'c'"):
        locate(doc, ["c"], ROLES)


@pytest.mark.parametrize("value, published, decimals, scale, expected", [
    (0.26384, 0.2638, 4, 1, True), (0.26385, 0.2638, 4, 1, True), (0.263851, 0.2638, 4, 1, False),
    (0.26374, 0.2638, 4, 1, False), (1.3712, 137, 0, 100, True), (1.376, 137, 0, 100, False),
    (0.0214, 0.021, 3, 1, True)])
def test_matches_at_the_published_precision(value, published, decimals, scale, expected):
    assert matches(value, published, decimals, scale) is expected


def test_check_compares_each_row_and_says_where_the_value_came_from():
    records = check(ROWS, outputs().get, ROLES)
    assert [r["match"] for r in records] == [True, True, True, True, None]
    assert records[0]["value"] == pytest.approx(0.26384)
    assert records[0]["source"] == "metrics/evaluate.json: arms.vanilla.full_val.overall.macro_f1"
    assert records[2]["source"].endswith("deltas.[arm=kd, scope=head].estimate")  # spaces: the column can break
    assert records[4]["source"] == "no stage" and records[4]["value"] is None
    assert reproduction.summary(records) == {"PublishedCompared": 4, "PublishedMatched": 4, "PublishedListed": 5}
    off = check(ROWS, outputs(vanilla_f1=0.2631).get, ROLES)
    assert off[0]["match"] is False and reproduction.summary(off)["PublishedMatched"] == 3


def test_unavailable_arms_and_missing_files_are_reported_not_faked():
    records = check(ROWS, outputs(kd_available=False).get, ROLES)
    assert records[1]["value"] is None and records[1]["why"] == "not published (train mode)"
    assert records[2]["value"] is None and records[2]["why"] == "kd: not published (train mode)"
    missing = check(ROWS[:1], {}.get, ROLES)
    assert missing[0]["why"] == "metrics/evaluate.json not found" and missing[0]["match"] is None


def test_a_path_that_does_not_resolve_is_reported_with_the_reason():
    rows = copy.deepcopy(ROWS[:1])
    rows[0]["path"][-1] = "macro_f2"
    [rec] = check(rows, outputs().get, ROLES)
    assert rec["value"] is None and rec["match"] is None
    assert rec["why"] == "not in this run's outputs (metrics/evaluate.json: no key 'macro_f2')"


def test_table_renders_every_row(tmp_path):
    records = check(ROWS, outputs(kd_available=False).get, ROLES)
    tex = reproduction.write_table(tmp_path / "t.tex", records, "A caption.")
    assert (tmp_path / "t.tex").read_text() == tex and latex.braces_balanced(tex)
    body = [ln for ln in tex.splitlines() if ln.endswith(r"\\")][1:]
    assert len(body) == len(ROWS)
    assert body[0].startswith("vanilla F1 & 0.2638 & 0.2638 & yes &")
    assert "not published (train mode)" in body[1] and " & -- & --" in body[1]
    assert body[3].startswith("share & 137 & 137 & yes")


def test_reference_file_values_are_the_published_ones():
    """Each reference value appears in docs/study.md section 7 as written there (catches typos)."""
    text = STUDY.read_text(encoding="utf-8")
    section = text[text.index("## 7."):].replace("\u2212", "-")  # a typographic minus reads as "-"
    rows = reproduction.load_reference()
    assert len(rows) >= 20
    for row in rows:
        shown = f"{row['published']:.{row['decimals']}f}"
        assert re.search(rf"(?<![\d.]){re.escape(shown)}(?!\d)", section), (row["quantity"], shown)
        assert all(ord(c) < 128 for c in row["quantity"]), row["quantity"]  # pdflatex without extra packages
