"""The CUDA backend: CuPy, imported only when a ``cuda`` device is asked for.

Scatter-adds use ``cupyx.scatter_add`` (atomic adds on the GPU) where NumPy needs sort +
``reduceat`` to be fast; the rest of npdl's array code runs unchanged through ``xp = cupy``.
Untested in npdl's CI (no GPU there): the emulated device checks the same seam on a CPU.
"""
from __future__ import annotations

cupy = cupyx = xp = None   # set by load(): importing CuPy takes a second, so only a cuda device pays it


def load():
    """Import CuPy (``backend.device`` has checked that it is installed and sees a GPU)."""
    global cupy, cupyx, xp
    if cupy is None:
        import cupy as _cupy
        import cupyx as _cupyx
        cupy, cupyx, xp = _cupy, _cupyx, _cupy
    return xp


def sliding_window_view(x, window_shape, axis=None, **kwargs):
    return cupy.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis, **kwargs)


def as_strided(x, shape=None, strides=None, **kwargs):
    return cupy.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, **kwargs)


def synchronize(index: int = 0) -> None:
    """Wait until the GPU has finished the work queued so far (for timing)."""
    cupy.cuda.Device(index).synchronize()


def to_host(a):
    return a.get()


def from_host(a, index: int = 0):
    with cupy.cuda.Device(index):
        return cupy.asarray(a)


def coalesce_rows(rows, values):
    """(unique_rows (U,), summed (U, *D)), sorted by row: ``unique`` + one atomic scatter-add."""
    if rows.size == 0:
        return rows.astype(cupy.int64), values
    unique, inverse = cupy.unique(rows, return_inverse=True)
    summed = cupy.zeros((unique.size,) + values.shape[1:], dtype=values.dtype)
    cupyx.scatter_add(summed, inverse.ravel(), values)
    return unique, summed


def vecdot(a, b, out=None):
    """Row-wise dot products over the last axis (NumPy's ``vecdot``, which CuPy lacks)."""
    return cupy.einsum("...i,...i->...", a, b, out=out) if out is None else cupy.sum(a * b, axis=-1, out=out)


_ADAM = None


def adam_step(w, g, m, v, b1: float, b2: float, step_size: float, eps_hat: float) -> None:
    """Adam's update in one fused kernel (NumPy needs ~8 passes over memory; so would CuPy op by op):
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= step_size * m / (sqrt(v) + eps_hat),
    with step_size = lr c2 / (1 - b1^t) and eps_hat = eps c2, c2 = sqrt(1 - b2^t) (as ``_AdamBase``)."""
    global _ADAM
    if _ADAM is None:
        _ADAM = cupy.ElementwiseKernel(
            "T g, T b1, T b2, T step_size, T eps_hat", "T w, T m, T v",
            "m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g; w -= step_size * m / (sqrt(v) + eps_hat);",
            "npdl_adam_step")
    t = w.dtype.type
    _ADAM(g, t(b1), t(b2), t(step_size), t(eps_hat), w, m, v)


def add_at(out, index, values) -> None:
    """out[index] += values with repeated indices accumulating (atomic adds)."""
    cupyx.scatter_add(out, index, values)
