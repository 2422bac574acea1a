"""Checkpoint extensions: periodic (``step-N`` and ``last``), ``last`` (each epoch, at the end,
on a stop signal) and ``best`` (when the monitored metric improves).

The writing itself is the trainer's (``Trainer.save``: one serialisation, copies for the other
names, bounded ``step-N`` files); these decide when.
"""
from __future__ import annotations

import dataclasses

from npdl.train.callbacks import Best, lookup
from npdl.train.extensions.base import Extension, PRIORITY_READER, PRIORITY_WRITER


class PeriodicCheckpoint(Extension):
    """Every ``every`` steps: ``step-N`` and ``last``; keeps the newest ``keep_last`` step files."""

    name = "periodic_checkpoint"
    priority = PRIORITY_READER

    def __init__(self, every: int, keep_last: int = 2):
        self.every, self.keep_last = every, keep_last
        self.trigger = (every, "step")

    def __call__(self, trainer) -> None:
        trainer.save(f"step-{trainer.step}", "last", keep_last=self.keep_last)


class LastCheckpoint(Extension):
    """``last`` after every epoch and on a stop signal; at the end, unless ``last`` already holds
    the final state (saved by a periodic checkpoint at the same step)."""

    name = "last_checkpoint"
    priority = PRIORITY_READER
    trigger = [(1, "epoch"), "signal", "end"]

    def __call__(self, trainer) -> None:
        if trainer.moment == "end" and trainer.last_saved_position == trainer.position:
            return
        trainer.save("last")


class BestCheckpoint(Extension):
    """On each evaluation: when ``metric`` improves (``mode`` min or max), save ``best``."""

    name = "best_checkpoint"
    priority = PRIORITY_WRITER
    trigger = "eval"

    def __init__(self, metric: str, mode: str = "max"):
        self.best = Best(metric, mode)

    def __call__(self, trainer) -> None:
        if self.best.update(lookup(trainer.observation, self.best.metric), trainer.step):
            trainer.save("best")

    def state_dict(self) -> dict:
        return dataclasses.asdict(self.best)

    def load_state_dict(self, state: dict) -> None:
        """The checkpoint's tracker replaces this one (metric and mode included, as a run is
        resumed with its own config)."""
        if not isinstance(state, dict) or set(state) != {"metric", "mode", "value", "step"}:
            raise ValueError("expected {metric, mode, value, step}")
        value, step = state["value"], state["step"]
        if not (isinstance(state["metric"], str) and state["mode"] in ("min", "max")
                and (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)))
                and (step is None or (isinstance(step, int) and not isinstance(step, bool) and step >= 0))):
            raise ValueError(f"invalid values {state!r:.80}")
        self.best = Best(**state)
