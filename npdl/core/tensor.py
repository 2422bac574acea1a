"""Tensor: an ndarray plus what reverse-mode differentiation needs.

``Tensor.data`` is a plain ``np.ndarray``; ``Tensor.grad`` is an ndarray of the same shape
and dtype (or a ``RowSparseGrad`` for sparse embeddings, or None). Every method here is a
thin call into a primitive ``Function`` in ``npdl.core.ops``; the engine lives in
``autograd.py``.

dtype rules: floating data defaults to float32; integer data stays integer and can never
require grad; Python scalars and float64 constants combined with a float32 tensor are cast
to float32 (the engine does this), so a float32 graph stays float32.
"""
from __future__ import annotations

import math

import numpy as np

from npdl.core.grad_mode import GRAD

DEFAULT_FLOAT = np.float32


def as_array(data, dtype=None) -> np.ndarray:
    """``data`` as an ndarray: floats become float32 unless ``dtype`` says otherwise."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if arr.dtype.kind == "f" and arr.dtype != DEFAULT_FLOAT:
        return arr.astype(DEFAULT_FLOAT)
    if arr.dtype.kind in "OUSc":
        raise TypeError(f"npdl tensors hold numbers, not {arr.dtype} (got {type(data).__name__})")
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
    def T(self) -> "Tensor":
        """All axes reversed (like ``ndarray.T``)."""
        return self.transpose()

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def item(self):
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

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

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate gradients of this tensor into every leaf that requires grad.

        Raises:
            RuntimeError: non-scalar tensor without ``grad``, no graph, or a freed graph.
        """
        _autograd.backward(self, grad, retain_graph)

    def zero_grad(self) -> None:
        self.grad = None

    def astype(self, dtype) -> "Tensor":
        """Differentiable cast (float32 <-> float64; to integer types cuts the graph)."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind != "f":
            return wrap(self.data.astype(dtype))
        return _ew.Cast.apply(self, dtype=dtype)

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
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

    # ---- arithmetic -------------------------------------------------------------------
    def __add__(self, other):
        return _ew.Add.apply(self, other)

    def __radd__(self, other):
        return _ew.Add.apply(other, self)

    def __sub__(self, other):
        return _ew.Sub.apply(self, other)

    def __rsub__(self, other):
        return _ew.Sub.apply(other, self)

    def __mul__(self, other):
        return _ew.Mul.apply(self, other)

    def __rmul__(self, other):
        return _ew.Mul.apply(other, self)

    def __truediv__(self, other):
        return _ew.Div.apply(self, other)

    def __rtruediv__(self, other):
        return _ew.Div.apply(other, self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return _ew.Pow.apply(self, exponent)
        return _ew.PowScalar.apply(self, exponent=float(exponent))

    def __rpow__(self, base):
        return _ew.Pow.apply(base, self)

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __matmul__(self, other):
        return _mm.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return _mm.MatMul.apply(other, self)

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

    # ---- elementwise math -------------------------------------------------------------
    def exp(self):
        return _ew.Exp.apply(self)

    def log(self):
        return _ew.Log.apply(self)

    def sqrt(self):
        return _ew.Sqrt.apply(self)

    def abs(self):
        return _ew.Abs.apply(self)

    def tanh(self):
        return _ew.Tanh.apply(self)

    def sigmoid(self):
        return _ew.Sigmoid.apply(self)

    def relu(self):
        return _ew.Relu.apply(self)

    def clip(self, min=None, max=None):
        return _ew.Clip.apply(self, lo=min, hi=max)

    def maximum(self, other):
        return _ew.Maximum.apply(self, other)

    def minimum(self, other):
        return _ew.Minimum.apply(self, other)

    def masked_fill(self, mask, value: float):
        """Replace entries where ``mask`` is True with ``value`` (mask broadcasts)."""
        return _ew.MaskedFill.apply(self, np.asarray(_raw(mask), dtype=bool), value=value)

    # ---- reductions -------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        return _red.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return _red.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        """Maximum values (not indices; see ``argmax``)."""
        return _red.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return _red.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0):
        """Variance; ``ddof=0`` like NumPy (PyTorch's default is ``ddof=1``)."""
        return _red.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def logsumexp(self, axis=None, keepdims: bool = False):
        return _red.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims: bool = False):
        return wrap(np.argmax(self.data, axis=axis, keepdims=keepdims))

    def argmin(self, axis=None, keepdims: bool = False):
        return wrap(np.argmin(self.data, axis=axis, keepdims=keepdims))

    def softmax(self, axis: int = -1):
        return _nn.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1):
        return _nn.LogSoftmax.apply(self, axis=axis)

    # ---- shape and movement -----------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        if shape == self.data.shape:
            return self
        return _mv.Reshape.apply(self, shape=shape)

    view = reshape

    def transpose(self, *axes):
        """Permute axes (all reversed when none given), like ``ndarray.transpose``."""
        axes = _shape_arg(axes) if axes else tuple(range(self.data.ndim - 1, -1, -1))
        return _mv.Transpose.apply(self, axes=axes)

    def permute(self, *axes):
        return self.transpose(*axes)

    def swapaxes(self, axis1: int, axis2: int):
        axes = list(range(self.data.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return _mv.Transpose.apply(self, axes=tuple(axes))

    def broadcast_to(self, *shape):
        shape = _shape_arg(shape)
        if shape == self.data.shape:
            return self
        return _mv.BroadcastTo.apply(self, shape=shape)

    def expand(self, *shape):
        """Broadcast to ``shape``; ``-1`` keeps a dimension (PyTorch's ``expand``)."""
        shape = _shape_arg(shape)
        lead = len(shape) - self.data.ndim
        shape = tuple(self.data.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
        return self.broadcast_to(shape)

    def squeeze(self, axis=None):
        if axis is None:
            shape = tuple(s for s in self.data.shape if s != 1)
        else:
            axes = {a % self.data.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
            for a in axes:
                if self.data.shape[a] != 1:
                    raise ValueError(f"squeeze: axis {a} has size {self.data.shape[a]}, not 1")
            shape = tuple(s for i, s in enumerate(self.data.shape) if i not in axes)
        return self.reshape(shape)

    def unsqueeze(self, axis: int):
        ndim = self.data.ndim + 1
        axis = axis % ndim
        shape = self.data.shape[:axis] + (1,) + self.data.shape[axis:]
        return self.reshape(shape)

    def flatten(self, start_axis: int = 0, end_axis: int = -1):
        shape = self.data.shape
        if not shape:
            return self.reshape(1)
        s, e = start_axis % len(shape), end_axis % len(shape)
        if s >= e:  # nothing to merge (e.g. a batch of vectors): no graph node
            return self
        new = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
        return self.reshape(new)

    def __getitem__(self, index):
        return _mv.GetItem.apply(self, index=_index_arg(index))

    def __setitem__(self, index, value) -> None:
        if self.requires_grad and GRAD.enabled:
            raise RuntimeError("in-place assignment to a tensor that requires grad would corrupt its "
                               "gradient; use masked_fill/where, or assign under npdl.no_grad()")
        self.data[_index_arg(index)] = _raw(value)

    def take(self, indices, axis: int = 0):
        """Gather entries along ``axis`` (``np.take``); repeated indices accumulate in backward."""
        return _mv.Take.apply(self, np.asarray(_raw(indices)), axis=axis)

    def split(self, sections, axis: int = 0):
        """Split along ``axis`` into ``sections`` equal parts (int) or at the given indices (list)."""
        return _mv.Split.apply(self, sections=sections, axis=axis)

    def pad(self, pad_width, value: float = 0.0):
        return _mv.Pad.apply(self, pad_width=pad_width, value=value)


def _shape_arg(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _index_arg(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return _raw(index)


# Bottom imports: the ops need ``Tensor`` defined above (see npdl/core/__init__.py).
from npdl.core import autograd as _autograd  # noqa: E402
from npdl.core.ops import elementwise as _ew  # noqa: E402
from npdl.core.ops import matmul as _mm  # noqa: E402
from npdl.core.ops import movement as _mv  # noqa: E402
from npdl.core.ops import nn as _nn  # noqa: E402
from npdl.core.ops import reductions as _red  # noqa: E402
