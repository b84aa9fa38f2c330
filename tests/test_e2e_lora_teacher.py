"""The demo with the LoRA teacher, end to end through DVC: `dvc exp run -S profile=demo -S teacher=lora_tiny`.

A tiny random Qwen3 + LoRA teacher (conf/teacher/lora_tiny.yaml) is trained by the `teacher` stage, the
students distil from its files with no other change, and the run goes through to the report, which names
the teacher as it is. To keep it to about two minutes on two cores the synthetic corpus is smaller, the
arms are cut to vanilla and kd (-S ~arms.x) and the sweep to one cell. Marked ``e2e``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import copy_repo, run
from kdlab.paths import Layout
from test_e2e_own_data import KEEP, fewer_arms

pytestmark = pytest.mark.e2e

SMALLER = ["data.synthetic.n_train=1200", "data.synthetic.n_val=300", "data.synthetic.n_test=400",
           "optim.epochs=2", "teacher.lora.optim.epochs=2", "evaluation.bootstrap.resamples=200"]
TEACHER = "tiny Qwen3 with 2 layers and hidden size 64, rank-8 adapter; "


@pytest.fixture(scope="module")
def lora_repo(tmp_path_factory) -> tuple[Path, str]:
    repo = copy_repo(tmp_path_factory.mktemp("kdlab-lora-teacher"))
    overrides = [w for s in ["profile=demo", "teacher=lora_tiny", *SMALLER] for w in ("-S", s)]
    result = run(["dvc", "exp", "run", *overrides, *fewer_arms()], repo)
    return repo, result.stdout + result.stderr


def test_the_switch_selects_the_lora_teacher(lora_repo):
    repo, log = lora_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["teacher"]["source"] == "lora" and params["teacher"]["lora"]["model"]["source"] == "tiny"
    assert sorted(params["arms"]) == sorted(KEEP)
    assert "teacher (lora): val macro F1" in log


def test_the_teacher_writes_the_published_files_and_its_adapter(lora_repo):
    repo, _ = lora_repo
    layout = Layout(repo)
    for path in (layout.teacher_train_test_raw, layout.teacher_train_test_final, layout.teacher_val_raw,
                 layout.teacher_val_final):
        assert path.is_file(), path
    adapter = layout.teacher_adapter
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    card = json.loads(layout.teacher_card.read_text())
    assert card["source"] == "lora" and card["backbone"]["architecture"] == "Qwen3 + LoRA"
    assert card["temperature_fit"]["converged"] and card["temperature"] > 0


def test_the_students_train_from_it_and_the_report_names_it(lora_repo):
    repo, _ = lora_repo
    layout = Layout(repo)
    for arm in KEEP:
        record = json.loads(layout.arm_card(arm).read_text())
        assert record["available"] and record["source"] == "trained", arm
        assert layout.predictions(arm).is_file()
    findings = (repo / "reports" / "findings.tex").read_text()
    (named,) = [line for line in findings.splitlines() if line.startswith(r"\newcommand{\kdRunTeacher}")]
    assert f"{{a LoRA teacher trained by kdlab ({TEACHER}" in named and " trainable)}" in named
    assert "32B" not in named  # a tiny teacher is never called the study's
    assert (layout.tables / "tiers_value_macro_f1.tex").is_file()
