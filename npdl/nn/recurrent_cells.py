"""One-step recurrent cells (``rnn_cell``, ``lstm_cell``, ``gru_cell``) and what the layers share.

A cell maps one input step and the previous state to the next state:
``cell(x (B, I), state) -> new state`` (for the LSTM the state is ``(h, c)``). Cells run
the same fused recurrence ops as the sequence layers (``npdl.core.ops.recurrent``) with
T = 1, so their math and gradients are the ones the gradchecks cover.

Parameter names, layouts, gate orders and init are PyTorch's (``weight_ih`` (G*H, I),
``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh``; LSTM i, f, g, o; GRU r, z, n;
U(-1/sqrt(H), 1/sqrt(H)) for every tensor), so its state dicts load directly.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

from npdl.core import backend
from npdl.core import random as _random
from npdl.core.ops.recurrent import RNNRecurrence
from npdl.core.ops.recurrent_gru import GRURecurrence
from npdl.core.ops.recurrent_lstm import LSTMRecurrence
from npdl.core.tensor import Tensor
from npdl.nn.module import Module, Parameter
from npdl.registry import LAYERS
from npdl.schema import PositiveInt

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def recur(mode: str, x: Tensor, h0, c0, weights: list, mask=None, reverse: bool = False,
          nonlinearity: str = "tanh", workspace: dict | None = None):
    """Run one fused recurrence: x (T, B, I) -> (hs (T, B, H), h_T, c_T or None).

    ``weights``: [w_ih, w_hh] or [w_ih, w_hh, b_ih, b_hh]. ``workspace``: a dict owned by
    the caller in which the op keeps its big buffers from one call to the next.
    """
    kw = {"mask": mask, "reverse": reverse, "workspace": workspace}
    if mode == "lstm":
        return LSTMRecurrence.apply(x, h0, c0, *weights, **kw)
    if mode == "gru":
        hs, h = GRURecurrence.apply(x, h0, *weights, **kw)
    else:
        hs, h = RNNRecurrence.apply(x, h0, *weights, nonlinearity=nonlinearity, **kw)
    return hs, h, None


def as_state(value, shape: tuple[int, ...], dtype, what: str) -> Tensor:
    """A caller's initial state as a Tensor of ``shape``; zeros (a constant) when None.

    Raises:
        ValueError: the state has another shape.
    """
    if value is None:
        return Tensor(np.zeros(shape, dtype), dtype=dtype)
    t = value if isinstance(value, Tensor) else Tensor(backend.asarray(value), dtype=dtype)
    if tuple(t.shape) != shape:
        raise ValueError(f"{what} must have shape {shape}, got {tuple(t.shape)}")
    return t


def check_features(layer: str, got: int, expected: int) -> None:
    """Raises ValueError when an input's feature size disagrees with the layer's input_size."""
    if got != expected:
        raise ValueError(f"{layer}: input has {got} features but the layer was built for input_size={expected} "
                         f"(note the argument order: hidden_size first, then input_size, as in Linear)")


def check_nonlinearity(nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def init_missing(module: Module, shapes: dict[str, tuple[int, ...]], hidden_size: int, rng) -> None:
    """Create ``module``'s not-yet-materialised parameters from U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's RNN init)."""
    rng = _random.resolve(rng)
    bound = 1.0 / math.sqrt(hidden_size)
    for name, shape in shapes.items():
        if module._parameters.get(name) is None:
            setattr(module, name, Parameter(rng.uniform(-bound, bound, shape).astype(np.float32)))


class _Cell(Module):
    mode = "rnn"

    def __init__(self, hidden_size: int, input_size: int | None, bias: bool, rng, nonlinearity: str = "tanh"):
        super().__init__()
        if int(hidden_size) < 1:
            raise ValueError(f"{self.mode}_cell: hidden_size must be a positive integer, got {hidden_size}")
        check_nonlinearity(nonlinearity)
        self.hidden_size, self.input_size = int(hidden_size), input_size
        self.bias, self.nonlinearity = bias, nonlinearity
        self._rng = rng
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
        for name in names:
            self._parameters[name] = None
        if input_size is not None:
            self._materialize(input_size)

    def _materialize(self, input_size: int) -> None:
        gh, h = GATES[self.mode] * self.hidden_size, self.hidden_size
        self.input_size = input_size
        shapes = {"weight_ih": (gh, input_size), "weight_hh": (gh, h), "bias_ih": (gh,), "bias_hh": (gh,)}
        init_missing(self, {n: shapes[n] for n in self._parameters}, h, self._rng)

    def _step(self, x, state):
        """x (B, I) -> (h, c or None) of one step.

        Raises:
            ValueError: x not (B, input_size), or a state not (B, hidden_size) (a pair for the LSTM).
        """
        x = x if isinstance(x, Tensor) else Tensor(backend.asarray(x))
        if x.ndim != 2:
            raise ValueError(f"{self.mode}_cell: input must be (B, input_size), got shape {tuple(x.shape)}")
        if self._parameters["weight_ih"] is None:
            self._materialize(x.shape[-1])
        w_ih = self.weight_ih
        check_features(f"{self.mode}_cell", x.shape[-1], w_ih.shape[1])
        b, h, dtype = x.shape[0], self.hidden_size, w_ih.dtype
        if self.mode == "lstm":
            if state is not None and not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise ValueError("lstm_cell: state must be a pair (h, c) of (B, hidden_size) arrays")
            h0, c0 = (None, None) if state is None else state
            c0 = as_state(c0, (b, h), dtype, "lstm_cell: c")
        else:
            h0, c0 = state, None
        h0 = as_state(h0, (b, h), dtype, f"{self.mode}_cell: h")
        weights = list(self._parameters.values())     # weight_ih, weight_hh[, bias_ih, bias_hh]
        _, h1, c1 = recur(self.mode, x.reshape(1, b, x.shape[-1]), h0, c0, weights, nonlinearity=self.nonlinearity)
        return h1, c1

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, bias={self.bias}"


@LAYERS.register("rnn_cell")
class RNNCell(_Cell):
    """One Elman RNN step: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu.

    ``cell(x (B, I), h (B, H) | None) -> h' (B, H)``; h defaults to zeros. ``input_size``
    may be left out: the weights are then created on the first call (like ``Linear``).
    Note the argument order (hidden_size first), which differs from PyTorch's.
    """

    mode = "rnn"

    def __init__(self, hidden_size: PositiveInt, input_size: PositiveInt | None = None, *, bias: bool = True,
                 nonlinearity: Literal["tanh", "relu"] = "tanh", rng: np.random.Generator | None = None):
        super().__init__(hidden_size, input_size, bias, rng, nonlinearity)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        return self._step(x, state)[0]


@LAYERS.register("lstm_cell")
class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o): ``cell(x (B, I), (h, c) | None) -> (h', c')``, each (B, H).

    c' = f * c + i * g, h' = o * tanh(c'). The state defaults to zeros; ``input_size`` may be
    inferred on the first call.
    """

    mode = "lstm"

    def __init__(self, hidden_size: PositiveInt, input_size: PositiveInt | None = None, *, bias: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__(hidden_size, input_size, bias, rng)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        return self._step(x, state)


@LAYERS.register("gru_cell")
class GRUCell(_Cell):
    """One GRU step (gates r, z, n, PyTorch's form): ``cell(x (B, I), h | None) -> h' (B, H)``.

    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
    """

    mode = "gru"

    def __init__(self, hidden_size: PositiveInt, input_size: PositiveInt | None = None, *, bias: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__(hidden_size, input_size, bias, rng)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        return self._step(x, state)[0]
