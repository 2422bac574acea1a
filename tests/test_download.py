"""Download machinery against a local HTTP server on 127.0.0.1 (never the real internet)."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import socket
import tarfile
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from npdl.data import sources
from npdl.data.download import (DatasetNotFoundError, DownloadError, data_root, dataset_dir, download,
                                is_downloaded, require, verify)
from npdl.data.sources import DatasetSource, RemoteFile, UnknownDatasetError, get_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"offline data mirror {SHARED} is absent")

PAYLOAD = bytes(range(256)) * 64  # 16 KiB, so that a half-file .part is meaningful
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range`` only when ``server.ranges``; can cut bodies short."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, wanted = 0, self.headers.get("Range")
        if wanted and server.ranges:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        if server.ranges:  # what real servers (S3, GCS) announce; without it a partial is not kept
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[:server.truncate.get(self.path, len(payload))])

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """No proxy for 127.0.0.1, no mirror or data root leaking in from the caller's environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("NPDL_MIRROR", raising=False)
    monkeypatch.delenv("NPDL_DATA", raising=False)


@pytest.fixture
def serve():
    """``serve(files, ranges=True, truncate=None)`` starts a server; all are shut down after the test."""
    started = []

    def start(files: dict[str, bytes], ranges: bool = True, truncate: dict[str, int] | None = None):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.files, server.ranges, server.truncate, server.requests = files, ranges, truncate or {}, []
        server.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def refused_url():
    """A URL on a port that nothing listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/blob.bin"


def _toy(monkeypatch, *urls: str, **file_fields) -> DatasetSource:
    entry = RemoteFile("blob.bin", tuple(urls), sha256=PAYLOAD_SHA, size=len(PAYLOAD), **file_fields)
    source = DatasetSource("toy", "a test dataset", (entry,), mirror_subdir="toysub")
    monkeypatch.setitem(sources.SOURCES, "toy", source)
    return source


def test_falls_back_to_next_url(monkeypatch, serve, refused_url, tmp_path):
    server = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, refused_url, server.url + "/missing.bin", server.url + "/blob.bin")
    path = download("toy", root=tmp_path, progress=False)
    assert (path / "blob.bin").read_bytes() == PAYLOAD
    assert not list(path.glob("*.part"))
    assert verify("toy", root=tmp_path) == [] and is_downloaded("toy", root=tmp_path)


def test_all_sources_failing_lists_each(monkeypatch, serve, refused_url, tmp_path):
    server = serve({})
    _toy(monkeypatch, refused_url, server.url + "/blob.bin")
    with pytest.raises(DownloadError) as info:
        download("toy", root=tmp_path, progress=False)
    message = str(info.value)
    assert f"{refused_url}: connection refused" in message
    assert f"{server.url}/blob.bin: HTTP 404" in message
    assert not (tmp_path / "toy").exists()  # no empty folder left behind


def test_corrupt_download_never_replaces_good_copy(monkeypatch, serve, tmp_path):
    bad = b"X" + PAYLOAD[1:]
    server = serve({"/blob.bin": bad})
    _toy(monkeypatch, server.url + "/blob.bin")
    target = tmp_path / "toy"
    target.mkdir()
    (target / "blob.bin").write_bytes(PAYLOAD)
    with pytest.raises(DownloadError) as info:
        download("toy", root=tmp_path, force=True, progress=False)
    message = str(info.value)
    assert "blob.bin" in message and PAYLOAD_SHA in message and hashlib.sha256(bad).hexdigest() in message
    assert (target / "blob.bin").read_bytes() == PAYLOAD
    assert not (target / "blob.bin.part").exists()


def test_corrupt_first_source_falls_through(monkeypatch, serve, tmp_path):
    server = serve({"/bad.bin": PAYLOAD[:-1] + b"!", "/blob.bin": PAYLOAD})
    _toy(monkeypatch, server.url + "/bad.bin", server.url + "/blob.bin")
    assert (download("toy", root=tmp_path, progress=False) / "blob.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize("ranges", [True, False], ids=["server-honours-range", "server-ignores-range"])
def test_resumes_partial_download(monkeypatch, serve, tmp_path, ranges):
    server = serve({"/blob.bin": PAYLOAD}, ranges=ranges)
    _toy(monkeypatch, server.url + "/blob.bin")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "blob.bin.part").write_bytes(PAYLOAD[:5000])
    path = download("toy", root=tmp_path, progress=False)
    assert (path / "blob.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/blob.bin", "bytes=5000-")]
    assert not (path / "blob.bin.part").exists()


def test_resumed_corrupt_prefix_restarts_from_zero(monkeypatch, serve, tmp_path):
    server = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, server.url + "/blob.bin")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "blob.bin.part").write_bytes(b"garbage!" * 100)
    assert (download("toy", root=tmp_path, progress=False) / "blob.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/blob.bin", "bytes=800-"), ("/blob.bin", None)]


def test_interrupted_transfer_keeps_part_for_resuming(monkeypatch, serve, tmp_path):
    cut = serve({"/blob.bin": PAYLOAD}, truncate={"/blob.bin": 6000})
    _toy(monkeypatch, cut.url + "/blob.bin")
    with pytest.raises(DownloadError, match="connection closed after 6000 of 16384 bytes"):
        download("toy", root=tmp_path, progress=False)
    assert (tmp_path / "toy" / "blob.bin.part").stat().st_size == 6000
    good = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, good.url + "/blob.bin")
    assert (download("toy", root=tmp_path, progress=True) / "blob.bin").read_bytes() == PAYLOAD
    assert good.requests == [("/blob.bin", "bytes=6000-")]


def test_present_files_are_skipped_unless_forced(monkeypatch, serve, tmp_path):
    server = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, server.url + "/blob.bin")
    download("toy", root=tmp_path, progress=False)
    download("toy", root=tmp_path, progress=False)
    assert len(server.requests) == 1
    (tmp_path / "toy" / "blob.bin.part").write_bytes(b"stale")  # force ignores a stale .part
    download("toy", root=tmp_path, force=True, progress=False)
    assert server.requests[1] == ("/blob.bin", None)
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == PAYLOAD


def test_corrupt_present_file_is_fetched_again(monkeypatch, serve, tmp_path):
    server = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, server.url + "/blob.bin")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "blob.bin").write_bytes(b"Y" * len(PAYLOAD))
    assert "sha256 expected" in verify("toy", root=tmp_path)[0]
    download("toy", root=tmp_path, progress=False)
    assert verify("toy", root=tmp_path) == []


def test_local_mirror_comes_first_at_root_or_in_subfolder(monkeypatch, serve, refused_url, tmp_path):
    server = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, server.url + "/blob.bin")
    mirror = tmp_path / "mirror"
    (mirror / "toysub").mkdir(parents=True)
    (mirror / "toysub" / "blob.bin").write_bytes(PAYLOAD)
    for i, base in enumerate([mirror, mirror / "toysub", (mirror / "toysub").as_uri()]):
        root = tmp_path / f"data{i}"
        assert (download("toy", root=root, mirror=base, progress=False) / "blob.bin").read_bytes() == PAYLOAD
    assert server.requests == []


def test_corrupt_mirror_copy_falls_back_to_url(monkeypatch, serve, tmp_path):
    server = serve({"/blob.bin": PAYLOAD})
    _toy(monkeypatch, server.url + "/blob.bin")
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "blob.bin").write_bytes(b"corrupt")
    path = download("toy", root=tmp_path / "data", mirror=tmp_path / "mirror", progress=False)
    assert (path / "blob.bin").read_bytes() == PAYLOAD and len(server.requests) == 1


def test_http_mirror_and_gzipped_mirror_copy(monkeypatch, serve, refused_url, tmp_path):
    server = serve({"/toysub/blob.bin.gz": gzip.compress(PAYLOAD)})
    _toy(monkeypatch, refused_url, mirror_path="blob.bin.gz", mirror_gzipped=True)
    path = download("toy", root=tmp_path, mirror=server.url, progress=False)
    assert (path / "blob.bin").read_bytes() == PAYLOAD
    assert not list(path.glob("*.part"))


def test_mirror_from_environment(monkeypatch, refused_url, tmp_path):
    _toy(monkeypatch, refused_url)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "blob.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("NPDL_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(DownloadError):  # "" switches the environment's mirror off
        download("toy", root=tmp_path / "a", mirror="", progress=False)
    assert (download("toy", root=tmp_path / "b", progress=False) / "blob.bin").read_bytes() == PAYLOAD


def test_missing_mirror_folder_is_an_error(monkeypatch, refused_url, tmp_path):
    _toy(monkeypatch, refused_url)
    with pytest.raises(DownloadError, match="not an existing folder"):
        download("toy", root=tmp_path, mirror=tmp_path / "nowhere", progress=False)


def test_mirror_only_dataset_needs_a_mirror(tmp_path):
    with pytest.raises(DownloadError, match="no public URL.*--mirror"):
        download("text8_prefix", root=tmp_path, mirror="", progress=False)


def test_data_root_and_dataset_dir(monkeypatch, tmp_path):
    assert data_root() == Path("datasets")
    monkeypatch.setenv("NPDL_DATA", str(tmp_path))
    assert dataset_dir("mnist") == tmp_path / "mnist"
    assert data_root("elsewhere") == Path("elsewhere")


def test_require_says_how_to_download(tmp_path):
    root = tmp_path / "datasets"
    with pytest.raises(DatasetNotFoundError) as info:
        require("mnist", root=root)
    assert str(info.value) == f"dataset 'mnist' is not in {root.as_posix()}/ — run: npdl download mnist"
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError, match="--mirror DIR"):
        require("qqp_sample", root=root)


def test_unknown_dataset_suggests_close_names(tmp_path):
    with pytest.raises(UnknownDatasetError, match="Did you mean 'mnist'") as info:
        get_source("minst")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownDatasetError, match="fashion_mnist"):
        download("fashion-mnist", root=tmp_path)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_zip_archive_is_extracted_safely_and_deleted(monkeypatch, serve, tmp_path):
    blob = _zip({"pack/blob.bin": PAYLOAD, "pack/notes.txt": b"hi", "../evil.txt": b"x"})
    server = serve({"/pack.zip": blob})
    archive = RemoteFile("pack.zip", (server.url + "/pack.zip",), sha256=hashlib.sha256(blob).hexdigest())
    files = (RemoteFile("pack/blob.bin", sha256=PAYLOAD_SHA, archive="pack.zip"),
             RemoteFile("pack/notes.txt", archive="pack.zip"))  # no hash: trusted via the archive's
    monkeypatch.setitem(sources.SOURCES, "toy", DatasetSource("toy", "zip", files, archives=(archive,)))
    path = download("toy", root=tmp_path / "data", progress=False)
    assert (path / "pack" / "blob.bin").read_bytes() == PAYLOAD
    assert (path / "pack" / "notes.txt").read_bytes() == b"hi"
    assert not (path / "pack.zip").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("crc_ok", [True, False])
def test_unhashed_zip_is_judged_by_member_crc32(monkeypatch, serve, tmp_path, crc_ok):
    """Like text8.zip: no hash for the archive, a size and CRC-32 for the extracted member."""
    server = serve({"/c.zip": _zip({"corpus": PAYLOAD})})
    crc = zlib.crc32(PAYLOAD) ^ (0 if crc_ok else 1)
    files = (RemoteFile("corpus", crc32=crc, size=len(PAYLOAD), archive="c.zip"),)
    archive = RemoteFile("c.zip", (server.url + "/c.zip",))
    monkeypatch.setitem(sources.SOURCES, "toy", DatasetSource("toy", "zip", files, archives=(archive,)))
    if crc_ok:
        assert (download("toy", root=tmp_path, progress=False) / "corpus").read_bytes() == PAYLOAD
    else:
        with pytest.raises(DownloadError, match=f"crc32 expected {crc:08x}"):
            download("toy", root=tmp_path, progress=False)
        assert not list(tmp_path.rglob("corpus*")) and not list(tmp_path.rglob("*.zip"))


def test_tar_with_corrupt_member_tries_next_url(monkeypatch, serve, tmp_path):
    server = serve({"/bad.tar.gz": _tar_gz({"d/blob.bin": PAYLOAD[::-1]}),
                    "/good.tar.gz": _tar_gz({"d/blob.bin": PAYLOAD})})
    archive = RemoteFile("d.tar.gz", (server.url + "/bad.tar.gz", server.url + "/good.tar.gz"))
    files = (RemoteFile("d/blob.bin", sha256=PAYLOAD_SHA, archive="d.tar.gz"),)
    monkeypatch.setitem(sources.SOURCES, "toy", DatasetSource("toy", "tar", files, archives=(archive,)))
    path = download("toy", root=tmp_path, progress=False)
    assert (path / "d" / "blob.bin").read_bytes() == PAYLOAD and not (path / "d.tar.gz").exists()


def test_third_party_hash_mismatch_says_so(monkeypatch, serve, tmp_path):
    server = serve({"/QQP-clean.zip": _zip({"QQP/train.tsv": b"x"})})
    qqp = get_source("qqp")
    archive = dataclasses.replace(qqp.archives[0], urls=(server.url + "/QQP-clean.zip",))
    monkeypatch.setitem(sources.SOURCES, "qqp", dataclasses.replace(qqp, archives=(archive,)))
    with pytest.raises(DownloadError, match="QQP-clean.zip: checksum mismatch.*published by a third party"):
        download("qqp", root=tmp_path, progress=False)


@needs_shared
def test_real_mnist_from_mirror(tmp_path):
    path = download("mnist", root=tmp_path, mirror=SHARED, progress=False)
    assert verify("mnist", root=tmp_path) == [] and require("mnist", root=tmp_path) == path


@needs_shared
def test_real_babi_from_a_tarball(monkeypatch, serve, tmp_path):
    """The catalog's per-file hashes accept the genuine en/ files; en-10k is optional."""
    base = SHARED / "babi"
    files = sorted((base / sources.BABI_DIR).glob("*.txt")) + sorted((base / sources.BABI_DIR / "en").glob("*"))
    members = {p.relative_to(base).as_posix(): p.read_bytes() for p in files}
    server = serve({"/babi.tar.gz": _tar_gz(members)})
    babi = get_source("babi")
    archive = dataclasses.replace(babi.archives[0], urls=(server.url + "/babi.tar.gz",))
    monkeypatch.setitem(sources.SOURCES, "babi", dataclasses.replace(babi, archives=(archive,)))
    download("babi", root=tmp_path, progress=False)
    assert is_downloaded("babi", root=tmp_path) and verify("babi", root=tmp_path) == []
