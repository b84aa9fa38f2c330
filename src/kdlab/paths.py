"""Where each stage writes: the DVC graph, readable from the file tree.

All paths are relative to the repository root (where dvc.yaml lives); stages
run there. ``Layout(root)`` re-roots them for tests.

    data/prepared/   prepare   -> {train,val,test}.parquet, data_card.json, sources.json
    data/tokenizer/  tokenizer -> the student's (and a trained teacher's) tokenizer
    data/teacher/    teacher   -> *_logits_{raw,final}.npz, metadata.json, teacher_card.json
                                (+ adapter/: a LoRA teacher's peft adapter, teacher.source lora)
    runs/<arm>/      train@arm (and sweep@T-a) -> predictions.npz, arm.json, model.safetensors, train_log.csv
    results/study.json  study  -> the effective configuration (what every later stage runs with)
    metrics/         evaluate  -> one JSON of metrics per arm and the teacher (dvc metrics)
    results/         calibrate, analyze@name -> fitted temperatures, tidy JSON tables the report renders
    reports/         report    -> tables/*.tex, figures/*.{pdf,png}, numbers.tex (+ paper.tex, hand-written)
    logs/            every stage that trains or downloads: seconds and device (untracked, never read)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    # prepare
    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    def split(self, name: str) -> Path:
        return self.prepared / f"{name}.parquet"

    @property
    def data_card(self) -> Path:
        return self.prepared / "data_card.json"

    @property
    def data_report(self) -> Path:
        return self.prepared / "data_report.json"

    # tokenizer
    @property
    def tokenizer(self) -> Path:
        return self.root / "data" / "tokenizer"

    @property
    def token_lengths(self) -> Path:
        return self.tokenizer / "lengths.json"

    # teacher
    @property
    def teacher(self) -> Path:
        return self.root / "data" / "teacher"

    @property
    def teacher_train_test_raw(self) -> Path:
        return self.teacher / "train_test_logits_raw.npz"

    @property
    def teacher_train_test_final(self) -> Path:
        return self.teacher / "train_test_logits_final.npz"

    @property
    def teacher_val_final(self) -> Path:
        return self.teacher / "val_logits_final.npz"

    @property
    def teacher_val_raw(self) -> Path:
        return self.teacher / "val_logits_raw.npz"

    @property
    def teacher_card(self) -> Path:
        return self.teacher / "teacher_card.json"

    @property
    def teacher_adapter(self) -> Path:
        """A LoRA teacher's adapter folder (kdlab.lora.save_lora_teacher; reload with load_lora_teacher)."""
        return self.teacher / "adapter"

    # train@arm
    def run(self, arm: str) -> Path:
        return self.root / "runs" / arm

    def predictions(self, arm: str) -> Path:
        return self.run(arm) / "predictions.npz"

    def arm_card(self, arm: str) -> Path:
        return self.run(arm) / "arm.json"

    # evaluate, analyses, report
    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def study(self) -> Path:
        """The effective configuration, written by the stage `study`."""
        return self.results / "study.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    # untracked: what a run took (seconds, device), never read by a stage
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def run_log(self, stage: str) -> Path:
        return self.logs / f"{stage}.json"

    @property
    def tables(self) -> Path:
        return self.reports / "tables"

    @property
    def figures(self) -> Path:
        return self.reports / "figures"
