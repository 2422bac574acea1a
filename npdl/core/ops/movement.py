"""Shape and movement primitives: reshape, transpose, broadcast, indexing, concat, split, pad, take.

Each ``Function`` is followed by its public functions (``Reshape``: ``reshape``, ``squeeze``,
``flatten``, ...), which are also the Tensor methods. ``reshape``, ``transpose``, ``broadcast_to``
and ``take`` also accept array-likes, as ``Tensor(x)`` would (``npdl.reshape(array, 2, 3)``); the
check is inline, not a helper call, because the methods are hot. Indexing backwards scatter-*add*,
so an index that repeats receives every contribution.
"""
from __future__ import annotations

import math

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import extras, get_array_module, is_device_array
from npdl.core.sparse import RowSparseGrad, scatter_add_rows
from npdl.core.tensor import Tensor, _index_arg, _raw, _shape_arg


class Reshape(Function):
    """z = x.reshape(shape) (a view when NumPy can make one)"""

    @staticmethod
    def forward(ctx, x, shape=()):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


def reshape(x, *shape):
    """``x`` with a new shape (``x.reshape(2, 3)`` or ``x.reshape((2, 3))``; no node when unchanged)."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    shape = _shape_arg(shape)
    if shape == x.data.shape:
        return x
    return Reshape.apply(x, shape=shape)


def squeeze(x, axis=None):
    """Drop size-1 axes (all of them, or ``axis``: an int or a tuple, each of size 1)."""
    if axis is None:
        shape = tuple(s for s in x.data.shape if s != 1)
    else:
        axes = {a % x.data.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
        for a in axes:
            if x.data.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} has size {x.data.shape[a]}, not 1")
        shape = tuple(s for i, s in enumerate(x.data.shape) if i not in axes)
    return reshape(x, shape)


def unsqueeze(x, axis: int):
    """Insert a size-1 axis at ``axis``."""
    ndim = x.data.ndim + 1
    axis = axis % ndim
    shape = x.data.shape[:axis] + (1,) + x.data.shape[axis:]
    return reshape(x, shape)


def flatten(x, start_axis: int = 0, end_axis: int = -1):
    """Merge axes ``start_axis..end_axis`` into one."""
    shape = x.data.shape
    if not shape:
        return reshape(x, 1)
    s, e = start_axis % len(shape), end_axis % len(shape)
    if s >= e:  # nothing to merge (e.g. a batch of vectors): no graph node
        return x
    new = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    return reshape(x, new)


class Transpose(Function):
    """z = x.transpose(axes)"""

    @staticmethod
    def forward(ctx, x, axes=()):
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


def transpose(x, *axes):
    """Permute axes (all reversed when none given), like ``ndarray.transpose``."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    axes = _shape_arg(axes) if axes else tuple(range(x.data.ndim - 1, -1, -1))
    return Transpose.apply(x, axes=axes)


def permute(x, *axes):
    return transpose(x, *axes)


def swapaxes(x, axis1: int, axis2: int):
    axes = list(range(x.data.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose.apply(x, axes=tuple(axes))


class BroadcastTo(Function):
    """z = broadcast_to(x, shape); the engine's un-broadcast sums the gradient back."""

    @staticmethod
    def forward(ctx, x, shape=()):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        return xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g


def broadcast_to(x, *shape):
    """``x`` broadcast to ``shape`` (``broadcast_to(x, (2, 3))`` or ``x.broadcast_to(2, 3)``)."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    shape = _shape_arg(shape)
    if shape == x.data.shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def expand(x, *shape):
    """Broadcast to ``shape``; ``-1`` keeps a dimension (PyTorch's ``expand``)."""
    shape = _shape_arg(shape)
    lead = len(shape) - x.data.ndim
    shape = tuple(x.data.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(x, shape)


def _is_basic(index) -> bool:
    """True when ``index`` is only ints, slices, None and Ellipsis (NumPy basic indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _is_array(index) -> bool:
    return isinstance(index, np.ndarray) or is_device_array(index)


def _is_bool_mask(index) -> bool:
    return _is_array(index) and index.dtype == bool


def _flat_rows(index: np.ndarray, n: int) -> np.ndarray:
    """Integer indices into an axis of length n, flattened, negatives made positive."""
    xp = np if type(index) is np.ndarray else get_array_module(index)
    rows = index.reshape(-1)
    if rows.size and rows.min() < 0:
        rows = xp.where(rows < 0, rows + n, rows)
    return rows


class GetItem(Function):
    """z = x[index] for basic slices, integer arrays and boolean masks."""

    @staticmethod
    def forward(ctx, x, index=None):
        ctx.index = index
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return x[index]

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        index = ctx.index
        if _is_array(index) and index.dtype.kind in "iu":
            # row gather (the common case): sort + reduceat instead of np.add.at
            rows = _flat_rows(index, ctx.shape[0])
            return scatter_add_rows(rows, g.reshape((rows.size,) + ctx.shape[1:]), ctx.shape[0])
        out = xp.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic(index) or _is_bool_mask(index):
            out[index] = g  # no position can repeat
        else:
            extras(xp).add_at(out, index, g)
        return out


def getitem(x, index):
    """``x[index]`` (``Tensor.__getitem__``); tensors inside ``index`` count as their arrays."""
    return GetItem.apply(x, index=_index_arg(index, x.data if isinstance(x, Tensor) else None))


class Take(Function):
    """z = take(x, indices, axis): gather whole slices along ``axis`` (an embedding lookup at axis 0).

    With ``sparse=True`` and axis 0 the gradient is a ``RowSparseGrad`` holding only the
    gathered rows, never a dense (V, D) array. Rows gathered for ``padding_idx`` pass no
    gradient (the padding vector stays as it is).
    """

    @staticmethod
    def forward(ctx, x, indices, axis=0, sparse=False, padding_idx=None):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"take/embedding: indices must be integers, got {indices.dtype}")
        n = x.shape[axis]
        if indices.size and (indices.max() >= n or indices.min() < -n):
            bad = indices[(indices >= n) | (indices < -n)].reshape(-1)[0]
            raise IndexError(f"take/embedding: index {bad} is out of range for a table of {n} rows")
        ctx.indices, ctx.axis, ctx.sparse, ctx.padding_idx = indices, axis % x.ndim, sparse, padding_idx
        ctx.shape = x.shape
        return xp.take(x, indices, axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        idx, axis, shape = ctx.indices, ctx.axis, ctx.shape
        rows = _flat_rows(idx, shape[axis])
        if axis == 0:
            values = g.reshape((rows.size,) + shape[1:])
            if ctx.padding_idx is not None:
                keep = rows != ctx.padding_idx
                rows, values = rows[keep], values[keep]
            if ctx.sparse:
                return RowSparseGrad(rows.astype(np.int64, copy=False), values, shape), None
            return scatter_add_rows(rows, values, shape[0]), None
        # move the gathered axis to the front, scatter rows, move it back
        moved = xp.moveaxis(g, tuple(range(axis, axis + idx.ndim)), tuple(range(idx.ndim)))
        front = (shape[axis],) + shape[:axis] + shape[axis + 1:]
        dense = scatter_add_rows(rows, moved.reshape((rows.size,) + front[1:]), shape[axis])
        return xp.moveaxis(dense, 0, axis), None


def take(x, indices, axis: int = 0):
    """Gather entries along ``axis`` (``np.take``); repeated indices accumulate in backward."""
    xp = np if type(x) is np.ndarray else get_array_module(x)
    if not isinstance(x, Tensor):
        x = Tensor(x)
    return Take.apply(x, xp.asarray(_raw(indices)), axis=axis)


def embedding(weight, indices, sparse: bool = False, padding_idx: int | None = None):
    """Rows of ``weight`` (V, D) at integer ``indices`` (...) -> (..., D).

    ``sparse=True`` makes the weight's gradient a ``RowSparseGrad`` of the touched rows;
    rows looked up for ``padding_idx`` receive no gradient.
    """
    xp = np if type(weight) is np.ndarray else get_array_module(weight)
    idx = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
    return Take.apply(weight, idx, axis=0, sparse=sparse, padding_idx=padding_idx)


class Concat(Function):
    """z = concatenate(xs, axis)"""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        xp = get_array_module(*xs)
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()   # host ints, for any device
        return xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        return tuple(xp.split(g, ctx.bounds, axis=ctx.axis))


def concat(tensors, axis: int = 0):
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    return Concat.apply(*tensors, axis=axis)


class Stack(Function):
    """z = stack(xs, axis)"""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        xp = get_array_module(*xs)
        out = xp.stack(xs, axis=axis)
        ctx.axis = axis % out.ndim
        return out

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        return tuple(g[lead + (i,)] for i in range(g.shape[ctx.axis]))


def stack(tensors, axis: int = 0):
    """Join same-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    return Stack.apply(*tensors, axis=axis)


class Split(Function):
    """zs = split(x, sections, axis): ``sections`` equal parts (int) or cut at indices (list)."""

    multi_output = True

    @staticmethod
    def forward(ctx, x, sections=2, axis=0):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        if isinstance(sections, int) and x.shape[axis] % sections:
            raise ValueError(f"split: axis {axis} of size {x.shape[axis]} does not divide into {sections} equal parts")
        ctx.axis = axis
        return tuple(xp.split(x, sections, axis=axis))

    @staticmethod
    def backward(ctx, gs):
        xp = get_array_module(*gs)
        return xp.concatenate(gs, axis=ctx.axis)


def split(x, sections, axis: int = 0):
    """Split along ``axis`` into ``sections`` equal parts (int) or at the given indices (list)."""
    return Split.apply(x, sections=sections, axis=axis)


class Pad(Function):
    """z = np.pad(x, pad_width, constant value); pad_width as in NumPy (int or (before, after) per axis)."""

    @staticmethod
    def forward(ctx, x, pad_width=0, value=0.0):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
        if (widths < 0).any():
            raise ValueError(f"pad: widths must be >= 0, got {pad_width}")
        ctx.slices = tuple(slice(int(b), int(b) + n) for (b, _), n in zip(widths, x.shape))
        return xp.pad(x, widths.tolist(), mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices]


def pad(x, pad_width, value: float = 0.0):
    """Constant padding, NumPy's ``pad_width`` convention."""
    return Pad.apply(x, pad_width=pad_width, value=value)
