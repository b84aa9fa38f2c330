"""The students' tokenizer: ModernBERT's own (pinned) or one trained on the demo corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from kdlab.config import BackboneConfig

SPECIAL_TOKENS = {"pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "unk_token": "[UNK]", "mask_token": "[MASK]"}


def train_wordpiece(texts: Iterable[str], vocab_size: int):
    """A lowercasing WordPiece tokenizer fitted on ``texts`` (deterministic for a fixed corpus).

    Returns a ``transformers.PreTrainedTokenizerFast`` that adds [CLS] ... [SEP]
    like BERT-style encoders; the special tokens take ids 0-4 ([PAD] = 0).
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def build_tokenizer(backbone: BackboneConfig, corpus: Iterable[str]):
    """The pinned Hub tokenizer for ``source: hub``; a WordPiece fitted on ``corpus`` for ``tiny``."""
    if backbone.source == "tiny":
        return train_wordpiece(corpus, backbone.tiny.vocab_size)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(backbone.repo_id, revision=backbone.revision)


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
