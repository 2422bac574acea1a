"""Writing files so that a crash leaves the old file or the new one, never half of one.

Everything npdl writes into a run folder (checkpoints, configs, manifests, tokenizers,
exported vectors) goes through here: the bytes go to a temporary file in the same folder,
are flushed to disk, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows when both paths are on one filesystem).

``mkstemp`` creates its file with mode 0600; the finished file gets ``0666 & ~umask``
instead, like any file ``open()`` creates, so a team can share a runs folder. The umask is
read once, at import (reading it with ``os.umask`` means setting it for a moment, which is
not thread-safe, so it is done before any thread exists; Linux also shows it in /proc).

A failed write re-raises the ``OSError`` with ``filename`` set to the TARGET path (a write
on a full disk raises without a filename, and the temporary name would mean nothing to a
user), so callers can say which file could not be written.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

# errnos that mean "no room": the disk, the user's quota, or the largest file size
DISK_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None)


def _read_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK


def name_the_file(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc`` with ``filename`` set to ``path`` when it has none (or names a temporary file)."""
    if exc.filename is None or Path(str(exc.filename)).name.startswith(".tmp-"):
        exc.filename = str(path)
    return exc


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """``with atomic_open(p, "w") as f: ...``: ``p`` appears, complete, only when the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    except OSError as exc:
        raise name_the_file(exc, path)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise name_the_file(exc, path)
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically."""
    if isinstance(data, str):
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(data)
    else:
        with atomic_open(path, "wb") as f:
            f.write(data)
    return Path(path)
