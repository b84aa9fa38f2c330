"""Stage `tokenizer`: the students' tokenizer, saved once for every arm, and the texts' token lengths.

``student.source: hub`` saves ModernBERT's tokenizer at the pinned revision;
``tiny`` (demo) fits a WordPiece vocabulary on the canonical train texts.
Output: data/tokenizer/ (tokenizer.json and its configs, and lengths.json: per
split the token counts' percentiles and the share of texts longer than
data.max_length, which the students see truncated; kdlab.data_report). When
nothing is trained (audit mode reads published predictions) the folder holds only
tokenizer_card.json saying so, and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses

from kdlab import data, data_report, io
from kdlab.config import Config
from kdlab.folders import staged_folder
from kdlab.paths import Layout
from kdlab.remote import resolve_revision
from kdlab.stages.common import fixed_name, run_stage, stage_main
from kdlab.tokenization import build_tokenizer


def split_lengths(tokenizer, layout: Layout, max_length: int) -> dict:
    """split -> :func:`kdlab.data_report.length_summary` of its texts."""
    return {name: data_report.length_summary(
        data_report.token_lengths(tokenizer, data.load_split(layout.prepared, name)["text"].tolist()), max_length)
        for name in data.SPLITS}


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    target = layout.tokenizer
    with staged_folder(target) as staging:
        if cfg.trains_models:
            corpus = data.load_split(layout.prepared, "train")["text"].tolist() if cfg.student.source == "tiny" else []
            tokenizer = build_tokenizer(cfg.student, corpus)
            tokenizer.save_pretrained(str(staging))
            card = {"needed": True, "backbone": dataclasses.asdict(cfg.student), "tokens": len(tokenizer)}
            if cfg.student.source == "hub":
                card["resolved_revision"] = resolve_revision(cfg.student.repo_id, "model", cfg.student.revision,
                                                             "student.revision")
            io.write_json(staging / "tokenizer_card.json", card)
            lengths = split_lengths(tokenizer, layout, cfg.data.max_length)
            io.write_json(staging / layout.token_lengths.name, lengths)
            shares = ", ".join(f"{name} {s['share_truncated']:.0%}" for name, s in lengths.items() if s["n"])
            summary = (f"{len(tokenizer):,} tokens ({cfg.student.source}); texts longer than "
                       f"data.max_length={cfg.data.max_length} tokens (truncated): {shares}")
        else:
            io.write_json(staging / "tokenizer_card.json", {
                "needed": False,
                "reason": "no stage trains in this profile (published teacher logits and student predictions)"})
            summary = "not needed, nothing is trained"
    print(f"tokenizer: {summary} -> {target}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, stage_name=fixed_name("tokenizer"))


if __name__ == "__main__":
    run_stage(main)
