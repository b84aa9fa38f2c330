"""Length-grouped batches (an opt-in speed option): every row once, reproducible, less padding."""

from __future__ import annotations

import numpy as np
import pytest

from kdlab.batching import LengthGroupedBatches, length_grouped_batches


def heavy_tailed_lengths(n: int = 2000, seed: int = 0) -> np.ndarray:
    """Token counts like the complaints': many at the 128 limit, a long tail of short texts."""
    return np.minimum(np.ceil(np.random.default_rng(seed).lognormal(np.log(180), 0.9, n)), 128).astype(int)


def test_every_row_once_and_only_the_last_batch_short():
    lengths = heavy_tailed_lengths(1013)
    batches = length_grouped_batches(lengths, 32, seed=42, epoch=0, group_batches=5)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1013))
    assert [len(b) for b in batches[:-1]] == [32] * (len(batches) - 1)
    assert len(batches[-1]) == 1013 % 32
    assert len(LengthGroupedBatches(lengths, 32, 42)) == len(batches)


def test_same_seed_and_epoch_same_batches_other_epochs_differ():
    lengths = heavy_tailed_lengths()
    first = length_grouped_batches(lengths, 32, seed=42, epoch=0)
    assert first == length_grouped_batches(lengths, 32, seed=42, epoch=0)
    assert first != length_grouped_batches(lengths, 32, seed=42, epoch=1)
    assert first != length_grouped_batches(lengths, 32, seed=7, epoch=0)
    sampler = LengthGroupedBatches(lengths, 32, seed=42)
    assert list(sampler) == first  # a DataLoader's first pass is epoch 0, the next epoch 1
    assert list(sampler) == length_grouped_batches(lengths, 32, seed=42, epoch=1)


def test_grouping_cuts_the_padding_of_random_batches():
    lengths = heavy_tailed_lengths()
    grouped = length_grouped_batches(lengths, 32, seed=42)
    order = np.random.default_rng(42).permutation(len(lengths))
    uniform = [order[i:i + 32] for i in range(0, len(order), 32)]

    def computed(batches):  # tokens a per-batch-padded step computes
        return sum(len(b) * lengths[b].max() for b in batches)

    assert computed(uniform) / lengths.sum() > 1.15  # random batches: almost every one is padded to 128
    assert computed(grouped) / lengths.sum() < 1.02


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size and group_batches must be >= 1"):
        length_grouped_batches(np.ones(4), 0, seed=0)
    with pytest.raises(ValueError, match=r"lengths must be \(N,\)"):
        length_grouped_batches(np.ones((2, 2)), 2, seed=0)


def test_training_with_grouped_batches_is_reproducible(tmp_path):
    """train_classifier(length_grouped=True) twice with one seed writes the same log and logits."""
    from kdlab.config import ArmConfig, BackboneConfig, OptimConfig, TinyModel
    from kdlab.losses import make_loss_fn
    from kdlab.models import build_classifier
    from kdlab.tokenization import train_wordpiece
    from kdlab.train import encode, make_accelerator, predict_logits, train_classifier

    rng = np.random.default_rng(0)
    words = ["loan", "fee", "late", "credit", "report", "debt", "bank", "card", "mortgage"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(2, 30)))) for _ in range(48)]
    labels = rng.integers(0, 3, 48)
    tokenizer = train_wordpiece(texts, 120)
    optim = OptimConfig(epochs=2, batch_size=8, require_gpu=False, log_every=2)
    backbone = BackboneConfig(source="tiny", tiny=TinyModel(hidden_size=16, intermediate_size=32, num_attention_heads=2))
    encoded = encode(texts, labels, tokenizer, 32)
    runs = []
    for i in range(2):
        accelerator = make_accelerator(optim)
        model = build_classifier(backbone, 3, tokenizer, seed=1)
        summary, model = train_classifier(accelerator, model, encoded, optim, make_loss_fn(ArmConfig(name="v")),
                                          tokenizer.pad_token_id, seed=1, log_path=tmp_path / f"log{i}.csv",
                                          length_grouped=True)
        runs.append(predict_logits(accelerator, model, encoded, 16, tokenizer.pad_token_id))
        assert summary.record["steps"] == 2 * 6
    assert (tmp_path / "log0.csv").read_bytes() == (tmp_path / "log1.csv").read_bytes()
    np.testing.assert_array_equal(runs[0], runs[1])
