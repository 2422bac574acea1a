"""Tasks: how a model meets a batch. A task knows the model's calling convention, computes
the training loss and the evaluation metrics, and names the metric that picks the best
checkpoint. Datasets name their task (``Dataset.task``); the ``TASKS`` registry maps names to
classes (``@register_task`` adds one under its ``name``).

Every task: ``train_step(batch) -> (loss, n_items)``, ``evaluate(split) -> metrics``,
``state_dict()/load_state_dict()`` (for tasks that carry state across batches), and
``start_epoch(epoch)``.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

import npdl
from npdl.core.backend import to_host
from npdl.core.tensor import Tensor
from npdl.registry import TASKS
from npdl.train import metrics as M


@dataclasses.dataclass
class NoEvalOptions:
    """Tasks without evaluation options accept an empty (or absent) ``eval:`` section."""


class Task:
    """Base: subclasses set ``name``, ``default_loss``, ``monitor``, ``eval_options`` and implement the steps."""

    name: ClassVar[str] = ""
    default_loss: ClassVar[dict | None] = {"type": "cross_entropy"}
    default_schedule: ClassVar[dict] = {"type": "constant"}   # used when a config has no schedule:
    monitor: ClassVar[tuple[str, str]] = ("val.loss", "min")
    eval_options: ClassVar[type] = NoEvalOptions
    metrics: ClassVar[tuple[str, ...]] = ()  # what ``evaluate`` returns (checked against train.monitor)

    def __init__(self, model, data, loss_fn, options=None):
        self.model, self.data, self.loss_fn = model, data, loss_fn
        self.options = options if options is not None else self.eval_options()

    def metric_names(self) -> tuple[str, ...]:
        """Every metric ``evaluate`` may return for this data; () when the task does not say."""
        return self.metrics

    def start_epoch(self, epoch: int, resumed: bool = False) -> None:
        """Called before the first batch of every epoch; ``resumed`` when continuing one mid-way."""

    def train_step(self, batch) -> tuple[Tensor, int]:
        raise NotImplementedError

    def evaluate(self, split: str) -> dict[str, float]:
        raise NotImplementedError

    def dry_run(self, batch):
        """Forward an example batch (for ``npdl check``); returns the model output."""
        return self.train_step(batch)[0]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        pass


class ClassificationTask(Task):
    """``model(x) -> logits (B, C)``; loss on integer labels; accuracy (and loss) in eval."""

    name = "classification"
    monitor = ("val.accuracy", "max")

    def metric_names(self) -> tuple[str, ...]:
        return ("loss", "accuracy", "f1") if getattr(self.data, "report_f1", False) else ("loss", "accuracy")

    def train_step(self, batch):
        x, y = batch
        logits = self.model(x if isinstance(x, Tensor) else Tensor(x))  # batches are fresh gathers: no copy
        return self.loss_fn(logits, y), len(y)

    def dry_run(self, batch):
        return self.model(Tensor(batch[0]))

    @npdl.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        loss = M.Mean()
        preds, targets = [], []
        for x, y in self.data.loader(split).batches():
            logits = self.model(Tensor(x))
            loss.add(self.loss_fn(logits, y).item(), len(y))
            preds.append(to_host(logits.data.argmax(axis=-1)))   # metrics on the host, once per eval batch
            targets.append(y)
        pred, target = np.concatenate(preds), np.concatenate(targets)
        out = {"loss": loss.value, "accuracy": M.accuracy(pred, target)}
        if int(target.max(initial=0)) <= 1 and getattr(self.data, "report_f1", False):
            out["f1"] = M.f1(pred, target)
        return out


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator adding a task to the ``TASKS`` registry under ``cls.name``."""
    return TASKS.register(cls.name)(cls)


register_task(ClassificationTask)
