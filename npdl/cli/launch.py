"""``--procs N``: data-parallel runs over MPI (``npdl.train.distributed``), from the CLI side.

The launcher (``npdl train CONFIG --procs N``) starts ``mpiexec -n N <this python> -m npdl train
CONFIG`` with N // cores BLAS threads per rank, in a session of its own so that Ctrl-C reaches
only the launcher, which passes it to mpiexec (which passes it to every rank: they agree on the
step to stop at, rank 0 writes the final checkpoint, the run ends ``interrupted``).

On each rank, ``guard`` decides how a rank ends. MPI cannot let one rank leave while the others
wait in a collective (they would wait forever), so a rank that fails waits ``GRACE`` seconds
for the others to fail the same way (a config error: every rank raises it; rank 0 alone
prints it); when they do not, the rank prints its error with its rank, marks the run failed
and calls ``MPI_Abort``, which ends every rank. A rank killed outright (SIGKILL, out of
memory) is seen by mpiexec, which ends the others; the launcher then marks the run failed.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

from npdl.cli.app import classify, err_console, fail
from npdl.train.distributed import mpiexec_path

GRACE = 3.0          # seconds a failing rank waits for the others before MPI_Abort
PROCS_HELP = "Train on N processes (MPI data parallelism; the config's batch size stays the global batch)."
_STATE: dict = {"stderr": None}


def check_available() -> str:
    """The mpiexec to use; exit 2 with the install line when mpi4py or mpiexec is missing."""
    from npdl.train.distributed import INSTALL_HINT

    exe = mpiexec_path()
    if importlib.util.find_spec("mpi4py") is None or exe is None:
        missing = "mpi4py" if importlib.util.find_spec("mpi4py") is None else "mpiexec"
        raise fail(f"--procs needs MPI ({missing} not found): {INSTALL_HINT}")
    return exe


def spawn(procs: int, args: list[str]) -> None:
    """Run ``npdl <args>`` on ``procs`` ranks under mpiexec; exits with its status."""
    exe = check_available()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(key, str(max(1, cores // procs)))
    fd, info = tempfile.mkstemp(prefix="npdl-launch-", suffix=".txt")
    os.close(fd)
    env["NPDL_LAUNCH_INFO"] = info
    proc = subprocess.Popen([exe, "-n", str(procs), sys.executable, "-m", "npdl", *args], env=env,
                            start_new_session=True)

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    run_path = Path(info).read_text().strip() if os.path.getsize(info) else ""
    os.unlink(info)
    if rc not in (0, 2, 130, 143) and run_path:
        _mark_failed(run_path, f"a rank ended abnormally (mpiexec exit status {rc})", only_if_running=True)
    raise typer.Exit(rc)


def _mark_failed(path: str, error: str, only_if_running: bool = False) -> None:
    from npdl.runs import Run, RunError

    try:
        run = Run(path)
        if only_if_running and run.manifest().get("status") != "running":
            return
        run.set_status("failed", error=error)
    except (OSError, RunError):
        pass


def rank_world():
    """This process's world (``LOCAL`` when not under mpiexec); on ranks > 0 the screen is
    left to rank 0 (their own errors still show, see ``guard``)."""
    from npdl.train import distributed

    if not distributed.launched_by_mpi():
        return distributed.LOCAL
    try:
        comm = distributed.init()
    except ImportError as exc:
        raise fail(str(exc)) from None
    distributed.limit_threads(comm)
    if not comm.root and _STATE["stderr"] is None:
        _STATE["stderr"] = sys.stderr
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    return comm


def announce(comm, run_path) -> str:
    """Rank 0's run folder to every rank (and to the launcher, for a rank killed outright)."""
    path = comm.mpi.bcast(str(run_path) if comm.root else None, root=0)
    info = os.environ.get("NPDL_LAUNCH_INFO")
    if comm.root and info:
        with contextlib.suppress(OSError):
            Path(info).write_text(path)
    _STATE["run"] = path
    return path


@contextlib.contextmanager
def guard(comm):
    """How a rank ends: see the module docstring. LOCAL: nothing changes."""
    if comm.mpi is None:
        yield
        return
    try:
        yield
    except typer.Exit as exc:
        if exc.exit_code:
            _end(comm, exc.exit_code, None)
        raise
    except BaseException as exc:  # noqa: BLE001 - every way out must keep the ranks together
        message, code = ("interrupted", 130) if isinstance(exc, KeyboardInterrupt) else classify(exc)
        _end(comm, code, message)
        if comm.root:
            raise fail(message, code=code) from None
        raise typer.Exit(code) from None


def _end(comm, code: int, message: str | None) -> None:
    """Leave together when every rank is leaving; else report, mark the run failed, abort all."""
    request = comm.mpi.Ibarrier()
    deadline = time.monotonic() + GRACE
    while not request.Test():
        if time.monotonic() > deadline:
            text = f"rank {comm.rank}: {message or f'exit status {code}'}"
            stream = _STATE["stderr"] or sys.stderr
            err_console.file = stream
            err_console.print(f"error: {text}", soft_wrap=True, markup=False)
            if _STATE.get("run"):   # a run that already completed or was interrupted keeps that status
                _mark_failed(_STATE["run"], text, only_if_running=True)
            stream.flush()
            comm.mpi.Abort(code or 1)
        time.sleep(0.01)
