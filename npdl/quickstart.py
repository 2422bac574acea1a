"""``python -m npdl.quickstart``: train a 2-64-64-2 MLP on two spirals with raw tensors.

A first taste of the engine before the YAML-driven CLI arrives: every parameter is a
Tensor, the loss is fused cross-entropy, the update is plain SGD with momentum.
"""
from __future__ import annotations

import time

import numpy as np

import npdl
import npdl.functional as F
from npdl.data.synthetic import spirals


def main(steps: int = 1500, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x, y = spirals(500, rng=rng)
    split = 800
    sizes = [2, 64, 64, 2]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = npdl.randn(fan_in, fan_out, rng=rng) * np.sqrt(2.0 / fan_in)   # He init
        params += [npdl.tensor(w.data, requires_grad=True), npdl.zeros(fan_out, requires_grad=True)]
    velocity = [np.zeros_like(p.data) for p in params]

    def forward(inp):
        h = npdl.tensor(inp)
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = F.relu(h)
        return h

    start = time.perf_counter()
    for step in range(steps):
        batch = rng.integers(0, split, 128)
        loss = F.cross_entropy(forward(x[batch]), y[batch])
        for p in params:
            p.grad = None
        loss.backward()
        for p, v in zip(params, velocity):
            v *= 0.9
            v -= 0.1 * p.grad
            p.data += v
        if step % 300 == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}")
    with npdl.no_grad():
        acc = float((forward(x[split:]).argmax(axis=1).numpy() == y[split:]).mean())
    print(f"held-out accuracy {acc:.3f} after {steps} steps in {time.perf_counter() - start:.1f}s")
    return acc


if __name__ == "__main__":
    main()
