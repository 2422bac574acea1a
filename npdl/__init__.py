"""npdl: deep learning from the ground up in NumPy.

The public names are thin re-exports over ``npdl.core``::

    import npdl
    import npdl.functional as F
    x = npdl.randn(4, 3, requires_grad=True)
    F.relu(x @ npdl.ones(3, 2)).sum().backward()
"""
from npdl import core as _core  # noqa: F401  (sets up Tensor before the rest)
from npdl.core.autograd import Function
from npdl.core.gradcheck import GradcheckError, gradcheck
from npdl.core.grad_mode import enable_grad, is_grad_enabled, no_grad
from npdl.core.creation import arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from npdl.core.math import (abs, broadcast_to, clip, concat, exp, log, logsumexp, matmul, max, maximum, mean,
                            min, minimum, pad, relu, reshape, sigmoid, split, sqrt, stack, sum, take, tanh,
                            transpose, var, where)
from npdl.core.random import default_rng, get_rng_state, manual_seed, set_rng_state
from npdl.core.sparse import RowSparseGrad
from npdl.core.tensor import Tensor

float32 = "float32"
float64 = "float64"
__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "randn", "rand", "arange", "zeros_like", "ones_like",
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "clip", "maximum", "minimum", "where",
    "matmul", "sum", "mean", "max", "min", "var", "logsumexp", "concat", "stack", "split", "pad", "take",
    "reshape", "transpose", "broadcast_to", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
    "GradcheckError", "Function", "manual_seed", "default_rng", "get_rng_state", "set_rng_state",
    "RowSparseGrad",
]
