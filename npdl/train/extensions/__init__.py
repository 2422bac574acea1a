"""Trainer extensions (``Trainer.extend``): one small module each. ``standard`` assembles the
built-in ones a config asks for; users add their own from Python::

    trainer.extend(MyExtension(), trigger=(100, "step"))
"""
from __future__ import annotations

from npdl.train.extensions.base import (AnyTrigger, EventTrigger, Extension, IntervalTrigger, Logger, Never,
                                        make_trigger)
from npdl.train.extensions.checkpointing import BestCheckpoint, LastCheckpoint, PeriodicCheckpoint
from npdl.train.extensions.early_stopping import EarlyStop
from npdl.train.extensions.evaluation import Evaluate, FinalTest
from npdl.train.extensions.health_record import HealthRecord
from npdl.train.extensions.log_report import LogReport
from npdl.train.extensions.loggers import CsvLogger, JsonlLogger
from npdl.train.extensions.lr_schedule import LRSchedule
from npdl.train.extensions.nan_guard import NaNGuard
from npdl.train.extensions.progress import Progress
from npdl.train.extensions.tensorboard import TensorBoardLogger

__all__ = ["AnyTrigger", "BestCheckpoint", "CsvLogger", "EarlyStop", "Evaluate", "EventTrigger", "Extension",
           "FinalTest", "HealthRecord", "IntervalTrigger", "JsonlLogger", "LRSchedule", "LastCheckpoint", "LogReport",
           "Logger", "NaNGuard", "Never", "PeriodicCheckpoint", "Progress", "TensorBoardLogger", "make_trigger",
           "standard"]


def standard(trainer, callbacks=()) -> list[tuple[Extension, object]]:
    """The built-in extensions ``trainer.settings`` ask for, as ``(extension, trigger)`` pairs in
    the order they run after a step: loggers, the schedule, the NaN guard, health, the train
    log, progress, evaluation (then best checkpoint and early stopping, on its ``eval``),
    checkpoints, the final test."""
    s, run = trainer.settings, trainer.run
    out: list[tuple[Extension, object]] = []
    if run is not None:
        out.append((JsonlLogger(run), None))
        if "csv" in s.loggers:
            out.append((CsvLogger(run), None))
        if "tensorboard" in s.loggers:
            out.append((TensorBoardLogger(run.path / "tensorboard", histogram_every=s.health_every), None))
    if trainer.scheduler is not None:
        out.append((LRSchedule(trainer.scheduler, trainer.monitor), None))
    out.append((NaNGuard(), None))
    if s.health_every:
        out.append((HealthRecord(s.health_every), None))
    out.append((LogReport(s.log_every), None))
    out.append((Progress(callbacks), None))
    required = [("train.monitor", trainer.monitor)]
    es = s.early_stopping
    early = trainer.qualified(es.metric) if es else None
    if es:
        required.append(("train.early_stopping.metric", early))
    periodic = (s.eval_every, "step") if s.eval_every else (1, "epoch")
    out.append((Evaluate(s.eval_split, required), [periodic, "end"]))
    out.append((BestCheckpoint(trainer.monitor, s.mode or trainer.task.monitor[1]), None))
    if es:
        out.append((EarlyStop(early, es.mode, es.patience, es.min_delta), None))
    if s.checkpoint_every:
        out.append((PeriodicCheckpoint(s.checkpoint_every, s.keep_last), None))
    out.append((LastCheckpoint(), None))
    if s.test_at_end:
        out.append((FinalTest("test"), None))
    return out
