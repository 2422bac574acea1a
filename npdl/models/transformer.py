"""Transformer models on the encoder stack (Vaswani et al. 2017, arXiv:1706.03762):
``transformer_classifier`` (single texts or ``[CLS] q1 [SEP] q2 [SEP]`` pairs) and
``transformer_lm`` (decoder-only, causal, with a KV cache for incremental decoding).

Both embed tokens the same way (``TokenEmbedding``): token + position (+ segment), an
optional LayerNorm (BERT, Devlin et al. 2019, §3), then dropout. With sinusoidal positions
the token vectors start at N(0, 1/d) and are multiplied by sqrt(d_model) (Vaswani §3.4), so
tokens and the unit-amplitude position table are on the same scale; with learned positions
everything starts at N(0, 0.02^2) without scaling (GPT-2, BERT).

Masks: models take ``mask`` (B, T) with **True = real token** (what ``pad_batch`` returns)
and hand the stacks its negation, PyTorch's key_padding_mask (True = padding).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core.grad_mode import is_grad_enabled
from npdl.core.tensor import Tensor
from npdl.nn.attention import ContextTooLongError, LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from npdl.nn.layers import Embedding, LayerNorm, Linear
from npdl.nn.module import Module
from npdl.nn.transformer import TransformerEncoder
from npdl.registry import MODELS
from npdl.schema import NonNegativeInt, PositiveInt, UnitInterval

Positional = Literal["learned", "sinusoidal"]
Activation = Literal["relu", "gelu"]
PAD_ID = 0  # npdl.data.tokenizers.PAD_ID; a mask defaults to ids != PAD_ID


def as_token_ids(x) -> np.ndarray:
    """Token ids (B, T) as an integer array (from a Tensor or array-like); other shapes/dtypes are errors."""
    ids = np.asarray(x.data if isinstance(x, Tensor) else x)
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


@MODELS.register("transformer_classifier")
class TransformerClassifier(Module):
    """Encoder-only classifier: ids (B, T) [+ segments (B, T)] -> logits (B, num_classes).

    Embeddings (token + position + segment, LayerNorm, dropout) -> ``num_layers`` encoder
    layers with a key-padding mask -> pooling -> dropout -> linear head. ``pooling='cls'``
    takes position 0 (the ``[CLS]`` token, Devlin et al. 2019); ``'mean'`` averages the real
    tokens only (padding excluded). Sentence pairs are ``[CLS] q1 [SEP] q2 [SEP]`` with
    segment 0 up to the first ``[SEP]`` and 1 after (``num_segments=2``); single texts pass
    ``segments=None``. ``vocab_size``, ``num_classes``, ``max_len`` (and ``num_segments``)
    come from the data.

    forward(ids, segments=None, mask=None): mask (B, T) True = real token; default ids != 0.
    Raises: ValueError: bad sizes (d_model % nhead), ids/segments of the wrong shape or range.
    """

    def __init__(self, vocab_size: PositiveInt, num_classes: PositiveInt, max_len: PositiveInt = 512,
                 d_model: PositiveInt = 128, nhead: PositiveInt = 4, num_layers: PositiveInt = 2,
                 dim_feedforward: PositiveInt = 512, dropout: UnitInterval = 0.1, activation: Activation = "relu",
                 norm_first: bool = False, positional: Positional = "learned",
                 pooling: Literal["cls", "mean"] = "mean", num_segments: NonNegativeInt = 2,
                 embedding_norm: bool = True, rng: np.random.Generator | None = None):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"transformer_classifier: d_model {d_model} is not divisible by nhead {nhead}")
        self.pooling, self.num_classes, self.dropout = pooling, num_classes, dropout
        self.embed = TokenEmbedding(vocab_size, d_model, max_len, positional, num_segments, dropout,
                                    layer_norm=embedding_norm, rng=rng)
        self.encoder = TransformerEncoder(num_layers, d_model, nhead, dim_feedforward, dropout, activation,
                                          norm_first, rng=rng)
        self.head = Linear(num_classes, d_model, rng=rng)

    def forward(self, ids, segments=None, mask=None) -> Tensor:
        ids = as_token_ids(ids)
        mask = ids != PAD_ID if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != ids.shape:
            raise ValueError(f"mask shape {mask.shape} differs from ids shape {ids.shape}")
        x = self.embed(ids, segments)                                          # (B, T, d)
        kpm = None if mask.all() else ~mask                                    # True = padding
        x = self.encoder(x, src_key_padding_mask=kpm)                          # (B, T, d)
        if self.pooling == "cls":
            pooled = x[:, 0]                                                   # (B, d)
        else:  # mean over real tokens: padded rows contribute nothing, whatever their values
            m = mask.astype(x.dtype)[..., None]                                # (B, T, 1)
            pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1)        # (B, d)
        return self.head(F.dropout(pooled, self.dropout, self.training))      # (B, C)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling}, num_classes={self.num_classes}"


@MODELS.register("transformer_lm")
class TransformerLM(Module):
    """Decoder-only causal language model (GPT-style): ids (B, T) -> logits (B, T, vocab_size).

    Embeddings -> ``num_layers`` self-attention layers run with the causal mask (an encoder
    stack without cross-attention, which is exactly a decoder-only block; Radford et al. 2018)
    -> [final LayerNorm when pre-norm] -> output projection, tied to the token embedding
    (``tie_weights``, Press & Wolf 2017) or its own ``head``.

    forward(ids, state=None, use_cache=None) -> (logits (B, T, V), state):
        the sampling protocol of ``npdl.train.generate``: feed the prompt with ``state=None``,
        then one token at a time passing the returned ``state`` back. ``state`` is a KV cache
        (``{"layers": [per-layer k/v dicts], "offset": next position, "ids": recent tokens}``),
        so a new token attends to the cached keys/values instead of recomputing the prefix.
        ``use_cache=None`` builds the cache exactly when gradients are off (inference); training
        returns ``state=None``.
        Past ``max_len`` tokens the context window slides: the latest ``max_len // 2`` tokens
        are re-encoded from position 0 (absolute positions live in the cached keys, so the cache
        cannot simply drop its oldest entries), so sampling can run for any length.
    Right padding needs no mask: under the causal mask a real token never sees a later pad;
    losses must ignore the padded targets. Left padding is not supported.

    ``stateful_across_batches = False``: the language-model task passes ``state=None`` for
    every training batch (the cache is for decoding, not truncated BPTT).

    Raises (forward):
        npdl.nn.attention.ContextTooLongError: more than ``max_len`` tokens in one call.
        RuntimeError: a cache (``state``) used while gradients are enabled.
    """

    stateful_across_batches = False

    def __init__(self, vocab_size: PositiveInt, max_len: PositiveInt = 512, d_model: PositiveInt = 128,
                 nhead: PositiveInt = 4, num_layers: PositiveInt = 2, dim_feedforward: PositiveInt = 512,
                 dropout: UnitInterval = 0.1, activation: Activation = "gelu", norm_first: bool = True,
                 positional: Positional = "learned", tie_weights: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"transformer_lm: d_model {d_model} is not divisible by nhead {nhead}")
        self.vocab_size, self.max_len, self.tie_weights = vocab_size, max_len, tie_weights
        self.embed = TokenEmbedding(vocab_size, d_model, max_len, positional, 0, dropout, rng=rng)
        self.transformer = TransformerEncoder(num_layers, d_model, nhead, dim_feedforward, dropout, activation,
                                              norm_first, rng=rng)
        if not tie_weights:
            self.head = Linear(vocab_size, d_model, bias=False, rng=rng)

    def new_state(self) -> dict:
        """An empty KV cache: one dict per layer, the position of the next token, the recent ids."""
        return {"layers": self.transformer.new_cache(), "offset": 0,
                "ids": np.zeros((0, 0), np.int64)}

    def forward(self, ids, state: dict | None = None, use_cache: bool | None = None):
        ids = as_token_ids(ids)
        if use_cache is None:
            use_cache = state is not None or not is_grad_enabled()
        if state is not None and not use_cache:
            raise ValueError("transformer_lm: a state (KV cache) was given with use_cache=False")
        if not use_cache:
            x = self.transformer(self.embed(ids), is_causal=True)             # (B, T, d), fused layers
            return self._logits(x), None
        if is_grad_enabled():
            raise RuntimeError("transformer_lm: the KV cache is for inference; call it under `with npdl.no_grad():`")
        state = self.new_state() if state is None else state
        if len(state.get("layers", ())) != len(self.transformer.layers):
            raise ValueError("transformer_lm: state does not belong to this model; start from state=None")
        t = ids.shape[1]
        if state["offset"] + t > self.max_len:
            # the context is full: slide it. Absolute positions are baked into the cached keys, so
            # re-encode the most recent tokens from position 0 (half the window, so this happens
            # once every max_len/2 tokens rather than at every step)
            if t > self.max_len:
                raise ContextTooLongError(f"transformer_lm: {t} tokens in one call exceed max_len={self.max_len}; "
                                           "set model.max_len to at least the sequence length (e.g. data.bptt)")
            window = np.concatenate([state["ids"], ids], axis=1)[:, -max(self.max_len // 2, t):]
            logits, state = self._extend(window, self.new_state())
            return logits[:, -t:], state
        return self._extend(ids, state)

    def _extend(self, ids: np.ndarray, state: dict):
        """Run ``ids`` after the cached context in ``state`` (updated in place): (logits (B, T, V), state)."""
        x = self.embed(ids, offset=state["offset"])                            # positions offset.. offset+T-1
        x = self.transformer(x, is_causal=True, cache=state["layers"])        # attends to the cached k/v
        state["offset"] += ids.shape[1]
        seen = ids if state["ids"].size == 0 else np.concatenate([state["ids"], ids], axis=1)
        state["ids"] = seen[:, -self.max_len:]                                 # for sliding the window later
        return self._logits(x), state

    def _logits(self, x: Tensor) -> Tensor:
        if self.tie_weights:
            return F.linear(x, self.embed.token.weight)                        # (B, T, V)
        return self.head(x)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, max_len={self.max_len}, tie_weights={self.tie_weights}"

