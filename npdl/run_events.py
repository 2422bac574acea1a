"""``metrics.jsonl``: append-only, read line by line, never rewritten from a partial read.

One JSON object per line. A line that is not one (cut by a kill, garbage, binary junk, a
line longer than ``MAX_LINE``) is skipped and reported by its number; every valid event
before AND after it is kept. Reading streams the file, so memory is bounded by the valid
events plus one line. The only rewrite is ``drop_after`` (what ``npdl resume`` needs): it
copies every line byte for byte except valid events logged after the checkpoint's step,
streamed into a temporary file that replaces the original only when complete.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from npdl.atomic import atomic_open, name_the_file

MAX_LINE = 1 << 20  # bytes; events are a few hundred


def _raw_lines(f: BinaryIO, cap: int = MAX_LINE) -> Iterator[tuple[int, list[bytes], bool]]:
    """(line number, the line's bytes in pieces, whether it was longer than ``cap``)."""
    n = 0
    while True:
        line = f.readline(cap + 1)
        if not line:
            return
        n += 1
        if len(line) <= cap or line.endswith(b"\n"):
            yield n, [line], False
            continue
        pieces = [line]
        while True:  # an overlong line: pass its pieces on without ever holding all of it
            more = f.readline(cap)
            if not more:
                break
            pieces.append(more)
            if more.endswith(b"\n"):
                break
            yield n, pieces, True
            pieces = []
        yield n, pieces, True


def parse(line: bytes) -> tuple[dict | None, str | None]:
    """(event, None) for a JSON object; (None, why) for anything else; (None, None) for blank."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if not text.strip():
        return None, None
    try:
        event = json.loads(text)
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:
        return None, "not valid JSON (a line cut by a kill, or garbage)"
    if not isinstance(event, dict):
        return None, f"a JSON {type(event).__name__}, not an object"
    return event, None


def read(path: str | os.PathLike, skipped: list | None = None) -> Iterator[dict]:
    """Every valid event of ``path`` in order; each skipped line's (number, reason) goes to ``skipped``."""
    try:
        # O_NONBLOCK: a FIFO (or device) put in place of the file must not block the reader
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with os.fdopen(fd, "rb") as f:
        pending_long = None
        for n, pieces, long in _raw_lines(f):
            if long:
                if pending_long != n and skipped is not None:
                    skipped.append((n, f"longer than {MAX_LINE // (1 << 20)} MiB"))
                pending_long = n
                continue
            event, why = parse(pieces[0])
            if event is not None:
                yield event
            elif why is not None and skipped is not None:
                skipped.append((n, why))


def append(path: str | os.PathLike, line: str) -> None:
    """Append one line (flushed). A file whose last line was cut by a kill (no final newline)
    first gets its newline, so the cut line cannot swallow the new event."""
    data = line.encode("utf-8")
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or folder in its place
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with open(path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    data = b"\n" + data
            f.write(data)
            f.flush()
    except OSError as exc:
        raise name_the_file(exc, path)


def _step_after(event: dict, step: int) -> bool:
    s = event.get("step")
    return isinstance(s, (int, float)) and not isinstance(s, bool) and s > step


def drop_after(path: str | os.PathLike, step: int, logged_after=None) -> int:
    """Remove the valid events whose ``step`` is greater than ``step`` (or, given the predicate
    ``logged_after(event)``, those it says were logged after the checkpoint); returns how many.

    Everything else is copied as it is (skipped lines too: they are not ours to delete), with a
    newline added to a last line that lacks one. Nothing is written when nothing changes.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    gone = logged_after or (lambda e: _step_after(e, step))
    with open(path, "rb") as f:
        drop = sum(1 for _, p, long in _raw_lines(f) if not long and (e := parse(p[0])[0]) and gone(e))
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(-1, os.SEEK_END)
        torn_end = size > 0 and f.read(1) != b"\n"
    if not drop and not torn_end:
        return 0
    with open(path, "rb") as src, atomic_open(path, "wb") as dst:
        last = b"\n"
        for _, pieces, long in _raw_lines(src):
            if not long:
                event = parse(pieces[0])[0]
                if event is not None and gone(event):
                    continue
            for piece in pieces:
                dst.write(piece)
                last = piece[-1:]
        if last != b"\n":
            dst.write(b"\n")
    return drop
