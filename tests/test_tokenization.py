"""The demo tokenizer: deterministic, BERT-style special tokens, character fallback."""

from __future__ import annotations

from kdlab.tokenization import SPECIAL_TOKENS, train_wordpiece, wordpiece_vocab

TEXTS = ["My credit report shows XXXX accounts I never opened.",
         "The debt collector keeps calling about a debt I do not owe.",
         "Mortgage servicer lost my payment of {$1200.00} on XX/XX/XXXX."] * 5


def test_vocab_is_deterministic_and_frequency_ordered():
    words = "b a a c c c".split()
    vocab = wordpiece_vocab(words, 100)
    assert list(vocab)[:5] == list(SPECIAL_TOKENS.values())
    whole = [t for t in vocab if len(t) > 1 and not t.startswith(("##", "["))]
    assert whole == []  # single-character words are already covered by the character entries
    vocab = wordpiece_vocab("bb aa aa cc cc cc dd".split(), 100)
    whole = [t for t in vocab if not t.startswith(("##", "[")) and len(t) > 1]
    assert whole == ["cc", "aa", "bb", "dd"]  # count desc, ties alphabetical
    assert wordpiece_vocab("bb aa aa cc".split(), 100) == wordpiece_vocab("cc aa bb aa".split(), 100)


def test_trained_tokenizer_is_identical_across_runs():
    first, second = train_wordpiece(TEXTS, 120), train_wordpiece(list(reversed(TEXTS)), 120)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_encoding_adds_cls_sep_and_falls_back_to_characters():
    tok = train_wordpiece(TEXTS, 120)
    ids = tok("creditor collector")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[1:-1] == ["credit", "##o", "##r", "collector"]  # unseen word: known pieces
    assert tok.convert_ids_to_tokens(tok("zzz")["input_ids"])[1] == "[UNK]"  # unseen characters
    assert tok.pad_token_id == 0
