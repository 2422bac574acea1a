"""The reverse-mode engine: ``Function.apply`` records the graph, ``backward`` walks it.

Each primitive op is a ``Function`` subclass with ``forward(ctx, *arrays, **kwargs)`` and
``backward(ctx, grad)`` side by side (``npdl/core/ops/``, each beside its public function). The
``ctx`` *is* the node of the graph: it holds the input tensors (``ctx.parents``), what forward
saved (``ctx.saved``), and the gradient flowing into its outputs while backward runs. This
module sits between ``tensor.py`` (below: it imports only that) and the ops (above). The
engine alone does the shared work:

* constants (Python scalars, float64 arrays) are cast to the dtype of the tensor inputs,
  so a float32 graph stays float32;
* every returned gradient is un-broadcast to its input's shape in one place, and a
  gradient that still has the wrong shape raises an error naming the op;
* gradients accumulate: a tensor used twice receives both contributions;
* the walk is an iterative topological sort, so a 10,000-step chain cannot hit Python's
  recursion limit;
* the graph is released after backward unless ``retain_graph=True``.
"""
from __future__ import annotations

import itertools

import numpy as np

from npdl.core import backend
from npdl.core.grad_mode import GRAD
from npdl.core.sparse import RowSparseGrad
from npdl.core.tensor import DEFAULT_FLOAT, Tensor, as_array, wrap


_counter = itertools.count()


class GradientShapeError(RuntimeError):
    """A backward returned a gradient that cannot be reduced to its input's shape."""


class Function:
    """Base class of differentiable primitives; an instance is the graph node (``ctx``).

    Subclasses define ``forward(ctx, *arrays, **kwargs) -> ndarray | tuple[ndarray, ...]``
    and ``backward(ctx, grad) -> ndarray | tuple[ndarray | None, ...]``, one gradient per
    positional input (None where no gradient is needed). ``ctx.needs_input_grad[i]``
    tells backward which inputs want a gradient, so it can skip the others. Forward keeps
    what backward needs as attributes of ``ctx``: the arrays in ``ctx.saved``, settings by name.
    """

    # set per instance: parents, needs_input_grad, saved, grad_out / grad_outs, out_meta
    multi_output = False

    @classmethod
    def apply(cls, *inputs, **kwargs):
        arrays = []
        needs = []
        requires = False
        ref = None
        constants = False
        for x in inputs:
            if isinstance(x, Tensor):
                d = x.data
                arrays.append(d)
                needs.append(x.requires_grad)
                requires = requires or x.requires_grad
                if ref is None and d.dtype.kind == "f":
                    ref = d
            else:
                arrays.append(x)
                needs.append(False)
                constants = True
        if constants:
            if ref is None:   # no floating tensor: integer tensors on a device take the constants there
                ref = next((a for a, x in zip(arrays, inputs) if isinstance(x, Tensor) and type(a) is not np.ndarray), None)
            arrays = [a if isinstance(x, Tensor) else _constant(a, ref) for a, x in zip(arrays, inputs)]
        ctx = cls()
        ctx.seq = next(_counter)
        requires = requires and GRAD.enabled
        ctx.needs_input_grad = needs if requires else [False] * len(needs)
        out = cls.forward(ctx, *arrays, **kwargs)
        if not cls.multi_output and out.dtype == np.float64 and not any(
                getattr(a, "dtype", None) == np.float64 for a in arrays):
            # NumPy promotes int64 with float32 to float64; no input asked for float64, so the
            # result takes npdl's default float and a float32 graph stays float32
            out = out.astype(DEFAULT_FLOAT)
        if not requires:
            if cls.multi_output:
                return tuple(wrap(o) for o in out)
            return wrap(out)
        ctx.parents = inputs
        if cls.multi_output:
            ctx.grad_outs = [None] * len(out)
            ctx.out_meta = [(o.shape, o.dtype) for o in out]
            return tuple(wrap(o, True, ctx, i) for i, o in enumerate(out))
        ctx.grad_out = None
        return wrap(out, True, ctx, None)

    @staticmethod
    def forward(ctx, *arrays, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError


def _constant(x, ref: np.ndarray | None) -> np.ndarray:
    """A non-tensor input as an array whose float dtype follows the tensor inputs.

    With no floating tensor among the inputs there is no graph dtype to protect: arrays keep
    their own dtype (a float64 array stays float64), other values follow ``as_array``.
    """
    if ref is None:
        return x if isinstance(x, np.ndarray) or backend.is_device_array(x) else as_array(x)
    if type(ref) is not np.ndarray:
        return _device_constant(x, ref)
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "f" and ref.dtype.kind == "f" and x.dtype != ref.dtype:
            return x.astype(ref.dtype)
        return x
    if ref.dtype.kind == "f" and isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return np.asarray(x, dtype=ref.dtype)
    arr = np.asarray(x)
    if arr.dtype.kind == "f" and ref.dtype.kind == "f" and arr.dtype != ref.dtype:
        arr = arr.astype(ref.dtype)
    return arr


def _device_constant(x, ref):
    """``_constant`` for an op whose tensors live on a device: scalars stay NumPy scalars of the
    graph dtype (device libraries take those), host arrays move to ``ref``'s device. ``ref`` is
    the first floating tensor's array, or an integer one when no input is floating."""
    if ref.dtype.kind == "f" and isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return ref.dtype.type(x)
    if isinstance(x, (bool, int, float, np.generic)):
        return x
    if not backend.is_device_array(x):
        x = backend.to_device(np.asarray(x), backend.device_of(ref))
    if x.dtype.kind == "f" and ref.dtype.kind == "f" and x.dtype != ref.dtype:
        x = x.astype(ref.dtype)
    return x


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, to get ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        return grad  # caller reports the mismatch
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _reachable_nodes(root_ctx) -> list:
    """Graph nodes reachable from ``root_ctx``, newest first.

    Every node carries a creation number (``seq``) and an op's inputs always exist before
    the op runs, so descending ``seq`` is a topological order: cheaper than a DFS post-order
    and, being iterative, immune to the recursion limit on 10,000-step chains.
    """
    seen = {root_ctx}
    stack = [root_ctx]
    while stack:
        node = stack.pop()
        try:
            parents = node.parents
        except AttributeError:
            raise RuntimeError(
                "backward through a graph that has already been freed: a previous backward() "
                "released it. Pass retain_graph=True to the first backward() to reuse the graph.") from None
        for p in parents:
            if isinstance(p, Tensor):
                c = p._ctx
                if c is not None and c not in seen:
                    seen.add(c)
                    stack.append(c)
    return sorted(seen, key=_seq, reverse=True)


def _seq(node) -> int:
    return node.seq


def _accumulate_leaf(t: Tensor, g, owned: bool) -> None:
    """Add ``g`` into ``t.grad``. ``owned``: g is a fresh array nothing else refers to, so it
    can become ``t.grad`` without a copy (most weight gradients: GEMM outputs, sums)."""
    if isinstance(g, RowSparseGrad):
        t.grad = g if t.grad is None else _add(t.grad, g)
        return
    if type(g) is not np.ndarray and not backend.is_device_array(g):  # a full reduction can hand back a NumPy scalar
        g, owned = np.asarray(g), True
    if g.dtype != t.data.dtype:
        g, owned = g.astype(t.data.dtype), True
    if t.grad is None:
        # a view, the incoming gradient itself, or an array given to two inputs must be copied:
        # a later `+=` into t.grad would otherwise change another gradient
        t.grad = g if owned else g.copy()
    elif isinstance(t.grad, RowSparseGrad):
        t.grad = t.grad + g
    else:
        t.grad += g


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad (``root.backward()``).

    Raises:
        RuntimeError: ``root`` does not require grad, is not a scalar and no ``grad`` is given,
            or its graph was freed by an earlier backward (pass ``retain_graph=True`` to keep it).
    """
    if not root.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad: none of the "
                           "tensors it was computed from has requires_grad=True (or it was made under no_grad).")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() without a `grad` argument needs a scalar, but this tensor has shape "
                f"{root.shape}; reduce it first (e.g. .sum() or .mean()) or pass grad=<array of that shape>.")
        # (a full reduction's output may be a NumPy scalar: host too)
        xp = np if isinstance(root.data, (np.ndarray, np.generic)) else backend.get_array_module(root.data)
        grad, owned = xp.ones(root.data.shape, root.data.dtype), True
    else:
        owned = False  # np.asarray may share the caller's array
        grad = grad.data if isinstance(grad, Tensor) else grad
        if type(root.data) is np.ndarray:
            grad = np.asarray(grad, dtype=root.data.dtype)
        else:
            grad = backend.to_device(grad, backend.device_of(root.data)).astype(root.data.dtype, copy=False)
        if grad.shape != root.shape:
            raise ValueError(f"backward(grad=...): grad has shape {grad.shape}, tensor has shape {root.shape}")
    if root._ctx is None:
        _accumulate_leaf(root, grad, owned)
        return
    order = _reachable_nodes(root._ctx)
    _seed(root, grad)
    for node in order:
        if node.multi_output:
            outs = node.grad_outs
            node.grad_outs = [None] * len(outs)
            if all(g is None for g in outs):
                continue
            xp = backend.get_array_module(*outs)
            g = tuple(xp.zeros(s, d) if o is None else o for o, (s, d) in zip(outs, node.out_meta))
        else:
            g = node.grad_out
            if g is None:
                continue
            node.grad_out = None
        in_grads = node.backward(node, g)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        parents = node.parents
        if len(in_grads) != len(parents):
            raise GradientShapeError(
                f"{type(node).__name__}.backward returned {len(in_grads)} gradients for {len(parents)} inputs")
        needs = node.needs_input_grad
        shared = _shared_ids(in_grads) if len(in_grads) > 1 else ()
        for i, p in enumerate(parents):
            if not needs[i]:
                continue
            ig = in_grads[i]
            if ig is None:
                continue
            # owned: a fresh ndarray that no other input or node refers to (see _accumulate_leaf)
            owned = ((type(ig) is np.ndarray or backend.is_device_array(ig)) and ig is not g
                     and ig.base is None and id(ig) not in shared)
            if type(ig) is not RowSparseGrad and ig.shape != p.data.shape:
                ig, owned = unbroadcast(ig, p.data.shape), True   # a reduction: always a new array
                if ig.shape != p.data.shape:
                    raise GradientShapeError(
                        f"{type(node).__name__}.backward returned a gradient of shape {ig.shape} "
                        f"for input {i} of shape {p.data.shape}")
            c = p._ctx
            if c is None:
                _accumulate_leaf(p, ig, owned)
            elif p._idx is None:
                c.grad_out = ig if c.grad_out is None else _add(c.grad_out, ig)
            else:
                cur = c.grad_outs[p._idx]
                c.grad_outs[p._idx] = ig if cur is None else _add(cur, ig)
        if not retain_graph:
            node.__dict__.clear()


def _shared_ids(grads) -> set[int]:
    """ids of arrays a backward returned for more than one input (e.g. Add returns g, g)."""
    ids = [id(x) for x in grads if x is not None]
    return {i for i in ids if ids.count(i) > 1}


def _add(a, b):
    """Out-of-place sum (never mutate: either side may alias another gradient)."""
    if isinstance(a, RowSparseGrad) or isinstance(b, RowSparseGrad):
        if isinstance(a, RowSparseGrad):
            return a + b
        return b + a
    return a + b


def _seed(root: Tensor, grad: np.ndarray) -> None:
    ctx = root._ctx
    if root._idx is None:
        ctx.grad_out = grad
    else:
        ctx.grad_outs[root._idx] = grad
