"""Weight initialisers. Each fills a Parameter in place from an explicit Generator and returns it.

Fan-in/fan-out follow PyTorch's layout: a (out, in) linear weight has fan_in = in; a
(out, in, kh, kw) conv weight has fan_in = in * kh * kw.
"""
from __future__ import annotations

import math

import numpy as np

from npdl.core import backend
from npdl.core import random as _random
from npdl.core.tensor import Tensor

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0),
          "selu": 0.75}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity (He et al. 2015 for relu; leaky_relu uses its slope)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity '{nonlinearity}' (known: {', '.join(sorted(_GAINS))}, leaky_relu)")
    return _GAINS[nonlinearity]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``."""
    if len(shape) < 1:
        raise ValueError("fan in/out needs a tensor with at least one dimension")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    """Write host ``values`` (drawn from a host generator) into ``t``, wherever it lives: the
    same numbers on every device."""
    values = values.astype(t.data.dtype, copy=False)
    t.data[...] = values if type(t.data) is np.ndarray else backend.to_device(values, backend.device_of(t.data))
    return t


def uniform_(t: Tensor, low: float = 0.0, high: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    return _fill(t, _random.resolve(rng).uniform(low, high, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    return _fill(t, _random.resolve(rng).normal(mean, std, t.shape))


def zeros_(t: Tensor) -> Tensor:
    t.data[...] = 0
    return t


def ones_(t: Tensor) -> Tensor:
    t.data[...] = 1
    return t


def constant_(t: Tensor, value: float) -> Tensor:
    t.data[...] = value
    return t


def xavier_uniform_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(t.shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, rng)


def xavier_normal_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(t.shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def _fan(t: Tensor, mode: str) -> int:
    fan_in, fan_out = fans(t.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     rng: np.random.Generator | None = None) -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al. 2015, arXiv:1502.01852)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound, rng)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    rng: np.random.Generator | None = None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan) (He et al. 2015)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    return normal_(t, 0.0, std, rng)


he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


def lecun_normal_(t: Tensor, rng: np.random.Generator | None = None) -> Tensor:
    """N(0, 1 / fan_in) (LeCun et al. 1998, "Efficient BackProp")."""
    return normal_(t, 0.0, 1.0 / math.sqrt(fans(t.shape)[0]), rng)


def lecun_uniform_(t: Tensor, rng: np.random.Generator | None = None) -> Tensor:
    """U(-sqrt(3 / fan_in), sqrt(3 / fan_in))."""
    b = math.sqrt(3.0 / fans(t.shape)[0])
    return uniform_(t, -b, b, rng)


def orthogonal_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR of a Gaussian (Saxe et al. 2014, arXiv:1312.6120).

    Tensors with more than two dims are flattened to (shape[0], rest) first.
    """
    if t.ndim < 2:
        raise ValueError("orthogonal_ needs a tensor with at least 2 dimensions")
    rows, cols = t.shape[0], int(np.prod(t.shape[1:]))
    g = _random.resolve(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(g)
    q *= np.sign(np.diag(r))  # make the decomposition unique so the draw is uniform
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(t.shape))


# the other names these initialisers go by (Glorot & Bengio 2010; He et al. 2015)
glorot_uniform_, glorot_normal_ = xavier_uniform_, xavier_normal_
he_uniform_, he_normal_ = kaiming_uniform_, kaiming_normal_
