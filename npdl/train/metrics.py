"""Metrics: plain functions over NumPy arrays.

Each metric is a plain function over NumPy arrays (predictions and targets accumulated
over an evaluation), so it is easy to test and to reuse outside training.
"""
from __future__ import annotations

import math

import numpy as np


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Fraction of predictions equal to the target (ints of the same shape)."""
    return float(np.mean(pred == target)) if target.size else 0.0


def f1(pred: np.ndarray, target: np.ndarray, positive: int = 1) -> float:
    """F1 of the positive class: 2PR / (P + R); 0 when there are no positive predictions or targets."""
    tp = int(np.sum((pred == positive) & (target == positive)))
    fp = int(np.sum((pred == positive) & (target != positive)))
    fn = int(np.sum((pred != positive) & (target == positive)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def perplexity(mean_nll: float) -> float:
    """exp of the mean negative log-likelihood per token (nats)."""
    return float(math.exp(min(mean_nll, 700.0)))


def sequence_accuracy(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of sequences (rows) predicted entirely right, ignoring positions where mask is False."""
    if target.size == 0:
        return 0.0
    right = pred == target
    if mask is not None:
        right |= ~mask
    return float(np.mean(right.all(axis=-1)))


class Mean:
    """Running weighted mean (e.g. of per-batch losses weighted by batch size)."""

    def __init__(self) -> None:
        self.total, self.weight = 0.0, 0

    def add(self, value: float, weight: int = 1) -> None:
        self.total += float(value) * weight
        self.weight += weight

    @property
    def value(self) -> float:
        return self.total / self.weight if self.weight else float("nan")
