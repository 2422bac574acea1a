"""TensorBoard event files under ``RUN/tensorboard/`` (``train.loggers: [tensorboard]``).

Written with TensorBoard's own writer (``tensorboard.summary.writer.event_file_writer``, the one
PyTorch's ``SummaryWriter`` also uses) and its protocol buffers: one package, the optional extra
``pip install -e ".[tensorboard]"``, that both writes the files and reads them back (TensorBoard
itself), with no TensorFlow or PyTorch.

Scalars: every metric of every event, tagged ``<kind>/<metric>`` (``train/loss``, ``val/accuracy``,
``health/update_ratio/layers.1.weight``). Histograms of each parameter's weights and gradients
(before clipping) every ``histogram_every`` steps (the health interval), tagged
``weights/<param>`` and ``gradients/<param>``. A resumed run first writes a ``SessionLog.START`` at
the step it resumes from, which tells TensorBoard to drop what the interrupted process had
logged past its last checkpoint (the same steps come again).
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np

from npdl.train.extensions.base import Logger
from npdl.train.extensions.loggers import SKIPPED_EVENTS, columns

INSTALL = 'pip install tensorboard (or, in a checkout of npdl: pip install -e ".[tensorboard]")'
BINS = 30


def available() -> bool:
    """Whether the ``tensorboard`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger(Logger):
    name = "tensorboard"

    def __init__(self, logdir, histogram_every: int | None = None):
        if not available():
            raise ValueError(f"the tensorboard logger needs the tensorboard package: {INSTALL}")
        self.logdir, self.histogram_every = logdir, histogram_every
        self.writer = None

    def initialize(self, trainer) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = EventFileWriter(str(self.logdir))
        if trainer.step > 0:  # resumed: later events of the interrupted process are logged again
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=trainer.step + 1, session_log=start))

    def _add(self, step: int, values: list) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=values)
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def write(self, trainer, event: dict) -> None:
        from tensorboard.compat.proto import summary_pb2

        step = event.get("step")
        if self.writer is None or event.get("event") in SKIPPED_EVENTS or isinstance(step, bool) \
                or not isinstance(step, int):
            return
        values = [summary_pb2.Summary.Value(tag=name.replace(".", "/", 1), simple_value=float(v))
                  for name, v in columns(event).items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values:
            self._add(step, values)

    def after_backward(self, trainer) -> None:
        """On a histogram step: the weights before the update and the gradients before clipping."""
        if self.writer is None or not self.histogram_every or (trainer.step + 1) % self.histogram_every:
            return
        from tensorboard.compat.proto import summary_pb2

        values = []
        for name, p in trainer.model.named_parameters():
            grad = p.grad
            if grad is not None and not isinstance(grad, np.ndarray):  # row-sparse: the rows touched
                grad = grad.coalesce().values
            for kind, arr in (("weights", p.data), ("gradients", grad)):
                histo = histogram(arr)
                if histo is not None:
                    values.append(summary_pb2.Summary.Value(tag=f"{kind}/{name}", histo=histo))
        if values:
            self._add(trainer.step + 1, values)

    def finalize(self, trainer) -> None:
        if self.writer is not None:
            self.writer.close()  # flushes
            self.writer = None


def histogram(arr, bins: int = BINS):
    """A ``HistogramProto`` of the finite values of ``arr`` (None when there are none)."""
    from tensorboard.compat.proto import summary_pb2

    if arr is None:
        return None
    values = np.asarray(arr, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    counts, edges = np.histogram(values, bins=bins)
    return summary_pb2.HistogramProto(min=float(values.min()), max=float(values.max()), num=float(values.size),
                                      sum=float(values.sum()), sum_squares=float(values @ values),
                                      bucket_limit=[float(e) for e in edges[1:]],
                                      bucket=[float(c) for c in counts])
