"""Sequence classifiers: ModernBERT-base from the Hub (pinned) or a tiny ModernBERT from a config."""

from __future__ import annotations

import dataclasses

from kdlab.config import BackboneConfig


def build_classifier(backbone: BackboneConfig, n_classes: int, tokenizer, seed: int,
                     attn_implementation: str | None = None):
    """A freshly initialised classification head on the configured backbone.

    ``source: hub`` loads the pretrained encoder at ``revision`` (never with
    remote code); ``source: tiny`` builds a small ModernBERT with the
    tokenizer's vocabulary and special-token ids. ``seed`` fixes the head's
    (and a tiny model's) initialisation. ``attn_implementation`` ("sdpa",
    "eager", "flash_attention_2") overrides transformers' choice (None: its
    default, SDPA for ModernBERT).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, ModernBertConfig, ModernBertForSequenceClassification

    torch.manual_seed(seed)
    if backbone.source == "hub":
        from kdlab.remote import resolve_revision

        commit = resolve_revision(backbone.repo_id, "model", backbone.revision, "student.revision")
        return AutoModelForSequenceClassification.from_pretrained(
            backbone.repo_id, revision=commit, num_labels=n_classes, trust_remote_code=False,
            attn_implementation=attn_implementation,
        )
    t = backbone.tiny
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads,
        max_position_embeddings=512,
        local_attention=64,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        num_labels=n_classes,
        classifier_pooling=t.classifier_pooling,
        attn_implementation=attn_implementation,
    )
    return ModernBertForSequenceClassification(config)


def backbone_record(backbone: BackboneConfig, model) -> dict:
    """What a run's arm.json says of its backbone: the config as given, the commit it resolved to
    (a Hub backbone) and the number of parameters."""
    record = dataclasses.asdict(backbone)
    if backbone.source == "hub":
        from kdlab.remote import resolve_revision

        record["resolved_revision"] = resolve_revision(backbone.repo_id, "model", backbone.revision, "student.revision")
    record["parameters"] = int(sum(p.numel() for p in model.parameters()))
    return record
