"""Fetch the datasets of ``npdl.data.sources`` into ``<root>/<name>/``, verify them, use mirrors.

Every file goes through the same path: bytes are streamed into ``<file>.part``, the ``.part`` is
checked against the catalog checksums, and only then renamed over the final name. So a failed
or corrupt download never replaces a good copy. A mirror (a local folder, or an http(s)/file
URL, with the same file names) is tried before the official URLs.

Leftovers and bounds: an interrupted HTTP download from a server that supports ``Range``
leaves its ``.part`` behind and is resumed next time; every other failed ``.part`` (a local
copy, a server without ranges, bytes that fail the checksum) is removed, so failures never
pile up on disk. No source is read past the catalogued size (an endless stream, a gzip bomb):
the transfer stops one byte later and names the file and the size expected. A mirror entry
that is not a regular file (a FIFO, device, folder, broken link) is refused without opening it.

The transfers themselves (bounds, ``.part`` rules, HTTP) are in ``npdl.data.transfer``. Progress
goes to an optional hook (``progress``), so this module itself never prints.
"""
from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from npdl.data.archives import ArchiveError, extract_members
from npdl.data.checksums import file_problem
from npdl.data.sources import DataError, DatasetSource, RemoteFile, get_source
from npdl.data.transfer import Location as _Location
from npdl.data.transfer import TransferFailed as _AttemptFailed
from npdl.data.transfer import copy_bounded, limit_for, not_a_regular_file, transfer

ENV_DATA = "NPDL_DATA"
ENV_MIRROR = "NPDL_MIRROR"
DEFAULT_ROOT = "datasets"
_log = logging.getLogger(__name__)


class DownloadError(DataError):
    """Every source of some required file failed; the message lists each URL/path tried and why."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset that a run needs is not on disk; the message says which command fetches it."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$NPDL_DATA``, else ``./datasets`` (relative to the working directory)."""
    return Path(root if root is not None else (os.environ.get(ENV_DATA) or DEFAULT_ROOT)).expanduser()


def dataset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<name>``. Raises: UnknownDatasetError: ``name`` is not in the catalog."""
    return data_root(root) / get_source(name).name


def is_downloaded(name: str, root: str | os.PathLike | None = None) -> bool:
    """True when every required file is present with the right size (cheap: no hashing).

    Raises:
        UnknownDatasetError: ``name`` is not in the catalog.
    """
    return not _missing(get_source(name), dataset_dir(name, root))


def verify(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """Hash every file of ``name`` on disk; return one line per problem (empty list: all good).

    Missing optional files are not problems. Raises: UnknownDatasetError: unknown ``name``.
    """
    source, target = get_source(name), dataset_dir(name, root)
    problems = []
    for entry in source.files:
        if (target / entry.path).is_file() or not entry.optional:
            problem = file_problem(entry, target / entry.path)
            if problem:
                problems.append(problem)
    return problems


def require(name: str, root: str | os.PathLike | None = None) -> Path:
    """Return the dataset directory of ``name`` if its files are there.

    Raises:
        DatasetNotFoundError: some required file is missing; the message gives the download command.
        UnknownDatasetError: ``name`` is not in the catalog.
    """
    source, target = get_source(name), dataset_dir(name, root)
    missing = _missing(source, target)
    if not missing:
        return target
    command = f"npdl download {name}" + (" --mirror DIR (it has no public URL)" if source.mirror_only else "")
    detail = "" if len(missing) == len(source.files) else f" (incomplete: {len(missing)} file(s) missing)"
    raise DatasetNotFoundError(f"dataset '{name}' is not in {data_root(root).as_posix()}/{detail} — run: {command}")


def download(name: str, root: str | os.PathLike | None = None, mirror: str | os.PathLike | None = None,
             force: bool = False, progress: bool = True) -> Path:
    """Download, verify and (for archives) extract dataset ``name``; return its directory.

    Args:
        mirror: local folder or http(s)/file URL holding the files as ``<mirror>/<file>`` or
            ``<mirror>/<dataset folder>/<file>``; tried before the official URLs. ``None`` reads
            ``$NPDL_MIRROR``; ``""`` means no mirror.
        force: fetch again even the files that are present and valid (they are replaced only by
            verified copies).
        progress: a hook with ``file(label, total, initial)`` returning a context manager that
            yields ``advance(n_bytes)`` (``npdl.cli.progress.TransferBars``); ``True`` means the
            CLI's rich bars on stderr, ``False``/``None`` no display.

    Raises:
        DownloadError: all sources of a required file failed, or the mirror folder does not exist.
        UnknownDatasetError: ``name`` is not in the catalog.
    """
    progress = _progress_hook(progress)
    source = get_source(name)
    target = dataset_dir(name, root)
    mirror_base = _resolve_mirror(mirror)
    if source.mirror_only and mirror_base is None:
        wanted = " and ".join(f.path for f in source.files)
        raise DownloadError(f"dataset '{name}' has no public URL: only a data mirror provides it. "
                            f"Pass --mirror DIR (or set {ENV_MIRROR}) to a folder holding {wanted} "
                            f"(directly or under {source.mirror_subdir}/).")
    target.mkdir(parents=True, exist_ok=True)
    attempts: dict[str, list[str]] = {}
    pending = [e for e in source.files if force or file_problem(e, target / e.path)]
    left = []
    for entry in pending:  # 1. each file on its own: mirror, then official URLs
        if not entry.has_checksum:  # only trusted when extracted from a verified archive
            left.append(entry)
            continue
        tried = attempts.setdefault(entry.path, [])
        locations = _mirror_locations(mirror_base, source, entry, tried) + [_Location(u, url=u) for u in entry.urls]
        if not _fetch(entry, target / entry.path, locations, progress, not force, tried):
            left.append(entry)
    if any(not e.optional for e in left):  # 2. the archives that hold the rest
        for archive in source.archives:
            members = [e for e in left if e.archive == archive.path]
            if members:
                left = [e for e in left if e not in members]
                left += _from_archive(source, archive, members, target, mirror_base, force, progress, attempts)
    try:
        _report(source, target, left, attempts)
    except DownloadError:
        if not any(target.iterdir()):  # leave no empty folder behind; kept .part files stay for resuming
            target.rmdir()
        raise
    return target


def _progress_hook(progress):
    if progress is True:  # the CLI's display, imported only when asked for (this module never prints)
        from npdl.cli.progress import TransferBars

        return TransferBars()
    return progress or None


def _missing(source: DatasetSource, target: Path) -> list[str]:
    return [e.path for e in source.files if not e.optional and not _size_ok(e, target / e.path)]


def _size_ok(entry: RemoteFile, path: Path) -> bool:
    return path.is_file() and (entry.size is None or path.stat().st_size == entry.size)


def _resolve_mirror(mirror: str | os.PathLike | None) -> str | Path | None:
    text = os.fspath(mirror) if mirror is not None else os.environ.get(ENV_MIRROR, "")
    if not text:
        return None
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    path = Path(url2pathname(urlparse(text).path)) if text.startswith("file:") else Path(text).expanduser()
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a path too long, a link loop, no permission
        raise DownloadError(f"mirror {text!r}: {exc.strerror or exc}") from None
    if not is_dir:
        raise DownloadError(f"mirror {text!r} is not an existing folder (nor an http(s)/file URL)")
    return path


def _mirror_locations(base: str | Path | None, source: DatasetSource, entry: RemoteFile,
                      tried: list[str]) -> list[_Location]:
    """Where ``entry`` may lie under the mirror: as itself or its mirror form, at the root or in its folder."""
    if base is None:
        return []
    names = [(entry.path, False)] + ([(entry.mirror_path, entry.mirror_gzipped)] if entry.mirror_path else [])
    folders = list(dict.fromkeys(["", source.mirror_subdir, source.name]))
    relpaths = [(f"{folder}/{name}" if folder else name, gz) for folder in folders for name, gz in names]
    if isinstance(base, str):
        return [_Location(f"{base}/{rel}", url=f"{base}/{rel}", gzipped=gz) for rel, gz in relpaths]
    found, refused = [], []
    for rel, gz in relpaths:
        problem = not_a_regular_file(base / rel)
        if problem is None:
            found.append(_Location(str(base / rel), path=base / rel, gzipped=gz))
        elif problem:
            refused.append(f"{base / rel}: {problem}")
    tried += refused
    if not found and not refused:
        tried.append(f"mirror {base}: no {' or '.join(dict.fromkeys(n for n, _ in names))} there")
    return found


def _fetch(entry: RemoteFile, dest: Path, locations: list[_Location], progress, resume: bool,
           tried: list[str]) -> bool:
    """Try ``locations`` in order until one yields a verified ``dest``; record each failure in ``tried``."""
    for location in locations:
        try:
            _fetch_one(entry, dest, location, progress, resume)
            return True
        except _AttemptFailed as exc:
            tried.append(f"{location.label}: {exc}")
    return False


def _fetch_one(entry: RemoteFile, dest: Path, location: _Location, progress, resume: bool) -> None:
    """Fetch ``location`` into ``dest.part``, verify it, and rename it over ``dest``.

    Raises: _AttemptFailed: the source is unreachable, or its bytes fail the checksum.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    raw = dest.with_name(dest.name + ".gz.part") if location.gzipped else part
    limit = limit_for(entry, compressed=location.gzipped)
    resumed = transfer(location, raw, entry, limit, progress, resume)
    if location.gzipped:
        try:
            with gzip.open(raw, "rb") as src, open(part, "wb") as out:
                copy_bounded(src.read, out, limit_for(entry), location.label, entry)
        except (OSError, EOFError, zlib.error) as exc:
            part.unlink(missing_ok=True)
            raise _AttemptFailed(f"not a valid gzip file ({exc})") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            raw.unlink(missing_ok=True)
    problem = file_problem(entry, part)
    if problem:
        part.unlink(missing_ok=True)
        if resumed:  # the kept prefix may be what is corrupt: start over once from byte 0
            return _fetch_one(entry, dest, location, progress, resume=False)
        raise _AttemptFailed(problem)
    os.replace(part, dest)


def _from_archive(source: DatasetSource, archive: RemoteFile, members: list[RemoteFile], target: Path,
                  mirror_base: str | Path | None, force: bool, progress,
                  attempts: dict[str, list[str]]) -> list[RemoteFile]:
    """Get ``archive`` (reusing a present copy), extract ``members``; return the members still missing."""
    tried = attempts.setdefault(archive.path, [])
    archive_path = target / archive.path
    locations = _mirror_locations(mirror_base, source, archive, tried) + [_Location(u, url=u) for u in archive.urls]
    if archive_path.is_file() and not force and not (archive.has_checksum and file_problem(archive, archive_path)):
        locations.insert(0, None)  # None: first try the copy already in the dataset folder
    for location in locations:
        try:
            if location is not None:
                _fetch_one(archive, archive_path, location, progress, resume=not force)
            missing = extract_members(archive, archive_path, members, target)
        except (_AttemptFailed, ArchiveError) as exc:
            tried.append(f"{location.label if location else archive_path}: {exc}")
            archive_path.unlink(missing_ok=True)
            continue
        if not source.keep_archives:
            archive_path.unlink(missing_ok=True)
        return missing
    return members


def _report(source: DatasetSource, target: Path, left: list[RemoteFile], attempts: dict[str, list[str]]) -> None:
    """Warn about optional files that are missing; raise DownloadError for required ones."""
    optional = [e.path for e in left if e.optional]
    if optional:
        _log.warning("%s: %d optional file(s) not downloaded: %s", source.name, len(optional), ", ".join(optional))
    required = [e for e in left if not e.optional]
    if not required:
        return
    lines = [f"could not download dataset '{source.name}' into {target.as_posix()}; every source failed for:"]
    groups: dict[str, list[RemoteFile]] = {}
    for entry in required:
        groups.setdefault(entry.archive or entry.path, []).append(entry)
    for key, entries in groups.items():
        if entries[0].archive:  # a lone member also shows where it was looked for on its own
            lines.append(f"  {key} (archive holding {len(entries)} needed file(s)):")
            tried = (attempts.get(entries[0].path, []) if len(entries) == 1 else []) + attempts.get(key, [])
        else:
            lines.append(f"  {key}:")
            tried = attempts.get(key, [])
        lines += [f"    - {t}" for t in tried] or ["    - no source to try"]
    if any("no network" in line or "refused" in line or "timed out" in line for line in lines):
        lines.append(f"No network access? Point --mirror (or ${ENV_MIRROR}) at a folder that holds the files.")
    raise DownloadError("\n".join(lines))
