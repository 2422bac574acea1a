"""Global switch for graph recording: ``no_grad`` / ``enable_grad``.

Under ``no_grad`` every op runs its forward only and returns a Tensor with no graph
behind it (``requires_grad=False``), so evaluation and prediction allocate nothing
for backward.
"""
from __future__ import annotations

import functools


class _GradMode:
    """Mutable holder so readers see the current value (``GRAD.enabled``)."""

    __slots__ = ("enabled",)

    def __init__(self) -> None:
        self.enabled = True


GRAD = _GradMode()


def is_grad_enabled() -> bool:
    """True when ops record the graph needed for ``backward()``."""
    return GRAD.enabled


class _SetGrad:
    """Context manager and decorator that sets graph recording on or off."""

    _value: bool

    def __enter__(self) -> None:
        self._prev = GRAD.enabled
        GRAD.enabled = self._value

    def __exit__(self, *exc) -> None:
        GRAD.enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_SetGrad):
    """``with npdl.no_grad(): ...`` or ``@npdl.no_grad()``: record no graph."""

    _value = False


class enable_grad(_SetGrad):
    """Turn graph recording back on inside a ``no_grad`` block."""

    _value = True
