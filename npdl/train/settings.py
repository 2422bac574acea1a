"""``TrainSettings``: the ``train:`` section of a config, as a dataclass (``npdl.config``
validates YAML against these annotations; the trainer reads them, knowing no YAML)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from npdl.schema import ArgumentError, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt


@dataclasses.dataclass
class EarlyStoppingSettings:
    """``train.early_stopping``: stop after ``patience`` evals without improving ``metric``."""

    metric: str
    mode: Literal["min", "max"] = "max"
    patience: PositiveInt = 3
    min_delta: NonNegativeFloat = 0.0


@dataclasses.dataclass
class TrainSettings:
    """The ``train:`` section of a config."""

    epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = None
    grad_clip: PositiveFloat | None = None        # global L2 norm
    grad_clip_value: PositiveFloat | None = None  # elementwise
    grad_accum: PositiveInt = 1                   # micro-batches per optimizer step
    eval_every: PositiveInt | None = None         # optimizer steps; None = end of each epoch
    log_every: PositiveInt = 50                   # train events: mean loss / grad norm over the window
    checkpoint_every: PositiveInt | None = None   # optimizer steps; 'last' is also saved every epoch
    keep_last: NonNegativeInt = 2                 # step-N checkpoints kept
    monitor: str | None = None                    # e.g. val.accuracy (default: the task's)
    mode: Literal["min", "max"] | None = None
    early_stopping: EarlyStoppingSettings | None = None
    test_at_end: bool = True                      # evaluate the best checkpoint on 'test' at the end
    eval_split: str = "val"                       # the split periodic evaluation uses
    health_every: PositiveInt | None = None       # optimizer steps between health records (train/health.py)
    # where events go besides metrics.jsonl (always written): metrics.csv, RUN/tensorboard/
    loggers: list[Literal["jsonl", "csv", "tensorboard"]] = dataclasses.field(default_factory=lambda: ["jsonl"])

    def __post_init__(self):
        from npdl.train.extensions.tensorboard import INSTALL, available

        if "tensorboard" in (self.loggers or ()) and not available():
            raise ArgumentError([("loggers", f"'tensorboard' needs the tensorboard package, which is not "
                                             f"installed: {INSTALL}")])
