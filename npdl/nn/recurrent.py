"""Recurrent sequence layers: ``rnn``, ``lstm``, ``gru`` (multi-layer, bidirectional, variable lengths).

Each layer and direction is one fused graph node (``npdl.core.ops.recurrent``,
``recurrent_lstm``, ``recurrent_gru``): one GEMM for the input projection of all time
steps, a NumPy loop over time with preallocated buffers, and a hand-written backward. Each layer keeps a
small dict of work buffers per (layer, direction) that the ops reuse from one step to the
next once nothing references them (so a layer instance is not for concurrent use from
several threads).

Interface and weights follow ``torch.nn.RNN/LSTM/GRU`` -- names ``weight_ih_l{k}``
(G*H, I), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` with a
``_reverse`` suffix for the backward direction, gate orders LSTM i, f, g, o and GRU r, z, n,
init U(-1/sqrt(H), 1/sqrt(H)) -- so ``layer.load_state_dict(torch_layer.state_dict())``
(tensors converted with ``.detach().numpy()``) works. Two deliberate differences:

* ``batch_first`` defaults to True (configs and the rest of npdl are batch-major);
  PyTorch's default is False, and ``batch_first=False`` gives its time-major layout.
* The argument order is ``(hidden_size, input_size=None)`` like ``Linear``: input_size may
  be left out and is then taken from the first input. Pass keywords to be unambiguous
  (a PyTorch-ordered call with different sizes fails on the first input, naming the order).
* Every argument after input_size is keyword-only.

Variable lengths: ``lengths`` (B,) or ``mask`` (B, T) bool (True = real token, left-
aligned; the mask is always batch-major). A padded step leaves the state unchanged and
outputs zeros, so the final state is each sequence's state at its last real token and
the reverse direction starts there -- what PyTorch computes with
``pack_padded_sequence(..., enforce_sorted=False)``. (A mask with gaps is accepted too:
every padded step, wherever it is, is skipped that way.)
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core import backend
from npdl.core.ops.movement import concat, stack
from npdl.core.tensor import Tensor
from npdl.nn.module import Module
from npdl.nn.recurrent_cells import (GATES, GRUCell, LSTMCell, RNNCell, as_state, check_features, check_nonlinearity,
                                     init_missing, recur)
from npdl.registry import LAYERS
from npdl.schema import PositiveInt, Probability

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "lengths_to_mask"]


def lengths_to_mask(lengths, t_len: int) -> np.ndarray:
    """(B,) integer lengths -> (B, T) boolean mask, True at the first ``lengths[b]`` steps.

    Raises:
        ValueError: lengths that are not a 1-D integer array, or outside [0, T].
    """
    lens = backend.asarray(lengths)
    xp = backend.get_array_module(lens)
    if lens.ndim != 1 or lens.dtype.kind not in "iu":
        raise ValueError(f"lengths must be a 1-D integer array (B,), got {lens.dtype} of shape {lens.shape}")
    if xp is np and lens.size and (lens.min() < 0 or lens.max() > t_len):   # (on a device: no host round trip)
        raise ValueError(f"lengths must lie in [0, T={t_len}], got min {lens.min()} and max {lens.max()}")
    return xp.arange(t_len)[None, :] < lens[:, None]


class _RecurrentBase(Module):
    mode = "rnn"

    def __init__(self, hidden_size, input_size, num_layers, bias, batch_first, dropout, bidirectional, rng,
                 nonlinearity="tanh"):
        super().__init__()
        name = self.mode
        if int(hidden_size) < 1 or int(num_layers) < 1:
            raise ValueError(f"{name}: hidden_size and num_layers must be positive, got {hidden_size}, {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        check_nonlinearity(nonlinearity)
        self.hidden_size, self.input_size, self.num_layers = int(hidden_size), input_size, int(num_layers)
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.nonlinearity = bidirectional, nonlinearity
        self.num_directions = 2 if bidirectional else 1
        self._rng = rng
        # one buffer dict per (layer, direction): the fused ops reuse their multi-megabyte
        # buffers across steps instead of page-faulting fresh ones (see npdl.core.ops.recurrent)
        self._workspaces = [{} for _ in range(self.num_layers * self.num_directions)]
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                for pname in self._names(k, d):
                    self._parameters[pname] = None   # PyTorch's order, filled by _materialize
        if input_size is not None:
            self._materialize(input_size)

    def _names(self, k: int, d: int) -> list[str]:
        sfx = f"_l{k}" + ("_reverse" if d else "")
        names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
        return names + ([f"bias_ih{sfx}", f"bias_hh{sfx}"] if self.bias else [])

    def _materialize(self, input_size: int) -> None:
        self.input_size = input_size
        h = self.hidden_size
        gh = GATES[self.mode] * h
        shapes = {}
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                w_ih, w_hh, *biases = self._names(k, d)
                shapes[w_ih] = (gh, input_size if k == 0 else h * self.num_directions)
                shapes[w_hh] = (gh, h)
                shapes.update((b, (gh,)) for b in biases)
        init_missing(self, shapes, h, self._rng)

    def _time_mask(self, lengths, mask, b: int, t_len: int):
        """(T, B) boolean mask for the fused ops, or None when no step is padded."""
        if lengths is not None and mask is not None:
            raise ValueError(f"{self.mode}: pass either lengths or mask, not both")
        if lengths is not None:
            m = lengths_to_mask(lengths, t_len)
            if m.shape[0] != b:
                raise ValueError(f"{self.mode}: lengths has {m.shape[0]} entries for a batch of {b}")
        elif mask is not None:
            m = backend.asarray(mask)
            if m.dtype != bool or m.shape != (b, t_len):
                raise ValueError(f"{self.mode}: mask must be boolean (B, T) = {(b, t_len)} (True = real token; "
                                 f"batch-major even when batch_first=False), got {m.dtype} {m.shape}")
        else:
            return None
        if type(m) is np.ndarray and m.all():   # (on a device the mask is used as it is: no host round trip)
            return None
        return backend.get_array_module(m).ascontiguousarray(m.T)

    def _initial(self, state, b: int, dtype):
        """Per (layer, direction) initial h (and c) tensors from a (L*D, B, H) state or zeros."""
        shape = (self.num_layers * self.num_directions, b, self.hidden_size)
        if self.mode == "lstm":
            if state is not None and not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise ValueError("lstm: state must be a pair (h_0, c_0), each (num_layers * num_directions, B, H)")
            h0, c0 = (None, None) if state is None else state
            cs = self._split(as_state(c0, shape, dtype, "lstm: c_0"), c0 is None)
        else:
            h0, cs = state, [None] * shape[0]
        return self._split(as_state(h0, shape, dtype, f"{self.mode}: h_0"), h0 is None), cs

    @staticmethod
    def _split(s: Tensor, zeros: bool) -> list:
        if zeros:  # constants: no graph nodes for the default state
            return [s.data[i] for i in range(s.shape[0])]
        return [s[i] for i in range(s.shape[0])]

    def forward(self, x: Tensor, state=None, lengths=None, mask=None):
        """x (B, T, I) (or (T, B, I) with batch_first=False) -> (output, final state).

        output: (B, T, D*H) (or (T, B, D*H)), zero at padded steps; final state h_n
        (num_layers*D, B, H), for the LSTM a pair (h_n, c_n). ``state`` has the same form
        (zeros when None); pass the previous final state (detached) to carry it across batches.

        Raises:
            ValueError: an input that is not 3-D or whose feature size differs from
                input_size; a state, lengths or mask of the wrong shape.
        """
        x = x if isinstance(x, Tensor) else Tensor(backend.asarray(x))
        if x.ndim != 3:
            layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"{self.mode}: input must be {layout}, got shape {tuple(x.shape)}")
        if self._parameters["weight_ih_l0"] is None:
            self._materialize(x.shape[-1])
        self.input_size = self.weight_ih_l0.shape[1]   # also after loading weights into a lazy layer
        check_features(self.mode, x.shape[-1], self.input_size)
        if self.batch_first:
            x = x.transpose(1, 0, 2)           # time-major (T, B, I) for the recurrence
        t_len, b = x.shape[0], x.shape[1]
        m = self._time_mask(lengths, mask, b, t_len)
        h0s, c0s = self._initial(state, b, self.weight_hh_l0.dtype)
        p = self._parameters
        hn, cn = [], []
        layer_in = x
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0.0:
                layer_in = F.dropout(layer_in, self.dropout, self.training)
            outs = []
            for d in range(self.num_directions):
                weights = [p[n] for n in self._names(k, d)]
                i = k * self.num_directions + d
                hs, h, c = recur(self.mode, layer_in, h0s[i], c0s[i], weights, m, d == 1, self.nonlinearity,
                                 self._workspaces[i])
                outs.append(hs)
                hn.append(h)
                cn.append(c)
            layer_in = outs[0] if len(outs) == 1 else concat(outs, axis=-1)
        out = layer_in.transpose(1, 0, 2) if self.batch_first else layer_in
        h_n = stack(hn, axis=0)
        return out, ((h_n, stack(cn, axis=0)) if self.mode == "lstm" else h_n)

    def extra_repr(self) -> str:
        s = f"input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}"
        if self.mode == "rnn" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            s += ", bias=False"
        s += f", batch_first={self.batch_first}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + (", bidirectional=True" if self.bidirectional else "")


@LAYERS.register("rnn")
class RNN(_RecurrentBase):
    """Elman RNN over a sequence: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act tanh or relu.

    ``(x, state=None, lengths=None, mask=None) -> (output, h_n)``; see the module docstring
    for shapes, variable lengths and the differences from ``torch.nn.RNN``.

    Raises:
        ValueError: a non-positive size, dropout outside [0, 1], an unknown nonlinearity.
    """

    mode = "rnn"

    def __init__(self, hidden_size: PositiveInt, input_size: PositiveInt | None = None, *,
                 num_layers: PositiveInt = 1, nonlinearity: Literal["tanh", "relu"] = "tanh", bias: bool = True,
                 batch_first: bool = True, dropout: Probability = 0.0, bidirectional: bool = False,
                 rng: np.random.Generator | None = None):
        super().__init__(hidden_size, input_size, num_layers, bias, batch_first, dropout, bidirectional, rng,
                         nonlinearity)


@LAYERS.register("lstm")
class LSTM(_RecurrentBase):
    """LSTM over a sequence (Hochreiter & Schmidhuber 1997; gates i, f, g, o as in PyTorch).

    ``(x, state=None, lengths=None, mask=None) -> (output, (h_n, c_n))``; ``state`` is a pair
    ``(h_0, c_0)``. ``dropout`` applies between stacked layers, not after the last.

    Raises:
        ValueError: a non-positive size or dropout outside [0, 1].
    """

    mode = "lstm"

    def __init__(self, hidden_size: PositiveInt, input_size: PositiveInt | None = None, *,
                 num_layers: PositiveInt = 1, bias: bool = True, batch_first: bool = True,
                 dropout: Probability = 0.0, bidirectional: bool = False, rng: np.random.Generator | None = None):
        super().__init__(hidden_size, input_size, num_layers, bias, batch_first, dropout, bidirectional, rng)


@LAYERS.register("gru")
class GRU(_RecurrentBase):
    """GRU over a sequence (Cho et al. 2014; PyTorch's form with b_hn inside the reset product).

    ``(x, state=None, lengths=None, mask=None) -> (output, h_n)``.

    Raises:
        ValueError: a non-positive size or dropout outside [0, 1].
    """

    mode = "gru"

    def __init__(self, hidden_size: PositiveInt, input_size: PositiveInt | None = None, *,
                 num_layers: PositiveInt = 1, bias: bool = True, batch_first: bool = True,
                 dropout: Probability = 0.0, bidirectional: bool = False, rng: np.random.Generator | None = None):
        super().__init__(hidden_size, input_size, num_layers, bias, batch_first, dropout, bidirectional, rng)
