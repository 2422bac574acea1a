"""Training-health statistics of one optimizer step: is the network learning, or broken?

On a *health step* (every ``train.health_every`` steps) three things are measured:

* per parameter: the gradient norm (before clipping), the weight norm, and the update-to-weight
  ratio ``log10(||w_after - w_before|| / ||w_before||)`` — the size of what the optimizer did
  (lr, momentum and weight decay included) relative to the weight. Karpathy's rule of thumb
  (CS231n, "ratio of weights:updates"; makemore part 3) is about -3: much higher and training is
  unstable, much lower and it crawls.
* per activation module: the fraction of *dead* ReLU units (output 0 for every example of the
  batch; a unit is a feature on the last axis, or a channel, axis 1, of a 4-D NCHW map; the
  Transformer's fused feed-forward ReLU is read as the input of its ``linear2``) and the fraction
  of *saturated* tanh / sigmoid outputs (|tanh| > 0.99, sigmoid < 0.01 or > 0.99: their local
  gradient is < 2% of its maximum, so little flows back).
* per attention head: the mean entropy (nats) of its attention distributions; near 0 means every
  query looks at one key (collapsed attention).

Activations are seen only inside ``capture(model)``, which shadows the forwards of the modules
concerned for one step (as ``nn/trace.py`` does); normal steps run untouched. ``Probe`` takes
the gradient norms and a copy of the weights before the optimizer step and the rest after it.
The event is flat: ``{"grad_norm/<param>": ..., "update_ratio/<param>": ..., "dead_relu/<module>":
..., "saturated/<module>": ..., "attn_entropy/<module>/head<i>": ...}``. ``diagnose`` (in
``health_rules.py``) reads such events back and says what is out of the healthy range.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from npdl.core.backend import get_array_module, to_host
from npdl.core.sparse import RowSparseGrad
from npdl.nn.attention import MultiHeadAttention
from npdl.nn.layers import ReLU, Sigmoid, Tanh
from npdl.nn.module import Module
from npdl.nn.trace import shadowed_forwards
from npdl.nn.transformer import TransformerDecoderLayer, TransformerEncoderLayer

SATURATION = 0.99


def _norm(a) -> float:
    """L2 norm: one BLAS dot in the array's own dtype, redone in float64 only when the float32
    sum of squares overflows (past ~1.8e19) while the entries are finite."""
    if isinstance(a, RowSparseGrad):
        a = a.coalesce().values  # repeated rows add up first, as in the dense gradient
    flat = np.asarray(to_host(a)).ravel()   # health statistics are computed on the host, every health_every steps
    total = float(np.vdot(flat, flat))
    if not math.isfinite(total) and np.isfinite(flat).all():
        flat = flat.astype(np.float64)
        total = float(np.vdot(flat, flat))
    return math.sqrt(total)


class Activations:
    """What ``capture`` saw, per module name; ``stats()`` turns it into event entries."""

    def __init__(self) -> None:
        self.alive: dict[str, list[np.ndarray]] = {}       # ReLU: units active for some example
        self.saturated: dict[str, list[int]] = {}           # [saturated outputs, outputs]
        self.entropy: dict[str, list[np.ndarray]] = {}      # per call: (H,) mean entropy per head

    def relu(self, name: str, out: np.ndarray) -> None:
        if out.ndim < 2:
            return
        axis = 1 if out.ndim >= 4 else out.ndim - 1
        other = tuple(i for i in range(out.ndim) if i != axis)
        active = to_host((out > 0).any(axis=other))   # statistics live on the host (a health step only)
        calls = self.alive.setdefault(name, [])
        same = next((i for i, a in enumerate(calls) if a.shape == active.shape), None)
        if same is None:  # a module called on another width (rare) counts as a layer of its own
            calls.append(active)
        else:  # called again (an RNN step, a shared layer): a unit alive in any call is alive
            calls[same] = calls[same] | active

    def squash(self, name: str, out: np.ndarray, low: float, high: float) -> None:
        n = self.saturated.setdefault(name, [0, 0])
        n[0] += int(get_array_module(out).count_nonzero((out < low) | (out > high)))
        n[1] += out.size

    def attention(self, name: str, weights: np.ndarray) -> None:
        """weights (B, H, T, S): each (b, h, t) row a distribution over keys (all-zero = fully masked)."""
        weights = to_host(weights)
        logp = np.log(np.where(weights > 0, weights, 1.0))
        ent = -(weights * logp).sum(axis=-1)                 # (B, H, T)
        valid = weights.sum(axis=-1) > 0.5                   # skip rows with every key blocked
        per_head = (ent * valid).sum(axis=(0, 2)) / np.maximum(valid.sum(axis=(0, 2)), 1)
        self.entropy.setdefault(name, []).append(per_head)

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, calls in self.alive.items():
            units = sum(a.size for a in calls)
            out[f"dead_relu/{name}"] = float(sum(a.size - int(a.sum()) for a in calls) / units)
        for name, (sat, total) in self.saturated.items():
            out[f"saturated/{name}"] = sat / total if total else 0.0
        for name, calls in self.entropy.items():
            for h, e in enumerate(np.mean(calls, axis=0)):
                out[f"attn_entropy/{name}/head{h}"] = float(e)
        return out


def _relu_wrapper(acts: Activations, name: str, f, mod):
    def forward(*args, **kwargs):
        out = f(mod, *args, **kwargs)
        acts.relu(name, out.data)
        return out
    return forward


def _squash_wrapper(acts: Activations, name: str, f, mod, low: float, high: float):
    def forward(*args, **kwargs):
        out = f(mod, *args, **kwargs)
        acts.squash(name, out.data, low, high)
        return out
    return forward


def _ffn_wrapper(acts: Activations, name: str, f, mod):
    """A Transformer layer's linear2: its input is the (fused) ReLU's output."""
    def forward(x, *args, **kwargs):
        acts.relu(name, x.data)
        return f(mod, x, *args, **kwargs)
    return forward


def _attention_wrapper(acts: Activations, name: str, f, mod):
    """Ask the fused op for the per-head probabilities it computes anyway (no extra work);
    give the caller what it asked for."""
    def forward(*args, **kwargs):
        if kwargs.get("cache") is not None or len(args) > 6:  # decoding, or need_weights given positionally
            return f(mod, *args, **kwargs)
        wanted, average = kwargs.get("need_weights", False), kwargs.get("average_attn_weights", True)
        out, w = f(mod, *args, **{**kwargs, "need_weights": True, "average_attn_weights": False})
        acts.attention(name, w.data)
        if not wanted:
            return out
        return out, (w.mean(axis=1) if average else w)
    return forward


@contextmanager
def capture(model: Module):
    """``with capture(model) as acts: loss = task.train_step(batch)``; then ``acts.stats()``."""
    acts = Activations()
    pairs = []
    for name, mod in model.named_modules():
        name = name or "(model)"
        f = type(mod).forward
        if isinstance(mod, ReLU):
            wrapper = _relu_wrapper(acts, name, f, mod)
        elif isinstance(mod, Tanh):
            wrapper = _squash_wrapper(acts, name, f, mod, -SATURATION, SATURATION)
        elif isinstance(mod, Sigmoid):
            wrapper = _squash_wrapper(acts, name, f, mod, 1 - SATURATION, SATURATION)
        elif isinstance(mod, MultiHeadAttention):
            wrapper = _attention_wrapper(acts, name, f, mod)
        elif isinstance(mod, (TransformerEncoderLayer, TransformerDecoderLayer)) and mod.activation == "relu":
            target = mod.linear2
            pairs.append((target, _ffn_wrapper(acts, f"{name}.ffn", type(target).forward, target)))
            continue
        else:
            continue
        pairs.append((mod, wrapper))
    with shadowed_forwards(pairs):
        yield acts


class Probe:
    """Gradient norms and the weights, taken before the optimizer step; ``finish()`` after it
    returns the health entries of that step, once (it reuses the weight copies for the updates).
    ``activations``: what ``capture`` recorded."""

    def __init__(self, model: Module, activations: Activations | None = None):
        self.params = list(model.named_parameters())
        self.grad_norms = {n: _norm(p.grad) for n, p in self.params if p.grad is not None}
        self.before = {n: np.array(to_host(p.data), copy=True) for n, p in self.params}   # host snapshots
        self.activations = activations

    def finish(self, lr: float | None = None) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        if lr is not None:
            out["lr"] = float(lr)
        for n, p in self.params:
            w0 = self.before[n]
            w_norm = _norm(w0)
            if n in self.grad_norms:
                out[f"grad_norm/{n}"] = self.grad_norms[n]
            out[f"weight_norm/{n}"] = w_norm
            step = _norm(np.subtract(to_host(p.data), w0, out=w0))  # the snapshot is not needed any more  # the snapshot is not needed any more
            # None where the ratio has no meaning: a zero weight (a bias at init) or no update at all
            out[f"update_ratio/{n}"] = math.log10(step / w_norm) if step > 0 and w_norm > 0 else None
        if self.activations is not None:
            out.update(self.activations.stats())
        return out
