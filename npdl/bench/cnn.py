"""``npdl bench cnn``: the ``cnn_mnist`` training step, npdl beside the same network in PyTorch.

The model, batch and optimizer are ``configs/cnn_mnist.yaml``'s: Conv 5x5 32 ('same') - MaxPool 2
- ReLU - Conv 5x5 64 - MaxPool 2 - ReLU - Flatten - Linear 128 - ReLU - Dropout 0.3 - Linear
10, batch 128 of 1x28x28 float32, softmax cross-entropy, global-norm clipping at 5, Adam (lr
1e-3; the config's cosine schedule only changes the lr's value, not the work). Both sides
pool before each block's ReLU (as ``npdl.models.cnn`` does: the same function, a quarter of the
ReLU's work), so neither gets a rewrite the other lacks. Inputs are
synthetic (random pixels and labels of MNIST's shape), so nothing is downloaded.

PyTorch's copy starts from its own initialisation (the work does not depend on the values). A
third side, "npdl's GEMMs alone" (``gemm_setup``), runs only the matrix products of npdl's step,
cut into the same chunks and parts on the same threads: the floor NumPy's BLAS sets under it.
Each side runs in processes of its own (``npdl.bench.worker``), alternating for ``rounds``
rounds under the same threads and allocator; per process, the median of ``steps`` steps after
``warmup`` untimed ones, and the memory the steps take over the baseline after imports.
"""
from __future__ import annotations

import itertools

import numpy as np

from npdl.bench import Figure, Settings, has_module
from npdl.bench.worker import GEMMS_ALONE, isolated_figures

SIZES = {"batch": 128, "channels": [32, 64], "hidden": 128, "side": 28}
QUICK = {"batch": 4, "channels": [2, 4], "hidden": 8, "side": 8}
KERNEL, DROPOUT, LR, CLIP, CLASSES = 5, 0.3, 1e-3, 5.0, 10


def _batches(batch: int, side: int, n: int = 4):
    rng = np.random.default_rng(1)
    return [(rng.random((batch, 1, side, side), dtype=np.float32), rng.integers(0, CLASSES, batch))
            for _ in range(n)]


def npdl_setup(batch: int, channels: list[int], hidden: int, side: int):
    """npdl's ``cnn`` model (the config's), cross-entropy, clip, Adam: one training step."""
    import npdl
    import npdl.functional as F
    from npdl.core.parallel import step_scope
    from npdl.models.cnn import CNN
    from npdl.optim import Adam
    from npdl.optim.clip import clip_grad_norm_

    npdl.manual_seed(0)
    model = CNN(CLASSES, 1, channels, KERNEL, hidden=[hidden], dropout=DROPOUT)
    data = _batches(batch, side)
    with npdl.no_grad():
        model(npdl.Tensor(data[0][0]))       # the head's in_features are inferred on the first call
    model.train()
    opt = Adam(model.named_parameters(), lr=LR)
    params = list(model.parameters())
    calls = itertools.count()
    own_threads = model.uses_npdl_threads()

    def step():   # as npdl's Updater runs it: in the model's step scope
        x, y = data[next(calls) % len(data)]
        with step_scope(own_threads):
            loss = F.cross_entropy(model(npdl.Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_(params, CLIP)
            opt.step()

    return step


def gemm_setup(batch: int, channels: list[int], hidden: int, side: int):
    """The GEMMs alone of npdl's ``cnn_mnist`` step, nothing else: the floor NumPy's BLAS sets for it.

    The same products, shapes, layouts, chunks and parts as ``npdl/core/ops/conv.py`` and
    ``Affine``: per convolution and chunk of m images, forward one (O, C*K*K) @ (C*K*K, m*OH*OW)
    product when C*K*K >= ``ONE_GEMM_ROWS`` (else one (O, C*K*K) @ (C*K*K, OH*OW) per image),
    backward the weight gradient (C*K*K, m*OH*OW) @ (m*OH*OW, O) and, for the second convolution
    only (the first one's input needs no gradient), the column gradient (C*K*K, O) @ (O, m*OH*OW)
    from a contiguous W^T; then the two linear layers' three products each. All in the step scope
    the model asks for (BLAS on one thread, the parts on npdl's threads).
    """
    from npdl.core.ops.conv import ONE_GEMM_ROWS, _chunk, _part_bounds
    from npdl.core.parallel import in_parts, step_scope

    rng = np.random.default_rng(0)
    f = np.float32
    convs, c_in, s = [], 1, side
    for c_out in channels:              # 'same' padding: OH = OW = s; a 2x2 max-pool follows each
        k, p = c_in * KERNEL * KERNEL, s * s
        nb = _chunk(batch, k * p * 4)
        w = rng.standard_normal((c_out, k), f)
        convs.append({"w": w, "wt": np.ascontiguousarray(w.T), "cols": rng.standard_normal((k, nb * p), f),
                      "per_image": rng.standard_normal((nb, k, p), f), "one_gemm": k >= ONE_GEMM_ROWS,
                      "res": np.empty((c_out, nb * p), f), "out": np.empty((batch, c_out, p), f),
                      "g": rng.standard_normal((c_out, nb * p), f), "bounds": _part_bounds(batch, nb), "nb": nb,
                      "p": p, "input_grad": c_in > 1})
        c_in, s = c_out, s // 2
    flat = c_in * s * s
    fcs = [(rng.standard_normal((batch, n_in), f), rng.standard_normal((n_out, n_in), f),
            rng.standard_normal((batch, n_out), f)) for n_in, n_out in ((flat, hidden), (hidden, CLASSES))]

    def forward(conv: dict, lo: int, hi: int) -> None:
        p = conv["p"]
        for start in range(lo, hi, conv["nb"]):
            m = min(conv["nb"], hi - start)
            if conv["one_gemm"]:
                np.matmul(conv["w"], conv["cols"][:, :m * p], out=conv["res"][:, :m * p])
            else:
                np.matmul(conv["w"], conv["per_image"][:m], out=conv["out"][start:start + m])

    def backward(conv: dict, lo: int, hi: int) -> None:
        cols, p = conv["cols"], conv["p"]
        for start in range(lo, hi, conv["nb"]):
            m = min(conv["nb"], hi - start)
            gm = conv["g"][:, :m * p]
            cols[:, :m * p] @ gm.T
            if conv["input_grad"]:
                conv["wt"] @ gm

    def in_conv_parts(fn, conv: dict) -> None:
        in_parts(lambda k: fn(conv, *conv["bounds"][k]), len(conv["bounds"]))

    def step():
        with step_scope(True):
            for conv in convs:
                in_conv_parts(forward, conv)
            for x, w, _ in fcs:
                x @ w.T
            for x, w, g in reversed(fcs):
                g @ w
                g.T @ x
            for conv in reversed(convs):
                in_conv_parts(backward, conv)

    return step


def torch_setup(batch: int, channels: list[int], hidden: int, side: int, threads: int):
    """The same network and step in PyTorch (float32), pooling before each ReLU as npdl's model."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c1, c2 = channels
    model = nn.Sequential(nn.Conv2d(1, c1, KERNEL, padding=KERNEL // 2), nn.MaxPool2d(2), nn.ReLU(),
                          nn.Conv2d(c1, c2, KERNEL, padding=KERNEL // 2), nn.MaxPool2d(2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(c2 * (side // 4) ** 2, hidden), nn.ReLU(), nn.Dropout(DROPOUT),
                          nn.Linear(hidden, CLASSES))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in _batches(batch, side)]
    calls = itertools.count()

    def step():
        x, y = data[next(calls) % len(data)]
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()

    return step


def run(settings: Settings, steps: int = 10, warmup: int = 2) -> list[Figure]:
    """Figures: ms per training step (and the work's memory) of npdl and torch (when installed)."""
    size = QUICK if settings.quick else SIZES
    steps, warmup = (2, 1) if settings.quick else (steps, warmup)
    c1, c2 = size["channels"]
    shape = (f"conv{KERNEL} {c1}-pool-conv{KERNEL} {c2}-pool-fc {size['hidden']}-10, dropout {DROPOUT}, "
             f"B={size['batch']} x 1x{size['side']}x{size['side']} float32, Adam, clip {CLIP:g}")
    targets = {"npdl": "npdl.bench.cnn:npdl_setup"}
    if has_module("torch"):
        targets["torch"] = "npdl.bench.cnn:torch_setup"
    targets[GEMMS_ALONE] = "npdl.bench.cnn:gemm_setup"   # the floor BLAS sets
    return isolated_figures("cnn", "cnn_mnist train step", targets, settings, steps, warmup, settings.rounds_or(3),
                            shape, "<= 1.5", memory=True, extra={"torch": {"threads": settings.threads}},
                            timed_only=(GEMMS_ALONE,), **size)
