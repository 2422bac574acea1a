"""Neural-network functions over Tensors (``import npdl.functional as F``).

Each is defined once, beside its primitive in ``npdl.core.ops``; this module only gathers them.
Random functions take an explicit ``rng`` (npdl's default generator when None).
"""
from npdl.core.ops.attention_ops import scaled_dot_product_attention
from npdl.core.ops.elementwise import gelu, leaky_relu, masked_fill, relu, sigmoid, tanh
from npdl.core.ops.losses import binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss
from npdl.core.ops.matmul import linear
from npdl.core.ops.movement import embedding, pad
from npdl.core.ops.nn import causal_mask, dropout, layer_norm, log_softmax, one_hot, softmax
from npdl.core.ops.reductions import logsumexp

__all__ = [
    "relu", "leaky_relu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "logsumexp",
    "dropout", "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss",
    "l1_loss", "embedding", "linear", "one_hot", "layer_norm", "scaled_dot_product_attention",
    "causal_mask", "masked_fill", "pad",
]
