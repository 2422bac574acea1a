"""LSTM layer step: forward + backward of ``lstm`` (input 128, hidden 256, batch 32, seq 35, float32).

The loss is the sum of the outputs. Each side runs in a process of its own
(``run_isolated``), so each reports its own peak resident memory; PyTorch
(``torch.nn.LSTM``, 2 threads like NumPy's OpenBLAS here) is measured when installed.
Figures are medians over ``steps`` timed steps after ``warmup`` untimed ones, then the
median over alternating rounds of the two processes.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from npdl.bench import Row, median_ms
from npdl.bench.worker import alternating_rounds

SIZES = {"input_size": 128, "hidden_size": 256, "batch": 32, "seq": 35}



def npdl_step_ms(input_size: int, hidden_size: int, batch: int, seq: int, steps: int = 30, warmup: int = 5) -> dict:
    """npdl's ``LSTM`` forward+backward, ms per step (run in its own process)."""
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

    return {"ms": median_ms(step, steps, warmup)}


def torch_step_ms(input_size: int, hidden_size: int, batch: int, seq: int, steps: int = 30, warmup: int = 5,
                  threads: int = 2) -> dict:
    """``torch.nn.LSTM`` forward+backward, ms per step (run in its own process)."""
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

    return {"ms": median_ms(step, steps, warmup)}


def run(steps: int = 30, warmup: int = 5, rounds: int = 3, threads: int | None = None) -> list[Row]:
    """Rows: ms/step and peak MB for npdl and torch (when installed), and their ratios.

    npdl and torch processes alternate for ``rounds`` rounds, and each figure is the median
    over rounds, so that load from other processes on a shared machine hits both alike.
    ``threads``: BLAS threads on both sides (default: NumPy's default, and 2 for torch);
    1 gives steadier figures on a busy machine, where a 2-thread GEMM can stall for a
    whole scheduler slice when one of its threads is preempted.
    """
    shape = f"I={SIZES['input_size']} H={SIZES['hidden_size']} B={SIZES['batch']} T={SIZES['seq']} float32"
    targets = {"npdl": "npdl.bench.lstm_layer:npdl_step_ms"}
    if importlib.util.find_spec("torch") is not None:  # checked without importing it here
        targets["torch"] = "npdl.bench.lstm_layer:torch_step_ms"
    extra = {"torch": {"threads": threads or 2}, "npdl": {}}
    results = alternating_rounds(targets, rounds, threads, extra, steps=steps, warmup=warmup, **SIZES)
    ms = {k: float(np.median([x["ms"] for x in v])) for k, v in results.items()}
    mb = {k: float(max(x["max_rss_mb"] for x in v)) for k, v in results.items()}
    note = f"{shape}; median of {rounds} alternating process rounds; threads={threads or 'default'}"
    rows = [Row("npdl lstm fwd+bwd", ms["npdl"], "ms/step", note)]
    if "torch" in ms:
        rows.append(Row("torch lstm fwd+bwd", ms["torch"], "ms/step", note))
        rows.append(Row("npdl / torch time", ms["npdl"] / ms["torch"], "x", "target <= 1.5"))
    rows.append(Row("npdl peak memory", mb["npdl"], "MB", "max RSS of a process running only this"))
    if "torch" in mb:
        rows.append(Row("torch peak memory", mb["torch"], "MB", "max RSS of a process running only this"))
        rows.append(Row("npdl / torch memory", mb["npdl"] / mb["torch"], "x", "target <= 1.5"))
    return rows
