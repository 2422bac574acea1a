"""Hostile checkpoint files: every one is refused with exit 2 and a message naming the file and
member or field, before any array is decompressed (bounded memory), and nothing is overwritten."""
from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from numpy.lib import format as npformat
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.train import checkpoint
from tests.conftest import tiny_config, write_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A completed tiny run (the model: mlp 2 -> 16 -> 2)."""
    tmp = tmp_path_factory.mktemp("ck")
    cfg = write_config(tmp / "t.yaml", tiny_config(**{"train.epochs": 1}))
    assert invoke("train", cfg, "--runs-dir", tmp / "runs").exit_code == 0
    return next((tmp / "runs").iterdir())


def members(path: Path) -> tuple[dict, dict]:
    """(arrays by member key, meta skeleton) of a checkpoint."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(arrays.pop("meta.json").tobytes())


def npy_bytes(arr=None, header: dict | None = None, body: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    if header is None:
        npformat.write_array(buf, arr, allow_pickle=True)
        return buf.getvalue()
    npformat.write_array_header_1_0(buf, header)
    return buf.getvalue() + (body or b"")


def write(path: Path, arrays: dict, meta: dict | bytes, raw: dict | None = None, deflate: bool = False) -> Path:
    """A checkpoint from arrays + meta; ``raw`` members (key -> .npy bytes) go in verbatim."""
    meta_bytes = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    comp = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", comp) as zf:
        for k, a in arrays.items():
            zf.writestr(k + ".npy", npy_bytes(a))
        for k, b in (raw or {}).items():
            zf.writestr(k + ".npy", b)
        zf.writestr("meta.json.npy", npy_bytes(np.frombuffer(meta_bytes, np.uint8)))
    return path


def assert_refused(run: Path, path: Path, *fragments, command=("eval",)):
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    res = invoke(*command, run, "--checkpoint", path) if command == ("eval",) else invoke(*command)
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output and "Traceback" not in res.output
    flat = " ".join(res.output.split())
    for f in fragments:
        assert f in flat, (f, res.output)
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before


def test_text_file_is_not_described_as_pickle(run, tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("hello, I am text\n")
    assert_refused(run, bad, "not an npdl checkpoint (not a zip/npz file)", str(bad))


@pytest.mark.parametrize("dtype, word", [(np.complex64, "complex64"), ("U5", "<U5"), ("S3", "|S3"),
                                         ([("a", "f4")], "not a real number type")])
def test_lossy_or_string_dtypes_are_refused_naming_the_member(run, tmp_path, dtype, word):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    key = "model/layers.1.weight"
    arrays[key] = np.zeros(arrays[key].shape, dtype=dtype)
    assert_refused(run, write(tmp_path / "c.npz", arrays, meta), key, word)


def test_object_member_is_refused_without_unpickling(run, tmp_path):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    key = "model/layers.1.bias"
    raw = {key: npy_bytes(np.array([object()] * arrays[key].size, dtype=object))}
    del arrays[key]
    assert_refused(run, write(tmp_path / "c.npz", arrays, meta, raw), "Python objects", key)


def test_float_into_int_is_refused(tmp_path):
    path = write(tmp_path / "c.npz", {"model/w": np.zeros(3, np.float32)},
                 {"model": {"w": {"__array__": "model/w"}}, "meta": {"step": 0, "epoch": 0, "batch_in_epoch": 0}})

    class IntModel:
        def state_dict(self):
            return {"w": np.zeros(3, np.int64)}

    with pytest.raises(checkpoint.CheckpointError, match="float32 cannot become int64"):
        checkpoint.load(path, model=IntModel())


def test_a_small_file_cannot_inflate(run, tmp_path):
    """A 256 MiB array compressed into ~256 KiB is refused from its header, before decompressing."""
    arrays, meta = members(run / "checkpoints" / "last.npz")
    key = "model/layers.1.weight"
    del arrays[key]
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 26,)}  # 256 MiB
    path = tmp_path / "bomb.npz"
    write(path, arrays, meta, deflate=True)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open(key + ".npy", "w", force_zip64=True) as f:
        f.write(npy_bytes(header=header))
        zero = bytes(1 << 24)
        for _ in range(16):
            f.write(zero)
    assert path.stat().st_size < 4 << 20
    tracemalloc.start()
    try:
        assert_refused(run, path, "state dict does not match the model", "layers.1.weight")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
    with pytest.raises(checkpoint.CheckpointError, match="inflate"):  # no model to vouch: still bounded
        checkpoint.load(path)


def test_declared_size_must_match_the_zip_entry(run, tmp_path):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    key = "model/layers.1.weight"
    shape = arrays.pop(key).shape
    raw = {key: npy_bytes(header={"descr": "<f4", "fortran_order": False, "shape": shape}, body=b"\0" * 8)}
    assert_refused(run, write(tmp_path / "c.npz", arrays, meta, raw), key, "damaged")


@pytest.mark.parametrize("edit, fragments", [
    (lambda m: b"{not json", ["meta.json is not valid JSON"]),
    (lambda m: {**m, "model": {**m["model"], "layers.1.weight": {"__array__": "model/nope"}}},
     ["model.layers.1.weight", "'model/nope'", "does not contain"]),
    (lambda m: {**m, "meta": {**m["meta"], "step": -5}}, ["meta.step", "-5"]),
    (lambda m: {**m, "meta": {**m["meta"], "step": 2.5}}, ["meta.step", "2.5"]),
    (lambda m: {**m, "meta": {**m["meta"], "epoch": "1"}}, ["meta.epoch"]),
    (lambda m: {**m, "meta": [1, 2]}, ["'meta' must be an object"]),
    (lambda m: {k: v for k, v in m.items() if k != "meta"}, ["no 'meta' part"]),
])
def test_invalid_meta_is_refused_naming_file_and_field(run, tmp_path, edit, fragments):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    path = write(tmp_path / "c.npz", arrays, edit(meta))
    assert_refused(run, path, str(path), *fragments)


def test_resume_refuses_optimizer_state_of_another_shape_and_leaves_the_run(run, tmp_path):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    key = next(k for k in arrays if k.startswith("optim/state/") and k.endswith("exp_avg"))
    arrays[key] = np.zeros(arrays[key].shape + (2,), np.float32)
    manifest = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(manifest.replace('"completed"', '"interrupted"'))
    metrics = (run / "metrics.jsonl").read_bytes()
    last = run / "checkpoints" / "last.npz"
    good = last.read_bytes()
    try:
        write(last, arrays, meta)
        bad = last.read_bytes()
        res = invoke("resume", run)
        assert res.exit_code == 2 and "internal error" not in res.output
        assert "exp_avg" in res.output and "but parameter" in " ".join(res.output.split())
        assert last.read_bytes() == bad and (run / "metrics.jsonl").read_bytes() == metrics
        assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    finally:
        last.write_bytes(good)
        (run / "manifest.json").write_text(manifest)


_dtypes = st.sampled_from(["<f4", "<f8", ">f4", "<f2", "<i8", "|u1", "|b1", "<c8", "<U3", "|S2", "|O", "<M8[s]"])
_shapes = st.lists(st.integers(0, 40), max_size=3).map(tuple)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["model/layers.1.weight", "model/layers.1.bias", "task/x",
                                           "optim/state/layers.1.weight/exp_avg"]), _dtypes, _shapes,
                          st.integers(-8, 8)), min_size=1, max_size=3),
       st.sampled_from(["step", "epoch", "batch_in_epoch", "wall", "best", "rng", None]),
       st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=3), st.none(), st.just([1])))
def test_fuzz_checkpoint_members_and_meta(run, tmp_path, changes, field, value):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    raw = {}
    for key, dtype, shape, extra in changes:
        arrays.pop(key, None)
        dt = np.dtype(dtype)
        n = int(np.prod(shape)) * dt.itemsize
        body = b"\0" * max(n + extra, 0)
        raw[key] = npy_bytes(header={"descr": npformat.dtype_to_descr(dt), "fortran_order": False, "shape": shape},
                             body=body)
        node = meta.setdefault(key.split("/")[0], {})
        if key.startswith("model/"):
            node[key[6:]] = {"__array__": key}
        elif key == "task/x":
            node["x"] = {"__array__": key}
    if field is not None:
        meta["meta"][field] = value
    path = write(tmp_path / "f.npz", arrays, meta, raw)
    res = invoke("eval", run, "--checkpoint", path)
    assert res.exit_code in (0, 2), res.output
    assert "internal error" not in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("edit, fragments", [
    (lambda m: m["meta"].__setitem__("rng", {"x": 1}), ["meta.rng"]),
    (lambda m: m.__setitem__("sched", {"step": "x"}), ["sched"]),
    (lambda m: m["optim"].__setitem__("param_groups", [{"params": 5}]), ["optim", "param_groups"]),
    (lambda m: m["optim"]["param_groups"][0].__setitem__("lr", -1.0), ["param_groups[0].lr"]),
    (lambda m: m["meta"].__setitem__("step", -5), ["meta.step", "-5"]),
])
def test_resume_refuses_damaged_state_naming_the_file(run, edit, fragments):
    arrays, meta = members(run / "checkpoints" / "last.npz")
    edit(meta)
    manifest = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(manifest.replace('"completed"', '"interrupted"'))
    last = run / "checkpoints" / "last.npz"
    good, metrics = last.read_bytes(), (run / "metrics.jsonl").read_bytes()
    try:
        write(last, arrays, meta)
        res = invoke("resume", run)
        assert res.exit_code == 2 and "internal error" not in res.output, res.output
        flat = " ".join(res.output.split())
        for f in [str(last), *fragments]:
            assert f in flat, (f, res.output)
        assert (run / "metrics.jsonl").read_bytes() == metrics
        assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    finally:
        last.write_bytes(good)
        (run / "manifest.json").write_text(manifest)


def test_init_from_weights_with_nan_is_refused_before_training(run, tmp_path):
    """NaN/inf in a model.init_from file is the file's fault: exit 2 naming the tensor, no run started."""
    arrays, meta = members(run / "checkpoints" / "last.npz")
    arrays["model/layers.1.weight"] = np.full_like(arrays["model/layers.1.weight"], np.nan)
    bad = write(tmp_path / "nan.npz", arrays, meta)
    cfg = write_config(tmp_path / "ft.yaml", tiny_config(**{"train.epochs": 1, "model.init_from": str(bad)}))
    res = invoke("train", cfg, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert "NaN or infinite" in flat and "layers.1.weight" in flat and "internal error" not in flat


def test_init_from_text_or_fifo_as_safetensors_says_what_it_is(tmp_path):
    """A text file or a FIFO named .safetensors: exit 2 saying it is no .safetensors / regular file
    (a FIFO is never opened: that would block)."""
    import os
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, I am text and no weights at all\n" * 4)
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    for path, fragment in [(text, "is not a .safetensors file"), (fifo, "is not a regular file")]:
        cfg = write_config(tmp_path / "ft.yaml", tiny_config(**{"model.init_from": str(path)}))
        res = invoke("check", cfg)
        assert res.exit_code == 2, res.output
        assert fragment in " ".join(res.output.split()) and "internal error" not in res.output
