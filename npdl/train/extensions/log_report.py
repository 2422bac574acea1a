"""The ``train`` event: every ``every`` steps (and after the first), the mean training loss over
the steps since the last report (not one batch's value: a single batch is noisy), the mean
gradient norm before clipping over the same steps, the learning rate the last step used, and
the throughput (items per second, a timing field).

It sees every step (trigger ``(1, "step")``) and reports on its own interval; the window's sums
are in its state, so a run resumed mid-window logs the same numbers as one never interrupted.
"""
from __future__ import annotations

import time

from npdl.train.extensions.base import Extension, PRIORITY_WRITER


class LogReport(Extension):
    name = "log_report"
    priority = PRIORITY_WRITER
    trigger = (1, "step")

    def __init__(self, every: int = 50):
        self.every = every
        self.loss_sum, self.grad_norm_sum, self.steps = 0.0, 0.0, 0
        self._items, self._started = 0, time.perf_counter()

    def initialize(self, trainer) -> None:
        self._items, self._started = 0, time.perf_counter()  # throughput counts this process's time only

    def __call__(self, trainer) -> None:
        r = trainer.last_step
        self.loss_sum += r.loss
        self.grad_norm_sum += r.grad_norm
        self.steps += 1
        self._items += r.items
        if trainer.step % self.every and trainer.step != 1:
            return
        now = time.perf_counter()
        trainer.log({"event": "train", "step": trainer.step, "epoch": trainer.epoch,
                     "loss": self.loss_sum / self.steps, "grad_norm": self.grad_norm_sum / self.steps,
                     "lr": r.lr, "throughput": self._items / max(now - self._started, 1e-9)})
        self.loss_sum, self.grad_norm_sum, self.steps = 0.0, 0.0, 0
        self._items, self._started = 0, now

    def state_dict(self) -> dict:
        return {"loss_sum": self.loss_sum, "grad_norm_sum": self.grad_norm_sum, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        loss, norm, steps = state.get("loss_sum", 0.0), state.get("grad_norm_sum", 0.0), state.get("steps", 0)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (loss, norm)) or \
                isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"expected {{loss_sum, grad_norm_sum: numbers, steps: integer >= 0}}, got {state!r:.80}")
        self.loss_sum, self.grad_norm_sum, self.steps = float(loss), float(norm), steps
