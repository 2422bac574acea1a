"""Creating tensors: ``tensor``, ``zeros``, ``ones``, ``full``, ``*_like``, ``randn``, ``rand``, ``arange``.

Floating results are float32 unless ``dtype`` says otherwise; random ones draw from an explicit
``np.random.Generator`` (npdl's seeded default generator when ``rng`` is None).
"""
from __future__ import annotations

import numpy as np

from npdl.core import backend
from npdl.core import random as _random
from npdl.core.tensor import DEFAULT_FLOAT, Tensor, _raw, _shape_arg, as_array


def _leaf(arr: np.ndarray, requires_grad: bool) -> Tensor:
    """A new leaf around ``arr`` exactly as given (dtype kept)."""
    return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new tensor holding a copy of ``data`` (floats become float32 unless ``dtype``)."""
    arr = as_array(data, dtype)
    source = data.data if isinstance(data, Tensor) else data
    if arr is source:
        arr = arr.copy()
    return _leaf(arr, requires_grad)


def _dt(dtype):
    return DEFAULT_FLOAT if dtype is None else dtype


def _xp():
    """The array module of the default device: new tensors are allocated there directly."""
    d = backend._STATE["default"]
    return np if d is backend.CPU else d.xp


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(_xp().zeros(_shape_arg(shape), _dt(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(_xp().ones(_shape_arg(shape), _dt(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(_xp().full(_shape_arg((shape,)), fill_value, _dt(dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    a = _raw(t)
    return _leaf(backend.get_array_module(a).zeros_like(a, dtype=dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    a = _raw(t)
    return _leaf(backend.get_array_module(a).ones_like(a, dtype=dtype), requires_grad)


def randn(*shape, rng: np.random.Generator | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples drawn from ``rng`` (npdl's default generator when None)."""
    dtype = np.dtype(_dt(dtype))
    arr = _random.resolve(rng).standard_normal(_shape_arg(shape), dtype=dtype if dtype.itemsize >= 4 else np.float32)
    return _leaf(arr.astype(dtype, copy=False), requires_grad)


def rand(*shape, rng: np.random.Generator | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) drawn from ``rng`` (npdl's default generator when None)."""
    dtype = np.dtype(_dt(dtype))
    arr = _random.resolve(rng).random(_shape_arg(shape), dtype=dtype if dtype.itemsize >= 4 else np.float32)
    return _leaf(arr.astype(dtype, copy=False), requires_grad)


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    """Like ``np.arange``; integer arguments give an int64 tensor, floats give float32."""
    arr = np.arange(start, stop, step) if stop is not None else np.arange(start, step=step)
    if dtype is not None:
        return _leaf(arr.astype(dtype), False)
    return Tensor(arr)
