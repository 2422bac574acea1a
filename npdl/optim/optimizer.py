"""The optimizer base class: parameter groups, per-name state, checkpointable state dicts.

Optimizers own their state (DESIGN.md #4); parameters never point back at them. State is
keyed by the parameter's dotted NAME (``state["encoder.layers.0.linear1.weight"]``), so a
checkpoint written by one process loads into another whose ``id()``s differ.

Parameters may be given as
  (a) ``module`` or ``module.named_parameters()`` -- any iterable of ``(name, Parameter)``, or a dict;
  (b) a list of group dicts ``{"params": [(name, p), ...], "lr": ..., ...}`` whose other keys
      override the optimizer's defaults for that group;
  (c) a plain list of Parameters: names are then their positions ``"0", "1", ...`` (counted over
      all groups in order), so state dicts only match an optimizer built from the same list order.

Config-level grouping (``no_decay``, ``no_decay_1d``, ``groups``) is an argument of every
optimizer constructor, so ``optimizer: {type: adamw, weight_decay: 0.1, no_decay_1d: true,
groups: [{match: "^embed", lr: 1.0e-2}]}`` is all a YAML file needs; see ``param_groups``.

Updates are in place on ``p.data``: moment buffers are allocated once per parameter and the
per-step temporaries come from a few scratch arrays reused across parameters and steps
(``_tmp``), so a step allocates nothing proportional to the model.
"""
from __future__ import annotations

import typing

import numpy as np

from npdl import schema
from npdl.core.backend import device_of, get_array_module, is_device_array, to_device, to_host
from npdl.core.sparse import RowSparseGrad
from npdl.core.tensor import Tensor
from npdl.optim.groups import normalize_groups
from npdl.schema import ArgumentError, NonNegativeFloat, did_you_mean

_META = ("params", "param_names")  # group keys that are not hyperparameters



def _onto(g, like):
    """Gradient ``g`` on the device of array ``like`` (dense or row-sparse)."""
    d = device_of(like)
    if isinstance(g, RowSparseGrad):
        return type(g)(to_device(g.rows, d), to_device(g.values, d), g.shape)
    return to_device(g, d)


def _is_array(v) -> bool:
    """An optimizer buffer (a NumPy or device array), not a step count."""
    return isinstance(v, np.ndarray) or is_device_array(v)

class OptimizerStateError(ValueError):
    """``load_state_dict`` found problems; ``problems`` lists every one. Nothing was changed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("optimizer state dict does not match this optimizer (nothing was loaded):\n  "
                         + "\n  ".join(problems))


class Optimizer:
    """Base class. Subclasses define ``_buffers(group)`` and ``_update(w, g, st, group)``.

    Attributes:
        param_groups: list of dicts: every hyperparameter (incl. ``lr`` and ``initial_lr``, the lr
            the group was built with, which ``LRScheduler`` multiplies), ``params`` (the Parameters)
            and ``param_names`` (their names, same order).
        state: ``{name: {"step": int, buffer_name: ndarray shaped like the parameter}}``, created
            the first time a parameter has a gradient.
        step_count: number of ``step()`` calls.

    Raises:
        ArgumentError (a ValueError): empty or duplicated parameters, unknown or out-of-range
            hyperparameters, every one listed.
    """

    def __init__(self, params, defaults: dict, no_decay=(), no_decay_1d: bool = False, groups=()):
        self.defaults = {k: _plain(v) for k, v in defaults.items()}
        self.state: dict[str, dict] = {}
        self.step_count = 0
        self._scratch: dict = {}
        raw = normalize_groups(params, no_decay, no_decay_1d, groups, self._check_overrides)
        problems, seen_names, seen_ids = [], {}, {}
        self.param_groups = []
        for gi, (pairs, overrides) in enumerate(raw):
            group = dict(self.defaults)
            for k, v in overrides.items():
                group[k] = _like(self.defaults[k], v)
            group.setdefault("initial_lr", group["lr"])
            problems += [(f"param_groups[{gi}].{k}", m) for k, m in self._check_group(group)]
            for name, p in pairs:
                if name in seen_names:
                    problems.append((f"param_groups[{gi}]", f"parameter name '{name}' appears twice"))
                if id(p) in seen_ids:
                    problems.append((f"param_groups[{gi}]", f"parameter '{name}' is the same "
                                     f"object as '{seen_ids[id(p)]}'; pass each parameter once"))
                seen_names[name] = gi
                seen_ids.setdefault(id(p), name)
            group["params"] = [p for _, p in pairs]
            group["param_names"] = [n for n, _ in pairs]
            self.param_groups.append(group)
        if not seen_names:
            problems.append(("params", "the optimizer got no parameters"))
        if problems:
            raise ArgumentError(problems)

    # ---- hyperparameter validation (the constructor signature is the schema) ---------------
    def _check_overrides(self, overrides: dict, path: str) -> list[tuple[str, str]]:
        out = []
        for k in overrides:
            if k not in self.defaults and k != "initial_lr":
                out.append((f"{path}.{k}", f"unknown hyperparameter of {type(self).__name__}"
                            f"{did_you_mean(k, self.defaults)} (accepted: {', '.join(self.defaults)})"))
        return out

    def _check_group(self, group: dict, scheduled: bool = False) -> list[tuple[str, str]]:
        """(key, message) for every hyperparameter that does not fit the constructor's annotation.

        ``scheduled``: ``group`` comes from a state dict, where ``lr`` is the schedule's current
        value (``initial_lr * multiplier``, 0 at the end of a cosine decay): then ``lr`` need only
        be a finite non-negative number and ``initial_lr`` is held to the constructor's rule.
        """
        hints = dict(typing.get_type_hints(type(self).__init__, include_extras=True))
        if scheduled and "lr" in hints:
            hints["initial_lr"], hints["lr"] = hints["lr"], NonNegativeFloat
        out = []
        for k, v in group.items():
            if k in hints and k not in _META:
                msg = schema.check(list(v) if isinstance(v, tuple) else v, hints[k])
                if msg:
                    out.append((k, msg))
        return out + self._check(group)

    def _check(self, group: dict) -> list[tuple[str, str]]:
        """Cross-field checks of one group (e.g. nesterov needs momentum); override."""
        return []

    # ---- the update ---------------------------------------------------------------------
    def _buffers(self, group: dict) -> dict[str, float]:
        """{state buffer name: initial fill value} for a parameter of ``group``."""
        raise NotImplementedError

    def _update(self, w: np.ndarray, g: np.ndarray, st: dict, group: dict) -> None:
        """Update ``w`` and the arrays of ``st`` in place from gradient ``g`` (never written)."""
        raise NotImplementedError

    def _tmp(self, like: np.ndarray, slot: int) -> np.ndarray:
        """Scratch array shaped like ``like``; one buffer per (dtype, slot), grown to the largest use."""
        key = (like.dtype.str, slot)
        buf = self._scratch.get(key)
        if buf is None or buf.size < like.size:
            buf = self._scratch[key] = get_array_module(like).empty(like.size, like.dtype)
        return buf[:like.size].reshape(like.shape)

    def _init_state(self, p: Tensor, group: dict) -> dict:
        st = {"step": 0}
        for k, fill in self._buffers(group).items():
            st[k] = get_array_module(p.data).full(p.data.shape, fill, dtype=p.data.dtype)
        return st

    def step(self) -> None:
        """One update of every parameter whose ``.grad`` is not None.

        A ``RowSparseGrad`` updates only the rows it touches (after coalescing): the optimizer's
        buffers of those rows are gathered, updated by the same formula as a dense step, and
        scattered back -- lazy updates like PyTorch's SparseAdam. Rows not touched keep their
        weights AND their moments (no decay of momentum, no weight decay) until touched again;
        bias corrections use the parameter's step count. So SGD without momentum or weight decay
        matches the dense update exactly; with weight decay only touched rows decay.

        Raises:
            ValueError: a gradient whose shape differs from its parameter's.
        """
        self.step_count += 1
        for group in self.param_groups:
            for name, p in zip(group["param_names"], group["params"]):
                g = p.grad
                if g is None:
                    continue
                if g.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}.step: gradient of '{name}' has shape {g.shape}, "
                                     f"the parameter {p.data.shape}")
                st = self.state.get(name)
                if st is None:
                    st = self.state[name] = self._init_state(p, group)
                if type(g) is not type(p.data) and type(p.data) is not np.ndarray:
                    g = _onto(g, p.data)       # a gradient set by hand on the host, for a parameter on a device
                if isinstance(g, RowSparseGrad):
                    self._sparse_step(p, g, st, group)
                else:
                    st["step"] += 1
                    self._update(p.data, g if g.dtype == p.data.dtype else g.astype(p.data.dtype), st, group)

    def _sparse_step(self, p: Tensor, g: RowSparseGrad, st: dict, group: dict) -> None:
        g = g.coalesce()
        rows = g.rows
        if rows.size == 0:
            return
        st["step"] += 1
        w = p.data[rows]
        sub = {k: (v[rows] if _is_array(v) else v) for k, v in st.items()}
        self._update(w, g.values.astype(p.data.dtype, copy=False), sub, group)
        p.data[rows] = w
        for k, v in st.items():
            if _is_array(v):
                v[rows] = sub[k]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (the next backward starts fresh)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {name: {key: ndarray | int}}, "param_groups": [{hyper..., "params": [names]}],
        "step": int}`` with copies of the arrays (later in-place steps do not change it) and only
        JSON-able scalars (tuples become lists), so checkpoints can store it without pickle."""
        groups = []
        for g in self.param_groups:
            d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k not in _META}
            d["params"] = list(g["param_names"])
            groups.append(d)
        state = {n: {k: (v.copy() if _is_array(v) else v) for k, v in s.items()}
                 for n, s in self.state.items()}
        return {"state": state, "param_groups": groups, "step": self.step_count}

    def load_state_dict(self, sd: dict) -> None:
        """Replace hyperparameters, state and step count with ``sd``'s, after checking all of it.

        Raises:
            OptimizerStateError: listing every problem (group count, missing or unknown parameter
                names, unknown hyperparameters, missing/unknown buffers, shape mismatches); nothing
                is changed when it raises.
        """
        problems = _check_top(sd)
        if problems:
            raise OptimizerStateError(problems)
        sd_groups = sd["param_groups"]
        if len(sd_groups) != len(self.param_groups):
            raise OptimizerStateError([f"the state dict has {len(sd_groups)} parameter groups, this optimizer "
                                       f"has {len(self.param_groups)} (was it built with other no_decay/groups?)"])
        new_groups, owner = [], {}
        for i, (mine, theirs) in enumerate(zip(self.param_groups, sd_groups)):
            where = f"param_groups[{i}]"
            names = list(theirs.get("params", []))
            missing = [n for n in mine["param_names"] if n not in names]
            unknown = [n for n in names if n not in mine["param_names"]]
            if missing:
                problems.append(f"{where}: missing parameters ({len(missing)}): {', '.join(missing)}")
            if unknown:
                problems.append(f"{where}: unknown parameters ({len(unknown)}): {', '.join(unknown)}")
            hyper = {k: v for k, v in theirs.items() if k != "params"}
            bad = sorted(set(hyper) - set(mine) - set(_META))
            absent = sorted(set(mine) - set(hyper) - set(_META))
            if bad:
                problems.append(f"{where}: unknown hyperparameters: {', '.join(bad)}")
            if absent:
                problems.append(f"{where}: missing hyperparameters: {', '.join(absent)}")
            group = dict(mine)
            group.update({k: _like(mine[k], v) for k, v in hyper.items() if k in mine and k not in _META})
            problems += [f"{where}.{k}: {m}" for k, m in self._check_group(group, scheduled=True)]
            new_groups.append(group)
            for n, p in zip(mine["param_names"], mine["params"]):
                owner[n] = (p, group)
        new_state = {}
        for name, st in sd["state"].items():
            if name not in owner:
                problems.append(f"state: unknown parameter '{name}'{did_you_mean(name, owner)}")
                continue
            p, group = owner[name]
            new_state[name], errs = self._load_param_state(name, st, p, group)
            problems += errs
        if problems:
            raise OptimizerStateError(problems)
        self.param_groups, self.state, self.step_count = new_groups, new_state, int(sd["step"])

    def _load_param_state(self, name: str, st, p: Tensor, group: dict) -> tuple[dict, list[str]]:
        if not isinstance(st, dict):
            return {}, [f"state['{name}']: expected a mapping, got {type(st).__name__}"]
        want = {"step", *self._buffers(group)}
        errs = [f"state['{name}']: missing '{k}'" for k in sorted(want - set(st))]
        errs += [f"state['{name}']: unknown entry '{k}'" for k in sorted(set(st) - want)]
        out = {}
        for k in sorted(want & set(st)):
            v = st[k]
            if k == "step":
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0:
                    out[k] = int(v)
                else:
                    errs.append(f"state['{name}']['step']: expected a non-negative integer, got {v!r}")
            elif not _is_array(v) or v.shape != p.data.shape:
                got = v.shape if _is_array(v) else type(v).__name__
                errs.append(f"state['{name}']['{k}']: shape mismatch: parameter has {p.data.shape}, got {got}")
            else:
                # owned, writable, the parameter's dtype and device (a checkpoint holds host arrays)
                out[k] = to_device(np.array(to_host(v), dtype=p.data.dtype, copy=True), device_of(p.data))
        return out, errs

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, g in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in g.items() if k not in _META)
            lines.append(f"  group {i} ({len(g['params'])} params): {hyper}")
        return "\n".join(lines) + "\n)"


def _check_top(sd) -> list[str]:
    if not isinstance(sd, dict):
        return [f"expected a mapping with 'state', 'param_groups' and 'step', got {type(sd).__name__}"]
    out = [f"missing '{k}'" for k in ("state", "param_groups", "step") if k not in sd]
    if "state" in sd and not isinstance(sd["state"], dict):
        out.append("'state' must be a mapping of parameter name -> state")
    if "param_groups" in sd and not (isinstance(sd["param_groups"], list)
                                     and all(isinstance(g, dict) for g in sd["param_groups"])):
        out.append("'param_groups' must be a list of mappings")
    elif "param_groups" in sd and not all(isinstance(g.get("params", []), list)
                                          and all(isinstance(n, str) for n in g.get("params", []))
                                          for g in sd["param_groups"]):
        out.append("'param_groups[i].params' must be lists of parameter names")
    if "step" in sd and not (isinstance(sd["step"], (int, np.integer)) and sd["step"] >= 0):
        out.append(f"'step' must be a non-negative integer, got {sd['step']!r}")
    return out


def _plain(v):
    """Python scalars (np.float64 would upcast float32 updates under NumPy 2), tuples for lists."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    return v


def _like(default, v):
    """``v`` converted to the Python type of ``default`` (ints in YAML for float hyperparameters)."""
    v = _plain(v)
    if isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if isinstance(default, tuple) and isinstance(v, tuple):
        return tuple(float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v)
    return v
