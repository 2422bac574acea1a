"""Tensor's op methods: each *is* its op's public function from ``npdl.core.ops``, bound as is.

``x.exp()`` calls the very function ``npdl.exp`` names, so each op is defined once (beside its
``Function``) and a method costs no extra call. ``tensor.py`` cannot import the ops (they import
it), so this module, above both, binds them; ``npdl/core/__init__.py`` imports it, which every
``import npdl...`` runs first. The reflected operators (``2 - x``) are the only code here: they
put the operands back in order for the same ``Function``.
"""
from __future__ import annotations

import numpy as np

from npdl.core import autograd
from npdl.core.ops import device as dev
from npdl.core.ops import elementwise as ew
from npdl.core.ops import matmul as mm
from npdl.core.ops import movement as mv
from npdl.core.ops import nn
from npdl.core.ops import reductions as red
from npdl.core.tensor import Tensor


def _radd(x, other):
    return ew.Add.apply(other, x)


def _rsub(x, other):
    return ew.Sub.apply(other, x)


def _rmul(x, other):
    return ew.Mul.apply(other, x)


def _rtruediv(x, other):
    return ew.Div.apply(other, x)


def _rpow(x, base):
    return ew.Pow.apply(base, x)


def _rmatmul(x, other):
    return mm.MatMul.apply(other, x)


def _float(x):
    return ew.astype(x, np.float32)


def _double(x):
    return ew.astype(x, np.float64)


# autograd
Tensor.backward = autograd.backward
# arithmetic
Tensor.__add__, Tensor.__radd__ = ew.add, _radd
Tensor.__sub__, Tensor.__rsub__ = ew.sub, _rsub
Tensor.__mul__, Tensor.__rmul__ = ew.mul, _rmul
Tensor.__truediv__, Tensor.__rtruediv__ = ew.div, _rtruediv
Tensor.__pow__, Tensor.__rpow__ = ew.power, _rpow
Tensor.__neg__ = ew.neg
Tensor.__matmul__, Tensor.__rmatmul__ = mm.matmul, _rmatmul
# elementwise math
Tensor.exp = ew.exp
Tensor.log = ew.log
Tensor.sqrt = ew.sqrt
Tensor.abs = ew.abs
Tensor.tanh = ew.tanh
Tensor.sigmoid = ew.sigmoid
Tensor.relu = ew.relu
Tensor.clip = ew.clip
Tensor.maximum = ew.maximum
Tensor.minimum = ew.minimum
Tensor.masked_fill = ew.masked_fill
Tensor.astype = ew.astype
Tensor.float = _float
Tensor.to = dev.to
Tensor.double = _double
# reductions
Tensor.sum = red.sum
Tensor.mean = red.mean
Tensor.max = red.max
Tensor.min = red.min
Tensor.var = red.var
Tensor.logsumexp = red.logsumexp
Tensor.softmax = nn.softmax
Tensor.log_softmax = nn.log_softmax
# shape and movement
Tensor.reshape = Tensor.view = mv.reshape
Tensor.squeeze = mv.squeeze
Tensor.unsqueeze = mv.unsqueeze
Tensor.flatten = mv.flatten
Tensor.transpose = mv.transpose
Tensor.T = property(mv.transpose, doc="All axes reversed (like ``ndarray.T``).")
Tensor.permute = mv.permute
Tensor.swapaxes = mv.swapaxes
Tensor.broadcast_to = mv.broadcast_to
Tensor.expand = mv.expand
Tensor.__getitem__ = mv.getitem
Tensor.take = mv.take
Tensor.split = mv.split
Tensor.pad = mv.pad
