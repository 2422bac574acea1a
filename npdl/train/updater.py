"""One optimizer step, in four named parts (Chainer's ``StandardUpdater``):

    forward_backward  each micro-batch of the step: forward, loss check, backward (scaled 1/grad_accum)
    reduce_gradients  a no-op here: the place where data-parallel training sums gradients across
                      workers, so that everything after it (health, clipping, the NaN check, the
                      optimizer) sees the same gradients on every worker
    clip              clip by value / global norm; the norm is checked every step, clipping or not
    optimizer_step    update the weights, zero the gradients, count the step

A non-finite loss or gradient never reaches the weights: the updater fires the trainer's ``nan``
moment (the NaN guard extension names the first non-finite tensor and stops), and raises
``NonFiniteError`` itself if no extension did.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np

from npdl.core.backend import get_array_module
from npdl.core.parallel import step_scope
from npdl.optim.clip import clip_grad_norm_, clip_grad_value_, grad_norm


class NonFiniteError(RuntimeError):
    """Training produced NaN/inf; the message names the step and the first non-finite tensor."""


@dataclasses.dataclass
class StepResult:
    """What one optimizer step measured: ``loss`` is the mean of its micro-batch losses, ``items``
    their examples (or tokens), ``grad_norm`` the global gradient norm before any clipping, ``lr``
    the learning rate the update used."""

    loss: float
    items: int
    grad_norm: float
    lr: float


@dataclasses.dataclass
class NonFinite:
    """What the ``nan`` moment is about: ``what`` was non-finite; ``batch`` (None for a gradient) the
    micro-batch whose loss was, for the NaN guard's diagnosis."""

    what: str
    batch: object = None


class Updater:
    """Runs the train step of ``trainer`` (its model, task, optimizer and settings)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self._params: list | None = None  # fixed once the model is built: filled at the first step
        self._own_threads: bool | None = None  # the model's uses_npdl_threads(), asked at the first step

    @property
    def params(self) -> list:
        if self._params is None:
            self._params = list(self.trainer.model.parameters())
        return self._params

    def update(self, batches, n_batches: int) -> StepResult | None:
        """One optimizer step on the next micro-batches of ``batches`` (an iterator over the
        epoch, ``n_batches`` long); None when the epoch has no batch left. It runs in the model's
        ``npdl.core.parallel.step_scope`` (BLAS on one thread for a model with convolutions)."""
        t = self.trainer
        batch = next(batches, None)
        if batch is None:
            return None
        if self._own_threads is None:
            self._own_threads = t.model.uses_npdl_threads()
        with step_scope(self._own_threads):
            losses, items, bad = self.forward_backward(batch, batches, n_batches)
            if bad is not None:
                t.nonfinite(bad)
            self.reduce_gradients()
            for ext in t.extensions:  # e.g. health statistics: the gradients before clipping
                if hasattr(ext, "after_backward"):
                    ext.after_backward(t)
            norm = self.clip()
            lr = self.optimizer_step()
        return StepResult(sum(losses) / len(losses), items, norm, lr)

    def forward_backward(self, batch, batches, n_batches: int):
        """Forward and backward each micro-batch of the step (``grad_accum`` of them, fewer at the
        end of an epoch), inside every extension's ``step_scope``.

        Returns ``(losses, items, non_finite)``; ``non_finite`` (a ``NonFinite``) stops at the
        first micro-batch whose loss is not finite, before its backward."""
        t = self.trainer
        accum = t.settings.grad_accum
        losses: list[float] = []
        items = 0
        with contextlib.ExitStack() as scopes:
            for ext in t.extensions:
                scope = ext.step_scope(t) if hasattr(ext, "step_scope") else None
                if scope is not None:
                    scopes.enter_context(scope)
            while True:
                loss, n_items = t.task.train_step(batch)
                loss, value, n_items = t.dist.combine_loss(loss, n_items)  # the global value across workers
                if not math.isfinite(value):
                    return losses, items, NonFinite(f"loss = {value}", batch)
                (loss * (1.0 / accum) if accum > 1 else loss).backward()
                t.batch_in_epoch += 1
                losses.append(value)
                items += n_items
                if len(losses) == accum or t.batch_in_epoch >= n_batches:
                    return losses, items, None
                batch = next(batches, None)
                if batch is None:
                    return losses, items, None

    def reduce_gradients(self) -> None:
        """Combine the gradients of every worker (data-parallel training: summed, each worker's
        loss having been scaled by its share of the global batch); one process: nothing."""
        self.trainer.dist.reduce_gradients(self.params)

    def clip(self) -> float:
        """Clip the gradients as the settings say; returns the global norm before any clipping.
        A non-finite norm (after value clipping, which can tame an inf) fires ``nan``."""
        t, s, params = self.trainer, self.trainer.settings, self.params
        before = None
        if s.grad_clip_value:
            before = grad_norm(params)  # the norm to log is the one before any clipping
            clip_grad_value_(params, s.grad_clip_value)
        # the norm is checked every step, clipping or not: a non-finite gradient must never
        # reach the weights (the next checkpoint would then save them as the 'last good' one)
        norm = clip_grad_norm_(params, s.grad_clip) if s.grad_clip else grad_norm(params)
        if not math.isfinite(norm):
            bad = next((n for n, p in t.model.named_parameters()
                        if p.grad is not None and not _finite_grad(p.grad)), "?")
            t.nonfinite(NonFinite(f"gradient norm = {norm}; first non-finite gradient: {bad}"))
        return float(norm if before is None else before)

    def optimizer_step(self) -> float:
        """Update the weights and count the step; returns the learning rate the update used."""
        t = self.trainer
        lr = t.optimizer.param_groups[0]["lr"]
        t.optimizer.step()
        t.optimizer.zero_grad()
        t.step += 1
        return lr


def _finite_grad(g) -> bool:
    values = g.values if hasattr(g, "values") and not isinstance(g, np.ndarray) else g
    return bool(get_array_module(values).isfinite(values).all())
