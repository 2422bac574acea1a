"""Shape and movement primitives: reshape, transpose, broadcast, indexing, concat, split, pad, take.

Indexing backwards scatter-*add*, so an index that repeats receives every contribution.
"""
from __future__ import annotations

import numpy as np

from npdl.core.autograd import Function
from npdl.core.sparse import RowSparseGrad, scatter_add_rows


class Reshape(Function):
    """z = x.reshape(shape) (a view when NumPy can make one)"""

    @staticmethod
    def forward(ctx, x, shape=()):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Transpose(Function):
    """z = x.transpose(axes)"""

    @staticmethod
    def forward(ctx, x, axes=()):
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


class BroadcastTo(Function):
    """z = broadcast_to(x, shape); the engine's un-broadcast sums the gradient back."""

    @staticmethod
    def forward(ctx, x, shape=()):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g


def _is_basic(index) -> bool:
    """True when ``index`` is only ints, slices, None and Ellipsis (NumPy basic indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _is_bool_mask(index) -> bool:
    return isinstance(index, np.ndarray) and index.dtype == bool


def _flat_rows(index: np.ndarray, n: int) -> np.ndarray:
    """Integer indices into an axis of length n, flattened, negatives made positive."""
    rows = index.reshape(-1)
    if rows.size and rows.min() < 0:
        rows = np.where(rows < 0, rows + n, rows)
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
        index = ctx.index
        if isinstance(index, np.ndarray) and index.dtype.kind in "iu":
            # row gather (the common case): sort + reduceat instead of np.add.at
            rows = _flat_rows(index, ctx.shape[0])
            return scatter_add_rows(rows, g.reshape((rows.size,) + ctx.shape[1:]), ctx.shape[0])
        out = np.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic(index) or _is_bool_mask(index):
            out[index] = g  # no position can repeat
        else:
            np.add.at(out, index, g)
        return out


class Take(Function):
    """z = take(x, indices, axis): gather whole slices along ``axis`` (an embedding lookup at axis 0).

    With ``sparse=True`` and axis 0 the gradient is a ``RowSparseGrad`` holding only the
    gathered rows, never a dense (V, D) array. Rows gathered for ``padding_idx`` pass no
    gradient (the padding vector stays as it is).
    """

    @staticmethod
    def forward(ctx, x, indices, axis=0, sparse=False, padding_idx=None):
        if indices.dtype.kind not in "iu":
            raise TypeError(f"take/embedding: indices must be integers, got {indices.dtype}")
        n = x.shape[axis]
        if indices.size and (indices.max() >= n or indices.min() < -n):
            bad = indices[(indices >= n) | (indices < -n)].reshape(-1)[0]
            raise IndexError(f"take/embedding: index {bad} is out of range for a table of {n} rows")
        ctx.indices, ctx.axis, ctx.sparse, ctx.padding_idx = indices, axis % x.ndim, sparse, padding_idx
        ctx.shape = x.shape
        return np.take(x, indices, axis=axis)

    @staticmethod
    def backward(ctx, g):
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
        moved = np.moveaxis(g, tuple(range(axis, axis + idx.ndim)), tuple(range(idx.ndim)))
        front = (shape[axis],) + shape[:axis] + shape[axis + 1:]
        dense = scatter_add_rows(rows, moved.reshape((rows.size,) + front[1:]), shape[axis])
        return np.moveaxis(dense, 0, axis), None


class Concat(Function):
    """z = concatenate(xs, axis)"""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    """z = stack(xs, axis)"""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        out = np.stack(xs, axis=axis)
        ctx.axis = axis % out.ndim
        return out

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        return tuple(g[lead + (i,)] for i in range(g.shape[ctx.axis]))


class Split(Function):
    """zs = split(x, sections, axis): ``sections`` equal parts (int) or cut at indices (list)."""

    multi_output = True

    @staticmethod
    def forward(ctx, x, sections=2, axis=0):
        if isinstance(sections, int) and x.shape[axis] % sections:
            raise ValueError(f"split: axis {axis} of size {x.shape[axis]} does not divide into {sections} equal parts")
        ctx.axis = axis
        return tuple(np.split(x, sections, axis=axis))

    @staticmethod
    def backward(ctx, gs):
        return np.concatenate(gs, axis=ctx.axis)


class Pad(Function):
    """z = np.pad(x, pad_width, constant value); pad_width as in NumPy (int or (before, after) per axis)."""

    @staticmethod
    def forward(ctx, x, pad_width=0, value=0.0):
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
        if (widths < 0).any():
            raise ValueError(f"pad: widths must be >= 0, got {pad_width}")
        ctx.slices = tuple(slice(int(b), int(b) + n) for (b, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices]
