"""The array-module seam: devices, the emulated device's wall, parity with the CPU, moves and runs.

Run the whole suite on the emulated device with ``NPDL_TEST_DEVICE=emulated python -m pytest``;
these tests hold on any test device (they name the devices they compare).
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from typer.testing import CliRunner

import npdl
import npdl.functional as F
from npdl.cli.main import app
from npdl.core import backend
from npdl.core.backends import counter_rng
from npdl.core.backends.emulated import EmulatedArray, HostDeviceError
from tests.conftest import tiny_config, write_config
from tests.core.test_ops import CASES

runner = CliRunner()


def _host_copy(x, device):
    """A fresh copy of a case input on ``device`` (tensors keep requires_grad and dtype)."""
    if not isinstance(x, npdl.Tensor):
        return x
    with backend.device(device):
        return npdl.tensor(x.numpy(), requires_grad=x.requires_grad, dtype=x.dtype)


def _run(fn, inputs, device):
    """Outputs and input gradients of ``fn`` on ``device``, as host arrays."""
    xs = [_host_copy(x, device) for x in inputs]
    with backend.device(device):
        out = fn(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        rng = np.random.default_rng(0)
        total = None
        for o in outs:
            if o.requires_grad:
                term = (o * npdl.tensor(rng.standard_normal(o.shape), dtype=o.dtype)).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    grads = []
    for x in xs:
        g = getattr(x, "grad", None)
        grads.append(None if g is None else backend.to_host(g.to_dense() if isinstance(g, npdl.RowSparseGrad) else g))
    return [o.numpy() for o in outs], grads


RANDOM = {"dropout", "sdpa_dropout", "residual_layer_norm_dropout", "dropout_add"}   # device draws differ by design


@pytest.mark.parametrize("name", sorted(set(CASES) - RANDOM - {"to_device"}))
def test_every_op_matches_the_cpu_on_the_emulated_device(name):
    """Parity: forward and gradient of every gradcheck case, emulated device vs cpu, float64 to 1e-10."""
    fn, inputs = CASES[name]
    cpu_out, cpu_grads = _run(fn, inputs, "cpu")
    dev_out, dev_grads = _run(fn, inputs, "emulated")
    for a, b in zip(cpu_out, dev_out):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    for a, b in zip(cpu_grads, dev_grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_float32_training_step_matches_the_cpu():
    """An MLP's Adam step in float32 on both devices: the same weights to float32 tolerance."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, 8)
    weights = []
    for device in ("cpu", "emulated"):
        with backend.device(device):
            npdl.manual_seed(0)
            model = npdl.nn.Sequential(npdl.nn.Linear(7, 5), npdl.nn.GELU(), npdl.nn.Linear(3, 7))
            opt = npdl.optim.Adam(list(model.parameters()), lr=0.01)
            for _ in range(3):
                loss = F.cross_entropy(model(npdl.tensor(x)), npdl.tensor(y))
                opt.zero_grad()
                loss.backward()
                opt.step()
            weights.append([p.numpy() for p in model.parameters()])
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_emulated_arrays_refuse_numpy_calls_from_npdl_code():
    """The wall: inside npdl, implicit conversion, NumPy functions and host mixing raise, naming the line."""
    npdl_code = {"__name__": "npdl._wall_probe"}
    exec("import numpy as np\n"
         "def convert(a): return np.asarray(a)\n"
         "def call(a): return np.exp(a)\n"
         "def mix(a): return a + np.ones(a.shape)\n"
         "def index(a): return a[np.array([0])]\n", npdl_code)
    a = backend.to_device(np.arange(3.0), "emulated")
    for name in ("convert", "call", "mix", "index"):
        with pytest.raises(HostDeviceError, match="_wall_probe|<string>"):
            npdl_code[name](a)
    xp = backend.get_array_module(a)
    with pytest.raises(HostDeviceError, match="host ndarray"):
        xp.multiply(a, np.ones(3))                       # CuPy refuses host arrays too
    with pytest.raises(AttributeError, match="CuPy"):
        xp.vecdot                                         # noqa: B018 - a name CuPy lacks
    with pytest.raises(TypeError, match="where"):
        xp.add(a, a, out=a, where=a > 0)                  # CuPy ufuncs take no `where`
    assert type(xp.exp(a)) is EmulatedArray and float(xp.sum(a)) == 3.0   # explicit syncs are allowed


def test_tensor_and_module_move_between_devices():
    with backend.device("cpu"):
        x = npdl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype=np.float64)
    y = x.to("emulated")
    assert y.device == "emulated" and x.device == "cpu"
    (y * y).sum().backward()
    assert type(x.grad) is np.ndarray                                  # the gradient came back to x's device
    np.testing.assert_array_equal(x.grad, 2 * x.numpy())
    m = npdl.nn.Linear(2, 3).to("emulated")
    assert all(p.device == "emulated" for p in m.parameters())
    m.to("cpu")
    assert all(type(p.data) is np.ndarray for p in m.parameters())
    assert m.to("float64").weight.dtype == np.float64                  # a dtype is still a dtype


def test_lazy_layers_materialise_on_the_module_device():
    with backend.device("cpu"):
        m = npdl.nn.Linear(4).to("emulated")                           # in_features unknown until called
        out = m(npdl.tensor(np.ones((2, 3), np.float32)).to("emulated"))
    assert out.device == "emulated" and m.weight.device == "emulated"


def test_cuda_without_cupy_or_gpu_names_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)                     # not installed
    with pytest.raises(npdl.DeviceError, match=r"needs CuPy.*pip install"):
        npdl.device("cuda")
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(is_available=lambda: False, runtime=None)
    monkeypatch.setitem(sys.modules, "cupy", fake)                     # installed, no GPU
    with pytest.raises(npdl.DeviceError, match="no usable CUDA GPU"):
        npdl.device("cuda:1")
    fake.cuda = types.SimpleNamespace(is_available=lambda: True,
                                      runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    with pytest.raises(npdl.DeviceError, match="only 1 CUDA GPU"):
        npdl.device("cuda:1")
    with pytest.raises(npdl.DeviceError, match="unknown device 'gpu'"):
        npdl.device("gpu")


def test_cli_device_errors_exit_2(workdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    cfg = write_config(workdir / "tiny.yaml", tiny_config())
    res = runner.invoke(app, ["train", str(cfg), "--device", "cuda"])
    assert res.exit_code == 2 and "needs CuPy" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["train", str(write_config(workdir / "bad.yaml", tiny_config(device="gpu")))])
    assert res.exit_code == 2 and "bad.yaml:" in res.output and "device: unknown device 'gpu'" in res.output
    res = runner.invoke(app, ["bench", "--device", "cuda", "mlp", "--quick"])
    assert res.exit_code == 2 and "needs CuPy" in res.output


def test_a_run_trained_on_the_emulated_device_evaluates_and_resumes_on_the_cpu(workdir):
    """Checkpoints hold host arrays: a device run is evaluated and continued on the CPU (and back)."""
    before = backend.get_default_device()
    cfg = write_config(workdir / "tiny.yaml", tiny_config(**{"train.epochs": 1}))
    res = runner.invoke(app, ["train", str(cfg), "--device", "emulated", "--name", "dev"])
    assert res.exit_code == 0, res.output
    assert backend.get_default_device() == before                      # the command's device did not leak
    run = next((workdir / "runs").glob("dev-*"))
    assert "device: emulated" in (run / "config.yaml").read_text()
    from npdl.train import checkpoint

    state = checkpoint.load(run / "checkpoints" / "last.npz")
    assert all(type(v) is np.ndarray for v in state["model"].values())
    res = runner.invoke(app, ["eval", str(run), "--device", "cpu", "--split", "val"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", str(run), "--split", "val"])     # on its own device again
    assert res.exit_code == 0, res.output


def test_device_dropout_masks_follow_the_host_generator():
    """Device random numbers are keyed by the host generator: same state, same mask, on any device."""
    rng = np.random.default_rng(5)
    xp = backend.device("emulated").xp
    a = counter_rng.keep_mask(xp, (200, 50), 0.3, rng)
    b = counter_rng.keep_mask(xp, (200, 50), 0.3, np.random.default_rng(5))
    assert type(a) is EmulatedArray and bool((a == b).all())
    assert abs(float(a.mean()) - 0.7) < 0.02
    u = counter_rng.uniform(np, (10_000,), np.random.default_rng(1), np.float64)
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.02


def test_checkpoint_round_trip_puts_arrays_on_each_parameter_device():
    with backend.device("emulated"):
        src = npdl.nn.Linear(3, 2)
    dst = npdl.nn.Linear(3, 2).to("cpu")
    dst.load_state_dict(src.state_dict())
    assert type(dst.weight.data) is np.ndarray
    np.testing.assert_array_equal(dst.weight.numpy(), src.weight.numpy())
    back = npdl.nn.Linear(3, 2).to("emulated")
    back.load_state_dict(dst.state_dict())
    assert back.weight.device == "emulated"


def test_the_cpu_backends_strided_views_match_numpys_and_stay_in_bounds():
    from numpy.lib import stride_tricks

    from npdl.core.backends import numpy_backend

    a = np.arange(60, dtype=np.float32).reshape(12, 5)
    item = a.itemsize
    cases = (((8, 5, 5), (5 * item, 5 * item, item)), ((10, 3), (3 * item, 2 * item)), ((0, 5), (item, item)))
    for shape, strides in cases:
        ours = numpy_backend.as_strided(a, shape=shape, strides=strides, writeable=False)
        np.testing.assert_array_equal(ours, stride_tricks.as_strided(a, shape=shape, strides=strides))
        assert not ours.flags.writeable
    # a view reaching past the array is refused, not read from stray memory
    with pytest.raises((TypeError, ValueError)):
        numpy_backend.as_strided(a, shape=(12, 6), strides=(5 * item, item))
    # a non-contiguous input goes through NumPy's own as_strided
    t = a.T
    np.testing.assert_array_equal(numpy_backend.as_strided(t, shape=(2, 2), strides=t.strides), t[:2, :2])
