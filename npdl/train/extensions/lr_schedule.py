"""The learning-rate schedule as an extension: advance it after every optimizer step, and feed
a reduce-on-plateau schedule the monitored metric after each evaluation.

It runs first after a step, so everything after it (progress, checkpoints) sees the learning
rate of the next step, as the schedule's state in a checkpoint does. The schedule's own state
stays in the checkpoint's ``sched`` part (``LRScheduler.state_dict``).
"""
from __future__ import annotations

from npdl.train.callbacks import lookup
from npdl.train.extensions.base import Extension, PRIORITY_WRITER


class LRSchedule(Extension):
    """``scheduler``: an ``LRScheduler``; ``monitor``: the metric a plateau schedule observes."""

    name = "lr_schedule"
    priority = PRIORITY_WRITER
    trigger = [(1, "step"), "eval"]

    def __init__(self, scheduler, monitor: str | None = None):
        self.scheduler, self.monitor = scheduler, monitor

    def __call__(self, trainer) -> None:
        if trainer.moment == "step":
            self.scheduler.step()
            return
        value = lookup(trainer.observation, self.monitor) if self.monitor else None
        if value is not None and hasattr(getattr(self.scheduler, "schedule", None), "observe"):
            self.scheduler.observe(value)  # reduce_on_plateau: applies a reduction right away
