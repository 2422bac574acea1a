"""The engine: Tensor, autograd, primitive ops, functional, gradcheck. Imports nothing else of npdl.

``tensor`` is imported first on purpose: ``autograd`` and the ops need ``Tensor`` defined
(tensor.py pulls them in at its bottom).
"""
from npdl.core import tensor as _tensor  # noqa: F401  (must come first)
from npdl.core.autograd import Function, GradientShapeError, backward  # noqa: F401
from npdl.core.grad_mode import enable_grad, is_grad_enabled, no_grad  # noqa: F401
