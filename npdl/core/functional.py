"""Neural-network functions over Tensors (``import npdl.functional as F``).

Thin wrappers: each picks a fused primitive from ``npdl.core.ops`` or composes a few.
Random functions take an explicit ``rng`` (npdl's default generator when None).
"""
from __future__ import annotations

import numpy as np

from npdl.core import random as _random
from npdl.core.ops import attention_ops as _attn
from npdl.core.ops import elementwise as _ew
from npdl.core.ops import losses as _loss
from npdl.core.ops import matmul as _mm
from npdl.core.ops import movement as _mv
from npdl.core.ops import nn as _nn
from npdl.core.ops import reductions as _red
from npdl.core.ops.nn import causal_mask
from npdl.core.tensor import Tensor, wrap

__all__ = [
    "relu", "leaky_relu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "logsumexp",
    "dropout", "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss",
    "l1_loss", "embedding", "linear", "one_hot", "layer_norm", "scaled_dot_product_attention",
    "causal_mask", "masked_fill", "pad",
]


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0)"""
    return _ew.Relu.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x"""
    return _ew.LeakyRelu.apply(x, negative_slope=negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate='tanh'`` uses the tanh form (faster)."""
    return _ew.Gelu.apply(x, approximate=approximate)


def sigmoid(x: Tensor) -> Tensor:
    return _ew.Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return _ew.Tanh.apply(x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Stable softmax along ``axis``."""
    return _nn.Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Stable log-softmax along ``axis``."""
    return _nn.LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return _red.LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Zero entries with probability ``p`` and scale the rest by 1/(1-p); identity when not training.

    Raises:
        ValueError: p outside [0, 1].
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return _nn.Dropout.apply(x, p=p, rng=_random.resolve(rng))


def cross_entropy(logits: Tensor, targets, ignore_index: int | None = None, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy. logits (..., C); targets (...) integer class indices.

    Raises:
        IndexError: a target outside [0, C) that is not ``ignore_index``.
        ValueError: shapes that do not match, or an unknown ``reduction``.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return _loss.CrossEntropy.apply(logits, _as_tensor(targets), ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction=reduction)


def nll_loss(log_probs: Tensor, targets, ignore_index: int | None = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer targets given log-probabilities (..., C)."""
    _loss._check_reduction(reduction)
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    n_cls = log_probs.shape[-1]
    flat = log_probs.reshape(-1, n_cls)
    safe, valid = _loss.flat_targets(t, n_cls, ignore_index, "nll_loss")
    if valid is None:
        valid = np.ones(safe.shape, bool)
    picked = -flat[np.arange(safe.size), safe] * valid
    if reduction == "none":
        return picked.reshape(t.shape)
    total = picked.sum()
    return total / max(int(valid.sum()), 1) if reduction == "mean" else total


def binary_cross_entropy_with_logits(logits: Tensor, targets, reduction: str = "mean") -> Tensor:
    """Stable BCE on logits; targets are probabilities in [0, 1] of the same shape."""
    return _loss.BCEWithLogits.apply(logits, targets, reduction=reduction)


def mse_loss(x: Tensor, y, reduction: str = "mean") -> Tensor:
    return _loss.MSELoss.apply(x, y, reduction=reduction)


def l1_loss(x: Tensor, y, reduction: str = "mean") -> Tensor:
    return _loss.L1Loss.apply(x, y, reduction=reduction)


def embedding(weight: Tensor, indices, sparse: bool = False, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (V, D) at integer ``indices`` (...) -> (..., D).

    ``sparse=True`` makes the weight's gradient a ``RowSparseGrad`` of the touched rows;
    rows looked up for ``padding_idx`` receive no gradient.
    """
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    return _mv.Take.apply(weight, idx, axis=0, sparse=sparse, padding_idx=padding_idx)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias with weight (out_features, in_features)."""
    if bias is None:
        return _mm.Linear.apply(x, weight)
    return _mm.Linear.apply(x, weight, bias)


def one_hot(indices, num_classes: int, dtype=np.float32) -> Tensor:
    """(...) integer indices -> (..., num_classes) one-hot, outside the graph."""
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(f"one_hot: index out of range for {num_classes} classes")
    out = np.zeros(idx.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, idx[..., None], 1, axis=-1)
    return wrap(out)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f"layer_norm: input trailing shape {x.shape[-len(shape):]} != normalized_shape {shape}")
    if weight is None and bias is not None:
        raise ValueError("layer_norm: a bias needs a weight")
    args = [a for a in (weight, bias) if a is not None]
    return _nn.LayerNorm.apply(x, *args, ndim_norm=len(shape), eps=eps)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None, training: bool = True,
                                 rng: np.random.Generator | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v.

    q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv) -> (..., Tq, dv); the leading dims broadcast.
    ``attn_mask``: boolean, broadcastable to (..., Tq, Tk), True where attention is allowed
    (PyTorch's convention). Runs the fused multi-head kernel with the leading dims as its
    batch and a single head, so both paths share one implementation.
    """
    mask = None
    if attn_mask is not None:
        mask = np.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
        if mask.dtype != bool:
            raise TypeError("scaled_dot_product_attention: attn_mask must be boolean (True = attend)")
    t_q, t_k, dv = q.shape[-2], k.shape[-2], v.shape[-1]
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    b = int(np.prod(lead))

    def batched(x: Tensor) -> Tensor:  # (..., T, d) -> (B, T, d)
        return x.broadcast_to(lead + x.shape[-2:]).reshape((b,) + x.shape[-2:])

    if mask is not None:
        mask = np.broadcast_to(mask, lead + (t_q, t_k)).reshape(b, 1, t_q, t_k)
    p = dropout_p if training else 0.0
    out = _attn.MultiHeadAttention.apply(batched(q), batched(k), batched(v), layout="q_k_v", num_heads=1,
                                         mask=mask, causal=is_causal, scale=scale, dropout_p=p,
                                         rng=_random.resolve(rng) if p > 0 else None)
    return out.reshape(lead + (t_q, dv))


def masked_fill(x: Tensor, mask, value: float) -> Tensor:
    return x.masked_fill(mask, value)


def pad(x: Tensor, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding, NumPy's ``pad_width`` convention."""
    return _mv.Pad.apply(x, pad_width=pad_width, value=value)
