"""The students' tokenizer: ModernBERT's own (pinned) or one trained on the demo corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from kdlab.config import BackboneConfig

SPECIAL_TOKENS = {"pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "unk_token": "[UNK]", "mask_token": "[MASK]"}


def wordpiece_vocab(words: Iterable[str], vocab_size: int) -> dict[str, int]:
    """A WordPiece vocabulary: special tokens, every character (word-initial and ``##``-continuation),
    then whole words by frequency (ties broken alphabetically) up to ``vocab_size``.

    Built here rather than with ``tokenizers``' WordPiece trainer, whose merge
    order is not deterministic from run to run (hash-map ties), which would
    make the demo's tokenizer, and so every demo number, differ between runs.
    """
    counts = Counter(words)
    initial = sorted({w[0] for w in counts})
    continuation = sorted({"##" + ch for w in counts for ch in w[1:]})
    tokens = list(SPECIAL_TOKENS.values()) + initial + continuation
    if len(tokens) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(tokens)} characters and special tokens")
    seen = set(tokens)
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(tokens) >= vocab_size:
            break
        if word not in seen:
            tokens.append(word)
            seen.add(word)
    return {token: i for i, token in enumerate(tokens)}


def train_wordpiece(texts: Iterable[str], vocab_size: int):
    """A lowercasing WordPiece tokenizer fitted on ``texts``, identical for identical texts.

    Returns a ``transformers.PreTrainedTokenizerFast`` that adds [CLS] ... [SEP]
    like BERT-style encoders; the special tokens take ids 0-4 ([PAD] = 0).
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = (w for text in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = wordpiece_vocab(words, vocab_size)
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def build_tokenizer(backbone: BackboneConfig, corpus: Iterable[str]):
    """The pinned Hub tokenizer for ``source: hub``; a WordPiece fitted on ``corpus`` for ``tiny``."""
    if backbone.source == "tiny":
        return train_wordpiece(corpus, backbone.tiny.vocab_size)
    from transformers import AutoTokenizer

    from kdlab.remote import resolve_revision

    commit = resolve_revision(backbone.repo_id, "model", backbone.revision, "student.revision")
    return AutoTokenizer.from_pretrained(backbone.repo_id, revision=commit)


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
