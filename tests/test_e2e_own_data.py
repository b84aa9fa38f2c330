"""The README's own-data command on a CPU, end to end through DVC, on tests/fixtures/own_complaints.csv.

`dvc exp run -S profile=cpu -S data=local -S data.local_train=...` in a temporary copy of the repository,
with the fixture's own label list and merge map given by plain -S (no + / ++), through prepare -> report.
To keep it to about two minutes the arms are cut to vanilla and kd and the sweep to one cell (-S ~arms.x
removes an arm; the profile itself runs every arm). Marked ``e2e``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_repo, run
from kdlab.paths import Layout

pytestmark = pytest.mark.e2e

FIXTURES = REPO / "tests" / "fixtures"
KEEP = ("vanilla", "kd")


def own_data_overrides() -> list[str]:
    """The README's command for a file with its own label list (16 labels: smaller tiers than the study's)."""
    return ["-S", "profile=cpu", "-S", "data=local", "-S", f"data.local_train={FIXTURES / 'own_complaints.csv'}",
            "-S", f"data.course_files.label_list.local={FIXTURES / 'own_label_list.json'}",
            "-S", "data.course_files.label_list.sha256=null",
            "-S", f"data.course_files.label_merge_mapping.local={FIXTURES / 'own_merge_mapping.json'}",
            "-S", "data.course_files.label_merge_mapping.sha256=null",
            "-S", "data.head_classes=4", "-S", "data.mid_classes=6"]


def fewer_arms() -> list[str]:
    arms = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["arms"]
    out = []
    for arm in arms:
        if arm not in KEEP:
            out += ["-S", f"~arms.{arm}"]
    return out + ["-S", "sweep.kd_temperature=[4]", "-S", "sweep.alpha=[0.7]"]


@pytest.fixture(scope="module")
def own_repo(tmp_path_factory) -> tuple[Path, str]:
    repo = copy_repo(tmp_path_factory.mktemp("kdlab-own-data"))
    result = run(["dvc", "exp", "run", *own_data_overrides(), *fewer_arms()], repo)
    return repo, result.stdout + result.stderr


def test_the_composition_is_the_cpu_profile_on_local_data(own_repo):
    repo, _ = own_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["profile"] == "cpu" and params["data"]["source"] == "local"
    assert params["student"]["source"] == "tiny" and params["teacher"]["source"] == "trained"
    assert params["optim"]["require_gpu"] is False and sorted(params["arms"]) == sorted(KEEP)


def test_prepare_drops_and_reports(own_repo):
    repo, log = own_repo
    layout = Layout(repo)
    report = json.loads(layout.data_report.read_text())
    acc = report["inputs"]["train+val"]
    assert (acc["rows"], acc["dropped_unknown_label"], acc["empty_text"], acc["kept"]) == (407, 8, 6, 393)
    sizes = {s: len(pd.read_parquet(layout.split(s))) for s in ("train", "val", "test")}
    assert sizes == {"train": 354, "val": 39, "test": 0}
    assert "kdlab: warning: 3 of the label list's 16 classes have no train row ('Overlimit fee'" in log
    lengths = json.loads(layout.token_lengths.read_text())
    assert lengths["train"]["max_length"] == 128 and 0 < lengths["train"]["share_truncated"] < 1


def test_the_report_holds_the_data_and_both_macro_f1s(own_repo):
    repo, _ = own_repo
    tables = Layout(repo).tables
    for name in ("data_inputs", "data_splits", "tiers_value_macro_f1", "tiers_value_macro_f1_present"):
        assert (tables / f"{name}.tex").is_file(), name
    tiers = json.loads((Layout(repo).results / "tiers.json").read_text())
    assert tiers["classes"]["overall"] == {"all": 16, "present": 12}
    assert "Classes with a val row: overall 12 of 16" in (tables / "tiers_value_macro_f1.md").read_text()
    assert r"\input{tables/data_inputs.tex}" in (repo / "reports" / "appendix.tex").read_text()
    numbers = (repo / "reports" / "findings.tex").read_text()
    assert "the user's own data" in numbers  # the run's label comes from the data card


def test_nothing_changed_means_nothing_runs(own_repo):
    repo, _ = own_repo
    again = run(["dvc", "repro"], repo)
    assert "Running stage" not in again.stdout, again.stdout
