"""The emulated device's backend: NumPy's implementations behind the emulated array's wall.

What a GPU backend does with its own kernels (scatter-add, window views) runs here as the
NumPy fallback on the unwrapped arrays, so the results match the CPU exactly.
"""
from __future__ import annotations

import numpy

from npdl.core.backends import numpy_backend
from npdl.core.backends.emulated import EmulatedArray, HostDeviceError, xp  # noqa: F401


def _raw(a, what: str):
    if type(a) is not EmulatedArray:
        raise HostDeviceError(f"{what}: expected an array on the emulated device, got {type(a).__name__}")
    return a._a


def synchronize(index: int = 0) -> None:
    """The emulated device computes eagerly: nothing to wait for."""


def to_host(a):
    return _raw(a, "to_host").copy()


def from_host(a, index: int = 0):
    return EmulatedArray(numpy.array(a, copy=True))


def coalesce_rows(rows, values):
    u, s = numpy_backend.coalesce_rows(_raw(rows, "coalesce_rows"), _raw(values, "coalesce_rows"))
    return EmulatedArray(u), (values if s is values._a else EmulatedArray(s))


def add_at(out, index, values) -> None:
    numpy.add.at(_raw(out, "add_at"), _raw_index(index), values._a if type(values) is EmulatedArray else values)


def _raw_index(index):
    if type(index) is tuple:
        return tuple(_raw_index(i) for i in index)
    if type(index) is numpy.ndarray:
        raise HostDeviceError("add_at: a host index array on the emulated device")
    return index._a if type(index) is EmulatedArray else index


def vecdot(a, b, out=None):
    r = numpy.vecdot(_raw(a, "vecdot"), _raw(b, "vecdot"), out=None if out is None else _raw(out, "vecdot"))
    return out if out is not None else EmulatedArray(r)


def sliding_window_view(x, window_shape, axis=None, **kwargs):
    return EmulatedArray(numpy_backend.sliding_window_view(_raw(x, "sliding_window_view"), window_shape,
                                                           axis=axis, **kwargs))


def as_strided(x, shape=None, strides=None, **kwargs):
    return EmulatedArray(numpy_backend.as_strided(_raw(x, "as_strided"), shape=shape, strides=strides, **kwargs))
