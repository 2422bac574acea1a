"""``npdl bench --device D``: training steps of npdl on device D beside npdl on the CPU and,
when D is a CUDA GPU and PyTorch sees one, PyTorch on that GPU, in the same run.

Three workloads (the issue's targets): an MLP step (784-512-512-10, batch 128, Adam), an LSTM
language-model step (2 layers of 256, batch 32, 35 steps, SGD) and a Transformer encoder step
(2 layers, d_model 256, 4 heads, batch 32 x 64 tokens, Adam). A round times ``STEPS`` steps of
each side, waiting for the device before the clock stops; the sides alternate rounds
(``npdl.bench.alternate``). On the emulated device the figure measures the stand-in's overhead,
not a GPU: it only shows that the benchmark runs.
"""
from __future__ import annotations

import time

import numpy as np

import npdl
import npdl.functional as F
import npdl.nn
import npdl.optim
from npdl.bench import Figure, Settings, alternate, try_import_torch
from npdl.core import backend

STEPS = 5


def _mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(npdl.nn.Linear(b, a))   # (out_features, in_features)
        if i < len(sizes) - 2:
            layers.append(npdl.nn.ReLU())
    return npdl.nn.Sequential(*layers)


class _LSTMLM(npdl.nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int):
        super().__init__()
        self.embed = npdl.nn.Embedding(vocab, hidden)
        self.lstm = npdl.nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.head = npdl.nn.Linear(vocab, hidden)

    def forward(self, ids):
        h, _ = self.lstm(self.embed(ids))
        return self.head(h)


class _Encoder(npdl.nn.Module):
    def __init__(self, vocab: int, d: int, heads: int, layers: int):
        super().__init__()
        self.embed = npdl.nn.Embedding(vocab, d)
        self.enc = npdl.nn.TransformerEncoder(layers, d, heads, dim_feedforward=4 * d, dropout=0.1)
        self.head = npdl.nn.Linear(vocab, d)

    def forward(self, ids):
        return self.head(self.enc(self.embed(ids)))


def _workloads(quick: bool) -> dict:
    """name -> (model factory, optimizer name, batch input (host), targets (host))."""
    rng = np.random.default_rng(0)
    s = 4 if quick else 1
    b, t, v = 32 // s, 35 // s, 1000 // s
    return {
        "mlp": (lambda: _mlp([784, 512 // s, 512 // s, 10]), "adam",
                rng.random((128 // s, 784), dtype=np.float32), rng.integers(0, 10, 128 // s)),
        "lstm": (lambda: _LSTMLM(v, 256 // s, 2), "sgd", rng.integers(0, v, (b, t)), rng.integers(0, v, (b, t))),
        "transformer": (lambda: _Encoder(v, 256 // s, 4, 2), "adam", rng.integers(0, v, (b, 64 // s)),
                        rng.integers(0, v, (b, 64 // s))),
    }


def _npdl_side(device, factory, opt_name, x, y):
    """A callable timing STEPS training steps of npdl on ``device`` (built and run there)."""
    with backend.device(device):
        npdl.manual_seed(0)
        model = factory()
        params = list(model.parameters())
        opt = npdl.optim.Adam(params, lr=1e-3) if opt_name == "adam" else npdl.optim.SGD(params, lr=0.1)
        xt, yt = npdl.Tensor(x), npdl.Tensor(y)

    def steps() -> float:
        with backend.device(device):
            backend.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(STEPS):
                logits = model(xt)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yt.reshape(-1))
                opt.zero_grad()
                loss.backward()
                opt.step()
            backend.synchronize(device)
            return (time.perf_counter() - t0) / STEPS

    return steps


def _torch_side(torch, name, x, y, quick: bool):
    """The same step in PyTorch on the GPU (None when the workload has no direct twin)."""
    dev = torch.device("cuda")
    nn = torch.nn
    s = 4 if quick else 1
    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 512 // s), nn.ReLU(), nn.Linear(512 // s, 512 // s), nn.ReLU(),
                              nn.Linear(512 // s, 10))
    elif name == "lstm":
        v, h = 1000 // s, 256 // s

        class LM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed, self.lstm, self.head = nn.Embedding(v, h), nn.LSTM(h, h, 2, batch_first=True), nn.Linear(h, v)

            def forward(self, ids):
                return self.head(self.lstm(self.embed(ids))[0])
        model = LM()
    else:
        v, d = 1000 // s, 256 // s
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, 0.1, batch_first=True)
        model = nn.Sequential(nn.Embedding(v, d), nn.TransformerEncoder(layer, 2), nn.Linear(d, v))
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1) if name == "lstm" else torch.optim.Adam(model.parameters(), 1e-3)
    xt = torch.as_tensor(x, device=dev)
    yt = torch.as_tensor(y, device=dev)

    def steps() -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(STEPS):
            logits = model(xt)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yt.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / STEPS

    return steps


def run(settings: Settings, device: str, names=("mlp", "lstm", "transformer")) -> list[Figure]:
    """Figures for ``names`` on ``device`` (checked first: DeviceError when it cannot be used)."""
    d = backend.device(device)
    torch = try_import_torch()
    gpu_torch = torch is not None and d.kind == "cuda" and torch.cuda.is_available()
    figures = []
    for name, (factory, opt_name, x, y) in _workloads(settings.quick).items():
        if name not in names:
            continue
        sides = {f"npdl on {d}": _npdl_side(d, factory, opt_name, x, y),
                 "npdl on cpu": _npdl_side(backend.CPU, factory, opt_name, x, y)}
        if gpu_torch:
            sides[f"torch on {d}"] = _torch_side(torch, name, x, y, settings.quick)
        seconds = alternate(sides, settings.rounds_or(5), warmup=1)
        note = "per step; a round = %d steps" % STEPS
        if not gpu_torch:
            note += "; no PyTorch side (needs torch with CUDA and a cuda device)"
        target = {"mlp": "<= 3 vs torch on GPU", "lstm": "<= 3 vs torch on GPU", "transformer": "<= 2 vs torch on GPU"}
        figures.append(Figure(f"device {name}", f"{name} training step", "ms",
                              {k: [t * 1e3 for t in v] for k, v in seconds.items()}, note,
                              target[name] if d.kind == "cuda" else ""))
    return figures
