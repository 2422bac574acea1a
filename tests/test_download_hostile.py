"""Hostile mirrors and servers: bounded reads, no leftovers that fill the disk, a good copy never
replaced, and exit 2 naming the file from the CLI (issue 11). Local mirror folders are made in
tmp_path; the endless server is an http.server on 127.0.0.1 that stops by itself."""
from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.data import sources
from npdl.data.download import DownloadError, download
from npdl.data.sources import DatasetSource, RemoteFile
from tests.conftest import env_without_data

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("NPDL_MIRROR", raising=False)
    monkeypatch.delenv("NPDL_DATA", raising=False)


def _toy(monkeypatch, *urls: str, **fields) -> DatasetSource:
    entry = RemoteFile("blob.bin", tuple(urls), sha256=SHA, size=len(PAYLOAD), **fields)
    source = DatasetSource("toy", "a test dataset", (entry,), mirror_subdir="toysub")
    monkeypatch.setitem(sources.SOURCES, "toy", source)
    return source


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.part")) if root.exists() else []


def _with_good_copy(root: Path) -> Path:
    good = root / "toy" / "blob.bin"
    good.parent.mkdir(parents=True)
    good.write_bytes(PAYLOAD)
    return good


# ---- local mirrors ---------------------------------------------------------------------------
def _hostile_entry(kind: str, mirror: Path, outside: Path) -> None:
    target = mirror / "blob.bin"
    if kind == "garbage":
        target.write_bytes(b"x" * len(PAYLOAD))
    elif kind == "too_long":               # a 1 GiB (sparse) file: only one byte past the size is read
        with open(target, "wb") as f:
            f.truncate(1 << 30)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        os.symlink("/dev/zero", target)    # endless bytes
    elif kind == "folder":
        target.mkdir()
    elif kind == "broken_link":
        os.symlink(outside / "nothing", target)
    elif kind == "link_outside":
        (outside / "secret").write_bytes(b"not the dataset")
        os.symlink(outside / "secret", target)
    elif kind == "loop":
        os.symlink(mirror / "blob.bin", target)


KINDS = ["garbage", "too_long", "fifo", "device", "folder", "broken_link", "link_outside", "loop"]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_local_mirror_is_refused_without_leftovers(monkeypatch, tmp_path, kind):
    _toy(monkeypatch)
    mirror, outside, root = tmp_path / "mirror", tmp_path / "outside", tmp_path / "data"
    mirror.mkdir(), outside.mkdir()
    _hostile_entry(kind, mirror, outside)
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match="blob.bin") as err:
        download("toy", root=root, mirror=mirror, progress=False)
    assert time.perf_counter() - t0 < 30
    assert _leftovers(root) == [] and not (root / "toy" / "blob.bin").exists()
    if kind == "too_long":
        assert "16,384 bytes" in str(err.value)   # names the expected size


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_mirror_never_replaces_a_good_copy_and_exits_2(monkeypatch, tmp_path, kind):
    _toy(monkeypatch)
    mirror, outside, root = tmp_path / "mirror", tmp_path / "outside", tmp_path / "data"
    mirror.mkdir(), outside.mkdir()
    _hostile_entry(kind, mirror, outside)
    good = _with_good_copy(root)
    res = runner.invoke(app, ["download", "toy", "--force", "--mirror", str(mirror), "--data-root", str(root)])
    assert res.exit_code == 2, res.output
    assert "blob.bin" in res.output and "Traceback" not in res.output and "internal error" not in res.output
    assert good.read_bytes() == PAYLOAD and _leftovers(root) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_mirror_file(monkeypatch, tmp_path):
    _toy(monkeypatch)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "blob.bin").write_bytes(PAYLOAD)
    (tmp_path / "m" / "blob.bin").chmod(0)
    with pytest.raises(DownloadError, match="blob.bin.*(ermission|cannot)"):
        download("toy", root=tmp_path / "d", mirror=tmp_path / "m", progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_gzip_bomb_in_a_mirror_is_cut_at_the_catalogued_size(monkeypatch, tmp_path):
    _toy(monkeypatch, mirror_path="blob.bin.gz", mirror_gzipped=True)
    (tmp_path / "m").mkdir()
    with gzip.open(tmp_path / "m" / "blob.bin.gz", "wb") as f:  # 64 MiB of zeros in ~64 KiB
        for _ in range(64):
            f.write(bytes(1 << 20))
    with pytest.raises(DownloadError, match="16,384 bytes"):
        download("toy", root=tmp_path / "d", mirror=tmp_path / "m", progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_a_good_local_mirror_still_works_with_a_progress_hook(monkeypatch, tmp_path):
    _toy(monkeypatch)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "blob.bin").write_bytes(PAYLOAD)
    seen = []

    class Hook:
        def file(self, label, total, initial):
            seen.append((label, total, initial))
            from contextlib import nullcontext

            return nullcontext(lambda n: seen.append(n))

    path = download("toy", root=tmp_path / "d", mirror=tmp_path / "m", progress=Hook())
    assert (path / "blob.bin").read_bytes() == PAYLOAD
    assert seen[0] == ("blob.bin", len(PAYLOAD), 0) and sum(seen[1:]) == len(PAYLOAD)


# ---- HTTP: endless streams, lying lengths, partials without Range support -------------------
class _Endless(BaseHTTPRequestHandler):
    """``/endless``: bytes without end and no Content-Length (stops by itself after 64 MiB or when
    the client leaves); ``/liar``: announces 1 GiB; ``/cut``: half the payload, no Range support."""

    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        self.send_response(200)
        if self.path == "/liar":
            self.send_header("Content-Length", str(1 << 30))
        elif self.path == "/cut":
            self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.path == "/cut":
            self.wfile.write(PAYLOAD[:5000])
            return
        try:
            for _ in range(1024):
                self.wfile.write(b"z" * 65536)
        except OSError:  # the client stopped reading: what npdl should do
            self.server.client_left = True

    def log_message(self, *args):
        pass


@pytest.fixture
def endless():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.requests, server.client_left = [], False
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


@pytest.mark.parametrize("path", ["/endless", "/liar"])
def test_server_streaming_without_end_is_refused_at_the_size(monkeypatch, tmp_path, endless, path):
    _toy(monkeypatch, endless.url + path)
    good = _with_good_copy(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match=r"blob.bin.*16,384 bytes"):
        download("toy", root=tmp_path, force=True, progress=False)
    assert time.perf_counter() - t0 < 30
    assert good.read_bytes() == PAYLOAD and _leftovers(tmp_path) == []


def test_partial_from_a_server_without_ranges_is_not_kept(monkeypatch, tmp_path, endless):
    _toy(monkeypatch, endless.url + "/cut")
    with pytest.raises(DownloadError, match="connection closed after 5000"):
        download("toy", root=tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_endless_http_mirror_from_the_cli(monkeypatch, tmp_path, endless):
    _toy(monkeypatch)
    res = runner.invoke(app, ["download", "toy", "--mirror", endless.url + "/endless", "--data-root", str(tmp_path)])
    assert res.exit_code == 2 and "blob.bin" in res.output and "16,384 bytes" in res.output, res.output
    assert _leftovers(tmp_path) == []


def test_download_in_a_real_process_names_the_file(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    os.mkfifo(mirror / "text8_prefix.gz")            # the one file of this mirror-only dataset
    proc = subprocess.run([sys.executable, "-m", "npdl", "download", "text8_prefix", "--mirror", str(mirror),
                           "--data-root", str(tmp_path / "d")], capture_output=True, text=True, timeout=120,
                          env=env_without_data())
    assert proc.returncode == 2, proc.stderr
    assert "text8_prefix.gz" in proc.stderr and "FIFO" in proc.stderr and "Traceback" not in proc.stderr
    assert _leftovers(tmp_path / "d") == []
