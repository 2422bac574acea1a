"""Per-op overhead: forward+backward of ((a*b + c).relu()).sum() on 4x4 float32 tensors.

At this size the arithmetic is nothing; the figure measures what the autograd machinery
costs per op. References in the same run: the same computation with hand-written NumPy
gradients, and PyTorch eager when installed. A round times a loop of ~0.05 s of each side
(loop length fixed once per side); the sides alternate rounds (``npdl.bench.alternate``).
"""
from __future__ import annotations

import numpy as np

import npdl
from npdl.bench import Figure, Settings, alternate, per_call, try_import_torch


def run(settings: Settings, size: int = 4) -> list[Figure]:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((size, size)).astype(np.float32) for _ in range(3)]
    a, b, c = (npdl.tensor(x, requires_grad=True) for x in arrays)

    def npdl_step():
        a.grad = b.grad = c.grad = None
        ((a * b + c).relu()).sum().backward()

    an, bn, cn = arrays

    def numpy_step():
        z = an * bn + cn
        mask = z > 0
        _ = np.maximum(z, 0).sum()
        gz = mask.astype(np.float32)
        return gz * bn, gz * an, gz

    min_time = 0.002 if settings.quick else 0.05
    sides = {"npdl": per_call(npdl_step, min_time), "numpy by hand": per_call(numpy_step, min_time)}
    torch = try_import_torch()
    if torch is not None:
        torch.set_num_threads(settings.threads)
        ta, tb, tc = (torch.tensor(x, requires_grad=True) for x in arrays)

        def torch_step():
            ta.grad = tb.grad = tc.grad = None
            ((ta * tb + tc).relu()).sum().backward()

        sides["torch"] = per_call(torch_step, min_time)
    seconds = alternate(sides, settings.rounds_or(7), warmup=1)
    return [Figure("ops", f"fwd+bwd of ((a*b + c).relu()).sum(), {size}x{size} float32", "us",
                   {k: [s * 1e6 for s in v] for k, v in seconds.items()}, "per call; a round = a ~0.05 s loop",
                   "<= 1 vs torch")]
