"""Encoder-decoder Transformer for sequence-to-sequence tasks (Vaswani et al. 2017, arXiv:1706.03762).

    src (B, S) ids --embed*sqrt(d)+PE--> encoder --> memory (B, S, d)
    tgt_in (B, T) ids --embed*sqrt(d)+PE--> decoder(causal self-attn, cross-attn on memory)
        --> (B, T, d) --output projection--> logits (B, T, V_tgt)

Masks given to this model are the data's: bool, **True = real token** (``npdl.families.seq2seq.data``);
they are inverted here into the layers' PyTorch convention (True = padding).

Embedding sharing (Press & Wolf 2017, arXiv:1608.05859; the paper's §3.4): with
``share_vocab`` (source and target use one vocabulary) the source and target embeddings are
one table ``src_embed``; with ``tie_embeddings`` the output projection reuses the target
embedding's weight (plus its own bias ``out_bias``). Embeddings are drawn from N(0, d^-1/2) and
multiplied by sqrt(d) (§3.4), so their scale matches the positional encoding's.

Incremental decoding: ``decode(..., cache=model.new_cache())`` under ``npdl.no_grad()``, fed
one new token per call; positions continue from the number of tokens already in the cache.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core.tensor import Tensor
from npdl.nn.attention import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from npdl.nn.layers import Embedding, Linear
from npdl.nn.module import Module, Parameter
from npdl.nn.token_embedding import as_token_ids
from npdl.nn.transformer import TransformerDecoder, TransformerEncoder
from npdl.registry import MODELS
from npdl.schema import PositiveInt, UnitInterval


def _padding(mask) -> np.ndarray | None:
    """Data mask (True = token) -> key_padding_mask (True = padding), None when nothing is padded."""
    if mask is None:
        return None
    m = ~np.asarray(mask, dtype=bool)
    return m if m.any() else None


@MODELS.register("transformer_seq2seq")
class TransformerSeq2Seq(Module):
    """Encoder-decoder Transformer: (src (B, S), tgt_in (B, T)) ids -> logits (B, T, tgt_vocab_size).

    Args (``src_vocab_size``, ``tgt_vocab_size``, ``max_len``, ``share_vocab`` come from the data):
        d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout,
        activation, norm_first: as ``nn.Transformer`` (pre-norm stacks end with a LayerNorm).
        positional: fixed ``sinusoidal`` table or ``learned`` embeddings, ``max_len`` positions.
        share_vocab: one embedding table for source and target (the vocabularies must be one).
        tie_embeddings: the output projection is the target embedding transposed.

    Raises:
        ValueError: ``share_vocab`` with different vocabulary sizes; d_model not divisible by nhead.
    """

    def __init__(self, src_vocab_size: PositiveInt, tgt_vocab_size: PositiveInt, d_model: PositiveInt = 256,
                 nhead: PositiveInt = 8, num_encoder_layers: PositiveInt = 3, num_decoder_layers: PositiveInt = 3,
                 dim_feedforward: PositiveInt = 1024, dropout: UnitInterval = 0.1,
                 activation: Literal["relu", "gelu"] = "relu", norm_first: bool = False,
                 positional: Literal["sinusoidal", "learned"] = "sinusoidal", max_len: PositiveInt = 256,
                 share_vocab: bool = False, tie_embeddings: bool = True, rng: np.random.Generator | None = None):
        super().__init__()
        if share_vocab and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"transformer_seq2seq: share_vocab needs one vocabulary, but the source has "
                             f"{src_vocab_size} tokens and the target {tgt_vocab_size}")
        if d_model % nhead:
            raise ValueError(f"transformer_seq2seq: d_model {d_model} is not divisible by nhead {nhead}")
        self.src_vocab_size, self.tgt_vocab_size, self.d_model = src_vocab_size, tgt_vocab_size, d_model
        self.max_len, self.share_vocab, self.tie_embeddings = max_len, share_vocab, tie_embeddings
        std = d_model ** -0.5
        self.src_embed = Embedding(src_vocab_size, d_model, init_std=std, rng=rng)
        if not share_vocab:
            self.tgt_embed = Embedding(tgt_vocab_size, d_model, init_std=std, rng=rng)
        if positional == "sinusoidal":
            self.src_pos = SinusoidalPositionalEncoding(d_model, max_len, dropout)
            self.tgt_pos = SinusoidalPositionalEncoding(d_model, max_len, dropout)
        else:
            self.src_pos = LearnedPositionalEmbedding(max_len, d_model, dropout, rng=rng)
            self.tgt_pos = LearnedPositionalEmbedding(max_len, d_model, dropout, rng=rng)
        layer = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                     activation=activation, norm_first=norm_first, rng=rng)
        self.encoder = TransformerEncoder(num_encoder_layers, **layer)
        self.decoder = TransformerDecoder(num_decoder_layers, **layer)
        if tie_embeddings:
            self.out_bias = Parameter(np.zeros(tgt_vocab_size, np.float32))
        else:
            self.generator = Linear(tgt_vocab_size, d_model, rng=rng)

    # ---- pieces ------------------------------------------------------------------------
    @property
    def target_embedding(self) -> Embedding:
        return self.src_embed if self.share_vocab else self.tgt_embed

    def _embed(self, table: Embedding, ids) -> Tensor:
        x = table(as_token_ids(ids))
        return x * x.dtype.type(math.sqrt(self.d_model))  # §3.4: embeddings multiplied by sqrt(d_model)

    def project(self, h: Tensor) -> Tensor:
        """Decoder states (B, T, d) -> logits (B, T, tgt_vocab_size)."""
        if self.tie_embeddings:
            return F.linear(h, self.target_embedding.weight, self.out_bias)
        return self.generator(h)

    def encode(self, src, src_mask=None) -> Tensor:
        """src (B, S) ids, src_mask (B, S) True = token -> memory (B, S, d_model).

        Raises: ContextTooLongError (npdl.nn.attention): S > max_len.
        """
        x = self.src_pos(self._embed(self.src_embed, src))
        return self.encoder(x, src_key_padding_mask=_padding(src_mask))

    def new_cache(self) -> list[dict]:
        """An empty KV cache for ``decode`` (one dict per decoder layer)."""
        return self.decoder.new_cache()

    @staticmethod
    def cache_len(cache: list[dict] | None) -> int:
        """Target positions already held by ``cache`` (0 for a fresh one)."""
        if not cache or "self" not in cache[0] or "k" not in cache[0]["self"]:
            return 0
        return cache[0]["self"]["k"].shape[1]

    def decode(self, tgt_in, memory: Tensor, src_mask=None, tgt_mask=None, cache: list[dict] | None = None,
               hidden: bool = False) -> Tensor:
        """tgt_in (B, T) ids over memory (B, S, d) -> logits (B, T, V) (decoder states if ``hidden``).

        tgt_mask (B, T) True = token (padding keys of the target are ignored; without a cache only).
        With ``cache`` (incremental decoding under ``npdl.no_grad()``) ``tgt_in`` holds only the new
        positions, placed after the ``cache_len(cache)`` positions already decoded.

        Raises: ContextTooLongError: positions past max_len.
        """
        offset = self.cache_len(cache)
        y = self.tgt_pos(self._embed(self.target_embedding, tgt_in), offset=offset)
        h = self.decoder(y, memory, tgt_key_padding_mask=None if cache is not None else _padding(tgt_mask),
                         memory_key_padding_mask=_padding(src_mask), tgt_is_causal=True, cache=cache)
        return h if hidden else self.project(h)

    def forward(self, src, src_mask, tgt_in, tgt_mask=None) -> Tensor:
        """Teacher-forced logits (B, T, tgt_vocab_size) for source (B, S) and decoder input (B, T)."""
        memory = self.encode(src, src_mask)
        return self.decode(tgt_in, memory, src_mask, tgt_mask)

    def extra_repr(self) -> str:
        return (f"src_vocab_size={self.src_vocab_size}, tgt_vocab_size={self.tgt_vocab_size}, "
                f"d_model={self.d_model}, share_vocab={self.share_vocab}, tie_embeddings={self.tie_embeddings}")
