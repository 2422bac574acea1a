"""Built-in synthetic datasets that need no download.

``spirals``: K interleaved spiral arms in the plane (a classic that a linear model cannot
separate but a small MLP can, in seconds).
"""
from __future__ import annotations

import os

import numpy as np


def check_fits(name: str, nbytes: int) -> None:
    """Refuse synthetic data whose rough size ``nbytes`` exceeds this machine's physical memory,
    before generating any of it: a count like ``n_per_class: 300000000`` would otherwise grow
    until the machine swaps (NumPy fails fast only when one array cannot be allocated at all).

    Raises:
        ValueError: naming the dataset, the figure and the machine's memory.
    """
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if nbytes > memory:
        raise ValueError(f"{name}: too large: generating it would need about {nbytes / 2 ** 30:,.1f} GiB of "
                         f"memory, more than this machine's {memory / 2 ** 30:,.1f} GiB; use fewer examples")


def spirals(n_per_class: int = 500, classes: int = 2, noise: float = 0.2, turns: float = 1.75,
            rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points on ``classes`` interleaved spiral arms.

    Returns X (N, 2) float32 and y (N,) int64 with N = n_per_class * classes, shuffled.
    """
    if n_per_class < 1 or classes < 2:
        raise ValueError("spirals needs n_per_class >= 1 and classes >= 2")
    rng = np.random.default_rng(0) if rng is None else rng
    r = np.sqrt(rng.random((classes, n_per_class)))           # sqrt: uniform density along the arm
    theta = r * turns * 2 * np.pi + (2 * np.pi / classes) * np.arange(classes)[:, None]
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1).reshape(-1, 2)
    pts += rng.normal(scale=noise * 0.1, size=pts.shape)
    labels = np.repeat(np.arange(classes), n_per_class)
    order = rng.permutation(labels.size)
    return (pts[order] * 2).astype(np.float32), labels[order].astype(np.int64)
