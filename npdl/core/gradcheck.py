"""Numerical gradient check: float64 central differences against ``backward()``.

Public so users can check their own ops and layers::

    x = npdl.randn(3, 4, dtype=np.float64, requires_grad=True)
    npdl.gradcheck(lambda x: (x.tanh() * x).sum(axis=1), x)

The function's output is projected on a fixed random direction v, so one backward pass
gives the analytic v^T J for every input and each input entry costs two forward passes.
"""
from __future__ import annotations

import numpy as np

from npdl.core.backend import get_array_module, to_device, to_host

from npdl.core.grad_mode import no_grad
from npdl.core.sparse import RowSparseGrad
from npdl.core.tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (the message names input and index)."""


def _outputs(out) -> list[Tensor]:
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: the function must return Tensors, got {type(o).__name__}")
    return outs


def _project(outs: list[Tensor], vs: list[np.ndarray]) -> float:
    return float(np.sum([np.sum(to_host(o.data).astype(np.float64) * v) for o, v in zip(outs, vs)]))


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s gradients with respect to every input tensor that requires grad.

    Args:
        fn: called as ``fn(*inputs)``; returns a Tensor or a tuple of Tensors.
        inputs: the arguments; those that are float64 Tensors with ``requires_grad`` are checked.
            Tensors the function closes over (e.g. a layer's parameters) may be passed too.
        eps: finite-difference step. atol, rtol: tolerance |a - n| <= atol + rtol * |n|.

    Returns True. Raises ``GradcheckError`` naming the input, the index, and both values;
    ``TypeError`` when a checked input is not float64.
    """
    checked = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True")
    for i, t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; pass float64 tensors "
                            "(central differences in float32 are too coarse to be meaningful)")
    for _, t in checked:
        t.grad = None
    outs = _outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, v in zip(outs, vs):
        if not o.requires_grad:
            continue
        term = (o * Tensor(to_device(v.astype(o.dtype), o.device))).sum()
        total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    total.backward()
    for i, t in checked:
        g = t.grad
        analytic = np.zeros(t.shape) if g is None else (g.to_dense() if isinstance(g, RowSparseGrad) else g)
        analytic = np.asarray(to_host(analytic), dtype=np.float64)   # checked on the host
        flat = t.data.reshape(-1)  # a view: perturbing it perturbs t
        if not get_array_module(flat).shares_memory(flat, t.data):
            raise ValueError(f"gradcheck: input {i} is not contiguous; pass a contiguous tensor")
        with no_grad():
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                f_plus = _project(_outputs(fn(*inputs)), vs)
                flat[j] = orig - eps
                f_minus = _project(_outputs(fn(*inputs)), vs)
                flat[j] = orig
                numeric = (f_plus - f_minus) / (2 * eps)
                got = analytic.reshape(-1)[j]
                if not abs(got - numeric) <= atol + rtol * abs(numeric):
                    index = np.unravel_index(j, t.shape) if t.shape else ()
                    raise GradcheckError(
                        f"gradcheck failed for input {i} (shape {t.shape}) at index {tuple(int(k) for k in index)}: "
                        f"numerical {numeric:.8g}, analytical {got:.8g} (|diff| {abs(got - numeric):.3g})")
    return True
