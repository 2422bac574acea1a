"""Trainer policies tested in process, without the CLI."""
from __future__ import annotations

import contextlib

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


class BlasThreadsSeen(Task):
    """loss = sum(w); records how many threads NumPy's BLAS had during each training step."""

    seen: list

    def train_step(self, batch):
        from threadpoolctl import threadpool_info

        self.seen.append(_numpy_blas(threadpool_info()))
        return self.model.w.sum(), 4


def _numpy_blas(info) -> int | None:
    """Threads of NumPy's own BLAS (the wheel's numpy.libs; other libraries, e.g. SciPy's, load theirs)."""
    found = [i["num_threads"] for i in info if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    return found[0] if len(found) == 1 else None


def _blas_threads() -> int:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    found = _numpy_blas(threadpoolctl.threadpool_info())
    if found is None:
        pytest.skip("threadpoolctl cannot tell NumPy's BLAS here")
    return found


@pytest.mark.parametrize("with_conv", [True, False])
def test_a_step_of_a_model_with_convolutions_runs_blas_on_one_thread(tmp_path, monkeypatch, with_conv):
    """The convolutions spread their parts over npdl's threads: the whole step keeps BLAS on one
    (npdl.core.parallel.step_scope); any other model's step leaves BLAS as it is."""
    from npdl.core import parallel

    monkeypatch.setattr(parallel, "THREADS", 2)
    outside = _blas_threads()
    model = Holder()
    if with_conv:
        model.conv = nn.Conv2d(1, 1, in_channels=1)
    assert model.uses_npdl_threads() is with_conv
    opt = SGD(model.named_parameters(), lr=0.1)
    task = BlasThreadsSeen(model, OneBatch(), None)
    task.seen = []
    Trainer(model, task, OneBatch(), opt, LRScheduler(opt, Constant()), TrainSettings(epochs=3),
            run=Run.create(tmp_path, "t")).fit()
    assert task.seen == [1 if with_conv else outside] * 3
    assert _blas_threads() == outside                       # restored after each step


def test_one_blas_thread_gives_a_cnn_step_the_same_bits():
    """step_scope changes where BLAS runs, not what it computes (OpenBLAS splits a GEMM's output)."""
    import npdl
    import npdl.functional as F
    from npdl.core.parallel import blas_on_one_thread
    from npdl.models.cnn import CNN
    from npdl.optim import Adam

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 1, 12, 12), dtype=np.float32), rng.integers(0, 10, 64)
    weights = []
    for scope in (contextlib.nullcontext, blas_on_one_thread):
        npdl.manual_seed(0)
        model = CNN(10, 1, [8, 16], 3, hidden=[256])
        with npdl.no_grad():
            model(npdl.Tensor(x))
        opt = Adam(model.named_parameters(), lr=1e-3)
        for _ in range(3):
            with scope():
                opt.zero_grad()
                F.cross_entropy(model(npdl.Tensor(x)), y).backward()
                opt.step()
        weights.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("with_conv", [True, False])
def test_evaluation_of_a_model_with_convolutions_runs_blas_on_one_thread(monkeypatch, with_conv):
    """``evaluating`` (the trainer's evaluations, ``npdl eval``) keeps the training step's rule."""
    from npdl.core import parallel
    from npdl.nn.module import evaluating

    monkeypatch.setattr(parallel, "THREADS", 2)
    outside = _blas_threads()
    model = Holder()
    if with_conv:
        model.conv = nn.Conv2d(1, 1, in_channels=1)
    model.train()
    with evaluating(model):
        from threadpoolctl import threadpool_info

        assert _numpy_blas(threadpool_info()) == (1 if with_conv else outside)
        assert not model.training
    assert model.training and _blas_threads() == outside
