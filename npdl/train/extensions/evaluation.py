"""Evaluation extensions: the periodic evaluation and the final test.

``Evaluate`` runs the task's evaluation on one split (default trigger: every epoch; the trainer
gives ``(eval_every, "step")`` when the config says so, and ``"end"`` so that weights trained
since the last evaluation are evaluated too), logs an ``eval`` event, then fires the ``eval``
moment with the metrics in ``trainer.observation`` (best checkpoint, early stopping and a
reduce-on-plateau schedule listen to it). ``FinalTest`` evaluates the best checkpoint on the
``test`` split once training has ended.
"""
from __future__ import annotations

from npdl.schema import did_you_mean
from npdl.train import checkpoint
from npdl.train.callbacks import lookup
from npdl.train.extensions.base import Extension, PRIORITY_READER, PRIORITY_WRITER


class Evaluate(Extension):
    """Evaluate ``split`` (skipped when the data has no such split or the current step already
    was). ``required``: ``(config key, metric)`` pairs the evaluation must produce."""

    name = "evaluate"
    priority = PRIORITY_WRITER
    trigger = [(1, "epoch"), "end"]

    def __init__(self, split: str = "val", required: list[tuple[str, str]] = ()):
        self.split, self.required = split, list(required)
        self.last_eval = -1  # the step of the last periodic evaluation

    def __call__(self, trainer) -> None:
        if self.last_eval == trainer.step or self.split not in trainer.data.splits():
            return
        metrics = trainer.evaluate(self.split)
        self.last_eval = trainer.step
        trainer.log({"event": "eval", "split": self.split, "step": trainer.step, "epoch": trainer.epoch, **metrics})
        trainer.emit("on_eval", self.split, metrics)
        self._check_metric_names({self.split: metrics})
        trainer.observation[self.split] = metrics
        trainer.fire("eval")

    def _check_metric_names(self, metrics: dict) -> None:
        """A monitored metric the evaluation does not produce is an error, not a silent no-op.

        (Configs are checked against ``Task.metric_names`` before training; this catches Python
        callers and tasks that do not declare their metrics.)"""
        for key, name in self.required:
            if lookup(metrics, name) is None:
                have = ", ".join(f"{s}.{k}" for s, m in metrics.items() for k in m)
                raise ValueError(f"{key}: '{name}' is not a metric of this run's evaluation "
                                 f"(available: {have}){did_you_mean(name, have.split(', '))}")

    def is_periodic_eval(self, event: dict, step: int) -> bool:
        """Whether ``event`` is this extension's evaluation at ``step``."""
        return event.get("event") == "eval" and event.get("split") == self.split and event.get("step") == step

    def state_dict(self) -> dict:
        return {"last_eval": self.last_eval}

    def load_state_dict(self, state: dict) -> None:
        last = state.get("last_eval", -1)
        if isinstance(last, bool) or not isinstance(last, int):
            raise ValueError(f"last_eval: expected an integer step, got {last!r:.40}")
        self.last_eval = last


class FinalTest(Extension):
    """At the end: evaluate the ``best`` checkpoint's weights (the current ones when the run has
    none) on ``split``; logs an ``eval`` event and puts the metrics in ``trainer.observation``."""

    name = "final_test"
    priority = PRIORITY_READER
    trigger = "end"

    def __init__(self, split: str = "test"):
        self.split = split

    def __call__(self, trainer) -> None:
        if self.split not in trainer.data.splits():
            return
        best_path = trainer.run.checkpoint_path("best") if trainer.run else None
        if best_path is not None and best_path.is_file():
            current = {k: v.copy() for k, v in trainer.model.state_dict().items()}
            trainer.model.load_state_dict(checkpoint.load(best_path, model=trainer.model)["model"])
            metrics = trainer.evaluate(self.split)
            trainer.model.load_state_dict(current)
        else:
            metrics = trainer.evaluate(self.split)
        trainer.log({"event": "eval", "split": self.split, "step": trainer.step, "epoch": trainer.epoch, **metrics})
        trainer.emit("on_eval", self.split, metrics)
        trainer.observation[self.split] = metrics
