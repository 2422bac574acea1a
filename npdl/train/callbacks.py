"""Small pieces of training policy: tracking the best metric and early stopping."""
from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class Best:
    """The best value seen of one metric, e.g. ``val.accuracy`` with mode ``max``."""

    metric: str
    mode: str = "max"
    value: float | None = None
    step: int | None = None

    def improves(self, value: float, min_delta: float = 0.0) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.value is None:
            return True
        return value > self.value + min_delta if self.mode == "max" else value < self.value - min_delta

    def update(self, value: float, step: int) -> bool:
        """Record ``value`` if it is better; returns whether it was."""
        if self.improves(value):
            self.value, self.step = value, step
            return True
        return False


@dataclasses.dataclass
class EarlyStopping:
    """Stop after ``patience`` evaluations without an improvement larger than ``min_delta``."""

    metric: str
    mode: str = "max"
    patience: int = 3
    min_delta: float = 0.0
    best: float | None = None
    bad_evals: int = 0

    def should_stop(self, value: float) -> bool:
        tracker = Best(self.metric, self.mode, self.best)
        if tracker.improves(value, self.min_delta):
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_evals = state.get("best"), state.get("bad_evals", 0)


def lookup(metrics: dict[str, dict[str, float]], name: str) -> float | None:
    """``val.accuracy`` -> metrics['val']['accuracy'] (None when absent)."""
    split, _, key = name.partition(".")
    return metrics.get(split, {}).get(key)
