"""Tensor: an ndarray plus what reverse-mode differentiation needs.

``Tensor.data`` is a plain ``np.ndarray`` (or a device array: CuPy's, the emulated device's; see
``backend.py``); ``Tensor.grad`` is an ndarray of the same shape
and dtype (or a ``RowSparseGrad`` for sparse embeddings, or None). This module holds the
tensor's state and what records no graph node (properties, comparisons, ``argmax``, ...); it
imports no other part of the engine. The ops that record a node (``x + y``, ``x.exp()``,
``x.sum()``, ``x.reshape()``, ``x.backward()``, ...) are the ops' public functions from
``npdl.core.ops``, bound onto ``Tensor`` as they are by ``methods.py``; the engine (``Function``,
``backward``) lives in ``autograd.py``, one layer up.

dtype rules: floating data defaults to float32; integer data stays integer and can never
require grad; Python scalars and float64 constants combined with a float32 tensor are cast
to float32 (the engine does this), so a float32 graph stays float32.
"""
from __future__ import annotations

import numpy as np

from npdl.core import backend
from npdl.core.grad_mode import GRAD

DEFAULT_FLOAT = np.float32


def as_array(data, dtype=None) -> np.ndarray:
    """``data`` as an ndarray: floats become float32 unless ``dtype`` says otherwise.

    Host data goes to the default device (``backend.get_default_device``, the cpu unless set);
    an array already on a device stays there.
    """
    if isinstance(data, Tensor):
        data = data.data
    if type(data) is not np.ndarray and backend.is_device_array(data):
        if dtype is not None:
            return data.astype(dtype, copy=False)
        if data.dtype.kind == "f" and data.dtype != DEFAULT_FLOAT:
            return data.astype(DEFAULT_FLOAT)
        return data
    if dtype is not None:
        arr = np.asarray(data, dtype=dtype)
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "f" and arr.dtype != DEFAULT_FLOAT:
            arr = arr.astype(DEFAULT_FLOAT)
        elif arr.dtype.kind in "OUSc":
            raise TypeError(f"npdl tensors hold numbers, not {arr.dtype} (got {type(data).__name__})")
    default = backend._STATE["default"]
    if default is not backend.CPU:
        return backend.to_device(arr, default)
    return arr


_new = object.__new__


def wrap(arr: np.ndarray, requires_grad: bool = False, ctx=None, idx=None) -> "Tensor":
    """Internal fast constructor: no conversion, no checks."""
    t = _new(Tensor)
    t.data = arr
    t.grad = None
    t.requires_grad = requires_grad
    t._ctx = ctx
    t._idx = idx
    t.name = None
    return t


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    Args:
        data: array-like. Floating data becomes float32 unless ``dtype`` is given.
        requires_grad: track operations so ``backward()`` can fill ``.grad``
            (floating tensors only).
        dtype: numpy dtype to convert to.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_idx", "name", "__weakref__")
    # Make numpy defer to our reflected operators: ``np.float64(2) * t`` -> ``t.__rmul__``.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        arr = as_array(data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require grad; this one is {arr.dtype} "
                            "(integer tensors hold indices and targets)")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._idx = None
        self.name = None

    # ---- properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def device(self) -> backend.Device:
        """Where the data lives (``cpu``, ``cuda:N``, ``emulated``)."""
        return backend.device_of(self.data)

    def item(self):
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array: the underlying array itself on the cpu (shared, not
        copied), a host copy when the tensor lives on a device."""
        return backend.to_host(self.data)

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """Same data, cut from the graph."""
        return wrap(self.data)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require grad; this one is {self.data.dtype}")
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(backend.to_host(self.data), separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        if type(self.data) is not np.ndarray:
            extra += f", device='{self.device}'"
        return f"tensor({body}{extra})"

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    __hash__ = object.__hash__

    # comparisons give boolean tensors outside the graph
    def __lt__(self, other):
        return wrap(self.data < _raw(other))

    def __le__(self, other):
        return wrap(self.data <= _raw(other))

    def __gt__(self, other):
        return wrap(self.data > _raw(other))

    def __ge__(self, other):
        return wrap(self.data >= _raw(other))

    def __eq__(self, other):
        return wrap(self.data == _raw(other))

    def __ne__(self, other):
        return wrap(self.data != _raw(other))

    def __invert__(self):
        return wrap(~self.data)

    def __and__(self, other):
        return wrap(self.data & _raw(other))

    def __or__(self, other):
        return wrap(self.data | _raw(other))

    # ---- outside the graph ------------------------------------------------------------
    def argmax(self, axis=None, keepdims: bool = False):
        return wrap(_as_array_result(self.data.argmax(axis=axis, keepdims=keepdims)))

    def argmin(self, axis=None, keepdims: bool = False):
        return wrap(_as_array_result(self.data.argmin(axis=axis, keepdims=keepdims)))

    def __setitem__(self, index, value) -> None:
        if self.requires_grad and GRAD.enabled:
            raise RuntimeError("in-place assignment to a tensor that requires grad would corrupt its "
                               "gradient; use masked_fill/where, or assign under npdl.no_grad()")
        self.data[_index_arg(index, self.data)] = _raw(value)


def _as_array_result(r):
    """NumPy reductions over all axes give a scalar; keep the array type (as np.argmax did)."""
    return np.asarray(r) if isinstance(r, np.generic) else r


def _shape_arg(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _index_arg(index, data=None):
    """An index for ``data``: tensors unwrapped, lists as arrays; on a device, host index
    arrays move to ``data``'s device (an explicit transfer of the index, not of the data)."""
    if data is not None and type(data) is not np.ndarray:
        return _device_index(index, data)
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return _raw(index)


def _device_index(index, data):
    if isinstance(index, tuple):
        return tuple(_device_index(i, data) for i in index)
    index = _raw(index)
    if isinstance(index, (list, np.ndarray)):
        return backend.to_device(np.asarray(index), backend.device_of(data))
    return index
