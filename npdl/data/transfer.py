"""Moving the bytes of one file from a source (a local file or an http(s) URL) into a ``.part``,
with bounds: nothing is read past the catalogued size, a local copy that fails leaves nothing
behind, and an HTTP partial is kept only where a ``Range`` request can resume it.

``npdl.data.download`` decides which sources to try and verifies what arrives; this module
only transfers. Only the standard library does HTTP (``urllib.request``).
"""
from __future__ import annotations

import contextlib
import http.client
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from npdl.data.checksums import CHUNK as _CHUNK
from npdl.data.sources import RemoteFile

TIMEOUT_S = 15.0  # connect and per-read timeout: an offline machine must fail fast, not hang
UNSIZED_LIMIT = 1 << 31  # bytes read at most for a file whose size the catalog does not give (2 GiB)


class TransferFailed(Exception):
    """One source failed; the caller records the reason and tries the next source."""


@dataclass(frozen=True)
class Location:
    label: str                 # URL or path, as shown in messages
    url: str | None = None     # http(s) source
    path: Path | None = None   # local file source
    gzipped: bool = False      # decompress while fetching


def not_a_regular_file(path: Path) -> str | None:
    """None for a regular file (links followed); "" when nothing is there; else why it is refused.
    A FIFO or device is never opened: reading it would block, or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.lexists(path) else ""
    except OSError as exc:  # permission, link loop, name too long
        return f"cannot read it ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    return "not a regular file (" + next((k for test, k in kinds if test(mode)), "special") + ")"


def transfer(location: Location, part: Path, entry: RemoteFile, limit: int, progress, resume: bool) -> bool:
    """Write the bytes of ``location`` into ``part``; return True when it appended to an old ``part``.

    A local file is copied from scratch; a failed copy leaves nothing behind. Over HTTP an
    existing ``part`` is resumed with a ``Range`` request (a server that answers 200 instead of
    206 gets a full download); an interrupted transfer keeps its ``part`` only when the server
    supports ranges. Nothing is read past ``limit`` bytes.
    """
    if location.path is not None:
        try:
            with open(location.path, "rb") as src, open(part, "wb") as out, \
                    _bar(progress, entry.path, _size_of(src), 0) as advance:
                copy_bounded(src.read, out, limit, location.label, entry, advance)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise TransferFailed(f"cannot copy ({exc.strerror or exc})") from None
        except BaseException:  # a refused size, Ctrl-C: a local copy is never resumed
            part.unlink(missing_ok=True)
            raise
        return False
    offset = part.stat().st_size if resume and part.is_file() else 0
    if offset > limit:  # an old .part already too long: start over
        part.unlink()
        offset = 0
    headers = {"User-Agent": "npdl-download/0.1"} | ({"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urlopen(Request(location.url, headers=headers), timeout=TIMEOUT_S)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # nothing past our end: the .part may be complete already
            return True
        raise TransferFailed(f"HTTP {exc.code} {exc.reason}") from None
    except (URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise TransferFailed(_network_reason(exc)) from None
    with response:
        ranged = offset and response.status == 206 and _range_start(response.headers) == offset
        resumable = response.status == 206 or response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        offset = offset if ranged else 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        if total is not None and total > limit:
            part.unlink(missing_ok=True)
            raise TransferFailed(_too_long(location.label, entry, f"the server announces {total:,} bytes"))
        written = offset
        try:
            with open(part, "ab" if ranged else "wb") as out, _bar(progress, entry.path, total, offset) as advance:
                written += copy_bounded(response.read, out, limit - offset, location.label, entry, advance)
        except (OSError, http.client.HTTPException) as exc:
            if not resumable:  # nothing to resume from: leave nothing behind
                part.unlink(missing_ok=True)
            raise TransferFailed(f"interrupted: {_network_reason(exc)}"
                                 + (" (the .part is kept for resuming)" if resumable else "")) from None
        except TransferFailed:  # more bytes than the catalogued size: garbage, never resumed
            part.unlink(missing_ok=True)
            raise
        except BaseException:  # Ctrl-C: keep only what a Range request can resume
            if not resumable:
                part.unlink(missing_ok=True)
            raise
    if total is not None and written < total:
        if not resumable:
            part.unlink(missing_ok=True)
        raise TransferFailed(f"connection closed after {written} of {total} bytes"
                             + (" (the .part is kept for resuming)" if resumable else ""))
    return bool(ranged)


def limit_for(entry: RemoteFile, compressed: bool = False) -> int:
    """Most bytes worth reading for ``entry``: its catalogued size (a gzip copy of it may be a
    little larger when the data do not compress), else UNSIZED_LIMIT."""
    if entry.size is None:
        return UNSIZED_LIMIT
    return entry.size + (entry.size // 100 + 1024 if compressed else 0)


def copy_bounded(read, out, limit: int, label: str, entry: RemoteFile, advance=None) -> int:
    """Copy ``read(n)`` chunks into ``out`` until EOF; refuse a source longer than ``limit``
    (reading at most one byte more). Returns the bytes written.
    Raises: TransferFailed: the source goes on past ``limit``."""
    written = 0
    while chunk := read(min(_CHUNK, limit + 1 - written)):
        written += len(chunk)
        if written > limit:
            raise TransferFailed(_too_long(label, entry, f"it goes on past {limit:,} bytes"))
        out.write(chunk)
        if advance is not None:
            advance(len(chunk))
    return written


def _too_long(label: str, entry: RemoteFile, what: str) -> str:
    expected = f"{entry.size:,} bytes" if entry.size is not None else f"at most {UNSIZED_LIMIT:,} bytes"
    return f"refused {entry.path}: {what}, the catalog expects {expected} (not the expected file)"


def _size_of(f) -> int | None:
    try:
        return os.fstat(f.fileno()).st_size
    except OSError:
        return None


def _range_start(headers) -> int | None:
    value = headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _network_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError):
        return f"timed out after {TIMEOUT_S:.0f} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if "Name or service not known" in str(reason) or "nodename nor servname" in str(reason):
        return "host not found (no network access?)"
    return str(reason) or type(reason).__name__


def _bar(progress, label: str, total: int | None, initial: int):
    """The progress hook's context for one transfer (yields ``advance(n)``), or a silent one."""
    if progress is None:
        return contextlib.nullcontext(None)
    return progress.file(label, total, initial)
