"""The one place that picks the array module: NumPy, CuPy, or the emulated test device.

Ops take ``xp = get_array_module(x)`` from their inputs (Chainer's ``get_array_module``) and
call ``xp.exp`` where they called ``np.exp``; what the array API leaves out (scatter-add, window
views) comes from ``extras(xp)``, one small module per library in ``npdl/core/backends/``.
A ``Device`` names where arrays live (``cpu``, ``cuda``, ``cuda:N``, ``emulated``); the
*default device* is where new tensors go (``Tensor(data)``), as ``torch.set_default_device``:
``with npdl.device("cuda"):`` builds a model and its batches on the GPU.

``emulated`` is a CPU stand-in for a GPU (``backends/emulated.py``): it refuses to mix with
NumPy arrays, so ``NPDL_TEST_DEVICE=emulated python -m pytest`` proves the seam without a GPU.
This module imports no other part of npdl (CuPy only when a cuda device is asked for).
"""
from __future__ import annotations

import re

import numpy

from npdl.core.backends import cupy_backend, emulated_backend, numpy_backend

_ndarray = numpy.ndarray


class DeviceError(ValueError):
    """A device that cannot be used: an unknown name, or CUDA without CuPy or without a GPU."""


class Device:
    """Where arrays live: ``Device("cpu")``, ``Device("cuda", 1)``, ``Device("emulated")``.

    Usable as a context manager that makes it the default device for new tensors.
    """

    __slots__ = ("kind", "index", "_previous")

    def __init__(self, kind: str, index: int = 0):
        self.kind = kind
        self.index = index
        self._previous = []

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else self.kind

    def __repr__(self) -> str:
        return f"device('{self}')"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = parse_device(other)
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    @property
    def xp(self):
        """The array module of this device (numpy, cupy, or the emulated stand-in)."""
        return _backend(self).xp

    def __enter__(self) -> "Device":
        self._previous.append(_STATE["default"])
        set_default_device(self)
        _STATE["scopes"] += 1
        return self

    def __exit__(self, *exc) -> None:
        _STATE["scopes"] -= 1
        _STATE["default"] = self._previous.pop()


CPU = Device("cpu")
_STATE = {"default": CPU, "scopes": 0}
_SPEC = re.compile(r"^(cpu|emulated|cuda)(?::(\d+))?$")


def parse_device(spec) -> Device:
    """``'cpu' | 'cuda' | 'cuda:N' | 'emulated'`` (or a Device) -> Device, without checking it exists.

    Raises:
        DeviceError: an unknown device name.
    """
    if isinstance(spec, Device):
        return spec
    m = _SPEC.match(str(spec).strip().lower()) if isinstance(spec, str) else None
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise DeviceError(f"unknown device {spec!r}: expected cpu, cuda, cuda:N or emulated")
    kind = m.group(1)
    if kind == "cpu":
        return CPU
    return Device(kind, int(m.group(2) or 0))


def looks_like_device(text: str) -> bool:
    """True when ``text`` names a device (``module.to("cuda")``) rather than a dtype (``"float64"``)."""
    return _SPEC.match(text.strip().lower()) is not None


def device(spec="cpu") -> Device:
    """The device ``spec`` names, checked to be usable (``npdl.device``).

    ``with npdl.device("cuda"): ...`` makes it the default device for new tensors.

    Raises:
        DeviceError: unknown name; CUDA asked for but CuPy is not installed, or finds no GPU,
            or has fewer GPUs than the index.
    """
    d = parse_device(spec)
    if d.kind == "cuda":
        _check_cuda(d)
    return d


def _check_cuda(d: Device) -> None:
    try:
        import cupy
    except ImportError:
        raise DeviceError(f"device '{d}' needs CuPy, which is not installed: "
                          "pip install -e \".[cuda]\" (brings cupy-cuda12x)") from None
    try:
        available = bool(cupy.cuda.is_available())
        count = int(cupy.cuda.runtime.getDeviceCount()) if available else 0
    except Exception as exc:  # noqa: BLE001 - a broken driver/runtime is "no usable GPU"
        available, count, why = False, 0, f" ({type(exc).__name__}: {exc})"
    else:
        why = ""
    if not available:
        raise DeviceError(f"device '{d}': CuPy is installed but finds no usable CUDA GPU{why} "
                          "(cupy.cuda.is_available() is False); use --device cpu")
    if d.index >= count:
        raise DeviceError(f"device '{d}': there {'is' if count == 1 else 'are'} only {count} CUDA "
                          f"GPU{'' if count == 1 else 's'} (cuda:0..cuda:{count - 1})")


def synchronize(d=None) -> None:
    """Wait for the work queued on device ``d`` (default: the default device); a no-op on the CPU."""
    d = parse_device(d) if d is not None else _STATE["default"]
    _backend(d).synchronize(d.index)


def get_default_device() -> Device:
    """Where ``Tensor(data)`` puts new arrays (cpu unless set)."""
    return _STATE["default"]


def in_device_scope() -> bool:
    """True inside ``with npdl.device(...)``: the caller chose the device (a config's ``device:`` yields)."""
    return _STATE["scopes"] > 0


def choose_device(spec) -> Device:
    """Make ``spec`` the default device *as the caller's choice* (it wins over a config's
    ``device:``) until ``restore`` puts back a ``snapshot`` (what a CLI command's ``--device`` does)."""
    d = set_default_device(spec)
    _STATE["scopes"] += 1
    return d


def snapshot() -> tuple:
    """The default device and the caller's choices, for ``restore``."""
    return _STATE["default"], _STATE["scopes"]


def restore(state: tuple) -> None:
    _STATE["default"], _STATE["scopes"] = state


def set_default_device(spec) -> Device:
    """Make ``spec`` the default device for new tensors; returns it."""
    d = device(spec)
    _STATE["default"] = d
    return d


# ---- array module per array type ---------------------------------------------------------------
_MODULES: dict[type, object] = {}     # device array type -> its backend module


def _backend(d: Device):
    if d.kind == "cpu":
        return numpy_backend
    if d.kind == "emulated":
        _MODULES[emulated_backend.EmulatedArray] = emulated_backend
        return emulated_backend
    _check_cuda(d)
    _MODULES[cupy_backend.load().ndarray] = cupy_backend
    return cupy_backend


def _backend_of_type(t: type):
    b = _MODULES.get(t)
    if b is None and t.__module__.split(".")[0] == "cupy":   # a CuPy array made outside npdl
        b = _backend(Device("cuda", 0))
    return b


def get_array_module(*arrays):
    """numpy, unless one of ``arrays`` lives on a device: then that device's ``xp``.

    Non-array arguments (scalars, None) are ignored, so ``get_array_module(x, maybe_none)`` works.
    Hot ops write ``xp = np if type(x) is np.ndarray else get_array_module(x)``: the CPU path
    then makes no Python call (a call costs ~2,000 instructions, measured with callgrind; a
    4x4 op's whole forward+backward is ~40,000).
    """
    for a in arrays:
        t = type(a)
        if t is _ndarray:
            continue
        b = _MODULES.get(t) if _MODULES else None
        if b is not None:
            return b.xp
        if t.__module__.startswith("cupy"):
            return _backend_of_type(t).xp
        data = getattr(a, "data", None)       # a Tensor: look at its array
        if data is not None and type(data) is not memoryview and data is not a:
            xp = get_array_module(data)
            if xp is not numpy:
                return xp
    return numpy


def extras(xp):
    """The backend module of array module ``xp``: scatter-add, windows, transfers."""
    if xp is numpy:
        return numpy_backend
    for b in _MODULES.values():
        if b.xp is xp:
            return b
    raise TypeError(f"no npdl backend for array module {xp!r}")


def is_device_array(x) -> bool:
    """True for an array on a device (not NumPy's ndarray)."""
    t = type(x)
    return t is not _ndarray and (t in _MODULES or t.__module__.startswith("cupy"))


def asarray(x, dtype=None):
    """``numpy.asarray`` that keeps a device array where it is (a Tensor gives its array)."""
    x = getattr(x, "data", x) if not isinstance(x, (_ndarray, list, tuple)) else x
    if type(x) is not _ndarray and is_device_array(x):
        return x if dtype is None else x.astype(dtype, copy=False)
    return numpy.asarray(x, dtype=dtype)


def device_of(x) -> Device:
    """The device ``x`` (an array) lives on; NumPy arrays and scalars are on the cpu."""
    t = type(x)
    if t is _ndarray or not is_device_array(x):
        return CPU
    b = _backend_of_type(t)
    if b.xp.__name__ == "cupy":
        return Device("cuda", int(x.device.id))
    return Device("emulated")


def to_host(x):
    """``x`` as a NumPy array (a copy when it was on a device; NumPy input returned as is)."""
    t = type(x)
    if t is _ndarray or not is_device_array(x):
        return x
    return _backend_of_type(t).to_host(x)


def to_device(x, target):
    """Array ``x`` on device ``target`` (returned as is when it is there already)."""
    d = parse_device(target)
    src = device_of(x)
    if src == d:
        return x
    host = to_host(x)
    if d.kind == "cpu":
        return host
    return _backend(d).from_host(numpy.asarray(host), d.index)
