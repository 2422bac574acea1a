"""Per-op overhead: forward+backward of ((a*b + c).relu()).sum() on 4x4 float32 tensors.

At this size the arithmetic is nothing; the figure measures what the autograd machinery
costs per op. References in the same run: the same computation with hand-written NumPy
gradients, and PyTorch eager when installed.
"""
from __future__ import annotations

import numpy as np

import npdl
from npdl.bench import Row, best_time, try_import_torch


def run(size: int = 4) -> list[Row]:
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

    rows = [Row("npdl fwd+bwd", best_time(npdl_step) * 1e6, "us"),
            Row("numpy by hand fwd+bwd", best_time(numpy_step) * 1e6, "us")]
    torch = try_import_torch()
    if torch is not None:
        torch.set_num_threads(1)
        ta, tb, tc = (torch.tensor(x, requires_grad=True) for x in arrays)

        def torch_step():
            ta.grad = tb.grad = tc.grad = None
            ((ta * tb + tc).relu()).sum().backward()

        rows.append(Row("torch fwd+bwd", best_time(torch_step) * 1e6, "us"))
        rows.append(Row("npdl / torch", rows[0].value / rows[-1].value, "x", "<= 1 means npdl is faster"))
    rows.append(Row("npdl / numpy", rows[0].value / rows[1].value, "x"))
    return rows
