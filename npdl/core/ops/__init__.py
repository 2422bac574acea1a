"""Primitive differentiable ops, by kind: elementwise | reductions | movement | matmul | nn | losses,
and the fused layer kernels (conv, pool, recurrent*, attention_ops, block_ops).

Each ``Function`` sits beside its public function (``Exp`` and ``exp``); ``npdl``'s names,
``npdl.functional`` and the Tensor methods are those functions, re-exported or bound.
"""
