"""Token embeddings shared by the Transformer families (classifier, decoder-only LM, seq2seq).

``TokenEmbedding``: token + position (+ segment), an optional LayerNorm (BERT, Devlin et al.
2019, §3), then dropout. With sinusoidal positions the token vectors start at N(0, 1/d) and are
multiplied by sqrt(d_model) (Vaswani et al. 2017, §3.4), so tokens and the unit-amplitude
position table are on the same scale; with learned positions everything starts at
N(0, 0.02^2) without scaling (GPT-2, BERT).
"""
from __future__ import annotations

import math

import numpy as np

import npdl.functional as F
from npdl.core import backend
from npdl.core.tensor import Tensor
from npdl.nn.attention import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from npdl.nn.layers import Embedding, LayerNorm
from npdl.nn.module import Module


def as_token_ids(x) -> np.ndarray:
    """Token ids (B, T) as an integer array (from a Tensor or array-like); other shapes/dtypes are errors."""
    ids = backend.asarray(x)   # host or device ids, where they are
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"expected integer token ids of shape (B, T), got {ids.dtype} {ids.shape}")
    return ids


class TokenEmbedding(Module):
    """ids (B, T) [+ segments (B, T)] -> (B, T, d_model): token + position (+ segment), [LayerNorm], dropout.

    Raises (forward):
        npdl.nn.attention.ContextTooLongError: offset + T > max_len.
        ValueError: an id outside the vocabulary, or segments without a segment table.
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int, positional: str = "learned",
                 num_segments: int = 0, dropout: float = 0.1, layer_norm: bool = False,
                 rng: np.random.Generator | None = None):
        super().__init__()
        if positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {positional!r}")
        sinusoidal = positional == "sinusoidal"
        self.vocab_size, self.dropout = vocab_size, dropout
        self.scale = math.sqrt(d_model) if sinusoidal else 1.0
        self.token = Embedding(vocab_size, d_model, init_std=d_model ** -0.5 if sinusoidal else 0.02, rng=rng)
        self.position = (SinusoidalPositionalEncoding(d_model, max_len) if sinusoidal
                         else LearnedPositionalEmbedding(max_len, d_model, rng=rng))
        if num_segments > 1:
            self.segment = Embedding(num_segments, d_model, init_std=0.02, rng=rng)
        if layer_norm:
            self.norm = LayerNorm(d_model)

    def forward(self, ids, segments=None, offset: int = 0) -> Tensor:
        ids = as_token_ids(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"token id {bad} is outside the vocabulary of {self.vocab_size}")
        x = self.token(ids)
        if self.scale != 1.0:
            x = x * self.scale
        if segments is not None:
            if "segment" not in self._modules:
                raise ValueError("this model has no segment embeddings (num_segments < 2); pass segments=None")
            x = x + self.segment(as_token_ids(segments))
        x = self.position(x, offset)
        if "norm" in self._modules:
            x = self.norm(x)
        return F.dropout(x, self.dropout, self.training)
