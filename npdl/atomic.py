"""Writing files so that a crash leaves the old file or the new one, never half of one.

Everything npdl writes into a run folder (checkpoints, configs, manifests, tokenizers,
exported vectors) goes through here: the bytes go to a temporary file in the same folder,
are flushed to disk, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows when both paths are on one filesystem).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """``with atomic_open(p, "w") as f: ...``: ``p`` appears, complete, only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
