"""Random numbers on a device: SplitMix64 over a counter, in plain ``xp`` arithmetic.

A device draw takes one 64-bit word from npdl's host generator (the stream's start) and hashes
``start + (i + 1) * golden`` for i = 0..n-1 (Steele, Lea & Flood 2014, "Fast splittable
pseudorandom number generators": SplitMix64). So the device numbers are a pure function of the
host generator's state, which checkpoints already record: a resumed run draws the same
device numbers, on any device (CuPy, the emulated one). The CPU path never comes here: it
keeps drawing from NumPy's generator as it always did.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def bits(xp, shape: tuple[int, ...], rng: np.random.Generator):
    """(shape) uint64 random words on ``xp``'s device, advancing the host ``rng`` by one draw."""
    start = np.uint64(rng.bit_generator.random_raw())
    n = int(np.prod(shape))
    z = (xp.arange(1, n + 1, dtype=xp.uint64) * _GOLDEN) + start
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return z.reshape(shape)


def keep_mask(xp, shape: tuple[int, ...], p: float, rng: np.random.Generator):
    """Boolean Bernoulli(1 - p) keep mask on the device (16-bit threshold, as ``random.keep_mask``)."""
    top = bits(xp, shape, rng) >> np.uint64(48)
    return top >= np.uint64(min(round(p * 65536), 65535))


def uniform(xp, shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32):
    """Uniform [0, 1) samples on the device: 24 random bits for float32, 53 for float64."""
    z = bits(xp, shape, rng)
    if np.dtype(dtype) == np.float64:
        return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
