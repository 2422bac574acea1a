"""Moving a tensor between devices: ``x.to("cuda")``, recorded in the graph.

The gradient of a move is the move back: ``loss.backward()`` through ``x.to("cuda")`` leaves
``x.grad`` on ``x``'s own device.
"""
from __future__ import annotations

import numpy as np

from npdl.core import backend
from npdl.core.autograd import Function
from npdl.core.ops.elementwise import astype
from npdl.core.tensor import Tensor, wrap


class ToDevice(Function):
    """z = x on another device (a copy); the gradient is moved back."""

    @staticmethod
    def forward(ctx, x, device=None):
        ctx.source = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, g):
        return backend.to_device(g, ctx.source)


def to(x: Tensor, target) -> Tensor:
    """``x`` on device ``target`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"emulated"``, a ``Device``)
    or cast to a floating dtype (``x.to(np.float64)``); ``x`` itself when nothing changes.

    Raises:
        DeviceError: a device that cannot be used (no CuPy, no GPU).
    """
    if isinstance(target, backend.Device) or (isinstance(target, str) and backend.looks_like_device(target)):
        d = backend.device(target)
        if backend.device_of(x.data) == d:
            return x
        if not x.requires_grad:
            return wrap(backend.to_device(x.data, d))
        return ToDevice.apply(x, device=d)
    return astype(x, np.dtype(target))
