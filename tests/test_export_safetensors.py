"""``npdl export --format safetensors`` and ``model.init_from``, without PyTorch.

Round trips (export, then fine-tune from the file or the run: identical outputs), strict loading
that lists every mismatch (exit 2), the name mapping of unpacked attention, and a reader that stays
bounded on hostile files (every check before a tensor byte is read). Tests that write files need
the ``safetensors`` package and skip without it; the reader tests craft their bytes by hand.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import npdl
from npdl import config as cfgmod
from npdl import experiment
from npdl.cli.main import app
from npdl.nn import Linear, MultiHeadAttention, Sequential
from npdl.nn.pytorch_names import from_torch, to_torch
from npdl.config import ConfigError
from npdl.train import weights
from tests.conftest import env_without_data, tiny_config, write_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def train_tiny(workdir: Path, name: str = "tiny", **overrides) -> Path:
    cfg = write_config(workdir / f"{name}.yaml", tiny_config(name=name, **overrides))
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    return next(p for p in (workdir / "runs").iterdir() if p.name.startswith(f"{name}-"))


def outputs(model, x) -> np.ndarray:
    model.eval()
    with npdl.no_grad():
        return model(npdl.tensor(x)).data


def build(cfg: dict):
    return experiment.build(cfgmod.from_dict(cfg, "<test>"))


X = np.random.default_rng(1).normal(size=(7, 2)).astype(np.float32)


def raw_file(path: Path, header: dict, data: bytes = b"", length: int | None = None) -> Path:
    """A .safetensors file from its parts (so hostile ones can be made without the library)."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


# ---- round trips -------------------------------------------------------------------------------
def test_export_then_init_from_file_and_run_gives_identical_outputs(workdir):
    pytest.importorskip("safetensors")
    run = train_tiny(workdir)
    res = invoke("export", run, "--format", "safetensors", "--checkpoint", "last")
    assert res.exit_code == 0, res.output
    out = run / "weights-last.safetensors"
    header, meta, _ = weights.read_header(out)
    assert set(header) == {"layers.1.weight", "layers.1.bias", "layers.3.weight", "layers.3.bias"}
    assert {e["dtype"] for e in header.values()} == {"F32"}
    assert meta["format"] == "pt" and meta["model_type"] == "mlp" and meta["npdl_version"] == npdl.__version__
    model = json.loads(meta["config"])["model"]        # the run's resolved config: defaults written out
    assert model["type"] == "mlp" and model["hidden"] == [16] and "dropout" in model
    _, trained, _, _ = experiment.from_run(run, checkpoint="last")
    want = outputs(trained.model, X)
    fresh = outputs(build(tiny_config()).model, X)
    assert not np.allclose(fresh, want)                                    # the init really changes it
    for source in (out, run, run / "checkpoints" / "last.npz"):
        exp = build(tiny_config(**{"model.init_from": str(source)}))
        np.testing.assert_array_equal(outputs(exp.model, X), want)


def test_train_from_init_from_records_it_and_resume_does_not_need_it(workdir):
    pytest.importorskip("safetensors")
    run = train_tiny(workdir)
    out = workdir / "w.safetensors"
    assert invoke("export", run, "--format", "safetensors", "-o", out).exit_code == 0
    cfg = write_config(workdir / "ft.yaml", tiny_config(name="ft", **{"model.init_from": str(out)}))
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    ft = next(p for p in (workdir / "runs").iterdir() if p.name.startswith("ft-"))
    assert "init_from" in (ft / "config.yaml").read_text()
    out.unlink()                            # eval rebuilds the run's model and loads its own weights
    res = invoke("eval", ft, "--split", "val")
    assert res.exit_code == 0, res.output


def test_export_names_the_output_and_rejects_unknown_format(workdir):
    pytest.importorskip("safetensors")
    run = train_tiny(workdir)
    res = invoke("export", run, "--format", "onnx")
    assert res.exit_code == 2 and "formats: word2vec, safetensors" in res.output
    res = invoke("export", run, "--format", "safetensors", "--binary")
    assert res.exit_code == 2 and "--binary is for --format word2vec" in res.output
    res = invoke("export", run, "--format", "safetensors", "--checkpoint", "step-7")
    assert res.exit_code == 2 and "checkpoint not found" in res.output


def test_export_without_safetensors_prints_the_install_line(workdir, monkeypatch):
    run = train_tiny(workdir)
    monkeypatch.setitem(sys.modules, "safetensors", None)               # import fails as if not installed
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    res = invoke("export", run, "--format", "safetensors")
    assert res.exit_code == 2, res.output
    assert "pip install safetensors" in res.output and 'pip install -e ".[export]"' in res.output
    assert "Traceback" not in res.output and not list(run.glob("*.safetensors"))


def test_export_in_a_real_subprocess(workdir):
    pytest.importorskip("safetensors")
    run = train_tiny(workdir)
    out = workdir / "sub" / "mlp.safetensors"
    out.parent.mkdir()                                  # -o never creates folders
    cmd = [sys.executable, "-m", "npdl", "export", str(run), "--format", "safetensors", "-o", str(out)]
    res = subprocess.run(cmd, env=env_without_data(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "wrote 4 tensors" in res.stdout and out.is_file()
    from safetensors.numpy import load_file

    _, trained, _, _ = experiment.from_run(run)
    ours = load_file(str(out))
    assert ours.keys() == trained.model.state_dict().keys()
    for k, v in trained.model.state_dict().items():
        np.testing.assert_array_equal(ours[k], v)


# ---- strict loading: every mismatch at once, exit 2 ---------------------------------------------
@pytest.mark.parametrize("source", ["run", "safetensors"])
def test_mismatch_lists_every_key_and_exits_2(workdir, source):
    run = train_tiny(workdir)
    out = run
    if source == "safetensors":
        pytest.importorskip("safetensors")
        out = workdir / "w.safetensors"
        assert invoke("export", run, "--format", "safetensors", "-o", out).exit_code == 0
    bigger = write_config(workdir / "b.yaml", tiny_config(name="b", **{"model.hidden": [8, 8],
                                                                         "model.init_from": str(out)}))
    res = invoke("train", bigger, "--runs-dir", workdir / "runs")
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert f"{bigger}" in text and "model.init_from" in text and "nothing was loaded" in text
    assert "missing keys (2): layers.5.weight, layers.5.bias" in text
    for key, model, file in (("layers.1.weight", (8, 2), (16, 2)), ("layers.1.bias", (8,), (16,)),
                             ("layers.3.weight", (8, 8), (2, 16)), ("layers.3.bias", (8,), (2,))):
        assert f"shape mismatch for {key}: model has {model}, file has {file}" in text, text
    assert len([p for p in (workdir / "runs").iterdir() if p.name.startswith("b-")]) == 0  # no run folder
    res = invoke("check", bigger)
    assert res.exit_code == 2 and "layers.5.weight" in res.output


def test_non_strict_loads_what_fits_and_keeps_the_rest(workdir):
    run = train_tiny(workdir)
    _, trained, _, _ = experiment.from_run(run)
    spec = {"path": str(run / "checkpoints" / "best.npz"), "strict": False}
    exp = build(tiny_config(**{"model.batch_norm": True, "model.init_from": spec}))   # layers shift by one
    sd = exp.model.state_dict()
    np.testing.assert_array_equal(sd["layers.1.weight"], trained.model.state_dict()["layers.1.weight"])
    assert "layers.2.running_mean" in sd                                  # missing from the file: kept fresh
    with pytest.raises(ConfigError, match="missing keys"):
        build(tiny_config(**{"model.batch_norm": True, "model.init_from": spec["path"]}))


@pytest.mark.parametrize("value, fragment", [
    (5, "expected a .safetensors file"),
    ({"path": "x.npz", "strict": "no"}, "expected a .safetensors file"),
    ({"file": "x.npz"}, "strict: false"),
    ("nowhere.safetensors", "weights file not found: nowhere.safetensors"),
    ("nowhere.npz", "checkpoint not found"),
    ("no-such-run", "run not found: 'no-such-run'"),
])
def test_bad_init_from_is_a_config_error(workdir, value, fragment):
    with pytest.raises(ConfigError, match="model.init_from") as info:
        build(tiny_config(**{"model.init_from": value}))
    assert fragment in str(info.value)


# ---- the name mapping ----------------------------------------------------------------------------
@pytest.mark.parametrize("kdim, vdim, torch_names", [
    (None, None, {"in_proj_weight": (12, 4), "in_proj_bias": (12,)}),
    (3, 5, {"q_proj_weight": (4, 4), "k_proj_weight": (4, 3), "v_proj_weight": (4, 5), "in_proj_bias": (12,)}),
])
def test_unpacked_attention_maps_to_torch_names_and_back(kdim, vdim, torch_names):
    model = Sequential(MultiHeadAttention(4, 2, packed=False, kdim=kdim, vdim=vdim), Linear(3, 4))
    sd = model.state_dict()
    mapped = to_torch(model)
    want = {f"0.{k}": v for k, v in torch_names.items()}
    want.update({"0.out_proj.weight": (4, 4), "0.out_proj.bias": (4,), "1.weight": (3, 4), "1.bias": (3,)})
    assert {k: v.shape for k, v in mapped.items()} == want
    assert all(v.flags.c_contiguous for v in mapped.values())
    back = from_torch(model, mapped)
    assert back.keys() == sd.keys()
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])


def test_scalar_buffers_stay_scalar():
    from npdl.nn import BatchNorm

    mapped = to_torch(BatchNorm(3))
    assert mapped["num_batches_tracked"].shape == () and mapped["num_batches_tracked"].dtype == np.int64


def test_unpacked_attention_round_trips_through_a_file(tmp_path):
    pytest.importorskip("safetensors")
    rng = np.random.default_rng(0)
    a = MultiHeadAttention(4, 2, packed=False, rng=rng)
    b = MultiHeadAttention(4, 2, packed=False, rng=np.random.default_rng(5))
    weights.save_safetensors(a, tmp_path / "a.safetensors", {})
    weights.init_model(b, str(tmp_path / "a.safetensors"))
    x = npdl.tensor(rng.normal(size=(2, 3, 4)).astype(np.float32))
    np.testing.assert_array_equal(outputs(a, x.data), outputs(b, x.data))


# ---- the reader on hostile files: refused before any tensor byte is read -------------------------
def expected_linear() -> dict:
    return {"weight": np.zeros((3, 2), np.float32), "bias": np.zeros(3, np.float32)}


def good_header() -> dict:
    return {"weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]},
            "bias": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}


def test_reader_loads_a_hand_made_file_and_widens_bf16(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 4     # exactly representable in bfloat16
    bf16 = (w.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = {"weight": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 12]},
              "bias": {"dtype": "F16", "shape": [3], "data_offsets": [12, 18]}, "__metadata__": {"a": "b"}}
    path = raw_file(tmp_path / "x.safetensors", header, bf16 + np.array([1, 2, 3], "<f2").tobytes())
    got = weights.load_safetensors(path, expected_linear())
    np.testing.assert_array_equal(got["weight"], w)
    np.testing.assert_array_equal(got["bias"], [1, 2, 3])
    assert got["weight"].dtype == got["bias"].dtype == np.float32


@pytest.mark.parametrize("mutate, fragment", [
    (lambda h: h["weight"].update(dtype="F64"), "data_offsets cover 24 bytes, shape [3, 2] of F64 needs 48"),
    (lambda h: h["weight"].update(dtype="F8_E4M3"), "dtype 'F8_E4M3' is not supported"),
    (lambda h: h["weight"].update(shape=[3, -2]), "non-negative integers"),
    (lambda h: h["bias"].update(data_offsets=[24, 10 ** 12]), "fall outside"),
    (lambda h: h.update(__metadata__={"a": 1}), "__metadata__"),
    (lambda h: h["bias"].pop("dtype"), "expected dtype, shape and data_offsets"),
])
def test_malformed_headers_are_refused(tmp_path, mutate, fragment):
    header = good_header()
    mutate(header)
    path = raw_file(tmp_path / "x.safetensors", header, bytes(36))
    with pytest.raises(weights.WeightsError, match="malformed|__metadata__") as info:
        weights.load_safetensors(path, expected_linear())
    assert fragment in str(info.value)


def test_lossy_dtypes_and_wrong_shapes_are_refused_all_at_once(tmp_path):
    header = {"weight": {"dtype": "F64", "shape": [3, 2], "data_offsets": [0, 48]},
              "bias": {"dtype": "F32", "shape": [4], "data_offsets": [48, 64]},
              "extra": {"dtype": "I64", "shape": [], "data_offsets": [64, 72]}}
    path = raw_file(tmp_path / "x.safetensors", header, bytes(72))
    with pytest.raises(weights.WeightsError) as info:
        weights.load_safetensors(path, expected_linear())
    text = str(info.value)
    assert "dtype of weight: file has F64, the model holds float32" in text
    assert "shape mismatch for bias: model has (3,), file has (4,)" in text
    assert "unexpected keys (1): extra" in text


def test_oversized_truncated_and_garbage_headers(tmp_path):
    big = raw_file(tmp_path / "big.safetensors", {}, length=weights.MAX_HEADER_BYTES + 1)
    with pytest.raises(weights.WeightsError, match="refused"):
        weights.read_header(big)
    short = raw_file(tmp_path / "short.safetensors", good_header(), length=10 ** 6)
    with pytest.raises(weights.WeightsError, match="truncated"):
        weights.read_header(short)
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(weights.WeightsError, match="shorter than"):
        weights.read_header(tmp_path / "tiny.safetensors")
    deep = tmp_path / "deep.safetensors"
    text = b"[" * 100_000 + b"]" * 100_000
    deep.write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(weights.WeightsError, match="header is nested too deeply"):
        weights.read_header(deep)
    listed = tmp_path / "list.safetensors"
    listed.write_bytes(struct.pack("<Q", 2) + b"[]")
    with pytest.raises(weights.WeightsError, match="header is a JSON list, not an object"):
        weights.read_header(listed)
    dup = tmp_path / "dup.safetensors"
    text = b'{"bias": {}, "bias": {}}'
    dup.write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(weights.WeightsError, match="duplicate key"):
        weights.read_header(dup)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=120), cut=st.integers(0, 200), flip=st.integers(0, 400))
def test_fuzzed_files_give_a_weights_error_or_fitting_arrays(tmp_path, data, cut, flip):
    """Whatever the bytes, the reader returns arrays of the expected shapes or raises WeightsError."""
    good = bytearray(raw_file(tmp_path / "g.safetensors", good_header(), bytes(range(36))).read_bytes())
    if flip < len(good):
        good[flip] ^= 0x5A
    blob = bytes(good[:len(good) - cut % len(good)]) + data
    path = tmp_path / "f.safetensors"
    path.write_bytes(blob)
    try:
        got = weights.load_safetensors(path, expected_linear())
    except weights.WeightsError:
        return
    assert {k: v.shape for k, v in got.items()} == {"weight": (3, 2), "bias": (3,)}
