"""npdl: deep learning from the ground up in NumPy.

The public names are re-exports of ``npdl.core`` (each op's function is defined once, beside
its primitive in ``npdl.core.ops``)::

    import npdl
    import npdl.functional as F
    x = npdl.randn(4, 3, requires_grad=True)
    F.relu(x @ npdl.ones(3, 2)).sum().backward()

Experiments from Python (``npdl.api``, loaded on first use: the core never imports it)::

    run = npdl.fit("configs/quickstart.yaml", **{"train.epochs": 5})
    run.evaluate("test")
"""
from npdl.core.autograd import Function
from npdl.core.backend import Device, DeviceError, device, get_array_module, get_default_device, set_default_device
from npdl.core.gradcheck import GradcheckError, gradcheck
from npdl.core.grad_mode import enable_grad, is_grad_enabled, no_grad
from npdl.core.creation import arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from npdl.core.ops.elementwise import abs, clip, exp, log, maximum, minimum, relu, sigmoid, sqrt, tanh, where
from npdl.core.ops.matmul import matmul
from npdl.core.ops.movement import broadcast_to, concat, pad, reshape, split, stack, take, transpose
from npdl.core.ops.reductions import logsumexp, max, mean, min, sum, var
from npdl.core.random import default_rng, get_rng_state, manual_seed, set_rng_state
from npdl.core.sparse import RowSparseGrad
from npdl.core.tensor import Tensor


def __getattr__(name: str):
    """``npdl.fit`` (``npdl.api.train``: ``npdl train`` from Python) and ``npdl.Run``, imported on
    first use so that ``import npdl`` stays the engine alone. (Not ``npdl.train``: that name is
    the ``npdl/train/`` package.)"""
    import importlib

    if name == "fit":
        return importlib.import_module("npdl.api").train
    if name == "Run":
        return importlib.import_module("npdl.api").Run
    raise AttributeError(f"module 'npdl' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "randn", "rand", "arange", "zeros_like", "ones_like",
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "clip", "maximum", "minimum", "where",
    "matmul", "sum", "mean", "max", "min", "var", "logsumexp", "concat", "stack", "split", "pad", "take",
    "reshape", "transpose", "broadcast_to", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
    "GradcheckError", "Function", "manual_seed", "default_rng", "get_rng_state", "set_rng_state",
    "RowSparseGrad", "fit", "Run", "device", "Device", "DeviceError", "get_default_device", "set_default_device",
    "get_array_module",
]
