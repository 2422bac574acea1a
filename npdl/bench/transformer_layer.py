"""Transformer encoder layer: forward+backward time and memory, npdl vs PyTorch.

One step is forward of ``transformer_encoder_layer`` (post-norm, ReLU) on a (B, T, d_model)
float32 batch in training mode, loss = mean of the output, and backward into the input and
every weight. Each library runs in processes of its own (``npdl.bench.worker``), alternating,
under the same threads. Run with dropout 0.1 and 0: PyTorch's CPU dropout is slow, so the
dropout-free pair isolates the rest.

Allocator: both sides run under the same malloc settings, and both pairs are printed: glibc's
defaults and ``npdl.runtime.keep_freed_memory`` (what the ``npdl`` command applies; glibc then
keeps freed activation memory instead of page-faulting it back in every step), each in every
process of the pair.
"""
from __future__ import annotations

import numpy as np

from npdl.bench import Figure, Settings, has_module
from npdl.bench.worker import isolated_figures

CONFIG = dict(d_model=128, nhead=4, dim_feedforward=512, batch=64, seq=64)
QUICK = dict(d_model=8, nhead=2, dim_feedforward=16, batch=2, seq=4)


def npdl_setup(d_model: int, nhead: int, dim_feedforward: int, batch: int, seq: int, dropout: float):
    """npdl's encoder layer forward+backward step."""
    import npdl
    from npdl.nn.transformer import TransformerEncoderLayer

    layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, rng=np.random.default_rng(0))
    x = npdl.tensor(np.random.default_rng(1).standard_normal((batch, seq, d_model)), requires_grad=True)

    def step():
        layer.zero_grad()
        x.grad = None
        layer(x).mean().backward()

    return step


def torch_setup(d_model: int, nhead: int, dim_feedforward: int, batch: int, seq: int, dropout: float,
                threads: int):
    """``torch.nn.TransformerEncoderLayer`` forward+backward step."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
    x = torch.randn(batch, seq, d_model, requires_grad=True)

    def step():
        layer.zero_grad()
        x.grad = None
        layer(x).mean().backward()

    return step


def run(settings: Settings, steps: int = 20, warmup: int = 5) -> list[Figure]:
    """Figures at dropout 0.1 and 0, each under glibc's default allocator and npdl's settings (both sides)."""
    cfg = QUICK if settings.quick else CONFIG
    steps, warmup = (2, 1) if settings.quick else (steps, warmup)
    shape = f"d={cfg['d_model']} h={cfg['nhead']} ff={cfg['dim_feedforward']} B={cfg['batch']} T={cfg['seq']}"
    targets = {"npdl": "npdl.bench.transformer_layer:npdl_setup"}
    if has_module("torch"):   # find_spec, not import: keep torch out of this parent process
        targets["torch"] = "npdl.bench.transformer_layer:torch_setup"
    figures = []
    for dropout in (0.1,) if settings.quick else (0.1, 0.0):
        for malloc, what in ((False, "glibc default malloc"), (True, "npdl.runtime malloc")):
            figures += isolated_figures("layers", f"encoder layer fwd+bwd step, dropout={dropout:g}, {what}", targets,
                                        settings, steps, warmup, settings.rounds_or(3),
                                        f"{shape}; {what} on both sides", "<= 1", memory=True, npdl_runtime=malloc,
                                        extra={"torch": {"threads": settings.threads}}, dropout=dropout, **cfg)
    return figures
