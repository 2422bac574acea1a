"""Gradient clipping, in place, over dense and row-sparse gradients.

``clip_grad_norm_`` rescales all gradients together so their global norm is at most
``max_norm`` (Pascanu et al. 2013, "On the difficulty of training recurrent neural networks",
Algorithm 1). A row-sparse gradient is coalesced first: repeated rows add up, and the norm is
the norm of that sum, exactly as the dense gradient's would be.
"""
from __future__ import annotations

import math

import numpy as np

from npdl.core.backend import get_array_module

from npdl.core.sparse import RowSparseGrad
from npdl.core.tensor import Tensor


def _with_grads(params) -> list[Tensor]:
    """Tensors with a gradient from Parameters, (name, Parameter) pairs or a module."""
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    if isinstance(params, Tensor):
        params = [params]
    out = []
    for item in params:
        p = item[1] if isinstance(item, tuple) else item
        if p.grad is not None:
            if isinstance(p.grad, RowSparseGrad):
                p.grad = p.grad.coalesce()  # same gradient; norms and clips need summed rows
            out.append(p)
    return out


def _arrays(p: Tensor) -> np.ndarray:
    return p.grad.values if isinstance(p.grad, RowSparseGrad) else p.grad


def clip_grad_norm_(params, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale every gradient by ``max_norm / total_norm`` when the global norm exceeds ``max_norm``.

    Args:
        params: Parameters, ``(name, Parameter)`` pairs or a module; ones without grad are skipped.
        max_norm: the largest allowed global norm (> 0).
        norm_type: p of the p-norm, ``float("inf")`` for the max-abs norm.

    Returns:
        The global norm BEFORE clipping, as a Python float. When it is not finite (NaN/inf
        gradients) nothing is scaled, so the caller can detect it and skip the step.

    Raises:
        ValueError: ``max_norm`` <= 0 or ``norm_type`` <= 0.
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be positive, got {max_norm}")
    arrays = [_arrays(p) for p in _with_grads(params)]
    if arrays and type(arrays[0]) is not np.ndarray:
        return _clip_on_device(arrays, max_norm, norm_type)
    total = _norm(arrays, norm_type)
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)  # the epsilon keeps an all-zero gradient finite (PyTorch's too)
    if coef < 1.0:
        for a in arrays:
            np.multiply(a, coef, out=a)  # a Python float keeps float32 gradients float32
    return total


def grad_norm(params, norm_type: float = 2.0) -> float:
    """The global p-norm of all gradients (dense and sparse), without changing them
    (on a device: a 0-d array there, see ``_device_norm``)."""
    arrays = [_arrays(p) for p in _with_grads(params)]
    if arrays and type(arrays[0]) is not np.ndarray:
        return _device_norm(arrays, norm_type)
    return _norm(arrays, norm_type)


def _device_norm(arrays, norm_type: float):
    """The global norm of gradients on a device, as a 0-d float64 array there: reading it is
    the caller's choice (a host round trip), so clipping itself never waits for the device."""
    if not norm_type > 0:
        raise ValueError(f"gradient norm: norm_type must be positive, got {norm_type}")
    xp = get_array_module(arrays[0])
    if math.isinf(norm_type):
        return xp.max(xp.stack([xp.max(xp.abs(a)).astype(xp.float64) for a in arrays if a.size] or [xp.zeros(())]))
    terms = [xp.sum(xp.abs(a.astype(xp.float64)) ** norm_type) for a in arrays]
    return xp.sum(xp.stack(terms)) ** (1.0 / norm_type)


def _clip_on_device(arrays, max_norm: float, norm_type: float):
    """``clip_grad_norm_`` on a device: the scale is computed and applied there (1 when the norm
    is within bounds or not finite), with no host round trip; returns the 0-d norm."""
    xp = get_array_module(arrays[0])
    total = _device_norm(arrays, norm_type)
    coef = xp.where(xp.isfinite(total), xp.minimum(max_norm / (total + 1e-6), 1.0), 1.0)
    for a in arrays:
        xp.multiply(a, coef.astype(a.dtype), out=a)
    return total


def _norm(arrays: list[np.ndarray], norm_type: float) -> float:
    if not norm_type > 0:
        raise ValueError(f"gradient norm: norm_type must be positive, got {norm_type}")
    if not arrays:
        return 0.0
    if math.isinf(norm_type):
        total = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    elif norm_type == 2.0:
        # vdot on the flat view: one BLAS call per gradient, no |g|^2 temporary
        total = math.sqrt(sum(float(np.vdot(a.ravel(), a.ravel())) for a in arrays))
        if math.isinf(total) and all(np.isfinite(a).all() for a in arrays):
            # a float32 dot product overflows past ~1.8e19: finite gradients get their finite norm
            # from the arrays scaled by the largest magnitude
            scale = max(float(np.max(np.abs(a))) for a in arrays if a.size)
            total = scale * math.sqrt(sum(float(np.vdot((a / scale).ravel(), (a / scale).ravel())) for a in arrays))
    else:
        total = sum(float(np.sum(np.abs(a, dtype=np.float64) ** norm_type)) for a in arrays) ** (1.0 / norm_type)
    return total


def clip_grad_value_(params, clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]`` in place.

    Row-sparse gradients are coalesced first, so the clamp applies to each row's summed
    gradient (as it would to the dense one).

    Raises:
        ValueError: ``clip_value`` <= 0.
    """
    if not clip_value > 0:
        raise ValueError(f"clip_grad_value_: clip_value must be positive, got {clip_value}")
    c = float(clip_value)
    for p in _with_grads(params):
        a = _arrays(p)
        get_array_module(a).clip(a, -c, c, out=a)
