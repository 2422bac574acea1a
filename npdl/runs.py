"""Run directories: ``runs/<name>-<YYYYmmdd-HHMMSS>/``.

::

    config.yaml      the resolved config (base merged, overrides applied)
    manifest.json    command line, versions, BLAS and threads, seed, dataset checksums, pid and
                     host, start/end times, status (running | completed | interrupted | failed |
                     stopped_nan); ``Run.status()`` adds dead (running, but its process is gone)
                     and corrupt (a file npdl cannot read, with the reason)
    lock             while a process writes the run: its pid and host (see ``npdl.run_lock``)
    metrics.jsonl    one JSON object per log or eval event, append-only (see ``npdl.run_events``)
    checkpoints/     last.npz, best.npz, step-XXXXXXXX.npz (the newest ``keep_last``)
    summary.json     final figures: best/last metrics, steps, wall time
    artifacts/       what eval/predict need beside the weights (tokenizers, vocabularies)

This module reads and writes these files; it knows nothing of models or YAML parsing.
Every file read here may be damaged or hostile: a problem is a ``RunError`` naming the file,
never a traceback, and one damaged run never hides the others from ``find_runs``.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import stat
import platform
import sys
import unicodedata
from pathlib import Path

import numpy as np

from npdl import run_events, run_lock
from npdl.atomic import DISK_FULL, atomic_write as _atomic_write
from npdl.jsontext import parse_object

MAX_NAME = 200            # characters of a run name
_SUFFIX = len("-20240101-120000-999")  # what Run.create appends


class RunError(ValueError):
    """A run directory that does not exist or lacks the files a command needs."""


class DiskFullError(RunError):
    """No space (ENOSPC, EDQUOT, EFBIG) while writing a run file; the message says what survived."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def check_name(name, runs_dir: str | Path = "runs") -> str:
    """``name`` when it is usable as a run name (one folder directly under ``runs_dir``).

    Raises:
        RunError: naming the rule the name breaks.
    """
    rule = ("a run name becomes one folder under --runs-dir: not empty, not '.' or '..', not starting "
            f"with '.' or '-', no '/' or '\\', no control characters, at most {MAX_NAME} characters")
    if not isinstance(name, str):
        raise RunError(f"run name {name!r}: expected text ({rule})")
    shown = repr(name if len(name) <= 60 else name[:60] + "...")
    why = None
    if not name.strip():
        why = "is empty"
    elif "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        why = "contains a path separator"
    elif name in (".", ".."):
        why = "names a folder that is not a new run"
    elif name.startswith("."):
        why = "starts with '.' (a hidden folder)"
    elif name.startswith("-"):
        why = "starts with '-' (every npdl command given the run would read it as an option)"
    elif any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        why = "contains a control character"
    elif name != name.strip():
        why = "starts or ends with a space"
    elif len(name) > MAX_NAME:
        why = f"is {len(name)} characters long"
    else:
        limit = _name_max(Path(runs_dir))
        if len(name.encode("utf-8", "surrogatepass")) + _SUFFIX > limit:
            why = (f"is {len(name.encode('utf-8', 'surrogatepass'))} bytes; with the time stamp added it would "
                   f"pass this filesystem's {limit}-byte limit on folder names")
    if why:
        raise RunError(f"run name {shown} {why} ({rule})")
    return name


def _name_max(folder: Path) -> int:
    """The filesystem's longest file name, asked of ``folder`` or its nearest existing parent."""
    for p in [folder, *folder.absolute().parents]:
        try:
            if p.is_dir():
                return os.pathconf(p, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):
            break
    return 255


def read_json(path: Path, what: str = "") -> dict:
    """A JSON object from ``path`` ({} when the file does not exist).

    Raises:
        RunError: unreadable, not UTF-8, not JSON, or not an object -- naming the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO in its place must not block
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
            raise RunError(f"{path}: not a regular file (a FIFO or device); not a file npdl wrote")
        with os.fdopen(fd, "rb") as f:
            raw = f.read(16 << 20)
            if f.read(1):
                raise RunError(f"{path}: larger than 16 MiB; not a file npdl wrote")
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise RunError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        return parse_object(raw)
    except ValueError as why:
        raise RunError(f"{path}: {why}") from None


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def blas_info() -> dict:
    """Which BLAS NumPy uses and how many threads it runs (via threadpoolctl if present)."""
    info: dict = {}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info = {"name": blas.get("name"), "version": blas.get("version")}
    except Exception:  # noqa: BLE001 - older numpy: best effort only
        pass
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info["threads"] = pools[0].get("num_threads")
    except ImportError:
        info["threads_env"] = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS")
    info["cpu_count"] = os.cpu_count()
    return info


class Run:
    """One run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # ---- creation ----------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> "Run":
        """A new, empty run folder named ``<name>-<timestamp>`` (``-2``, ``-3``... if taken)."""
        runs_dir = Path(runs_dir)
        check_name(name, runs_dir)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{name}-{stamp}"
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            for i in range(1, 1000):
                path = runs_dir / (base if i == 1 else f"{base}-{i}")
                try:
                    path.mkdir()
                except FileExistsError:
                    continue
                (path / "checkpoints").mkdir()
                return cls(path)
        except OSError as exc:
            raise RunError(f"cannot create a run folder under {runs_dir}: {exc.strerror}") from None
        raise RunError(f"could not create a run folder under {runs_dir}")

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        """An existing run; ``RunError`` when ``path`` is not a run folder."""
        run = cls(path)
        if not _is_dir(run.path):
            raise RunError(f"run not found: {path}")
        if not (run.path / "config.yaml").is_file():
            raise RunError(f"{path} is not an npdl run (no config.yaml)")
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def artifacts(self) -> Path:
        p = self.path / "artifacts"
        p.mkdir(exist_ok=True)
        return p

    # ---- files -------------------------------------------------------------------------
    def write_config(self, yaml_text: str) -> None:
        _atomic_write(self.path / "config.yaml", yaml_text)

    def config_text(self) -> str:
        return (self.path / "config.yaml").read_text(encoding="utf-8")

    def manifest(self) -> dict:
        """manifest.json ({} when absent). Raises ``RunError`` when it is damaged."""
        return read_json(self.path / "manifest.json")

    def update_manifest(self, **fields) -> dict:
        m = self.manifest()
        m.update(fields)
        _atomic_write(self.path / "manifest.json", json.dumps(m, indent=2, default=str))
        return m

    def start_manifest(self, seed: int, datasets: dict, argv: list[str] | None = None) -> dict:
        import npdl

        return self.update_manifest(
            command=" ".join(argv if argv is not None else sys.argv), npdl_version=npdl.__version__,
            numpy_version=np.__version__, python=platform.python_version(), platform=platform.platform(),
            blas=blas_info(), seed=seed, datasets=datasets, started=_now(), status="running",
            pid=os.getpid(), host=run_lock.host())

    def set_status(self, status: str, **extra) -> None:
        self.update_manifest(status=status, ended=_now(), **extra)

    def log(self, event: dict) -> None:
        """Append one event to metrics.jsonl (flushed: a killed run keeps what it logged)."""
        run_events.append(self.path / "metrics.jsonl", json.dumps(event, default=_json_default) + "\n")

    def metrics(self) -> list[dict]:
        """Every valid event of metrics.jsonl; the lines skipped (number, reason) are in ``self.skipped``."""
        self.skipped: list[tuple[int, str]] = []
        try:
            return list(run_events.read(self.path / "metrics.jsonl", self.skipped))
        except OSError as exc:
            raise RunError(f"{self.path / 'metrics.jsonl'}: cannot read it ({exc.strerror})") from None

    def truncate_metrics(self, after_step: int, logged_after=None) -> int:
        """Drop the events logged after ``after_step`` -- or those ``logged_after(event)`` says were
        logged after the checkpoint -- which a resumed run logs again; nothing else."""
        return run_events.drop_after(self.path / "metrics.jsonl", after_step, logged_after)

    def write_summary(self, summary: dict) -> None:
        _atomic_write(self.path / "summary.json", json.dumps(summary, indent=2, default=_json_default))

    def summary(self) -> dict:
        """summary.json ({} when absent). Raises ``RunError`` when it is damaged."""
        return read_json(self.path / "summary.json")

    # ---- who writes it, and in what state it is ------------------------------------------
    def lock(self) -> run_lock.RunLock:
        """``with run.lock(): ...``: this process is the run's only writer for the block.

        Raises:
            RunError: another live process (pid and host named) holds the run.
        """
        lock = run_lock.RunLock(self.path)
        try:
            return lock.acquire()
        except run_lock.LockedError as exc:
            raise RunError(str(exc)) from None
        except OSError as exc:
            raise RunError(f"cannot lock {lock.path}: {exc.strerror}") from None

    def status(self) -> tuple[str, str]:
        """(status, reason): the manifest's status, ``dead`` for a 'running' run whose process is
        gone, ``corrupt`` when its files cannot be read (the reason says which and why)."""
        if not (self.path / "config.yaml").is_file():
            return "corrupt", f"{self.path}: no config.yaml (not a complete npdl run)"
        try:
            m = self.manifest()
        except RunError as exc:
            return "corrupt", str(exc)
        status = m.get("status")
        if not isinstance(status, str) or not status:
            why = "no status" if m else "missing (not a complete npdl run)"
            return "corrupt", f"{self.path / 'manifest.json'}: {why}"
        if status == "running":
            holder, _ = run_lock.read_lock(self.path)
            pid, where = (holder.get("pid"), holder.get("host")) if holder else (m.get("pid"), m.get("host"))
            if run_lock.process_alive(pid, where if isinstance(where, str) else None) is False:
                return "dead", (f"process {pid} is gone (killed?); continue with npdl resume" if isinstance(pid, int)
                                else "no process recorded; continue with npdl resume")
        return status, ""

    def checkpoint_path(self, which: str = "last") -> Path:
        """``last`` | ``best`` | ``step-N`` | a file path."""
        if which in ("last", "best"):
            return self.checkpoints / f"{which}.npz"
        if which.startswith("step-"):
            if not which[5:].isdigit():
                raise RunError(f"checkpoint '{which}': expected best, last, step-N (N a number) or a file path")
            return self.checkpoints / f"step-{int(which[5:]):08d}.npz"
        return Path(which)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _is_dir(p: Path) -> bool:
    """``p.is_dir()`` that says False for names the OS refuses (NUL, too long)."""
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def _started(run: Run) -> str:
    try:
        started = run.manifest().get("started", "")
    except RunError:
        return ""
    return started if isinstance(started, str) else ""


def find_runs(runs_dir: str | Path, complete: bool = True) -> list[Run]:
    """The run folders directly under ``runs_dir``, oldest first. ``complete=False`` lists every
    folder that is not hidden, also those without config.yaml (``Run.status`` flags them)."""
    runs_dir = Path(runs_dir)
    if not _is_dir(runs_dir):
        return []
    try:
        entries = list(runs_dir.iterdir())
    except OSError as exc:
        raise RunError(f"cannot list {runs_dir}: {exc.strerror}") from None
    runs = [Run(p) for p in entries if not p.name.startswith(".") and _is_dir(p)
            and (not complete or (p / "config.yaml").is_file())]
    return sorted(runs, key=lambda r: (_started(r), r.name))


def resolve(spec: str | Path, runs_dir: str | Path = "runs") -> Run:
    """A run from a path, or from a name (or unique name prefix) under ``runs_dir``; an exact
    name wins over runs that merely start with it."""
    p = Path(spec)
    if _is_dir(p):
        return Run.open(p)
    spec = str(spec)
    runs = find_runs(runs_dir) if spec and "\0" not in spec else []
    matches = [r for r in runs if r.name == spec] or [r for r in runs if r.name.startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"run not found: {spec[:300]!r} (not a folder, and no run under {runs_dir} starts with it)")
    more = f" and {len(matches) - 20} more" if len(matches) > 20 else ""
    raise RunError(f"'{spec}' matches {len(matches)} runs: {', '.join(r.name for r in matches[:20])}{more}; "
                   "give more of the name")
