"""LSTM layer step: forward + backward of ``lstm`` (input 128, hidden 256, batch 32, seq 35, float32).

The loss is the sum of the outputs. Each side runs in a process of its own
(``npdl.bench.worker``), alternating for ``rounds`` rounds under the same threads and
allocator; PyTorch (``torch.nn.LSTM``) is measured when installed, and so are the GEMMs of
npdl's step alone (``gemm_setup``), the floor that NumPy's BLAS puts under npdl's time. Per process: the median of
``steps`` timed steps after ``warmup`` untimed ones, and the memory the steps take over the
process's baseline after imports and setup (the raw peak is reported apart).
"""
from __future__ import annotations

import numpy as np

from npdl.bench import Figure, Settings, has_module
from npdl.bench.worker import GEMMS_ALONE, isolated_figures

SIZES = {"input_size": 128, "hidden_size": 256, "batch": 32, "seq": 35}
QUICK = {"input_size": 8, "hidden_size": 16, "batch": 2, "seq": 5}


def npdl_setup(input_size: int, hidden_size: int, batch: int, seq: int):
    """npdl's ``LSTM`` forward+backward step (run in its own process)."""
    import npdl
    from npdl.nn.recurrent import LSTM

    layer = LSTM(hidden_size, input_size, batch_first=True, rng=np.random.default_rng(0))
    x = npdl.tensor(np.random.default_rng(1).standard_normal((batch, seq, input_size)), requires_grad=True)
    params = list(layer.parameters())

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        out, _ = layer(x)
        out.sum().backward()

    return step


def gemm_setup(input_size: int, hidden_size: int, batch: int, seq: int):
    """The GEMMs alone of npdl's LSTM step, nothing else: the floor NumPy's BLAS sets for it.

    The same products, shapes and memory layouts as ``npdl/core/ops/recurrent_lstm.py``: the input
    projection over all steps, one (4H, H) @ (H, B) product per step forward and one
    (H, 4H) @ (4H, B) per step backward, then dx, dW_ih and dW_hh over all steps at once.
    """
    rng = np.random.default_rng(0)
    f, h4, n = np.float32, 4 * hidden_size, seq * batch
    wa, xa = rng.standard_normal((h4, input_size + 1), f), rng.standard_normal((n, input_size + 1), f)
    w_s, states = rng.standard_normal((h4, hidden_size), f), rng.standard_normal((seq + 1, hidden_size, batch), f)
    w_t, p = np.ascontiguousarray(w_s.T), rng.standard_normal((h4, batch), f)
    dg, w_ih, hp = rng.standard_normal((h4, n), f), rng.standard_normal((h4, input_size), f), \
        rng.standard_normal((hidden_size, n), f)
    xg, mm, dh = np.empty((h4, n), f), np.empty((h4, batch), f), np.empty((hidden_size, batch), f)

    def step():
        np.matmul(wa, xa.T, out=xg)
        for t in range(seq):
            np.matmul(w_s, states[t], out=mm)
        for t in range(seq):
            np.matmul(w_t, p, out=dh)
        np.matmul(dg.T, w_ih)
        np.matmul(dg, xa[:, :input_size])
        np.matmul(dg, hp.T)

    return step


def torch_setup(input_size: int, hidden_size: int, batch: int, seq: int, threads: int):
    """``torch.nn.LSTM`` forward+backward step (run in its own process)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = torch.nn.LSTM(input_size, hidden_size, batch_first=True)
    x = torch.tensor(np.random.default_rng(1).standard_normal((batch, seq, input_size)), dtype=torch.float32,
                     requires_grad=True)

    def step():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        out, _ = layer(x)
        out.sum().backward()

    return step


def run(settings: Settings, steps: int = 30, warmup: int = 5) -> list[Figure]:
    """Figures: ms/step, work memory and raw peak memory of npdl and torch (when installed)."""
    size = QUICK if settings.quick else SIZES
    steps, warmup = (2, 1) if settings.quick else (steps, warmup)
    shape = f"I={size['input_size']} H={size['hidden_size']} B={size['batch']} T={size['seq']} float32"
    targets = {"npdl": "npdl.bench.lstm_layer:npdl_setup"}
    if has_module("torch"):
        targets["torch"] = "npdl.bench.lstm_layer:torch_setup"
    targets[GEMMS_ALONE] = "npdl.bench.lstm_layer:gemm_setup"   # the floor BLAS sets
    return isolated_figures("layers", "lstm fwd+bwd step", targets, settings, steps, warmup, settings.rounds_or(3),
                            shape, "<= 1", memory=True, extra={"torch": {"threads": settings.threads}},
                            timed_only=(GEMMS_ALONE,), **size)
