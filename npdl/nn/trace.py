"""Record what each submodule outputs during one forward pass.

Used by ``npdl check`` (a layer / output shape / parameters table from a dry run) and by
the trainer's NaN guard (which module first produced a non-finite value). Works by
shadowing each module's ``forward`` with a recording wrapper for the duration of a
``with`` block, so no module needs hooks of its own.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from npdl.core.backend import get_array_module
from npdl.core.tensor import Tensor
from npdl.nn.module import Module


@dataclasses.dataclass
class Record:
    """One module call: its dotted name, class, output shapes, own parameter count, finiteness."""

    name: str
    kind: str
    shapes: list[tuple[int, ...]]
    params: int
    finite: bool


def _tensors(out) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


@contextmanager
def shadowed_forwards(pairs):
    """Make each ``(module, fn)`` of ``pairs`` the module's ``forward`` (an instance attribute
    that shadows the class's) for the ``with`` block; the class's forward is back afterwards.
    The one way npdl records what modules do (trace, health statistics, the step graph) without
    hooks in every module."""
    patched = []
    try:
        for mod, fn in pairs:
            object.__setattr__(mod, "forward", fn)
            patched.append(mod)
        yield
    finally:
        for mod in patched:
            mod.__dict__.pop("forward", None)


@contextmanager
def trace(model: Module, max_depth: int | None = None):
    """``with trace(model) as records: model(x)`` fills ``records`` in call-completion order."""
    records: list[Record] = []
    pairs = []
    for name, mod in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if max_depth is not None and depth > max_depth:
            continue
        original = type(mod).forward

        def wrapper(*args, _m=mod, _name=name or "(model)", _f=original, **kwargs):
            out = _f(_m, *args, **kwargs)
            ts = _tensors(out)
            own = sum(p.size for p in _m._parameters.values() if p is not None)
            records.append(Record(_name, type(_m).__name__, [t.shape for t in ts], own,
                                  all(bool(get_array_module(t.data).isfinite(t.data).all()) for t in ts if t.dtype.kind == "f")))
            return out

        pairs.append((mod, wrapper))
    with shadowed_forwards(pairs):
        yield records


def first_nonfinite(records: list[Record]) -> Record | None:
    """The innermost module whose output first went non-finite (records are in completion order)."""
    return next((r for r in records if not r.finite), None)
