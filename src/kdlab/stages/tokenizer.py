"""Stage `tokenizer`: the students' tokenizer, saved once for every arm.

``student.source: hub`` saves ModernBERT's tokenizer at the pinned revision;
``tiny`` (demo) fits a WordPiece vocabulary on the canonical train texts.
Output: data/tokenizer/ (tokenizer.json and its configs). When nothing is
trained (audit mode reads published predictions) the folder holds only
tokenizer_card.json saying so, and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
from pathlib import Path

from kdlab import data, io
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.remote import resolve_revision
from kdlab.stages.common import fixed_name, run_stage, stage_main
from kdlab.tokenization import build_tokenizer


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    target = layout.tokenizer
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=io.temp_prefix(target), suffix=io.TEMP_SUFFIX, dir=target.parent))
    try:
        if cfg.trains_models:
            corpus = data.load_split(layout.prepared, "train")["text"].tolist() if cfg.student.source == "tiny" else []
            tokenizer = build_tokenizer(cfg.student, corpus)
            tokenizer.save_pretrained(str(staging))
            card = {"needed": True, "backbone": dataclasses.asdict(cfg.student), "tokens": len(tokenizer)}
            if cfg.student.source == "hub":
                card["resolved_revision"] = resolve_revision(cfg.student.repo_id, "model", cfg.student.revision,
                                                             "student.revision")
            io.write_json(staging / "tokenizer_card.json", card)
            summary = f"{len(tokenizer):,} tokens ({cfg.student.source})"
        else:
            io.write_json(staging / "tokenizer_card.json", {
                "needed": False,
                "reason": "no stage trains in this profile (published teacher logits and student predictions)"})
            summary = "not needed, nothing is trained"
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"tokenizer: {summary} -> {target}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, stage_name=fixed_name("tokenizer"))


if __name__ == "__main__":
    run_stage(main)
