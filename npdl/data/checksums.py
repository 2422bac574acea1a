"""Checking a file on disk against its catalog entry (size, sha256, md5, CRC-32)."""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from npdl.data.sources import RemoteFile

CHUNK = 1 << 20


def file_problem(entry: RemoteFile, path: Path) -> str | None:
    """Check ``path`` (the final file or its ``.part``) against ``entry``; None when it matches."""
    if not path.is_file():
        return f"{entry.path}: missing"
    sha = hashlib.sha256() if entry.sha256 else None
    md5 = hashlib.md5(usedforsecurity=False) if entry.md5 else None
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            crc = zlib.crc32(chunk, crc) if entry.crc32 is not None else crc
            for h in (sha, md5):
                if h:
                    h.update(chunk)
    got = [("size", entry.size, size), ("sha256", entry.sha256, sha and sha.hexdigest()),
           ("md5", entry.md5, md5 and md5.hexdigest()),
           ("crc32", entry.crc32 and f"{entry.crc32:08x}", entry.crc32 is not None and f"{crc:08x}")]
    bad = [f"{kind} expected {want}, got {have}" for kind, want, have in got if want is not None and want != have]
    if not bad:
        return None
    note = f" (the expected hash was {entry.hash_note})" if entry.hash_note else ""
    return f"{entry.path}: checksum mismatch: {'; '.join(bad)}{note}"
