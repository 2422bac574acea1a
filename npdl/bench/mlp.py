"""One training epoch of a 784-256-10 MLP (batch 128, Adam, softmax cross-entropy) on
MNIST-shaped data: npdl beside the same network written by hand in NumPy (no autograd)
and, when installed, PyTorch (same threads). A round is one epoch of each implementation
(``npdl.bench.alternate``, one shuffle per round for all), after one untimed warm-up round;
each side reports the median epoch and the spread.
"""
from __future__ import annotations


import numpy as np

from npdl.bench import Figure, Settings, alternate, timed, try_import_torch

N, D, H, C, B = 60_000, 784, 256, 10, 128
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((n, D), dtype=np.float32), rng.integers(0, C, n)


def _init(seed: int = 1):
    rng = np.random.default_rng(seed)
    b1, b2 = 1 / np.sqrt(D), 1 / np.sqrt(H)
    return [rng.uniform(-b1, b1, (H, D)).astype(np.float32), rng.uniform(-b1, b1, H).astype(np.float32),
            rng.uniform(-b2, b2, (C, H)).astype(np.float32), rng.uniform(-b2, b2, C).astype(np.float32)]


class ByHand:
    """The reference: forward, backward and Adam written out in NumPy, float32, in place."""

    def __init__(self):
        self.params = _init()
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, x, y):
        w1, b1, w2, b2 = self.params
        h = x @ w1.T
        h += b1
        np.maximum(h, 0, out=h)
        z = h @ w2.T
        z += b2
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        p /= len(y)                                   # dL/dz of the mean cross-entropy
        grads = [None, None, p.T @ h, p.sum(axis=0)]
        dh = p @ w2
        dh *= h > 0
        grads[0], grads[1] = dh.T @ x, dh.sum(axis=0)
        self.t += 1
        c1, c2 = 1 - BETAS[0] ** self.t, 1 - BETAS[1] ** self.t
        for w, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= BETAS[0]
            m += (1 - BETAS[0]) * g
            v *= BETAS[1]
            v += (1 - BETAS[1]) * (g * g)
            w -= (LR / c1) * m / (np.sqrt(v / c2) + EPS)


def _numpy_epoch(model: ByHand, x, y, order) -> None:
    for s in range(0, len(order), B):
        idx = order[s:s + B]
        model.step(x[idx], y[idx])


def _npdl_setup():
    import npdl
    import npdl.functional as F
    from npdl.models.mlp import MLP
    from npdl.optim import Adam

    model = MLP(sizes=[D, H, C])
    model.load_state_dict({"layers.1.weight": _init()[0], "layers.1.bias": _init()[1],
                           "layers.3.weight": _init()[2], "layers.3.bias": _init()[3]})
    opt = Adam(model.named_parameters(), lr=LR, betas=BETAS, eps=EPS)

    def epoch(x, y, order):
        for s in range(0, len(order), B):
            idx = order[s:s + B]
            loss = F.cross_entropy(model(npdl.Tensor(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch


def _torch_setup(torch, threads: int):
    torch.set_num_threads(threads)
    model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
    with torch.no_grad():
        for p, w in zip(model.parameters(), _init()):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(x, y, order):
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        ot = torch.from_numpy(order)
        for s in range(0, len(order), B):
            idx = ot[s:s + B]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch


def epoch_flops(n: int) -> int:
    """Floating-point operations of one epoch (GEMMs only, 2 per multiply-add): per sample, the
    forward's x W1^T and h W2^T, backward's dW2, dh = dz W2 and dW1 (no dx: the input needs none)."""
    return n * (2 * 2 * D * H + 3 * 2 * H * C)


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matmul rate in GFLOP/s: the best of ``repeats`` (size x size) GEMMs
    under the BLAS threads in force (the benchmark's setting; the best, as a peak is what the
    hardware can reach)."""
    import time

    rng = np.random.default_rng(3)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)                          # warm-up: BLAS threads started, pages touched
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def run(settings: Settings, epochs: int = 5) -> list[Figure]:
    n = 256 if settings.quick else N
    x, y = _data(n)
    by_hand = ByHand()
    impls = {"npdl": _npdl_setup(), "numpy by hand": lambda x, y, o: _numpy_epoch(by_hand, x, y, o)}
    torch = try_import_torch()
    if torch is not None:
        impls["torch"] = _torch_setup(torch, settings.threads)
    rng = np.random.default_rng(2)
    # one untimed round warms up every implementation; each round gets a fresh shuffle
    seconds = alternate({k: timed(f) for k, f in impls.items()}, settings.rounds_or(epochs), warmup=1,
                        make_input=lambda: (x, y, rng.permutation(n)))
    size = 256 if settings.quick else 2048
    peak = matmul_peak(size)
    gflop = epoch_flops(n) / 1e9
    share = {k: [100 * gflop / s / peak for s in v] for k, v in seconds.items()}
    return [Figure("mlp", f"one epoch 784-256-10, batch {B}, Adam ({n:,} samples)", "s", seconds,
                   "float32; ratios: <= 1 means npdl is faster", "<= 1 vs numpy by hand"),
            Figure("mlp", "epoch GEMM rate as a share of the float32 matmul peak", "% of peak", share,
                   f"{gflop:.1f} GFLOP per epoch (GEMMs only); peak {peak:.1f} GFLOP/s = best {size}^3 float32 "
                   f"matmul with {settings.threads} thread(s), measured in this run")]
