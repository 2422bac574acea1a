"""One writer per run folder: the ``lock`` file, and whether a recorded process still lives.

The lock is a small JSON file ``{"pid", "host", "since"}`` in the run folder. It is written
complete to a temporary file and then hard-linked to ``lock``: ``link`` fails when the name
exists, so exactly one process wins, and nobody ever reads a half-written lock (the same
trick as git's and Mercurial's lock files; ``O_EXCL`` is the fallback where a filesystem has
no hard links). A lock whose process is gone (same host, ``kill(pid, 0)`` says no such
process) is stale and taken over; one held by a live process, or by a process on another
host (which cannot be checked from here), makes the second writer stop with the pid and host.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import socket
from pathlib import Path

from npdl.atomic import FILE_MODE
from npdl.jsontext import parse_object

LOCK = "lock"


def host() -> str:
    return socket.gethostname()


def process_alive(pid, on_host: str | None = None) -> bool | None:
    """True/False for a process on this host; None when ``on_host`` is another machine."""
    if on_host is not None and on_host != host():
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:  # kill(0 or -1, 0) means a group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except (OverflowError, OSError, ValueError):
        return False
    return True


def read_lock(folder: Path) -> tuple[dict | None, bytes | None]:
    """(holder, raw bytes) of ``folder/lock``: (None, None) when there is none, (None, raw) when
    it is not a lock npdl wrote (garbage: it names no process, so nobody can be holding it)."""
    try:
        with open(folder / LOCK, "rb") as f:
            raw = f.read(4096)
    except FileNotFoundError:
        return None, None
    except OSError:
        return None, b""
    try:
        holder = parse_object(raw)
    except ValueError:
        return None, raw
    if not isinstance(holder.get("pid"), int):
        return None, raw
    return holder, raw


class LockedError(RuntimeError):
    """Raised by ``RunLock.acquire``; ``runs`` turns it into a ``RunError``."""


class RunLock:
    """``with RunLock(folder): ...`` -- held for the block, released on every way out."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.held = False

    def __enter__(self) -> "RunLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> "RunLock":
        me = {"pid": os.getpid(), "host": host(), "since": _dt.datetime.now().isoformat(timespec="seconds")}
        data = json.dumps(me).encode("utf-8")
        for _ in range(10):  # each round either wins, or removes one stale lock, or raises
            if self._create(data):
                self.held = True
                return self
            holder, raw = read_lock(self.folder)
            if raw is None:  # released between our try and our read: try again
                continue
            if holder is not None:
                alive = process_alive(holder["pid"], holder.get("host"))
                if alive is not False:
                    where = holder.get("host", "?")
                    raise LockedError(
                        f"run {self.folder.name} is in use by process {holder['pid']} on host {where} "
                        f"(since {holder.get('since', '?')}); wait for it to end or stop it. If that process "
                        f"is gone{' (it runs on another host, which npdl cannot check)' if alive is None else ''}, "
                        f"delete {self.path}")
            self._break(raw)
        raise LockedError(f"could not lock {self.path}: other processes keep taking it")

    def _create(self, data: bytes) -> bool:
        tmp = self.folder / f".lock-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, self.path)
                return True
            except FileExistsError:
                return False
            except OSError:  # no hard links here: O_EXCL on the lock itself
                pass
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            except FileExistsError:
                return False
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _break(self, raw: bytes) -> None:
        """Remove a stale lock -- only the one we judged stale: it is renamed aside first, and if
        what was renamed is not what we read (someone took the lock meanwhile), it is put back."""
        aside = self.folder / f".lock-stale-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            if aside.read_bytes()[:4096] != raw:
                try:
                    os.link(aside, self.path)
                except OSError:
                    pass
        finally:
            aside.unlink(missing_ok=True)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        holder, _ = read_lock(self.folder)
        if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == host():
            try:
                self.path.unlink()
            except OSError:
                pass
