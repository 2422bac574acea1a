"""The autograd graph of one step, as data: which ops ran, in which module, on what shapes.

``record(model, step, extra={"(loss)": loss_fn})`` runs ``step()`` (a forward that returns the
loss) and walks the graph back from the loss through ``Tensor._ctx`` (each ``ctx`` is a
``Function`` node, see ``core/autograd.py``). Which module created a node is found without
touching the ops: for the duration of the call every module's ``forward`` is shadowed (as
``nn/trace.py`` does) by a wrapper that draws a number from the engine's node counter before
and after the call. Every node carries its creation number (``ctx.seq``), so the innermost
call whose interval holds that number is the module that created it. Normal training pays
nothing: the wrappers exist only inside ``record``.

``graph_dot.to_dot`` turns the result into Graphviz text (micrograd's ``draw_dot``, for any model).
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import numpy as np

from npdl.core import autograd
from npdl.core.backend import to_host
from npdl.core.tensor import Tensor
from npdl.nn.module import Module, Parameter
from npdl.nn.trace import shadowed_forwards

ROOT = ""  # the model's own key; other roots (the loss) are keyed "(name)"


@dataclasses.dataclass
class Node:
    """One box of the picture.

    kind: "op" (a Function node), "param" (a named Parameter), "input" (any other leaf: data,
    labels, constant arrays) or "loss" (the value the step returned). ``module``: the key of
    the module that created an op or owns a parameter (``ROOT`` for the model itself, ``None``
    outside every module). ``seq``: creation order (ops), so sorting by it replays the forward.
    """

    id: str
    kind: str
    label: str
    module: str | None = None
    shape: tuple[int, ...] = ()
    dtype: str = ""
    size: int = 0
    seq: int = 0


@dataclasses.dataclass
class Edge:
    """A tensor flowing from ``src`` to ``dst``, with its shape and dtype."""

    src: str
    dst: str
    shape: tuple[int, ...]
    dtype: str


@dataclasses.dataclass
class StepGraph:
    """Nodes (leaves, then ops in creation order, then the loss), edges, and each module key's class."""

    nodes: list[Node]
    edges: list[Edge]
    modules: dict[str, str]
    loss: float

    def ops(self) -> list[str]:
        """Op names in the order the forward created them (e.g. Linear, Relu, ..., CrossEntropy)."""
        return [n.label for n in self.nodes if n.kind == "op"]

    def params(self) -> list[str]:
        return [n.label for n in self.nodes if n.kind == "param"]


@contextmanager
def module_calls(roots: dict[str, Module]):
    """Shadow every module's forward under ``roots`` ({key prefix: module}); yields the list of
    ``(start, end, key)`` call intervals in engine-counter numbers, filled as calls finish."""
    calls: list[tuple[int, int, str]] = []
    pairs = []
    for prefix, root in roots.items():
        for name, mod in root.named_modules():
            key = prefix if not name else (f"{prefix}.{name}" if prefix else name)
            original = type(mod).forward

            def wrapper(*args, _m=mod, _key=key, _f=original, **kwargs):
                start = next(autograd._counter)  # a number no node will take: bounds this call
                out = _f(_m, *args, **kwargs)
                calls.append((start, next(autograd._counter), _key))
                return out

            pairs.append((mod, wrapper))
    with shadowed_forwards(pairs):
        yield calls


def _innermost(seqs: list[int], calls: list[tuple[int, int, str]]) -> dict[int, str]:
    """seq -> key of the innermost call holding it. Calls nest (a module's forward runs inside
    its parent's), so one sweep with a stack over the sorted endpoints answers every seq."""
    events = [(s, 1, key) for s, _, key in calls] + [(e, -1, key) for _, e, key in calls]
    events += [(q, 0, None) for q in seqs]
    events.sort(key=lambda ev: ev[0])
    stack: list[str] = []
    out = {}
    for pos, what, key in events:
        if what == 1:
            stack.append(key)
        elif what == -1:
            stack.pop()
        elif stack:
            out[pos] = stack[-1]
    return out


def _dtype(a) -> str:
    return str(getattr(a, "dtype", type(a).__name__))


def record(model: Module, step, extra: dict[str, Module] | None = None) -> StepGraph:
    """Run ``step()`` -> scalar loss Tensor with module tracking on, and return its graph.

    ``extra``: more modules to track under their own keys (e.g. ``{"(loss)": loss_fn}``).
    Raises ``ValueError`` when the step returns no tensor with a graph (e.g. run under no_grad).
    """
    roots = {ROOT: model, **{k: m for k, m in (extra or {}).items() if isinstance(m, Module)}}
    with module_calls(roots) as calls:
        loss = step()
    if not isinstance(loss, Tensor) or loss._ctx is None:
        raise ValueError("the training step returned no loss with a graph (was it run under no_grad?)")
    names = {}
    for key, root in roots.items():
        for name, p in root.named_parameters():
            names.setdefault(id(p), f"{key}.{name}" if key else name)
    modules = {}
    for key, root in roots.items():
        for name, mod in root.named_modules():
            modules[key if not name else (f"{key}.{name}" if key else name)] = type(mod).__name__

    ctxs = autograd._reachable_nodes(loss._ctx)[::-1]  # creation order
    owner = _innermost([c.seq for c in ctxs], calls)
    ids = {id(c): f"op{c.seq}" for c in ctxs}
    leaves: dict[int, Node] = {}
    ops, edges = [], []
    for c in ctxs:
        op_id = ids[id(c)]
        ops.append(Node(op_id, "op", type(c).__name__, owner.get(c.seq), seq=c.seq))
        for x in c.parents:
            if isinstance(x, Tensor) and x._ctx is not None:
                src = ids[id(x._ctx)]
            elif isinstance(x, Tensor) or (isinstance(x, np.ndarray) and x.size > 1):
                src = _leaf(leaves, x, names).id
            else:
                continue  # a Python scalar or 0-d constant: part of the op, not of the data flow
            edges.append(Edge(src, op_id, tuple(getattr(x.data if isinstance(x, Tensor) else x, "shape", ())), _dtype(x)))
    value = float(np.asarray(to_host(loss.data)).ravel()[0]) if loss.data.size == 1 else float("nan")
    edges.append(Edge(ids[id(loss._ctx)], "loss", loss.shape, _dtype(loss.data)))
    loss_node = Node("loss", "loss", "loss", shape=loss.shape, dtype=_dtype(loss.data))
    return StepGraph(list(leaves.values()) + ops + [loss_node], edges, modules, value)


def _leaf(leaves: dict[int, Node], x, names: dict[int, str]) -> Node:
    """The node of a leaf tensor or constant array (one per object, however often it is used)."""
    node = leaves.get(id(x))
    if node is not None:
        return node
    arr = x.data if isinstance(x, Tensor) else x
    if isinstance(x, Parameter) and id(x) in names:
        name = names[id(x)]
        module = name.rsplit(".", 1)[0] if "." in name else ROOT
        node = Node(f"param{len(leaves)}", "param", name, module, arr.shape, _dtype(arr), int(arr.size))
    else:
        label = "input" if isinstance(x, Tensor) else "constant"
        node = Node(f"leaf{len(leaves)}", "input", label, None, arr.shape, _dtype(arr), int(arr.size))
    leaves[id(x)] = node
    return node
