"""The engine: Tensor, autograd, primitive ops, gradcheck. Imports nothing else of npdl.

Its modules import one way: ``tensor`` (the array and its graph links) <- ``autograd``
(``Function``, ``backward``) <- ``ops/*`` (each op's ``Function`` beside its public function)
<- ``methods`` (binds those functions onto ``Tensor`` as its methods).
"""
from npdl.core import methods as _methods  # noqa: F401  (gives Tensor its op methods)
from npdl.core.autograd import Function, GradientShapeError, backward  # noqa: F401
from npdl.core.grad_mode import enable_grad, is_grad_enabled, no_grad  # noqa: F401
