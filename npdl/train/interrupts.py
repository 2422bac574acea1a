"""Stopping from outside: Ctrl-C, SIGTERM and SIGHUP finish the step, write a checkpoint and
raise ``TrainingInterrupted``; a full disk becomes a ``DiskFullError`` that names what survived."""
from __future__ import annotations

import contextlib
import signal

from npdl.runs import DiskFullError
from npdl.train import checkpoint


class TrainingInterrupted(RuntimeError):
    """Ctrl-C, SIGTERM or SIGHUP: a final checkpoint was written; ``npdl resume`` continues the run."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


# signals that mean "stop, please": each finishes the step and writes a final checkpoint
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    STOP_SIGNALS[signal.SIGHUP] = "SIGHUP"


def signal_name(signum: int) -> str:
    return STOP_SIGNALS.get(signum, f"signal {signum}")


@contextlib.contextmanager
def stop_signals(handler):
    """Route the stop signals to ``handler`` for the block (SIGTERM: kill, timeout, a batch
    scheduler; SIGHUP: a closed terminal); outside the main thread they stay as they are."""
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
    except ValueError:  # not the main thread (e.g. tests): signal handling stays default
        previous = {}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def disk_full(run, last_saved_step: int | None, exc: OSError) -> DiskFullError:
    """What a user needs after ENOSPC: the file, the checkpoint that survived, what to do."""
    last = run.checkpoint_path("last")
    step = None
    if last.is_file():
        step = last_saved_step if last_saved_step is not None else checkpoint.read_step(last)
    kept = (f"the last checkpoint that survived is step {step}: {last}; free some space, then continue "
            f"with: npdl resume {run.path}" if step is not None else
            "no checkpoint was written yet; free some space, then start the run again with npdl train")
    return DiskFullError(f"disk full: could not write {exc.filename or 'a run file'} ({exc.strerror or exc}); {kept}")
