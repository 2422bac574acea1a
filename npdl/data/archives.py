"""Extracting catalog files from downloaded archives (zip, tar.gz), safely.

Members are written to ``.part`` files first and renamed into place only once the archive
proves genuine (every member with a checksum matches, and at least one thing verified), so
a wrong or truncated archive never replaces good files. Only regular members named in the
catalog are read: links and devices are never created, and no path can leave the target.
No member is extracted past its catalogued size (or ``MEMBER_LIMIT`` when it has none), so a
decompression bomb stops early.
"""
from __future__ import annotations

import logging
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from npdl.data.checksums import CHUNK, file_problem
from npdl.data.sources import RemoteFile

_log = logging.getLogger(__name__)
MEMBER_LIMIT = 1 << 30  # bytes extracted at most from a member whose size the catalog does not give


class ArchiveError(Exception):
    """The archive is unreadable, or not the expected one (a member is missing or corrupt)."""


def extract_members(archive: RemoteFile, archive_path: Path, members: list[RemoteFile],
                    target: Path) -> list[RemoteFile]:
    """Extract ``members`` via ``.part`` files; rename them only if the archive proves genuine.

    Returns the optional members that were absent or failed their checksum.
    Raises: ArchiveError: unreadable archive, or a required member absent or corrupt.
    """
    parts = {e.path: safe_join(target, e.path + ".part") for e in members}
    by_name = {e.path: e for e in members}
    done: set[str] = set()
    try:
        for name, stream in archive_members(archive_path, set(parts)):
            parts[name].parent.mkdir(parents=True, exist_ok=True)
            with open(parts[name], "wb") as out:
                _copy_member(stream, out, by_name[name])
            done.add(name)
        verified, bad, dropped = archive.has_checksum, [], []
        for entry in members:
            problem = f"{entry.path}: not in the archive" if entry.path not in done else (
                file_problem(entry, parts[entry.path]) if entry.has_checksum else None)
            if problem and entry.optional:
                dropped.append(entry)
                _log.warning("%s: skipping optional %s", archive.path, problem)
            elif problem:
                bad.append(problem)
            verified = verified or (entry.has_checksum and not problem)
        if bad or not verified:
            what = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise ArchiveError(f"not the expected archive: {what}" if bad
                                 else "nothing in the archive could be verified")
        for entry in members:
            if entry not in dropped:
                os.replace(parts[entry.path], safe_join(target, entry.path))
        return dropped
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"cannot read the archive ({exc})") from None
    finally:
        for part in parts.values():
            part.unlink(missing_ok=True)


def _copy_member(stream: IO[bytes], out: IO[bytes], entry: RemoteFile) -> None:
    """Copy one member, reading at most one byte past its expected size.
    Raises: ArchiveError: the member is larger than the catalog allows."""
    limit = entry.size if entry.size is not None else MEMBER_LIMIT
    written = 0
    while chunk := stream.read(min(CHUNK, limit + 1 - written)):
        written += len(chunk)
        if written > limit:
            expected = f"{entry.size:,} bytes" if entry.size is not None else f"at most {MEMBER_LIMIT:,} bytes"
            raise ArchiveError(f"{entry.path}: larger than expected ({expected}): not the expected archive")
        out.write(chunk)


def archive_members(path: Path, wanted: set[str]) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(name, stream)`` for the regular-file members named in ``wanted`` (zip or tar)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removeprefix("./")
                if name in wanted and not info.is_dir():
                    with zf.open(info) as stream:  # zipfile checks each member's CRC-32 as it reads
                        yield name, stream
        return
    with tarfile.open(path, "r:*") as tar:
        for member in tar:  # sequential: no backward seeks in the gzip stream
            name = member.name.removeprefix("./")
            if name in wanted and member.isfile():  # links and devices are never followed or created
                yield name, tar.extractfile(member)


def safe_join(target: Path, relpath: str) -> Path:
    """``target / relpath``, refusing anything that would land outside ``target``.

    Raises: ArchiveError: ``relpath`` escapes ``target`` (a catalog bug, never from archive names).
    """
    path = target / relpath
    if not path.resolve().is_relative_to(target.resolve()):
        raise ArchiveError(f"refusing to write outside {target}: {relpath!r}")
    return path
