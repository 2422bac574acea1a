"""SGD, Adam, AdamW, RMSprop and Adagrad with PyTorch's formulations (torch.optim docs' pseudocode).

Each class states its update as equations; ``_update(w, g, st, group)`` applies them in place
to ``w`` (the parameter, or the gathered rows of a sparse step) and the state buffers, with
``out=`` ufuncs and the base class's reusable scratch arrays (``_tmp``), never writing ``g``.
Hyperparameters are Python floats, so float32 parameters stay float32.

Every constructor also takes ``no_decay``, ``no_decay_1d`` and ``groups`` (see
``npdl.optim.groups.param_groups``): building groups from a config happens here, so the trainer
only passes ``params=model.named_parameters()``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from npdl.core.backend import extras, get_array_module
from npdl.optim.optimizer import Optimizer
from npdl.registry import OPTIMIZERS
from npdl.schema import NonNegativeFloat, PositiveFloat, Probability, UnitInterval

Groups = tuple[dict[str, Any], ...]  # [{match: regex, lr: ..., weight_decay: ...}] in YAML


def _decayed(w, g, wd, opt, slot=0):
    """g + wd * w (L2 regularisation folded into the gradient) in a scratch array; g if wd == 0."""
    xp = np if type(w) is np.ndarray else get_array_module(w)
    if not wd:
        return g
    out = opt._tmp(w, slot)
    xp.multiply(w, wd, out=out)
    out += g
    return out


def _ema(buf, x, decay, tmp):
    """buf = decay * buf + (1 - decay) * x, in place."""
    xp = np if type(buf) is np.ndarray else get_array_module(buf)
    buf *= decay
    xp.multiply(x, 1.0 - decay, out=tmp)
    buf += tmp


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum (Sutskever et al. 2013).

    g = grad + weight_decay * w;  b_1 = g,  b_t = momentum * b_{t-1} + (1 - dampening) * g;
    d = g + momentum * b_t if nesterov else b_t (d = g without momentum);  w -= lr * d.

    Sparse gradients: without momentum or weight decay the lazy update equals the dense one
    (weight decay reaches touched rows only). With momentum, rows first touched
    after the parameter's first step start from a zero buffer (b = (1 - dampening) * g).
    """

    def __init__(self, params, lr: PositiveFloat, momentum: NonNegativeFloat = 0.0, dampening: Probability = 0.0,
                 nesterov: bool = False, weight_decay: NonNegativeFloat = 0.0, no_decay: tuple[str, ...] = (),
                 no_decay_1d: bool = False, groups: Groups = ()):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay), no_decay, no_decay_1d, groups)

    def _check(self, group):
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            return [("nesterov", "Nesterov momentum needs momentum > 0 and dampening = 0")]
        return []

    def _buffers(self, group):
        return {"momentum_buffer": 0.0} if group["momentum"] else {}

    def _update(self, w, g, st, group):
        xp = np if type(w) is np.ndarray else get_array_module(w)
        mom = group["momentum"]
        g = _decayed(w, g, group["weight_decay"], self)
        if mom:
            buf = st["momentum_buffer"]
            if st["step"] == 1:
                xp.copyto(buf, g)  # PyTorch: the buffer starts as the first gradient, undamped
            else:
                keep = 1.0 - group["dampening"]
                buf *= mom
                if keep == 1.0:
                    buf += g
                else:
                    t = self._tmp(w, 1)
                    xp.multiply(g, keep, out=t)
                    buf += t
            if group["nesterov"]:
                t = self._tmp(w, 1)
                xp.multiply(buf, mom, out=t)
                t += g
                g = t
            else:
                g = buf
        step = self._tmp(w, 2)
        xp.multiply(g, group["lr"], out=step)
        w -= step


class _AdamBase(Optimizer):
    decoupled = False

    def _buffers(self, group):
        bufs = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if group["amsgrad"]:
            bufs["max_exp_avg_sq"] = 0.0
        return bufs

    def _update(self, w, g, st, group):
        xp = np if type(w) is np.ndarray else get_array_module(w)
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        b1, b2 = group["betas"]
        t = st["step"]
        if self.decoupled:
            if wd:
                w *= 1.0 - lr * wd  # Loshchilov & Hutter 2019, Algorithm 2 line 12 (scaled by lr as PyTorch)
        else:
            g = _decayed(w, g, wd, self)
        m, v = st["exp_avg"], st["exp_avg_sq"]
        fused = None if xp is np or group["amsgrad"] else getattr(extras(xp), "adam_step", None)
        if fused is not None:   # a GPU backend's one-kernel update (CuPy); the same formula as below
            c2 = math.sqrt(1.0 - b2 ** t)
            fused(w, g, m, v, b1, b2, lr * c2 / (1.0 - b1 ** t), eps * c2)
            return
        tmp = self._tmp(w, 1)
        _ema(m, g, b1, tmp)                           # m_t = b1 m + (1 - b1) g
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v *= b2
        v += tmp                                      # v_t = b2 v + (1 - b2) g^2
        if group["amsgrad"]:                          # Reddi et al. 2018: use the running max of v
            xp.maximum(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
            v = st["max_exp_avg_sq"]
        # Kingma & Ba 2015, Algorithm 1: w -= lr * m_hat / (sqrt(v_hat) + eps), hats = bias-corrected
        # with c2 = sqrt(1 - b2^t): sqrt(v_hat) + eps = (sqrt(v) + eps c2) / c2, one pass fewer
        c2 = math.sqrt(1.0 - b2 ** t)
        xp.sqrt(v, out=tmp)
        tmp += eps * c2
        xp.divide(m, tmp, out=tmp)
        tmp *= lr * c2 / (1.0 - b1 ** t)
        w -= tmp


@OPTIMIZERS.register("adam")
class Adam(_AdamBase):
    """Adam (Kingma & Ba 2015, Algorithm 1) with L2 weight decay added to the gradient.

    g = grad + weight_decay * w;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (v -> max of all v with amsgrad).

    Sparse gradients (lazy, like PyTorch's SparseAdam): only touched rows' m, v and weights
    change; t is the parameter's step count; untouched rows' moments are not decayed.
    """

    def __init__(self, params, lr: PositiveFloat = 1e-3, betas: tuple[UnitInterval, UnitInterval] = (0.9, 0.999),
                 eps: PositiveFloat = 1e-8, weight_decay: NonNegativeFloat = 0.0, amsgrad: bool = False,
                 no_decay: tuple[str, ...] = (), no_decay_1d: bool = False, groups: Groups = ()):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad),
                         no_decay, no_decay_1d, groups)


@OPTIMIZERS.register("adamw")
class AdamW(_AdamBase):
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    w *= 1 - lr * weight_decay (before the Adam step, as PyTorch), then Adam's update with the
    raw gradient. Sparse gradients: as Adam; the decay applies to touched rows only.
    """

    decoupled = True

    def __init__(self, params, lr: PositiveFloat = 1e-3, betas: tuple[UnitInterval, UnitInterval] = (0.9, 0.999),
                 eps: PositiveFloat = 1e-8, weight_decay: NonNegativeFloat = 1e-2, amsgrad: bool = False,
                 no_decay: tuple[str, ...] = (), no_decay_1d: bool = False, groups: Groups = ()):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad),
                         no_decay, no_decay_1d, groups)


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012, lecture 6.5; centered variant: Graves 2013, eq. 38-45).

    g = grad + weight_decay * w;  s = alpha s + (1-alpha) g^2;  centered: a = alpha a + (1-alpha) g,
    d = sqrt(s - a^2) + eps, else d = sqrt(s) + eps;  momentum: b = momentum b + g/d, w -= lr b;
    otherwise w -= lr g/d.  Sparse gradients: lazy on touched rows.
    """

    def __init__(self, params, lr: PositiveFloat = 1e-2, alpha: UnitInterval = 0.99, eps: PositiveFloat = 1e-8,
                 weight_decay: NonNegativeFloat = 0.0, momentum: NonNegativeFloat = 0.0, centered: bool = False,
                 no_decay: tuple[str, ...] = (), no_decay_1d: bool = False, groups: Groups = ()):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered), no_decay, no_decay_1d, groups)

    def _buffers(self, group):
        bufs = {"square_avg": 0.0}
        if group["momentum"]:
            bufs["momentum_buffer"] = 0.0
        if group["centered"]:
            bufs["grad_avg"] = 0.0
        return bufs

    def _update(self, w, g, st, group):
        xp = np if type(w) is np.ndarray else get_array_module(w)
        alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
        g = _decayed(w, g, group["weight_decay"], self)
        tmp, d = self._tmp(w, 1), self._tmp(w, 2)
        s = st["square_avg"]
        xp.multiply(g, g, out=tmp)
        _ema(s, tmp, alpha, tmp)
        if group["centered"]:
            a = st["grad_avg"]
            _ema(a, g, alpha, tmp)
            xp.multiply(a, a, out=d)
            xp.subtract(s, d, out=d)
            xp.sqrt(d, out=d)
        else:
            xp.sqrt(s, out=d)
        d += eps
        xp.divide(g, d, out=tmp)
        if group["momentum"]:
            b = st["momentum_buffer"]
            b *= group["momentum"]
            b += tmp
            xp.multiply(b, lr, out=tmp)
        else:
            tmp *= lr
        w -= tmp


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer 2011) with PyTorch's lr decay.

    g = grad + weight_decay * w;  lr_t = lr / (1 + (t - 1) lr_decay);  s += g^2;
    w -= lr_t g / (sqrt(s) + eps), s starting at ``initial_accumulator_value``.
    Sparse gradients: only touched rows accumulate and move; t is the parameter's step count.
    """

    def __init__(self, params, lr: PositiveFloat = 1e-2, lr_decay: NonNegativeFloat = 0.0,
                 weight_decay: NonNegativeFloat = 0.0, initial_accumulator_value: NonNegativeFloat = 0.0,
                 eps: PositiveFloat = 1e-10, no_decay: tuple[str, ...] = (), no_decay_1d: bool = False,
                 groups: Groups = ()):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps),
                         no_decay, no_decay_1d, groups)

    def _buffers(self, group):
        return {"sum": group["initial_accumulator_value"]}

    def _update(self, w, g, st, group):
        xp = np if type(w) is np.ndarray else get_array_module(w)
        g = _decayed(w, g, group["weight_decay"], self)
        clr = group["lr"] / (1.0 + (st["step"] - 1) * group["lr_decay"])
        s, tmp = st["sum"], self._tmp(w, 1)
        xp.multiply(g, g, out=tmp)
        s += tmp
        xp.sqrt(s, out=tmp)
        tmp += group["eps"]
        xp.divide(g, tmp, out=tmp)
        tmp *= clr
        w -= tmp
