"""Length-grouped training batches: an opt-in speed option, off in the paper recipe.

With per-batch padding a batch costs as much as its longest text. Grouping
texts of similar length into the same batch cuts the padding, but it changes
which examples share a batch (and so the gradient noise), so a study must use
it for every arm or for none. The order is a pure function of the seed, the
epoch and the lengths, so a run is reproducible and resumable.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int = 0,
                           group_batches: int = 50) -> list[list[int]]:
    """Row positions of every batch of one epoch, similar lengths together.

    ``lengths`` (N,) tokens per row. The rows are shuffled with
    ``default_rng([seed, epoch])``, cut into groups of ``group_batches`` x
    ``batch_size`` rows, each group sorted by length (longest first, stable),
    cut into batches, and the batches of the epoch shuffled with the same
    generator, so long and short batches are interleaved. Every row appears
    exactly once; only the last batch can be smaller than ``batch_size``.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be (N,), found shape {lengths.shape}")
    if batch_size < 1 or group_batches < 1:
        raise ValueError(f"batch_size and group_batches must be >= 1, found {batch_size} and {group_batches}")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    group = batch_size * group_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), group):
        rows = order[start:start + group]
        rows = rows[np.argsort(-lengths[rows], kind="stable")]
        batches.extend(rows[i:i + batch_size] for i in range(0, len(rows), batch_size))
    # the one short batch (if any) stays last, so every other batch is full
    full = [b for b in batches if len(b) == batch_size]
    short = [b for b in batches if len(b) != batch_size]
    return [full[i].tolist() for i in rng.permutation(len(full))] + [b.tolist() for b in short]


class LengthGroupedBatches:
    """A ``DataLoader`` batch sampler over :func:`length_grouped_batches`.

    Each pass (epoch) draws the next epoch's batches: epoch e uses
    ``default_rng([seed, e])``, so two runs with the same seed see the same
    batches in the same order.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, group_batches: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_batches = group_batches
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        batches = length_grouped_batches(self.lengths, self.batch_size, self.seed, self.epoch, self.group_batches)
        self.epoch += 1
        return iter(batches)
