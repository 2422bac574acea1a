"""LSTM language-model training step: tokens per second, npdl beside PyTorch.

One step is what ``npdl train configs/lstm_ptb.yaml`` does per batch: embedding lookup,
stacked LSTM from the carried (detached) state, linear softmax cross-entropy over the
vocabulary, backward, global-norm gradient clipping and a plain SGD update. Two sizes:

* ``zaremba-small``: Zaremba et al. 2014's small PTB model: vocab 10000, embed 200,
  2 x 200 LSTM, bptt 20, batch 20;
* ``anchor``: vocab 10000, embed 128, 1 x 256 LSTM, bptt 35, batch 32.

The PyTorch reference is the same model (``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear``,
``clip_grad_norm_``, ``optim.SGD``) at 2 threads. Each side runs in a process of its own
(``run_isolated``), alternating for ``rounds`` rounds; each figure is the median over rounds
of per-process medians over ``steps`` timed steps after ``warmup`` untimed ones.
"""
from __future__ import annotations

import importlib.util
import itertools

import numpy as np

from npdl.bench import Row, median_ms
from npdl.bench.worker import alternating_rounds

SIZES = {
    "zaremba-small": {"vocab": 10000, "embed": 200, "hidden": 200, "layers": 2, "bptt": 20, "batch": 20},
    "anchor": {"vocab": 10000, "embed": 128, "hidden": 256, "layers": 1, "bptt": 35, "batch": 32},
}


def _windows(vocab: int, batch: int, bptt: int, n: int = 64):
    """Consecutive (x, y) windows of one random stream per row, as the PTB loader gives them."""
    data = np.random.default_rng(1).integers(0, vocab, (batch, n * bptt + 1))
    return [(data[:, i * bptt:(i + 1) * bptt], data[:, i * bptt + 1:(i + 1) * bptt + 1]) for i in range(n)]


def npdl_step_ms(vocab: int, embed: int, hidden: int, layers: int, bptt: int, batch: int, steps: int = 20,
                 warmup: int = 3) -> dict:
    """npdl's training step (rnn_lm + the language-model task's loss, clip, SGD), ms per step."""
    import npdl.functional as F
    from npdl.models.rnn import RNNLM
    from npdl.optim.clip import clip_grad_norm_
    from npdl.optim.optimizers import SGD

    model = RNNLM(vocab, hidden_size=hidden, num_layers=layers, embed_dim=embed, rng=np.random.default_rng(0))
    opt = SGD(list(model.named_parameters()), lr=1.0)
    params = list(model.parameters())
    data = _windows(vocab, batch, bptt)
    carry = {"state": None}
    calls = itertools.count()

    def step():
        x, y = data[next(calls) % len(data)]
        logits, state = model(x, carry["state"])
        carry["state"] = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        clip_grad_norm_(params, 0.25)
        opt.step()
        opt.zero_grad()

    return {"ms": median_ms(step, steps, warmup)}


def torch_step_ms(vocab: int, embed: int, hidden: int, layers: int, bptt: int, batch: int, steps: int = 20,
                  warmup: int = 3, threads: int = 2) -> dict:
    """The same model and step in PyTorch, ms per step."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, embed)
            self.rnn = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
            self.decoder = nn.Linear(hidden, vocab)

        def forward(self, x, state):
            out, state = self.rnn(self.embedding(x), state)
            return self.decoder(out.reshape(-1, hidden)), state

    model = LM()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    windows = _windows(vocab, batch, bptt)
    data = [(torch.from_numpy(x.copy()), torch.from_numpy(y.copy()).reshape(-1)) for x, y in windows]
    carry = {"state": None}
    calls = itertools.count()

    def step():
        x, y = data[next(calls) % len(data)]
        logits, state = model(x, carry["state"])
        carry["state"] = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    return {"ms": median_ms(step, steps, warmup)}


def run(steps: int = 20, warmup: int = 3, rounds: int = 3, threads: int | None = None) -> list[Row]:
    """Rows per size: npdl and torch tokens/s and ms/step, and the time ratio npdl / torch (target <= 1.5).

    ``threads``: BLAS threads on both sides (default: NumPy's default, and 2 for torch); 1 is
    steadier on a busy machine, where a 2-thread GEMM stalls whenever one thread is preempted.
    """
    have_torch = importlib.util.find_spec("torch") is not None   # checked without importing it here
    extra = {"npdl": {}, "torch": {"threads": threads or 2}}
    rows = []
    for label, size in SIZES.items():
        sides = {"npdl": "npdl.bench.lstm:npdl_step_ms"}
        if have_torch:
            sides["torch"] = "npdl.bench.lstm:torch_step_ms"
        results = alternating_rounds(sides, rounds, threads, extra, steps=steps, warmup=warmup, **size)
        med = {k: float(np.median([x["ms"] for x in v])) for k, v in results.items()}
        tokens = size["batch"] * size["bptt"]
        shape = (f"V={size['vocab']} E={size['embed']} {size['layers']}x{size['hidden']} "
                 f"T={size['bptt']} B={size['batch']}")
        note = f"{shape}; median of {rounds} alternating process rounds; threads={threads or 'default'}"
        for name, value in med.items():
            rows.append(Row(f"{label}: {name} train step", tokens / value * 1e3, "tokens/s",
                            f"{value:.1f} ms/step; {note}"))
        if "torch" in med:
            rows.append(Row(f"{label}: npdl / torch time", med["npdl"] / med["torch"], "x", "target <= 1.5"))
    return rows
