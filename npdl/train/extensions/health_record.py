"""Training-health records as an extension (the statistics: ``train/health.py``).

On a health step (every ``every`` steps) it watches the activations during the step's forward
passes (``health.capture``), takes the gradient norms and a copy of the weights once the
gradients are complete and before clipping (``health.Probe``), and after the update logs one
``{"event": "health", ...}`` event. Other steps run untouched.
"""
from __future__ import annotations

import contextlib

from npdl.train import health
from npdl.train.extensions.base import Extension, PRIORITY_WRITER


class HealthRecord(Extension):
    name = "health"
    priority = PRIORITY_WRITER

    def __init__(self, every: int):
        self.every = every
        self.trigger = (every, "step")
        self._acts: health.Activations | None = None
        self._probe: health.Probe | None = None

    def _due(self, trainer) -> bool:
        """Whether the coming step (``trainer.step + 1``) records health."""
        return (trainer.step + 1) % self.every == 0

    def step_scope(self, trainer):
        if not self._due(trainer):
            return None
        return self._capture(trainer.model)

    @contextlib.contextmanager
    def _capture(self, model):
        with health.capture(model) as acts:
            self._acts = acts
            yield

    def after_backward(self, trainer) -> None:
        if self._due(trainer):
            self._probe = health.Probe(trainer.model, self._acts)
        self._acts = None

    def __call__(self, trainer) -> None:
        if self._probe is None:
            return
        probe, self._probe = self._probe, None
        trainer.log({"event": "health", "step": trainer.step, "epoch": trainer.epoch,
                     **probe.finish(trainer.last_step.lr)})
