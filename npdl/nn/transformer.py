"""Transformer encoder/decoder layers and stacks (Vaswani et al. 2017, §3.1 and Figure 1).

Submodule names follow PyTorch's ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
/ ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` (``self_attn``, ``multihead_attn``,
``linear1``, ``linear2``, ``norm1..3``, ``dropout``, ``dropout1..3``, ``layers.N``, ``norm``) so
their state dicts load unchanged. Masks follow PyTorch too: **True = blocked / padding**
(see ``npdl.nn.attention.MultiHeadAttention``).

Post-norm (``norm_first=False``, the paper): x = LN(x + Dropout(Sublayer(x))).
Pre-norm (``norm_first=True``; Xiong et al. 2020, arXiv:2002.04745, trains without warm-up):
x = x + Dropout(Sublayer(LN(x))), and the stack then ends with a final LayerNorm by default.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core import random as _random
from npdl.core.ops import block_ops as _ops
from npdl.core.tensor import Tensor
from npdl.nn.attention import MultiHeadAttention
from npdl.nn.layers import Dropout, LayerNorm, Linear
from npdl.nn.module import Module, ModuleList
from npdl.registry import LAYERS
from npdl.schema import PositiveFloat, PositiveInt, UnitInterval

Activation = Literal["relu", "gelu"]


def _check_activation(name: str) -> str:
    if name not in ("relu", "gelu"):
        raise ValueError(f"transformer: activation must be 'relu' or 'gelu', got {name!r}")
    return name


def _check_cache(cache: list | None, num_layers: int, who: str) -> None:
    if cache is not None and len(cache) != num_layers:
        raise ValueError(f"{who}: cache has {len(cache)} entries for {num_layers} layers; start from .new_cache()")


def _to_batch_first(x: Tensor | None, batch_first: bool) -> Tensor | None:
    return x if batch_first or x is None else x.swapaxes(0, 1)


# ---- the sublayer plumbing, on fused ops (npdl/core/ops/block_ops.py) ------------------
# Each helper reads p and the training flag from the layer's own Dropout/LayerNorm modules, so
# the PyTorch submodule names (and ``layer.dropout1.p = ...``) keep their meaning.
def _p(dropout: Dropout) -> float:
    return dropout.p if dropout.training else 0.0


def _rng(p: float):
    return _random.default_rng() if p > 0 else None


def _add_norm(norm: LayerNorm, x: Tensor, y: Tensor, dropout: Dropout) -> Tensor:
    """Post-norm: norm(x + dropout(y)) as one node."""
    p = _p(dropout)
    return _ops.ResidualLayerNorm.apply(norm.weight, norm.bias, x, y, eps=norm.eps, dropout_p=p, rng=_rng(p))


def _norm(norm: LayerNorm, x: Tensor) -> Tensor:
    return _ops.ResidualLayerNorm.apply(norm.weight, norm.bias, x, eps=norm.eps)


def _residual(x: Tensor, y: Tensor, dropout: Dropout) -> Tensor:
    """Pre-norm: x + dropout(y) as one node."""
    p = _p(dropout)
    return _ops.DropoutAdd.apply(x, y, p=p, rng=_rng(p))


def _self_attention(layer: Module, x: Tensor, attn_mask, key_padding_mask, is_causal, cache) -> Tensor:
    """The layer's self-attention block (encoder and decoder alike): x attends to itself."""
    return layer.self_attn(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, is_causal=is_causal,
                           cache=cache)


def _feed_forward(layer: Module, x: Tensor) -> Tensor:
    """linear2(dropout(act(linear1(x)))), position-wise (§3.3); ReLU fuses with linear1 and the dropout."""
    if layer.activation == "relu":
        p = _p(layer.dropout)
        h = _ops.LinearReLU.apply(x, layer.linear1.weight, layer.linear1.bias, dropout_p=p, rng=_rng(p))
    else:
        h = layer.dropout(F.gelu(layer.linear1(x)))
    return layer.linear2(h)


@LAYERS.register("transformer_encoder_layer")
class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward, each with a residual and LayerNorm: (B, T, d_model) -> (B, T, d_model).

    forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False, cache=None):
        src_mask (T, T) or (B*nhead, T, T), True = not allowed; src_key_padding_mask (B, T),
        True = padding; is_causal=True applies the causal mask.
    ``batch_first=False`` takes and returns (T, B, d_model). ``cache``: a dict for the
    self-attention's KV cache (decoder-only language models decode with a causal encoder
    stack; under ``npdl.no_grad()``, see ``MultiHeadAttention``).

    Raises:
        ValueError: an activation other than 'relu'/'gelu'; d_model not divisible by nhead;
            inputs or masks of the wrong shape (raised by ``multi_head_attention``).
    """

    def __init__(self, d_model: PositiveInt, nhead: PositiveInt, dim_feedforward: PositiveInt = 2048,
                 dropout: UnitInterval = 0.1, activation: Activation = "relu", norm_first: bool = False,
                 layer_norm_eps: PositiveFloat = 1e-5, batch_first: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout, rng=rng)
        self.linear1 = Linear(dim_feedforward, d_model, rng=rng)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_model, dim_feedforward, rng=rng)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.norm_first, self.batch_first = norm_first, batch_first
        self.activation = _check_activation(activation)

    def forward(self, src: Tensor, src_mask=None, src_key_padding_mask=None, is_causal: bool = False,
                cache: dict | None = None) -> Tensor:
        x = _to_batch_first(src, self.batch_first)
        sa = (src_mask, src_key_padding_mask, is_causal, cache)
        if self.norm_first:
            x = _residual(x, _self_attention(self, _norm(self.norm1, x), *sa), self.dropout1)
            x = _residual(x, _feed_forward(self, _norm(self.norm2, x)), self.dropout2)
        else:
            x = _add_norm(self.norm1, x, _self_attention(self, x, *sa), self.dropout1)
            x = _add_norm(self.norm2, x, _feed_forward(self, x), self.dropout2)
        return _to_batch_first(x, self.batch_first)


@LAYERS.register("transformer_decoder_layer")
class TransformerDecoderLayer(Module):
    """Causal self-attention, cross-attention over ``memory``, feed-forward: (B, T, d) x (B, S, d) -> (B, T, d).

    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
            memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, cache=None):
        masks as in PyTorch (True = blocked / padding); tgt_is_causal=True applies the causal mask
        to the self-attention (PyTorch needs an explicit tgt_mask; both work here).
    Incremental decoding (under ``npdl.no_grad()``): pass the same dict as ``cache`` at every step
    with the new tokens only (e.g. T=1) and tgt_is_causal=True; it holds ``cache["self"]`` (keys
    and values of all earlier steps) and ``cache["cross"]`` (memory projected once).
    tgt_key_padding_mask then covers every key so far, (B, steps so far).

    Raises:
        ValueError: as the encoder layer. RuntimeError: ``cache`` used while gradients are enabled.
    """

    def __init__(self, d_model: PositiveInt, nhead: PositiveInt, dim_feedforward: PositiveInt = 2048,
                 dropout: UnitInterval = 0.1, activation: Activation = "relu", norm_first: bool = False,
                 layer_norm_eps: PositiveFloat = 1e-5, batch_first: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout, rng=rng)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout, rng=rng)
        self.linear1 = Linear(dim_feedforward, d_model, rng=rng)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_model, dim_feedforward, rng=rng)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.norm_first, self.batch_first = norm_first, batch_first
        self.activation = _check_activation(activation)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False, memory_is_causal: bool = False,
                cache: dict | None = None) -> Tensor:
        x = _to_batch_first(tgt, self.batch_first)
        memory = _to_batch_first(memory, self.batch_first)
        self_cache = cross_cache = None
        if cache is not None:
            self_cache, cross_cache = cache.setdefault("self", {}), cache.setdefault("cross", {})
        sa = (tgt_mask, tgt_key_padding_mask, tgt_is_causal, self_cache)
        ca = (memory, memory_mask, memory_key_padding_mask, memory_is_causal, cross_cache)
        if self.norm_first:
            x = _residual(x, _self_attention(self, _norm(self.norm1, x), *sa), self.dropout1)
            x = _residual(x, self._mha_block(_norm(self.norm2, x), *ca), self.dropout2)
            x = _residual(x, _feed_forward(self, _norm(self.norm3, x)), self.dropout3)
        else:
            x = _add_norm(self.norm1, x, _self_attention(self, x, *sa), self.dropout1)
            x = _add_norm(self.norm2, x, self._mha_block(x, *ca), self.dropout2)
            x = _add_norm(self.norm3, x, _feed_forward(self, x), self.dropout3)
        return _to_batch_first(x, self.batch_first)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal, cache):
        return self.multihead_attn(x, memory, memory, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                   is_causal=is_causal, cache=cache, static_kv=True)


class _LayerStack(Module):
    """What the encoder and decoder stacks share: ``layers.N``, the optional final ``norm``, caches."""

    def _stack(self, layer_cls, num_layers, d_model, nhead, dim_feedforward, dropout, activation, norm_first,
               final_norm, layer_norm_eps, batch_first, rng) -> None:
        self.layers = ModuleList(
            layer_cls(d_model, nhead, dim_feedforward, dropout, activation, norm_first, layer_norm_eps,
                      batch_first=True, rng=rng) for _ in range(num_layers))
        if norm_first if final_norm is None else final_norm:
            self.norm = LayerNorm(d_model, eps=layer_norm_eps)
        self.batch_first = batch_first

    def new_cache(self) -> list[dict]:
        """An empty per-layer KV cache for incremental (causal) decoding."""
        return [{} for _ in self.layers]


@LAYERS.register("transformer_encoder")
class TransformerEncoder(_LayerStack):
    """``num_layers`` encoder layers (``layers.0`` ...) and an optional final LayerNorm ``norm``.

    final_norm: None means True exactly when norm_first (pre-norm stacks need it; Xiong et al. 2020).
    forward(src, mask=None, src_key_padding_mask=None, is_causal=False, cache=None): (B, T, d) -> (B, T, d).
        ``cache``: one dict per layer (``new_cache()``) for causal incremental decoding under
        ``npdl.no_grad()`` (a decoder-only language model is a causal encoder stack).

    Raises:
        ValueError: a cache list whose length is not ``num_layers``.
    """

    def __init__(self, num_layers: PositiveInt, d_model: PositiveInt, nhead: PositiveInt,
                 dim_feedforward: PositiveInt = 2048, dropout: UnitInterval = 0.1, activation: Activation = "relu",
                 norm_first: bool = False, final_norm: bool | None = None, layer_norm_eps: PositiveFloat = 1e-5,
                 batch_first: bool = True, rng: np.random.Generator | None = None):
        super().__init__()
        self._stack(TransformerEncoderLayer, num_layers, d_model, nhead, dim_feedforward, dropout, activation,
                    norm_first, final_norm, layer_norm_eps, batch_first, rng)

    def forward(self, src: Tensor, mask=None, src_key_padding_mask=None, is_causal: bool = False,
                cache: list[dict] | None = None) -> Tensor:
        _check_cache(cache, len(self.layers), "transformer_encoder")
        x = _to_batch_first(src, self.batch_first)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, src_key_padding_mask, is_causal, cache=None if cache is None else cache[i])
        if "norm" in self._modules:
            x = self.norm(x)
        return _to_batch_first(x, self.batch_first)


@LAYERS.register("transformer_decoder")
class TransformerDecoder(_LayerStack):
    """``num_layers`` decoder layers (``layers.0`` ...) and an optional final LayerNorm ``norm``.

    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
            memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, cache=None):
        (B, T, d) x (B, S, d) -> (B, T, d). ``cache``: a list with one dict per layer (``new_cache()``)
        for incremental decoding under ``npdl.no_grad()`` (see ``TransformerDecoderLayer``).

    Raises:
        ValueError: a cache list whose length is not ``num_layers``.
    """

    def __init__(self, num_layers: PositiveInt, d_model: PositiveInt, nhead: PositiveInt,
                 dim_feedforward: PositiveInt = 2048, dropout: UnitInterval = 0.1, activation: Activation = "relu",
                 norm_first: bool = False, final_norm: bool | None = None, layer_norm_eps: PositiveFloat = 1e-5,
                 batch_first: bool = True, rng: np.random.Generator | None = None):
        super().__init__()
        self._stack(TransformerDecoderLayer, num_layers, d_model, nhead, dim_feedforward, dropout, activation,
                    norm_first, final_norm, layer_norm_eps, batch_first, rng)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False, memory_is_causal: bool = False,
                cache: list[dict] | None = None) -> Tensor:
        _check_cache(cache, len(self.layers), "transformer_decoder")
        x = _to_batch_first(tgt, self.batch_first)
        memory = _to_batch_first(memory, self.batch_first)
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                      tgt_is_causal, memory_is_causal, cache=None if cache is None else cache[i])
        if "norm" in self._modules:
            x = self.norm(x)
        return _to_batch_first(x, self.batch_first)
