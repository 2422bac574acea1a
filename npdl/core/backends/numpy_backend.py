"""The CPU backend: NumPy itself (what npdl has always run)."""
from __future__ import annotations

import numpy
from numpy.lib import stride_tricks
from numpy.lib.stride_tricks import sliding_window_view  # noqa: F401  (the backend's name)

xp = numpy


def synchronize(index: int = 0) -> None:
    """Wait for queued device work (none on the CPU)."""


def to_host(a):
    return a


def from_host(a, index: int = 0):
    return a


def as_strided(x, shape=None, strides=None, writeable=True):
    """A view of ``x``'s memory with ``shape`` and ``strides`` (bytes), as NumPy's ``as_strided``.

    For a C-contiguous ``x`` it is built by the ``ndarray`` constructor, which checks that the
    view stays inside ``x``'s buffer: 0.4 us against NumPy's 3.6 us (its wrapper builds a
    subclass-preserving dummy array first). word2vec takes several such views per batch part.
    """
    if shape is None or strides is None or not x.flags.c_contiguous:
        return stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=writeable)
    view = numpy.ndarray(shape, x.dtype, x, 0, strides)
    if not writeable:
        view.flags.writeable = False
    return view


def coalesce_rows(rows, values):
    """Sum ``values`` rows that share an index: (unique_rows (U,), summed (U, *D)), sorted by row.

    rows: (N,) int; values: (N, *D). Sort + ``np.add.reduceat`` is 1.3-3x faster than
    ``np.add.at`` here (measured with numpy 2.4).
    """
    if rows.size == 0:
        return rows.astype(numpy.int64), values
    order = numpy.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = numpy.flatnonzero(numpy.concatenate(([True], sorted_rows[1:] != sorted_rows[:-1])))
    return sorted_rows[starts], numpy.add.reduceat(values[order], starts, axis=0)


def vecdot(a, b, out=None):
    """Row-wise dot products over the last axis (``np.vecdot``; CuPy has none)."""
    return numpy.vecdot(a, b, out=out)


def add_at(out, index, values) -> None:
    """out[index] += values with repeated indices accumulating (unbuffered)."""
    numpy.add.at(out, index, values)
