"""Fused losses. Fusing log-softmax with the negative log-likelihood gives the stable
``softmax - target`` gradient and avoids a (N, C) temporary per step. Each ``Function`` is
followed by its public function (``npdl.functional.cross_entropy``, ...)."""
from __future__ import annotations

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import get_array_module
from npdl.core.ops.elementwise import sigmoid_array
from npdl.core.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def flat_targets(targets: np.ndarray, n_cls: int, ignore_index: int | None, op: str):
    """Class-index targets (...) -> (flat (N,) ids with ignored ones set to 0, valid mask (N,) or
    None without ``ignore_index``). Raises IndexError for an id outside [0, n_cls)."""
    xp = np if type(targets) is np.ndarray else get_array_module(targets)
    t = targets.reshape(-1)
    valid = None
    if ignore_index is not None:
        valid = t != ignore_index
        t = xp.where(valid, t, 0)
    if t.size and (t.min() < 0 or t.max() >= n_cls):
        bad = t[(t < 0) | (t >= n_cls)][0]
        raise IndexError(f"{op}: target {bad} is out of range for {n_cls} classes")
    return t, valid


class CrossEntropy(Function):
    """Softmax cross-entropy with integer targets.

    logits: (..., C) float; targets: (...) int. Targets equal to ``ignore_index`` add no
    loss and no gradient; 'mean' divides by the number of targets that count.
    ``label_smoothing`` eps mixes the one-hot target with the uniform distribution
    (Szegedy et al. 2016): q = (1 - eps) * onehot + eps / C.
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index=None, label_smoothing=0.0, reduction="mean"):
        xp = np if type(logits) is np.ndarray else get_array_module(logits)
        _check_reduction(reduction)
        if targets.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy: targets must be integer class indices, got {targets.dtype}")
        if targets.shape != logits.shape[:-1]:
            raise ValueError(f"cross_entropy: targets shape {targets.shape} does not match "
                             f"logits shape {logits.shape} without its class axis")
        n_cls = logits.shape[-1]
        x = logits.reshape(-1, n_cls)
        t, valid = flat_targets(targets, n_cls, ignore_index, "cross_entropy")
        rows = xp.arange(t.size)
        # one (N, C) buffer: shift, pick the target logits, exponentiate in place, normalise
        p = x - x.max(axis=1, keepdims=True)
        picked = p[rows, t]
        mean_z = p.mean(axis=1) if label_smoothing else None
        xp.exp(p, out=p)
        s = p @ xp.ones(n_cls, p.dtype)                # row sums as a GEMV: several times faster than sum(axis=1)
        p /= s[:, None]
        lse = xp.log(s)
        loss = lse - picked
        eps = label_smoothing
        if eps:
            loss *= 1 - eps
            loss += eps * (lse - mean_z)
        count = t.size
        if valid is not None:
            loss *= valid
            count = int(valid.sum())
        ctx.saved = (p, t, valid)
        ctx.eps, ctx.reduction, ctx.count, ctx.shape = eps, reduction, count, logits.shape
        if reduction == "none":
            return loss.reshape(targets.shape)
        total = loss.sum(dtype=np.float64)
        return xp.asarray(total / max(count, 1) if reduction == "mean" else total, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        p, t, valid = ctx.saved
        eps = ctx.eps
        # dL/dz_i = w_i (p_i - q_i) with q = (1 - eps) onehot + eps / C and w_i the row's weight
        if ctx.reduction == "none":
            w = g.reshape(-1, 1).astype(p.dtype, copy=True)
        else:
            w = xp.full((p.shape[0], 1), g / max(ctx.count, 1) if ctx.reduction == "mean" else g, p.dtype)
        if valid is not None:
            w *= valid[:, None]
        grad = p * w                                    # the only (N, C) pass; p stays intact for retain_graph
        grad[xp.arange(t.size), t] -= (1 - eps) * w[:, 0]
        if eps:
            grad -= (eps / p.shape[1]) * w
        return grad.reshape(ctx.shape), None


def cross_entropy(logits, targets, ignore_index: int | None = None, label_smoothing: float = 0.0,
                  reduction: str = "mean"):
    """Softmax cross-entropy. logits (..., C); targets (...) integer class indices.

    Raises:
        IndexError: a target outside [0, C) that is not ``ignore_index``.
        ValueError: shapes that do not match, or an unknown ``reduction``.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    targets = targets if isinstance(targets, Tensor) else Tensor(targets)
    return CrossEntropy.apply(logits, targets, ignore_index=ignore_index, label_smoothing=label_smoothing,
                              reduction=reduction)


def nll_loss(log_probs, targets, ignore_index: int | None = None, reduction: str = "mean"):
    """Negative log-likelihood of integer targets given log-probabilities (..., C)."""
    xp = np if type(log_probs) is np.ndarray else get_array_module(log_probs)
    _check_reduction(reduction)
    t = xp.asarray(targets.data if isinstance(targets, Tensor) else targets)
    n_cls = log_probs.shape[-1]
    flat = log_probs.reshape(-1, n_cls)
    safe, valid = flat_targets(t, n_cls, ignore_index, "nll_loss")
    if valid is None:
        valid = xp.ones(safe.shape, bool)
    picked = -flat[xp.arange(safe.size), safe] * valid
    if reduction == "none":
        return picked.reshape(t.shape)
    total = picked.sum()
    return total / max(int(valid.sum()), 1) if reduction == "mean" else total


class BCEWithLogits(Function):
    """Binary cross-entropy on logits: max(x, 0) - x*y + log(1 + exp(-|x|)), stable for any |x|."""

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        _check_reduction(reduction)
        if x.shape != y.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: logits {x.shape} and targets {y.shape} differ in shape")
        y = y.astype(x.dtype, copy=False)
        loss = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))
        ctx.saved = (x, y)
        ctx.reduction = reduction
        if reduction == "none":
            return loss
        return xp.asarray(loss.mean() if reduction == "mean" else loss.sum(), dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        grad = sigmoid_array(x)
        grad -= y
        if ctx.reduction == "mean":
            grad *= g / x.size
        else:
            grad *= g
        return grad, None


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean"):
    """Stable BCE on logits; targets are probabilities in [0, 1] of the same shape."""
    return BCEWithLogits.apply(logits, targets, reduction=reduction)


class MSELoss(Function):
    """Mean squared error: (x - y)^2 reduced."""

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        _check_reduction(reduction)
        d = x - y
        ctx.saved = d
        ctx.reduction = reduction
        sq = d * d
        if reduction == "none":
            return sq
        return xp.asarray(sq.mean() if reduction == "mean" else sq.sum(), dtype=sq.dtype)

    @staticmethod
    def backward(ctx, g):
        d = ctx.saved
        grad = 2 * d * (g / d.size if ctx.reduction == "mean" else g)
        return grad, -grad


def mse_loss(x, y, reduction: str = "mean"):
    return MSELoss.apply(x, y, reduction=reduction)


class L1Loss(Function):
    """Mean absolute error: |x - y| reduced (subgradient 0 at x == y)."""

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        _check_reduction(reduction)
        d = x - y
        ctx.saved = xp.sign(d)
        ctx.reduction = reduction
        a = xp.abs(d)
        if reduction == "none":
            return a
        return xp.asarray(a.mean() if reduction == "mean" else a.sum(), dtype=a.dtype)

    @staticmethod
    def backward(ctx, g):
        s = ctx.saved
        grad = s * (g / s.size if ctx.reduction == "mean" else g)
        return grad, -grad


def l1_loss(x, y, reduction: str = "mean"):
    return L1Loss.apply(x, y, reduction=reduction)
