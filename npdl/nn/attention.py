"""Multi-head attention (Vaswani et al. 2017, §3.2.2) and positional encodings (§3.5).

``MultiHeadAttention`` keeps PyTorch's ``nn.MultiheadAttention`` parameter names and layout
(``in_proj_weight`` (3E, E), ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``) so a
torch state dict loads as is, and its mask conventions (True = *blocked*), which are the
opposite of ``F.scaled_dot_product_attention`` (True = *attend*). The heavy lifting is one
fused op (``npdl.core.ops.attention_ops.MultiHeadAttention``) that reads the heads as views
of the packed projection and writes the merged heads without a copy.
"""
from __future__ import annotations

import math

import numpy as np

import npdl.functional as F
from npdl.core import random as _random
from npdl.core.backend import device_of, get_array_module, is_device_array, to_device
from npdl.core.grad_mode import is_grad_enabled
from npdl.core.ops.attention_ops import MultiHeadAttention as _MHA
from npdl.core.tensor import Tensor, wrap
from npdl.nn import init
from npdl.nn.layers import Linear
from npdl.nn.module import Module, Parameter
from npdl.registry import LAYERS
from npdl.schema import PositiveFloat, PositiveInt, UnitInterval


class ContextTooLongError(ValueError):
    """A sequence (plus decoding offset) runs past a positional table's ``max_len``."""


def _raw(m) -> np.ndarray:
    m = m.data if isinstance(m, Tensor) else m
    return m if is_device_array(m) else np.asarray(m)


def _allowed_and_bias(m: np.ndarray, name: str, dtype) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A PyTorch-style mask as (allowed, additive bias): bool True = blocked; float = added, -inf = blocked."""
    xp = get_array_module(m)
    on_host = xp is np   # on a device, no host round trip to find out whether a mask blocks anything
    if m.dtype == bool:
        return (None if on_host and not m.any() else ~m), None
    if m.dtype.kind != "f":
        raise TypeError(f"multi_head_attention: {name} must be boolean (True = blocked) or float (added to the "
                        f"scores, -inf = blocked), got {m.dtype}")
    allowed = ~xp.isneginf(m)
    bias = xp.where(allowed, m, 0).astype(dtype)
    if not on_host:
        return allowed, bias
    return (None if allowed.all() else allowed), (bias if bias.any() else None)


def merge_masks(key_padding_mask, attn_mask, b: int, h: int, t: int, s: int, dtype):
    """PyTorch masks -> (allowed bool, bias float), each None or broadcastable to (B, H, T, S).

    Raises:
        ValueError: a mask whose shape is not (B, S), resp. (T, S) or (B*H, T, S).
        TypeError: a mask that is neither boolean nor float.
    """
    allowed = bias = None
    if key_padding_mask is not None:
        m = _raw(key_padding_mask)
        if m.shape != (b, s):
            raise ValueError(f"key_padding_mask must have shape (B, S) = {(b, s)} (True = padding, ignored), "
                             f"got {m.shape}")
        allowed, bias = _allowed_and_bias(m, "key_padding_mask", dtype)
        allowed = None if allowed is None else allowed[:, None, None, :]
        bias = None if bias is None else bias[:, None, None, :]
    if attn_mask is not None:
        m = _raw(attn_mask)
        if m.shape == (b * h, t, s):
            m = m.reshape(b, h, t, s)
        elif m.shape != (t, s):
            raise ValueError(f"attn_mask must have shape (T, S) = {(t, s)} or (B*num_heads, T, S) = {(b * h, t, s)} "
                             f"(True = not allowed), got {m.shape}")
        a2, b2 = _allowed_and_bias(m, "attn_mask", dtype)
        allowed = a2 if allowed is None else (allowed if a2 is None else allowed & a2)
        bias = b2 if bias is None else (bias if b2 is None else bias + b2)
    return allowed, bias


_MIN_CAPACITY = 16  # positions a self-attention cache holds at first (a short caption fits without regrowing)


def _append_kv(cache: dict, k: np.ndarray, v: np.ndarray) -> None:
    """Write keys/values (B, T, E) at positions n..n+T-1 of a self-attention cache (n = positions held).

    The cache preallocates: ``k_buf``/``v_buf`` (rows, capacity, E) hold the positions and
    ``cache["k"]``/``cache["v"]`` are views of the filled (B, n, E) part. Growing by
    ``np.concatenate`` per token copied the whole prefix every step (quadratic in the output
    length); a buffer that doubles when full copies each position O(1) times on average.
    """
    n = cache["k"].shape[1] if "k" in cache else 0
    b, t = k.shape[0], k.shape[1]
    buf = cache.get("k_buf")
    if buf is None or n + t > buf.shape[1]:
        cap = max(n + t, 2 * n, _MIN_CAPACITY)
        for name, new in (("k", k), ("v", v)):
            grown = get_array_module(new).empty((b, cap, new.shape[2]), new.dtype)
            if n:
                grown[:, :n] = cache[name]
            cache[name + "_buf"] = grown
    for name, new in (("k", k), ("v", v)):
        buf = cache[name + "_buf"]
        buf[:b, n:n + t] = new
        cache[name] = buf[:b, :n + t]


def take_cache_rows(cache: dict, rows: np.ndarray) -> None:
    """Keep batch rows ``rows`` (in that order, repeats allowed) of one attention cache dict, in place.

    Beam search reorders the self-attention cache after every step (each surviving hypothesis
    continues some parent's prefix) and drops finished rows. A preallocated cache is gathered
    within its own buffer, only over the filled prefix (no new allocation of the capacity);
    a cross-attention cache (the projected memory) is indexed as it stands.
    """
    if "k" not in cache:
        return
    if type(cache["k"]) is not np.ndarray:   # host rows (the search runs on the host) to the cache's device
        rows = to_device(np.asarray(rows), device_of(cache["k"]))
    for name in ("k", "v"):
        buf = cache.get(name + "_buf")
        if buf is None:
            cache[name] = cache[name][rows]
            continue
        n, m = cache[name].shape[1], len(rows)
        if m > buf.shape[0]:  # more rows than the buffer holds (repeated rows): a larger one
            cache[name + "_buf"] = buf = get_array_module(buf).empty((m,) + buf.shape[1:], buf.dtype)
        buf[:m, :n] = cache[name][rows]  # the right side is a copy (fancy indexing), so overlap is safe
        cache[name] = buf[:m, :n]


@LAYERS.register("multi_head_attention")
class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention: (B, T, E) queries over (B, S, kdim/vdim) keys/values -> (B, T, E).

    head_i = softmax(Q_i K_i^T / sqrt(head_dim)) V_i, out = concat(head_1..H) W_o (Vaswani et al. 2017, eq. 1).

    Parameters (PyTorch's names and layout, so ``nn.MultiheadAttention.state_dict()`` loads):
        packed=True:  ``in_proj_weight`` (3E, E) = [W_q; W_k; W_v], ``in_proj_bias`` (3E,),
                      ``out_proj.weight`` (E, E), ``out_proj.bias`` (E,).
        packed=False: ``q_proj``, ``k_proj``, ``v_proj`` Linear layers (E <- E, kdim, vdim) and ``out_proj``;
                      required when kdim or vdim differs from embed_dim.

    MASK CONVENTIONS (PyTorch ``nn.MultiheadAttention``; the OPPOSITE of ``F.scaled_dot_product_attention``):
        key_padding_mask: (B, S) bool, **True = padding, that key is ignored**.
        attn_mask: (T, S) or (B*num_heads, T, S) bool, **True = NOT allowed to attend**.
        Float masks are added to the scores instead (-inf blocks).
        is_causal=True: query i may not see key j > i + (S - T) (ANDed with attn_mask if given).
        A query row with every key blocked outputs zeros (PyTorch gives NaN there).

    KV CACHE (incremental decoding; only under ``npdl.no_grad()``): pass a dict you own as ``cache``.
        Self-attention (default): the new keys/values are appended to ``cache["k"]``/``cache["v"]``
        (B, S, E; views of preallocated buffers: reorder rows with ``take_cache_rows``), so a step
        with T=1 attends to every earlier position and itself; use is_causal=True for the
        offset-aware causal mask and give key_padding_mask for all S keys.
        Cross-attention (``static_kv=True``): key/value are projected on the first call and reused.

    Self-attention fast path: when ``query is key is value`` (packed) the q, k, v projections are one
    (B*T, E) x (E, 3E) GEMM. Attention dropout is applied only in training.
    """

    def __init__(self, embed_dim: PositiveInt, num_heads: PositiveInt, dropout: UnitInterval = 0.0, bias: bool = True,
                 packed: bool = True, kdim: PositiveInt | None = None, vdim: PositiveInt | None = None,
                 batch_first: bool = True, rng: np.random.Generator | None = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"multi_head_attention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        kdim, vdim = kdim or embed_dim, vdim or embed_dim
        if packed and (kdim != embed_dim or vdim != embed_dim):
            raise ValueError(f"multi_head_attention: kdim={kdim}/vdim={vdim} differ from embed_dim={embed_dim}; "
                             "the packed (3E, E) in_proj_weight cannot hold them — pass packed=False")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim, self.dropout, self.packed = kdim, vdim, dropout, packed
        self.batch_first, self.use_bias = batch_first, bias
        rng = _random.resolve(rng)
        if packed:  # PyTorch's init: xavier-uniform projections, zero biases
            self.in_proj_weight = init.xavier_uniform_(Parameter(np.empty((3 * embed_dim, embed_dim), np.float32)),
                                                       rng=rng)
            if bias:
                self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, np.float32))
        else:
            for name, fan_in in (("q_proj", embed_dim), ("k_proj", kdim), ("v_proj", vdim)):
                lin = Linear(embed_dim, fan_in, bias=bias, rng=rng)
                init.xavier_uniform_(lin.weight, rng=rng)
                if bias:
                    init.zeros_(lin.bias)
                setattr(self, name, lin)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, rng=rng)
        if bias:
            init.zeros_(self.out_proj.bias)

    # ---- projections -------------------------------------------------------------------
    def _proj(self, x: Tensor, part: int, count: int = 1) -> Tensor:
        """Rows ``part .. part+count`` of [q; k; v] applied to x: (B, T, *) -> (B, T, count*E)."""
        if not self.packed:
            return (self.q_proj, self.k_proj, self.v_proj)[part](x)
        e = self.embed_dim
        if count == 3:
            return F.linear(x, self.in_proj_weight, self.in_proj_bias if self.use_bias else None)
        rows = slice(part * e, (part + count) * e)
        return F.linear(x, self.in_proj_weight[rows], self.in_proj_bias[rows] if self.use_bias else None)

    def _projections(self, query, key, value, same: bool) -> tuple[list[Tensor], str]:
        if self.packed and same:
            return [self._proj(query, 0, 3)], "qkv"  # one GEMM for q, k and v
        if self.packed and key is value:
            return [self._proj(query, 0), self._proj(key, 1, 2)], "q_kv"
        return [self._proj(query, 0), self._proj(key, 1), self._proj(value, 2)], "q_k_v"

    def _cached_projections(self, query, key, value, same: bool, cache: dict, static_kv: bool) -> list[Tensor]:
        # Tensors, not bare arrays: the engine would cast bare float64 arrays to the float32 default
        if is_grad_enabled():
            raise RuntimeError("multi_head_attention: a KV cache is for inference; call it under `with npdl.no_grad():` "
                               "(cached keys/values are plain arrays, so gradients would silently stop there)")
        b, e = query.shape[0], self.embed_dim
        if "k" in cache and cache["k"].shape[0] != b:
            raise ValueError(f"multi_head_attention: cache holds batch size {cache['k'].shape[0]}, "
                             f"query has {b}; use a fresh cache dict per batch")
        if static_kv and "k" in cache:  # cross-attention: memory projected on the first step only
            return [self._proj(query, 0), wrap(cache["k"]), wrap(cache["v"])]
        arrays, layout = self._projections(query, key, value, same and not static_kv)
        if layout == "qkv":
            qkv = arrays[0].data
            q, k, v = qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
        elif layout == "q_kv":
            q, k, v = arrays[0].data, arrays[1].data[..., :e], arrays[1].data[..., e:]
        else:
            q, k, v = (a.data for a in arrays)
        if static_kv:  # cross-attention: the projected memory, kept as is
            xp = get_array_module(k)
            cache["k"], cache["v"] = xp.ascontiguousarray(k), xp.ascontiguousarray(v)
        else:  # self-attention: this step's keys/values written after the cached ones
            _append_kv(cache, k, v)
        return [wrap(q), wrap(cache["k"]), wrap(cache["v"])]

    # ---- forward -----------------------------------------------------------------------
    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, key_padding_mask=None,
                attn_mask=None, is_causal: bool = False, need_weights: bool = False, cache: dict | None = None,
                static_kv: bool = False, average_attn_weights: bool = True):
        """query (B, T, E), key (B, S, kdim), value (B, S, vdim) -> (B, T, E) [(T, B, *) if not batch_first].

        ``key`` defaults to ``query`` and ``value`` to ``key`` (so ``mha(x)`` is self-attention).
        Masks follow PyTorch (see the class docstring): key_padding_mask (B, S) True = ignore that key;
        attn_mask (T, S) or (B*H, T, S) True = not allowed. ``need_weights=True`` returns
        ``(out, weights)`` with the softmax weights (B, T, S) averaged over heads (or (B, H, T, S) with
        ``average_attn_weights=False``), before dropout and outside the graph.

        Raises:
            ValueError: inputs that are not 3-D or whose sizes disagree; masks of the wrong shape.
            RuntimeError: ``cache`` used while gradients are enabled.
        """
        key = query if key is None else key
        value = key if value is None else value
        same = query is key and key is value
        if not self.batch_first:
            kv_same = key is value
            query = query.swapaxes(0, 1)
            key = query if same else key.swapaxes(0, 1)
            value = key if (same or kv_same) else value.swapaxes(0, 1)
        self._check_inputs(query, key, value, cache is not None and static_kv and "k" in cache)
        b, t = query.shape[0], query.shape[1]
        if cache is not None:
            arrays, layout = self._cached_projections(query, key, value, same, cache, static_kv), "q_k_v"
            s = arrays[1].shape[1]
        else:
            arrays, layout = self._projections(query, key, value, same)
            s = t if layout == "qkv" else arrays[1].shape[1]
        mask, bias = merge_masks(key_padding_mask, attn_mask, b, self.num_heads, t, s, query.dtype)
        p = self.dropout if self.training else 0.0
        weights = [] if need_weights else None
        o = _MHA.apply(*arrays, layout=layout, num_heads=self.num_heads, mask=mask, bias=bias, causal=is_causal,
                       dropout_p=p, rng=_random.default_rng() if p > 0 else None, weights_out=weights)
        out = self.out_proj(o)
        if not self.batch_first:
            out = out.swapaxes(0, 1)
        if not need_weights:
            return out
        w = weights[0].mean(axis=1) if average_attn_weights else weights[0]
        return out, wrap(w)

    def _check_inputs(self, query, key, value, kv_cached: bool) -> None:
        if query.ndim != 3:
            raise ValueError(f"multi_head_attention: query must be (B, T, E) (batch_first={self.batch_first}), "
                             f"got shape {query.shape}")
        if query.shape[-1] != self.embed_dim:
            raise ValueError(f"multi_head_attention: query has {query.shape[-1]} features, embed_dim is {self.embed_dim}")
        if kv_cached:
            return
        for name, x, dim in (("key", key, self.kdim), ("value", value, self.vdim)):
            if x.ndim != 3 or x.shape[0] != query.shape[0] or x.shape[-1] != dim:
                raise ValueError(f"multi_head_attention: {name} must be (B={query.shape[0]}, S, {dim}), got {x.shape}")
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"multi_head_attention: key has {key.shape[1]} positions, value has {value.shape[1]}")

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, packed={self.packed}"


def _check_positions(x: Tensor, d_model: int, offset: int, max_len: int, who: str) -> int:
    if x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{who}: expected (B, T, {d_model}) input, got shape {x.shape}")
    t = x.shape[1]
    if offset < 0 or t + offset > max_len:
        raise ContextTooLongError(f"{who}: positions {offset}..{offset + t - 1} exceed the table's max_len={max_len}; "
                                   f"build it with a larger max_len (or shorten the sequence)")
    return t


@LAYERS.register("sinusoidal_positional_encoding")
class SinusoidalPositionalEncoding(Module):
    """x + PE[offset : offset+T] with the fixed table of Vaswani et al. 2017, §3.5: (B, T, d) -> (B, T, d).

    PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), then dropout.
    ``offset`` is the position of the first token (incremental decoding). The table is a
    non-persistent buffer (derived from the arguments, so not saved in checkpoints).
    Scaling the embeddings by sqrt(d) (§3.4) is the embedding's job, not done here.

    Raises (forward):
        ContextTooLongError: T + offset > max_len.
        ValueError: input not (B, T, d_model).
    """

    def __init__(self, d_model: PositiveInt, max_len: PositiveInt = 5000, dropout: UnitInterval = 0.0):
        super().__init__()
        self.d_model, self.max_len, self.dropout = d_model, max_len, dropout
        pos = np.arange(max_len, dtype=np.float64)[:, None]
        inv_freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)  # 1 / 10000^(2i/d)
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(pos * inv_freq)
        pe[:, 1::2] = np.cos(pos * inv_freq[: d_model // 2])
        self.register_buffer("pe", pe.astype(np.float32), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = _check_positions(x, self.d_model, offset, self.max_len, "sinusoidal_positional_encoding")
        return F.dropout(x + self.pe[offset:offset + t], self.dropout, self.training)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, dropout={self.dropout}"


@LAYERS.register("learned_positional_embedding")
class LearnedPositionalEmbedding(Module):
    """x + W[offset : offset+T] with a learned (max_len, d_model) table ``weight``: (B, T, d) -> (B, T, d).

    Init N(0, init_std^2) (0.02 as in GPT-2), then dropout. Same interface as the sinusoidal one.

    Raises (forward):
        ContextTooLongError: T + offset > max_len.
        ValueError: input not (B, T, d_model).
    """

    def __init__(self, max_len: PositiveInt, d_model: PositiveInt, dropout: UnitInterval = 0.0,
                 init_std: PositiveFloat = 0.02, rng: np.random.Generator | None = None):
        super().__init__()
        self.d_model, self.max_len, self.dropout = d_model, max_len, dropout
        self.weight = init.normal_(Parameter(np.empty((max_len, d_model), np.float32)), 0.0, init_std,
                                   _random.resolve(rng))

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = _check_positions(x, self.d_model, offset, self.max_len, "learned_positional_embedding")
        return F.dropout(x + self.weight[offset:offset + t], self.dropout, self.training)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}, dropout={self.dropout}"
