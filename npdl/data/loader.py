"""Batching. A loader yields the batches of one epoch; its order is a pure function of
(seed, epoch), so a run resumed at (epoch, batch) sees exactly the batches an uninterrupted
run would have seen.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator that orders epoch ``epoch`` of a run seeded with ``seed``."""
    return np.random.default_rng([seed, epoch])


SPLIT_SEED = 0  # held-out splits are fixed: they never depend on the run's seed


def held_out(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of ``n`` examples: (the other indices, ``k`` held-out indices), each sorted
    so both parts keep the file's order. The same for every run, so val metrics compare."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


class ArrayLoader:
    """Batches of aligned arrays (same first dimension), optionally reshuffled every epoch.

    arrays: tuple of (N, ...) arrays; a batch is the tuple of their rows for one index slice.
    """

    def __init__(self, arrays: tuple[np.ndarray, ...], batch_size: int, shuffle: bool = False,
                 drop_last: bool = False):
        sizes = {len(a) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"ArrayLoader: arrays differ in length: {sorted(sizes)}")
        self.arrays, self.batch_size = arrays, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.n = sizes.pop()

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def batches(self, epoch: int = 0, start: int = 0, seed: int = 0) -> Iterator[tuple[np.ndarray, ...]]:
        """Batches ``start, start+1, ...`` of epoch ``epoch``."""
        order = epoch_rng(seed, epoch).permutation(self.n) if self.shuffle else None
        for b in range(start, len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            if order is None:
                yield tuple(a[sl] for a in self.arrays)
            else:
                idx = np.sort(order[sl])  # sorted gathers are kinder to the cache; order within a batch is irrelevant
                yield tuple(a[idx] for a in self.arrays)
