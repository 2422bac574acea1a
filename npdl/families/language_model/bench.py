"""LSTM language-model training step: npdl beside PyTorch, the same model on both sides.

One step is what ``npdl train configs/lstm_ptb.yaml`` does per batch: embedding lookup,
stacked LSTM from the carried (detached) state, linear softmax cross-entropy over the
vocabulary, backward, global-norm gradient clipping and a plain SGD update. Two sizes:

* ``zaremba-small``: Zaremba et al. 2014's small PTB model: vocab 10000, embed 200,
  2 x 200 LSTM, bptt 20, batch 20;
* ``anchor``: vocab 10000, embed 128, 1 x 256 LSTM, bptt 35, batch 32.

The PyTorch reference is the same model (``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear``,
``clip_grad_norm_``, ``optim.SGD``) with dense embedding gradients, so the compared npdl side
uses dense embedding gradients too (``sparse_embedding=False``); npdl's default, row-sparse
gradients, is an extra side. Every side runs in processes of its own (``npdl.bench.worker``),
alternating for ``rounds`` rounds under the same threads and allocator; each figure is the
median over rounds of per-process medians over ``steps`` timed steps after ``warmup``.
"""
from __future__ import annotations

import itertools

import numpy as np

from npdl.bench import Figure, Settings, has_module
from npdl.bench.worker import isolated_figures

SIZES = {
    "zaremba-small": {"vocab": 10000, "embed": 200, "hidden": 200, "layers": 2, "bptt": 20, "batch": 20},
    "anchor": {"vocab": 10000, "embed": 128, "hidden": 256, "layers": 1, "bptt": 35, "batch": 32},
}
QUICK = {"tiny": {"vocab": 50, "embed": 8, "hidden": 8, "layers": 1, "bptt": 4, "batch": 2}}


def _windows(vocab: int, batch: int, bptt: int, n: int = 64):
    """Consecutive (x, y) windows of one random stream per row, as the PTB loader gives them."""
    data = np.random.default_rng(1).integers(0, vocab, (batch, n * bptt + 1))
    return [(data[:, i * bptt:(i + 1) * bptt], data[:, i * bptt + 1:(i + 1) * bptt + 1]) for i in range(n)]


def npdl_setup(vocab: int, embed: int, hidden: int, layers: int, bptt: int, batch: int, sparse: bool):
    """npdl's training step (rnn_lm + the language-model task's loss, clip, SGD)."""
    import npdl.functional as F
    from npdl.families.language_model.rnn import RNNLM
    from npdl.optim.clip import clip_grad_norm_
    from npdl.optim.optimizers import SGD

    model = RNNLM(vocab, hidden_size=hidden, num_layers=layers, embed_dim=embed, sparse_embedding=sparse,
                  rng=np.random.default_rng(0))
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

    return step


def torch_setup(vocab: int, embed: int, hidden: int, layers: int, bptt: int, batch: int, threads: int):
    """The same model and step in PyTorch (dense embedding gradients)."""
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

    return step


def run(settings: Settings, steps: int = 20, warmup: int = 3) -> list[Figure]:
    """Per size: ms/step of npdl (dense), torch (dense) and npdl (sparse); ratios to npdl dense."""
    sizes = QUICK if settings.quick else SIZES
    steps, warmup = (2, 1) if settings.quick else (steps, warmup)
    targets = {"npdl dense": "npdl.families.language_model.bench:npdl_setup"}
    if has_module("torch"):   # checked without importing it here
        targets["torch dense"] = "npdl.families.language_model.bench:torch_setup"
    targets["npdl sparse"] = "npdl.families.language_model.bench:npdl_setup"
    extra = {"npdl dense": {"sparse": False}, "npdl sparse": {"sparse": True},
             "torch dense": {"threads": settings.threads}}
    figures = []
    for label, size in sizes.items():
        note = (f"V={size['vocab']} E={size['embed']} {size['layers']}x{size['hidden']} T={size['bptt']} "
                f"B={size['batch']}: {size['batch'] * size['bptt']} tokens/step; embedding gradients as named")
        figures += isolated_figures("lstm", f"{label}: PTB train step", targets, settings, steps, warmup,
                                    settings.rounds_or(3), note, "<= 1.5 (dense vs dense)", extra=extra, **size)
    return figures
