"""Padding and length-bucketed batching."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npdl.data.text_batching import BucketLoader, length_buckets, pad_batch


def test_pad_batch_right_and_left_with_masks():
    ids, mask = pad_batch([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], pad_id=0)
    np.testing.assert_array_equal(ids, [[1, 2, 3], [4, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask.sum(axis=1), [3, 1, 0])
    ids, mask = pad_batch([np.array([1, 2, 3]), np.array([4])], pad_id=9, left=True, max_len=2)
    np.testing.assert_array_equal(ids, [[2, 3], [9, 4]])
    np.testing.assert_array_equal(mask, [[True, True], [False, True]])


@settings(max_examples=50, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=300), budget=st.integers(60, 1000))
def test_buckets_cover_every_example_once_within_budget(lengths, budget):
    groups = length_buckets(lengths, batch_tokens=budget)
    seen = np.sort(np.concatenate(groups))
    np.testing.assert_array_equal(seen, np.arange(len(lengths)))
    for g in groups:
        assert len(g) == 1 or len(g) * max(lengths[i] for i in g) <= budget


def test_bucket_loader_fixed_batches_seeded_order_and_low_padding():
    lengths = np.random.default_rng(0).integers(3, 40, 2000)
    loader = BucketLoader(lengths, lambda idx: tuple(idx), batch_tokens=1024)
    a = list(loader.batches(epoch=0, seed=1))
    b = list(loader.batches(epoch=0, seed=1))
    c = list(loader.batches(epoch=1, seed=1))
    assert a == b and a != c and len(a) == len(c) == len(loader)
    assert sorted(map(sorted, a)) == sorted(map(sorted, c))          # same batches, new order
    assert list(loader.batches(epoch=1, start=5, seed=1)) == c[5:]    # resume mid-epoch
    assert loader.padding_fraction < 0.05
