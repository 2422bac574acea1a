"""Primitive differentiable ops, by kind: elementwise | reductions | movement | matmul | nn | losses."""
