"""Run labels from the cards (kdlab.report.provenance): every combination of data source and teacher
source is described as it is, and the published numbers apply only to the study's data and teacher."""

from __future__ import annotations

import pytest

from kdlab.report import provenance
from kdlab.report.provenance import RunFacts

TINY_STUDENT = {"source": "tiny", "tiny": {"num_hidden_layers": 2, "hidden_size": 64}}
TINY_TEACHER = {"source": "tiny", "tiny": {"num_hidden_layers": 2, "hidden_size": 128}}
BASE = {"source": "hub", "repo_id": "answerdotai/ModernBERT-base"}
LORA = {"architecture": "Qwen3 + LoRA", "adapter": {"rank": 16, "alpha": 32, "target_modules": ["q_proj", "v_proj"]}}
LORA_32B = {**LORA, "source": "hub", "repo_id": "Qwen/Qwen3-32B", "revision": "9216db5781bf21249d130ec9da846c4624c16137",
            "parameters": 31_984_210_944, "trainable_parameters": 20_500_480}  # as kdlab.lora.teacher_record writes
LORA_TINY = {**LORA, "source": "tiny", "tiny": {"num_hidden_layers": 2, "hidden_size": 64},
             "parameters": 190_000, "trainable_parameters": 41_000, "adapter": {"rank": 8}}
STUDENTS = {"tiny": [{"available": True, "source": "trained", "backbone": TINY_STUDENT}] * 2,
            "base": [{"available": True, "source": "trained", "backbone": BASE}],
            "published": [{"available": True, "source": "published"},
                          {"available": False, "reason": "not published (train mode)"}]}


def facts(data: str, teacher: dict, students: str) -> RunFacts:
    return RunFacts.from_cards({"source": data}, teacher, STUDENTS[students])


DEMO = facts("synthetic", {"source": "trained", "backbone": TINY_TEACHER}, "tiny")
LOCAL = facts("local", {"source": "trained", "backbone": TINY_TEACHER}, "tiny")
AUDIT = facts("hub", {"source": "published"}, "published")
TRAIN = facts("hub", {"source": "published"}, "base")


def test_demo_says_synthetic_data_and_tiny_models():
    assert provenance.warning(DEMO) == "DEMO: synthetic data, tiny models \u2014 not the study's numbers"
    assert "synthetic" in provenance.data_phrase(DEMO)
    teacher = provenance.teacher_phrase(DEMO)
    assert "trained by kdlab" in teacher and "tiny ModernBERT (2 layers, hidden size 128)" in teacher
    assert "hidden size 64" in provenance.student_phrase(DEMO)
    applies, why = provenance.published_applies(DEMO)
    assert not applies and "synthetic" in why and "not compared" in why


def test_local_data_is_never_called_demo_or_synthetic():
    warning = provenance.warning(LOCAL)
    assert warning == "NOT THE STUDY'S SETUP: local data file, tiny models \u2014 not the study's numbers"
    text = " ".join([warning, provenance.provenance(LOCAL), provenance.published_applies(LOCAL)[1]])
    assert "DEMO" not in text and "synthetic" not in text and "own data" in text
    assert not provenance.published_applies(LOCAL)[0]


def test_audit_and_train_are_the_study_setup():
    for run in (AUDIT, TRAIN):
        assert provenance.warning(run) == "" and provenance.published_applies(run) == (True, "")
        assert "Qwen3-32B + LoRA" in provenance.teacher_phrase(run)
    assert provenance.student_phrase(AUDIT) == "the published student predictions (ModernBERT-base)"
    assert provenance.student_phrase(TRAIN) == "students trained by kdlab (answerdotai/ModernBERT-base)"


def test_a_tiny_teacher_is_never_called_large():
    for run in (DEMO, LOCAL, facts("hub", {"source": "trained", "backbone": TINY_TEACHER}, "base")):
        phrase = provenance.distilled_from(run)
        assert "tiny" in phrase and "large" not in phrase and "Qwen" not in phrase


@pytest.mark.parametrize("data, teacher, students, expected", [
    ("hub", {"source": "trained", "backbone": TINY_TEACHER}, "base", "NOT THE STUDY'S SETUP: tiny models"),
    ("hub", {"source": "trained"}, "base", "NOT THE STUDY'S SETUP: teacher trained by kdlab"),
    ("hub", {"source": "lora", "backbone": LORA_32B}, "base", "NOT THE STUDY'S SETUP: LoRA teacher trained by kdlab"),
    ("synthetic", {"source": "lora", "backbone": LORA_TINY}, "tiny", "DEMO: synthetic data, tiny models \u2014"),
    ("local", {"source": "published"}, "published", "NOT THE STUDY'S SETUP: local data file \u2014"),
    ("synthetic", {"source": "published"}, "published", "DEMO: synthetic data \u2014"),
])
def test_every_combination_of_data_and_teacher(data, teacher, students, expected):
    run = facts(data, teacher, students)
    assert provenance.warning(run).startswith(expected)
    assert provenance.published_applies(run)[0] is False


def test_a_lora_teacher_is_named_with_its_base_model_and_size():
    big = facts("hub", {"source": "lora", "backbone": LORA_32B}, "base")
    assert provenance.teacher_phrase(big) == ("a LoRA teacher trained by kdlab (Qwen/Qwen3-32B, rank-16 adapter; "
                                              "31.98B parameters, 20.50M trainable)")
    tiny = facts("synthetic", {"source": "lora", "backbone": LORA_TINY}, "tiny")
    phrase = provenance.distilled_from(tiny)
    assert ("tiny Qwen3 with 2 layers and hidden size 64, rank-8 adapter; 190.0K parameters, 41.0K trainable)"
            in phrase)
    assert "ModernBERT" not in phrase and "32B" not in phrase
    unknown = facts("hub", {"source": "lora"}, "base")
    assert "base model not recorded" in provenance.teacher_phrase(unknown)


def test_what_the_cards_record_is_what_the_labels_say():
    recorded = facts("hub", {"source": "published", "model": "demo teacher"}, "published")
    assert provenance.teacher_phrase(recorded) == "the published teacher logits (demo teacher)"
    unknown = facts("hub", {"source": "trained"}, "base")
    assert "size not recorded" in provenance.teacher_phrase(unknown)
    assert provenance.student_phrase(RunFacts.from_cards({"source": "hub"}, {"source": "published"}, [])) == \
        "no student predictions available"
    # unavailable arms do not count: only the published arm's card describes the students
    assert len(AUDIT.students) == 1
