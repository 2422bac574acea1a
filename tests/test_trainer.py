"""Trainer policies tested in process, without the CLI."""
from __future__ import annotations

import numpy as np
import pytest

from npdl import nn
from npdl.data.loader import ArrayLoader
from npdl.optim import SGD, Constant, LRScheduler
from npdl.runs import Run
from npdl.train.tasks import Task
from npdl.train.trainer import NonFiniteError, Trainer, TrainSettings


class OneBatch:
    """A dataset of one constant batch per epoch, no eval splits."""

    def splits(self):
        return ("train",)

    def loader(self, split):
        return ArrayLoader((np.ones((4, 2), np.float32),), batch_size=4)


class SqrtOfZeroTask(Task):
    """loss = sum(sqrt(|w * 0|)): finite (0) but with an infinite gradient."""

    def train_step(self, batch):
        return (self.model.w * 0.0).abs().sqrt().sum(), 4


class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.ones(3, np.float32))


def test_infinite_gradient_is_caught_without_grad_clip_and_weights_stay_finite(tmp_path):
    model = Holder()
    opt = SGD(model.named_parameters(), lr=0.1)
    run = Run.create(tmp_path, "t")
    trainer = Trainer(model, SqrtOfZeroTask(model, OneBatch(), None), OneBatch(), opt,
                      LRScheduler(opt, Constant()), TrainSettings(epochs=3), run=run)
    with pytest.raises(NonFiniteError, match="step 1 .*gradient norm = (inf|nan).*first non-finite gradient: w"):
        trainer.fit()
    assert np.isfinite(model.w.data).all()
    assert not (run.checkpoints / "last.npz").exists()      # no checkpoint holds a bad update


def test_logged_lr_is_the_one_the_step_used(tmp_path):
    model = Holder()
    opt = SGD(model.named_parameters(), lr=1.0)

    class Quadratic(Task):
        def train_step(self, batch):
            return (self.model.w * self.model.w).sum(), 4

    from npdl.optim import LinearSchedule as LinearDecay
    sched = LRScheduler(opt, LinearDecay(total_steps=4, min_factor=0.0))
    trainer = Trainer(model, Quadratic(model, OneBatch(), None), OneBatch(), opt, sched,
                      TrainSettings(epochs=3, log_every=1, test_at_end=False))
    w0 = model.w.data.copy()
    trainer.fit()
    # update k runs at initial_lr * schedule(k), k from 1 (npdl.optim.schedules): 0.75, 0.5, 0.25
    logged = [e["lr"] for e in trainer.history if e["event"] == "train"]
    assert logged == pytest.approx([0.75, 0.5, 0.25])
    w = w0.copy()
    for lr in logged:              # d/dw sum(w^2) = 2w, so each update scales w by (1 - 2 lr)
        w = w * (1 - 2 * lr)
    np.testing.assert_allclose(model.w.data, w, rtol=1e-6)
