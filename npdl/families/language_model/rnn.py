"""The recurrent language model ``rnn_lm`` (word or character level).

``rnn_lm`` is Zaremba et al. 2014 (arXiv:1409.2329): embedding -> stacked RNN/LSTM/GRU ->
linear softmax over the vocabulary, with dropout on the non-recurrent connections only
(the embedding output, between layers, before the softmax: their section 3) and every
parameter drawn from U(-init_range, init_range) (0.1 for their small model). Optionally the
softmax weight is the embedding table (Press & Wolf 2017, arXiv:1608.05859; Inan et al. 2017).

The step protocol every npdl language model follows (``npdl.families.language_model.sampling`` and the
language-model task rely on it):

    logits, state = model(ids (B, T) int, state=None)      # logits (B, T, V)

``state`` is whatever the model needs to continue the sequence (here the recurrent state,
an (h, c) pair of (L, B, H) tensors for the LSTM, h alone for RNN/GRU); ``None`` starts fresh.
``stateful_across_batches = True`` tells the training task to carry it (detached) from one
batch into the next.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core import random as _random
from npdl.core.tensor import Tensor
from npdl.nn import init
from npdl.nn.layers import Embedding, Linear
from npdl.nn.module import Module
from npdl.nn.recurrent import GRU, LSTM, RNN
from npdl.registry import MODELS
from npdl.schema import PositiveFloat, PositiveInt, UnitInterval

Cell = Literal["rnn", "lstm", "gru"]
_CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def _uniform_all(module: Module, bound: float, rng) -> None:
    """Every parameter ~ U(-bound, bound) (Zaremba et al. 2014, section 4: 'uniformly initialized')."""
    for p in module.parameters():
        init.uniform_(p, -bound, bound, rng)


@MODELS.register("rnn_lm")
class RNNLM(Module):
    """Recurrent language model: ids (B, T) (+ state) -> logits (B, T, vocab_size) (+ the next state).

    Args:
        vocab_size: supplied by the dataset.
        cell: ``rnn`` (tanh), ``lstm`` or ``gru``.
        hidden_size, num_layers: the recurrent stack.
        embed_dim: embedding width (default: hidden_size; must equal it with ``tie_weights``).
        dropout: on non-recurrent connections (Zaremba et al. 2014): embeddings, between layers, outputs.
        tie_weights: the softmax weight is the embedding table (Press & Wolf 2017).
        init_range: every parameter ~ U(-init_range, init_range); None keeps the layers' own inits.
        sparse_embedding: row-sparse embedding gradients (only the rows a batch uses; ignored when tied,
            as the softmax then makes the gradient dense anyway).

    Raises:
        ValueError: ``tie_weights`` with ``embed_dim != hidden_size``.
    """

    stateful_across_batches = True

    def __init__(self, vocab_size: PositiveInt, cell: Cell = "lstm", hidden_size: PositiveInt = 200,
                 num_layers: PositiveInt = 2, embed_dim: PositiveInt | None = None, dropout: UnitInterval = 0.0,
                 tie_weights: bool = False, init_range: PositiveFloat | None = 0.1, sparse_embedding: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        embed_dim = embed_dim or hidden_size
        if tie_weights and embed_dim != hidden_size:
            raise ValueError(f"rnn_lm: tie_weights needs embed_dim == hidden_size, got {embed_dim} and {hidden_size}")
        rng = _random.resolve(rng)
        self.vocab_size, self.cell, self.dropout, self.tie_weights = vocab_size, cell, dropout, tie_weights
        self.embedding = Embedding(vocab_size, embed_dim, sparse=sparse_embedding and not tie_weights, rng=rng)
        self.rnn = _CELLS[cell](hidden_size, embed_dim, num_layers=num_layers, dropout=dropout, batch_first=True,
                                rng=rng)
        self.decoder = Linear(vocab_size, hidden_size, rng=rng)
        if init_range is not None:
            _uniform_all(self, init_range, rng)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, ids, state=None):
        """ids (B, T) int -> (logits (B, T, V), state); ``state`` None starts from zeros.

        Raises:
            ValueError: ids that are not (B, T), or a state of the wrong shape.
        """
        idx = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if idx.ndim != 2:
            raise ValueError(f"rnn_lm: ids must be (B, T), got shape {idx.shape}")
        b, t = idx.shape
        x = F.dropout(self.embedding(idx), self.dropout, self.training)        # (B, T, E)
        out, state = self.rnn(x, state)                                         # (B, T, H)
        out = F.dropout(out, self.dropout, self.training)
        # (B*T, H) @ (H, V): one GEMM; the (B, T, H) output is a transposed view, the copy is small
        logits = self.decoder(out.reshape(b * t, out.shape[-1]))
        return logits.reshape(b, t, self.vocab_size), state

    def extra_repr(self) -> str:
        return f"cell={self.cell}, vocab_size={self.vocab_size}, tie_weights={self.tie_weights}"
