"""Batching variable-length token sequences: padding with masks, and length buckets.

``BucketLoader`` groups examples of similar length so little of each batch is padding.
The batches are formed once — examples sorted by length, then cut greedily so that
``batch_size * longest <= batch_tokens`` — and only their *order* is shuffled per epoch
(seeded by (seed, epoch)). So the number of batches never changes between epochs (the
trainer's step count and a resumed run's position stay exact), yet every epoch sees the
batches in a fresh order.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from npdl.data.loader import epoch_rng


def pad_batch(seqs: Sequence[np.ndarray], pad_id: int = 0, max_len: int | None = None,
              left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Stack int sequences into (B, T) with ``pad_id``; returns (ids int64, mask bool True=token).

    ``max_len`` truncates longer sequences (keeping the start, or the end when ``left``);
    ``left=True`` pads on the left (right-aligned rows).
    """
    lengths = [min(len(s), max_len) if max_len else len(s) for s in seqs]
    width = max(lengths, default=0)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=bool)
    for i, (s, n) in enumerate(zip(seqs, lengths)):
        if n == 0:
            continue
        row = np.asarray(s[-n:] if left else s[:n], dtype=np.int64)
        if left:
            ids[i, width - n:], mask[i, width - n:] = row, True
        else:
            ids[i, :n], mask[i, :n] = row, True
    return ids, mask


def length_buckets(lengths: Sequence[int], batch_tokens: int | None = None,
                   batch_size: int | None = None) -> list[np.ndarray]:
    """Example indices grouped into batches of similar length.

    With ``batch_tokens``: sorted by length (stable), cut greedily so each batch's padded size
    (count x longest) stays within ``batch_tokens`` (a single over-long example still forms a
    batch of one). With only ``batch_size``: consecutive groups of that many, in length order.
    """
    if batch_tokens is None and batch_size is None:
        raise ValueError("length_buckets needs batch_tokens or batch_size")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    n = len(order)
    while start < n:
        end = start + 1
        while end < n:
            size = end + 1 - start
            if batch_size is not None and size > batch_size:
                break
            if batch_tokens is not None and size * max(int(lengths[order[end]]), 1) > batch_tokens:
                break
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


class BucketLoader:
    """Batches of examples of similar length, in a seeded random order per epoch.

    ``make_batch(indices) -> batch`` builds one batch (padding, masks, targets) from example
    indices; ``lengths`` are the example lengths that bucketing uses.
    """

    def __init__(self, lengths: Sequence[int], make_batch: Callable[[np.ndarray], object],
                 batch_tokens: int | None = None, batch_size: int | None = None, shuffle: bool = True):
        self.make_batch, self.shuffle = make_batch, shuffle
        lengths = np.asarray(lengths, dtype=np.int64)
        self.groups = length_buckets(lengths, batch_tokens, batch_size)
        self.padded_tokens = int(sum(len(g) * max(int(lengths[g].max()), 1) for g in self.groups))
        self.real_tokens = int(lengths.sum())

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def padding_fraction(self) -> float:
        """Share of the padded batch area that is padding (0 = none)."""
        return 1.0 - self.real_tokens / max(self.padded_tokens, 1)

    def batches(self, epoch: int = 0, start: int = 0, seed: int = 0) -> Iterator[object]:
        """Batches ``start, start+1, ...`` of epoch ``epoch`` (the Trainer's loader protocol)."""
        order = epoch_rng(seed, epoch).permutation(len(self.groups)) if self.shuffle else np.arange(len(self.groups))
        for b in order[start:]:
            yield self.make_batch(self.groups[b])
