"""Transformer encoder layer: forward+backward time and peak memory, npdl vs PyTorch.

One step is forward of ``transformer_encoder_layer`` (post-norm, ReLU) on a (B, T, d_model)
float32 batch in training mode, loss = mean of the output, and backward into the input and
every weight. Each library runs in a process of its own (``run_isolated``), so the peak RSS
is that library's alone; PyTorch is pinned to 2 threads like NumPy's OpenBLAS here. Figures
are the median ms/step over ``steps`` steps after ``warmup``. Run with dropout 0.1 and 0:
PyTorch's CPU dropout is slow, so the dropout-free pair isolates the rest.

npdl runs as the ``npdl`` command runs it (``npdl.runtime.keep_freed_memory``: glibc keeps
freed activation memory instead of page-faulting it back in every step); a second npdl row
shows the allocator's defaults, for comparison.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from npdl.bench import Row, median_ms
from npdl.bench.worker import run_isolated

CONFIG = dict(d_model=128, nhead=4, dim_feedforward=512, batch=64, seq=64)



def npdl_step_ms(d_model: int, nhead: int, dim_feedforward: int, batch: int, seq: int, dropout: float,
                 steps: int = 20, warmup: int = 3) -> dict:
    """Worker: median ms per forward+backward of npdl's encoder layer."""
    import npdl
    from npdl.nn.transformer import TransformerEncoderLayer

    layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, rng=np.random.default_rng(0))
    x = npdl.tensor(np.random.default_rng(1).standard_normal((batch, seq, d_model)), requires_grad=True)

    def step():
        layer.zero_grad()
        x.grad = None
        layer(x).mean().backward()

    return {"ms": median_ms(step, steps, warmup)}


def torch_step_ms(d_model: int, nhead: int, dim_feedforward: int, batch: int, seq: int, dropout: float,
                  steps: int = 20, warmup: int = 3) -> dict:
    """Worker: median ms per forward+backward of ``torch.nn.TransformerEncoderLayer`` (2 threads)."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
    x = torch.randn(batch, seq, d_model, requires_grad=True)

    def step():
        layer.zero_grad()
        x.grad = None
        layer(x).mean().backward()

    return {"ms": median_ms(step, steps, warmup)}


def _peak(result: dict) -> float:
    return result["max_rss_mb"]


def run(steps: int = 20, warmup: int = 5, **config) -> list[Row]:
    """Rows: ms/step and peak MB for npdl (default and kept-memory allocator) and torch, at dropout 0.1 and 0."""
    cfg = {**CONFIG, **config}
    shape = f"d={cfg['d_model']} h={cfg['nhead']} ff={cfg['dim_feedforward']} B={cfg['batch']} T={cfg['seq']}"
    # find_spec, not import: keep torch out of this parent process
    have_torch = importlib.util.find_spec("torch") is not None
    target = "npdl.bench.transformer_layer:"
    rows = []
    for dropout in (0.1, 0.0):
        tag = f"dropout={dropout:g}"
        ours = run_isolated(target + "npdl_step_ms", npdl_runtime=True, dropout=dropout, steps=steps,
                            warmup=warmup, **cfg)
        plain = run_isolated(target + "npdl_step_ms", dropout=dropout, steps=steps, warmup=warmup, **cfg)
        rows += [Row(f"npdl encoder layer fwd+bwd {tag}", ours["ms"], "ms", shape),
                 Row(f"npdl peak RSS {tag}", _peak(ours), "MB"),
                 Row(f"npdl, default allocator, {tag}", plain["ms"], "ms", "without npdl.runtime settings")]
        if not have_torch:
            continue
        ref = run_isolated(target + "torch_step_ms", dropout=dropout, steps=steps, warmup=warmup, **cfg)
        rows += [Row(f"torch encoder layer fwd+bwd {tag}", ref["ms"], "ms", "2 threads"),
                 Row(f"torch peak RSS {tag}", _peak(ref), "MB"),
                 Row(f"npdl / torch time {tag}", ours["ms"] / ref["ms"], "x", "target <= 1.5"),
                 Row(f"npdl / torch memory {tag}", _peak(ours) / _peak(ref), "x", "target <= 1.5")]
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r.name:52s} {r.value:10.2f} {r.unit:3s} {r.note}")
