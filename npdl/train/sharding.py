"""Which part of the data a rank sees (``npdl.train.distributed``).

Training: every global batch (the loader's order is a pure function of (seed, epoch), the same
on every rank) is cut along its first axis into N contiguous, balanced row ranges; rank r keeps
``rank_slice(B, r, N)``. Rows, not batches, so the number of steps per epoch, the learning rate
and the schedule are those of one process, and a language model's carried state stays with its
rows. A rank whose slice is empty (a last batch smaller than N) gets one row to keep the
collective calls in step and contributes with weight 0.

Evaluation: tasks whose metrics are item-weighted means over batches (classification: loss and
accuracy) evaluate every N-th batch and combine SUMS (loss x items, correct, items) over the
ranks, never a mean of means. Others (a language model carries its state from window to
window; BLEU needs every hypothesis) evaluate the whole split on every rank: the same numbers
by construction, without the speed-up.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np


def rank_slice(n: int, rank: int, size: int) -> slice:
    """Rows of rank ``rank`` among ``size`` in a batch of ``n`` (np.array_split's balanced cut)."""
    q, r = divmod(n, size)
    start = rank * q + min(rank, r)
    return slice(start, start + q + (1 if rank < r else 0))


def _rows(batch) -> int:
    if isinstance(batch, np.ndarray):
        return len(batch)
    if isinstance(batch, (tuple, list)):
        for item in batch:
            if isinstance(item, np.ndarray) and item.ndim:
                return len(item)
    if dataclasses.is_dataclass(batch):
        for f in dataclasses.fields(batch):
            v = getattr(batch, f.name)
            if isinstance(v, np.ndarray) and v.ndim:
                return len(v)
    raise TypeError(f"data-parallel training cannot split batches of type {type(batch).__name__} "
                    "(supported: arrays, tuples of arrays, dataclasses of arrays)")


def shard_batch(batch, sl: slice, rows: int):
    """The rows ``sl`` of every array in ``batch`` whose first axis has ``rows`` entries."""
    def cut(v):
        return v[sl] if isinstance(v, np.ndarray) and v.ndim and len(v) == rows else v

    if isinstance(batch, np.ndarray):
        return cut(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):   # a NamedTuple
        return type(batch)._make(cut(v) for v in batch)
    if isinstance(batch, (tuple, list)):
        return type(batch)(cut(v) for v in batch)
    return dataclasses.replace(batch, **{f.name: cut(getattr(batch, f.name))
                                         for f in dataclasses.fields(batch) if f.init})


class ShardedLoader:
    """A loader whose batches are this rank's rows of the wrapped loader's global batches."""

    def __init__(self, loader, comm):
        self.loader, self.comm = loader, comm

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def batches(self, epoch: int = 0, start: int = 0, seed: int = 0):
        size, rank = self.comm.size, self.comm.rank
        for batch in self.loader.batches(epoch, start=start, seed=seed):
            rows = _rows(batch)
            sl = rank_slice(rows, rank, size)
            self.comm.empty_shard = sl.start == sl.stop
            if self.comm.empty_shard:
                sl = slice(rows - 1, rows)   # one row keeps the collectives in step; weight 0
            yield shard_batch(batch, sl, rows)


class ShardedData:
    """The dataset as the Trainer sees it on one rank: ``loader('train')`` is sharded by rows,
    everything else is the dataset's own."""

    def __init__(self, data, comm):
        self._data, self._comm = data, comm

    def __getattr__(self, name):
        return getattr(self._data, name)

    def loader(self, split: str):
        loader = self._data.loader(split)
        return ShardedLoader(loader, self._comm) if split == "train" else loader


class _EveryNthLoader:
    def __init__(self, loader, comm, counter: list):
        self.loader, self.comm, self.counter = loader, comm, counter

    def __len__(self) -> int:
        return len(range(self.comm.rank, len(self.loader), self.comm.size))

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def batches(self, *args, **kwargs):
        for b, batch in enumerate(self.loader.batches(*args, **kwargs)):
            if b % self.comm.size == self.comm.rank:
                self.counter[0] += _rows(batch)
                yield batch


class _EvalShard:
    def __init__(self, data, comm, counter):
        self._data, self._comm, self._counter = data, comm, counter

    def __getattr__(self, name):
        return getattr(self._data, name)

    def loader(self, split: str):
        return _EveryNthLoader(self._data.loader(split), self._comm, self._counter)


# metrics that are means over a batch's rows, per task name: sharded evaluation may combine them
ROW_MEANS = {"classification": ("loss", "accuracy"), "qa": ("loss", "accuracy")}


def evaluate(task, split: str, comm) -> dict[str, float]:
    """``task.evaluate(split)`` over all ranks: sharded and reduced as sums where the task's
    metrics allow (``ROW_MEANS``), else the whole split on every rank."""
    means = ROW_MEANS.get(getattr(task, "name", ""))
    if comm.mpi is None or means is None or set(task.metric_names()) - set(means):
        return task.evaluate(split)
    counter = [0]
    data = task.data
    task.data = _EvalShard(data, comm, counter)
    try:
        metrics = task.evaluate(split) if len(task.data.loader(split)) else {}
    finally:
        task.data = data
    n = counter[0]
    sums = np.array([n] + [metrics.get(k, 0.0) * n if n else 0.0 for k in means], np.float64)
    from mpi4py import MPI

    comm.mpi.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
    total = max(sums[0], 1.0)
    out = {k: float(s / total) for k, s in zip(means, sums[1:])}
    if "accuracy" in out:  # correct counts are integers: undo the float rounding of accuracy x n
        out["accuracy"] = float(round(sums[1 + means.index("accuracy")]) / total)
    return out


class ShadowRun:
    """What the Trainer writes on ranks other than 0: checkpoints into a private temporary folder
    (so every rank can reload 'best' for the final test), events in memory. Only rank 0 writes
    the run folder."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._tmp = tempfile.TemporaryDirectory(prefix="npdl-rank-")
        self.checkpoints = Path(self._tmp.name)
        self._events: list[dict] = []

    @property
    def name(self) -> str:
        return self.path.name

    def checkpoint_path(self, which: str = "last") -> Path:
        return self.checkpoints / f"{which}.npz"

    def log(self, event: dict) -> None:
        self._events.append(event)

    def metrics(self) -> list[dict]:
        return list(self._events)

    def truncate_metrics(self, after_step: int, logged_after=None) -> int:
        return 0

    def set_status(self, status: str, **extra) -> None:
        pass

    def update_manifest(self, **fields) -> dict:
        return {}

    def write_summary(self, summary: dict) -> None:
        pass
