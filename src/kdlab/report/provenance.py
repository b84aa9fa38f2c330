"""What run produced the outputs: labels for every caption, figure and the paper, read from the cards.

The labels come from the pipeline's OUTPUTS, never from params: ``data/prepared/data_card.json``
(``source``: hub, local or synthetic), ``data/teacher/teacher_card.json`` (``source``: published,
trained, lora; ``backbone`` or ``model`` when the teacher stage records one: a LoRA teacher's names
its base model and sizes, kdlab.lora.teacher_record) and each
``runs/<arm>/arm.json`` (``source``: trained or published; ``backbone`` for a trained arm).
So a run on a user's own data with the demo's tiny models says exactly that, and a run
with a tiny teacher never claims a large one.

Everything here is plain text (escape it for LaTeX); the functions are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

STUDY_TEACHER = "Qwen3-32B + LoRA"  # the published teacher (docs/study.md section 2)
STUDY_STUDENT = "ModernBERT-base"   # the published students (docs/study.md section 3)
DATA = {"hub": "CFPB complaints from the Hugging Face Hub (the study's data)",
        "local": "the user's own data (a local file)",
        "synthetic": "the bundled synthetic complaints (not real data)"}
DATA_SHORT = {"hub": "CFPB complaints (Hub)", "local": "local data file", "synthetic": "synthetic data"}
NOT_STUDY = "not the study's numbers"


@dataclass(frozen=True)
class RunFacts:
    """The facts the labels are built from (see the module docstring for where each is read).

    ``students``: one (source, backbone) pair per available arm, backbone None when the card
    records none (published predictions)."""

    data_source: str
    teacher_source: str
    teacher_model: Optional[Mapping | str]
    students: tuple[tuple[str, Optional[Mapping]], ...]
    profile: str = ""

    @classmethod
    def from_cards(cls, data_card: Mapping, teacher_card: Mapping, arm_cards: Sequence[Mapping],
                   profile: str = "") -> "RunFacts":
        """From the parsed cards; arms whose card says ``available: false`` are left out."""
        students = tuple((str(c.get("source", "unknown")), c.get("backbone")) for c in arm_cards
                         if c.get("available", False))
        model = teacher_card.get("backbone") or teacher_card.get("model")
        return cls(str(data_card.get("source", "unknown")), str(teacher_card.get("source", "unknown")),
                   model, students, profile)


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #
def is_tiny(backbone: Optional[Mapping | str]) -> bool:
    """A backbone kdlab builds from a small config (``source: tiny``)."""
    return isinstance(backbone, Mapping) and backbone.get("source") == "tiny"


def count_phrase(n: int) -> str:
    """A parameter count people read: ``31.98B``, ``20.50M``, ``12.3K``, ``512``."""
    for scale, suffix in ((1e9, "B"), (1e6, "M")):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def lora_phrase(backbone: Mapping) -> str:
    """``Qwen/Qwen3-32B, rank-16 adapter; 31.98B parameters, 20.50M trainable``, or for a tiny base
    ``tiny Qwen3 with 2 layers and hidden size 64, rank-8 adapter; ...``: the counts the teacher stage
    recorded (kdlab.lora.teacher_record)."""
    if is_tiny(backbone):
        tiny = backbone.get("tiny") or {}
        base = (f"tiny Qwen3 with {tiny.get('num_hidden_layers', '?')} layers and hidden size "
                f"{tiny.get('hidden_size', '?')}")
    else:
        base = str(backbone.get("repo_id") or "Qwen3")
    adapter = backbone.get("adapter") or {}
    sizes = [f"{count_phrase(backbone[k])} {w}" for k, w in (("parameters", "parameters"),
                                                              ("trainable_parameters", "trainable")) if k in backbone]
    return f"{base}, rank-{adapter.get('rank', '?')} adapter" + (f"; {', '.join(sizes)}" if sizes else "")


def model_phrase(backbone: Optional[Mapping | str]) -> Optional[str]:
    """``tiny ModernBERT (2 layers, hidden size 64)``, a LoRA teacher (:func:`lora_phrase`), a Hub repo id,
    a recorded model name, or None."""
    if backbone is None:
        return None
    if isinstance(backbone, str):
        return backbone
    if str(backbone.get("architecture", "")).endswith("LoRA"):  # kdlab.lora.teacher_record
        return lora_phrase(backbone)
    if is_tiny(backbone):
        tiny = backbone.get("tiny") or {}
        return (f"tiny ModernBERT ({tiny.get('num_hidden_layers', '?')} layers, "
                f"hidden size {tiny.get('hidden_size', '?')})")
    if backbone.get("repo_id"):
        return str(backbone["repo_id"])
    return None


def teacher_phrase(facts: RunFacts) -> str:
    """Which teacher the students were distilled from, as recorded in the teacher card."""
    model = model_phrase(facts.teacher_model)
    if facts.teacher_source == "published":
        return f"the published teacher logits ({model or STUDY_TEACHER})"
    if facts.teacher_source == "trained":
        return f"a teacher trained by kdlab ({model or 'size not recorded in teacher_card.json'})"
    if facts.teacher_source == "lora":
        return f"a LoRA teacher trained by kdlab ({model or 'base model not recorded in teacher_card.json'})"
    return f"a {facts.teacher_source} teacher ({model or 'size not recorded in teacher_card.json'})"


def student_phrase(facts: RunFacts) -> str:
    """The students: published predictions, or trained by kdlab with the recorded backbone(s)."""
    if not facts.students:
        return "no student predictions available"
    parts = []
    sources = sorted({s for s, _ in facts.students})
    for source in sources:
        models = sorted({model_phrase(b) or "" for s, b in facts.students if s == source} - {""})
        if source == "published":
            parts.append(f"the published student predictions ({', '.join(models) or STUDY_STUDENT})")
        elif source == "trained":
            parts.append(f"students trained by kdlab ({', '.join(models) or 'backbone not recorded in arm.json'})")
        else:
            parts.append(f"{source} students")
    return " and ".join(parts)


def any_tiny(facts: RunFacts) -> bool:
    return is_tiny(facts.teacher_model) or any(is_tiny(b) for _, b in facts.students)


# --------------------------------------------------------------------------- #
# Labels
# --------------------------------------------------------------------------- #
def data_phrase(facts: RunFacts) -> str:
    return DATA.get(facts.data_source, f"data source {facts.data_source!r}")


def provenance(facts: RunFacts) -> str:
    """One sentence-like phrase for captions: data; teacher; students."""
    return f"{data_phrase(facts)}; teacher: {teacher_phrase(facts)}; students: {student_phrase(facts)}"


def deviations(facts: RunFacts) -> list[str]:
    """How this run differs from the study's setup (empty: the study's data, teacher and model sizes)."""
    out = []
    if facts.data_source != "hub":
        out.append(DATA_SHORT.get(facts.data_source, f"{facts.data_source} data"))
    if any_tiny(facts):
        out.append("tiny models")
    if facts.teacher_source not in ("published",) and not is_tiny(facts.teacher_model):
        out.append({"trained": "teacher trained by kdlab", "lora": "LoRA teacher trained by kdlab"}.get(
            facts.teacher_source, f"{facts.teacher_source} teacher"))
    return out


def warning(facts: RunFacts) -> str:
    """The banner every table and figure of a run that is not the study's carries, e.g.
    ``DEMO: synthetic data, tiny models — not the study's numbers``; empty for the study's setup."""
    reasons = deviations(facts)
    if not reasons:
        return ""
    head = "DEMO" if facts.data_source == "synthetic" else "NOT THE STUDY'S SETUP"
    return f"{head}: {', '.join(reasons)} \u2014 {NOT_STUDY}"


def published_applies(facts: RunFacts) -> tuple[bool, str]:
    """Whether the study's published numbers describe this run's data and teacher (Hub data and the
    published teacher), and if not, why they are not compared."""
    if facts.data_source == "hub" and facts.teacher_source == "published":
        return True, ""
    return False, (f"This run uses {data_phrase(facts)} and {teacher_phrase(facts)}; the published numbers "
                   f"describe the study's CFPB data and its {STUDY_TEACHER} teacher, so they are not "
                   "compared with this run.")


def distilled_from(facts: RunFacts) -> str:
    """``distilled from <the teacher>`` for an abstract: names the recorded teacher, never a size it lacks."""
    return f"distilled from {teacher_phrase(facts)}"
