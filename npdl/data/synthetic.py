"""Built-in synthetic datasets that need no download.

``spirals``: K interleaved spiral arms in the plane (a classic that a linear model cannot
separate but a small MLP can, in seconds).
"""
from __future__ import annotations

import numpy as np


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
