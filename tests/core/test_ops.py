"""One table-driven float64 gradcheck over every primitive op and functional.

Each case names the op, builds float64 inputs (requires_grad) with a seeded generator and
gives the function to check. Cases cover broadcast shapes, size-1 and 0-d tensors,
repeated indices, boolean masks and ignore_index. A guard fails naming any ``Function``
defined anywhere in npdl that no case runs.
"""
from __future__ import annotations

import collections
import functools
import importlib
import pkgutil

import numpy as np
import pytest

import npdl
import npdl.functional as F
from npdl.core.ops.block_ops import DropoutAdd, LinearReLU, ResidualLayerNorm
from npdl.core.ops.conv import BatchNorm, Conv2d
from npdl.core.ops.pool import AvgPool2d, MaxPool2d
from npdl.core.ops.recurrent import RNNRecurrence
from npdl.core.ops.recurrent_gru import GRURecurrence
from npdl.core.ops.recurrent_lstm import LSTMRecurrence

F64 = np.float64


def t(*shape, seed=0, positive=False, scale=1.0, grad=True):
    rng = np.random.default_rng(seed + 17 * len(shape) + sum(shape))
    data = rng.standard_normal(shape) * scale
    if positive:
        data = np.abs(data) + 0.5
    return npdl.tensor(data, dtype=F64, requires_grad=grad)


def apart(*shape, seed=0):
    """Entries with distinct values at least 0.1 apart (max/min/abs/relu stay differentiable)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    vals = (rng.permutation(n) - n / 2 + 0.5) * 0.1 + 0.013
    return npdl.tensor(vals.reshape(shape), dtype=F64, requires_grad=True)


IDX = np.array([0, 2, 2, 1, 0, 2])          # repeated indices accumulate
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, True, False]])
CE_TARGETS = np.array([[1, 0, 3], [2, 3, 3]])
CE_IGNORE = np.array([[1, -100, 3], [-100, 3, 0]])
ATTN_MASK = np.array([[True, True, False, False], [True, True, True, False], [True, True, True, True]])
KPM = np.array([[True, True, True, False], [True, True, False, False]])[:, None, None, :]  # (B, 1, 1, Tk)


def _rng():
    return np.random.default_rng(3)


@functools.cache
def npdl_functions() -> dict[str, type]:
    """Every concrete ``Function`` subclass defined in npdl, by class name, wherever it lives.

    Imports every npdl module first (a model family's fused ops live beside the family, not in
    ``npdl.core.ops``). Names starting with ``_`` are abstract bases (``_Extreme``, ``_Fused``).
    """
    for info in pkgutil.walk_packages(npdl.__path__, "npdl."):
        if not info.name.endswith("__main__"):  # running it would start the CLI
            importlib.import_module(info.name)
    found, todo = [], list(npdl.Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("npdl.") and not cls.__name__.startswith("_"):
            found.append(cls)
    twice = [n for n, k in collections.Counter(c.__name__ for c in found).items() if k > 1]
    assert not twice, f"Function names defined more than once in npdl: {twice}"
    return {c.__name__: c for c in found}


def op(name: str) -> type:
    """A Function found by name: for ops outside npdl.core, whose module moves with their family."""
    return npdl_functions()[name]


def recurrence(kind: str):
    """(x, h0, [c0], w_ih, w_hh, b_ih, b_hh) at T=3, B=2, I=2, H=2 for a fused recurrent op."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    states = [t(2, 2, seed=1, scale=0.5)] + ([t(2, 2, seed=2, scale=0.5)] if kind == "lstm" else [])
    return [t(3, 2, 2, scale=0.7), *states, t(gates * 2, 2, seed=3, scale=0.7), t(gates * 2, 2, seed=4, scale=0.7),
            t(gates * 2, seed=5, scale=0.5), t(gates * 2, seed=6, scale=0.5)]


W2V_BATCH = dict(words=np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]), window=np.array([1, 2, 2, 1, 2, 1, 2, 2, 1, 2]),
                 segment=np.repeat(np.arange(2), [4, 6]), pool=np.array([0, 7, 8, 2, 5, 1]))
W2V_MASK = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1]], bool)


_OTHER_DEVICE = "emulated" if npdl.get_default_device() == "cpu" else "cpu"

CASES = {
    # arithmetic, with broadcasting both ways and 0-d operands
    "add": (lambda a, b: a + b, [t(3, 4), t(4, seed=1)]),
    "add_size1": (lambda a, b: a + b, [t(3, 1), t(1, 4, seed=1)]),
    "add_0d": (lambda a, b: a + b, [t(), t(2, 3, seed=1)]),
    "add_scalar": (lambda a: 2.5 + a, [t(2, 3)]),
    "sub": (lambda a, b: a - b, [t(2, 3), t(2, 1, seed=1)]),
    "rsub": (lambda a: 1.0 - a, [t(2, 3)]),
    "mul": (lambda a, b: a * b, [t(2, 3, 4), t(3, 1, seed=1)]),
    "div": (lambda a, b: a / b, [t(2, 3), t(3, seed=1, positive=True)]),
    "rdiv": (lambda a: 2.0 / a, [t(2, 3, positive=True)]),
    "pow_scalar": (lambda a: a ** 3, [t(2, 3)]),
    "pow_frac": (lambda a: a ** 0.5, [t(2, 3, positive=True)]),
    "pow_square": (lambda a: a ** 2, [t(4)]),
    "pow_fourth": (lambda a: a ** 4, [t(2, 3)]),
    "pow_reciprocal": (lambda a: a ** -1, [t(2, 3, positive=True)]),
    "pow_inverse_square": (lambda a: a ** -2, [t(2, 3, positive=True)]),
    "pow_rsqrt": (lambda a: a ** -0.5, [t(2, 3, positive=True)]),
    "pow_three_halves": (lambda a: a ** 1.5, [t(2, 3, positive=True)]),
    "pow_one": (lambda a: a ** 1 * a, [t(2, 3)]),
    "pow_zero": (lambda a: a ** 0 * a, [t(2, 3)]),
    "pow_general": (lambda a: a ** 2.7, [t(2, 3, positive=True)]),
    "pow_tensor": (lambda a, b: a ** b, [t(2, 3, positive=True), t(2, 3, seed=1)]),
    "rpow": (lambda b: 2.0 ** b, [t(2, 3)]),
    "neg": (lambda a: -a, [t(2, 3)]),
    "matmul_2d": (lambda a, b: a @ b, [t(3, 4), t(4, 5, seed=1)]),
    "matmul_1d_1d": (lambda a, b: a @ b, [t(4), t(4, seed=1)]),
    "matmul_1d_2d": (lambda a, b: a @ b, [t(4), t(4, 3, seed=1)]),
    "matmul_2d_1d": (lambda a, b: a @ b, [t(3, 4), t(4, seed=1)]),
    "matmul_batched": (lambda a, b: a @ b, [t(2, 3, 4), t(2, 4, 5, seed=1)]),
    "matmul_bcast_batch": (lambda a, b: a @ b, [t(2, 1, 3, 4), t(3, 4, 2, seed=1)]),
    "matmul_nd_2d": (lambda a, b: a @ b, [t(2, 3, 4), t(4, 2, seed=1)]),
    "matmul_2d_nd": (lambda a, b: a @ b, [t(3, 4), t(2, 4, 2, seed=1)]),
    "matmul_1d_nd": (lambda a, b: a @ b, [t(4), t(2, 4, 3, seed=1)]),
    "matmul_nd_1d": (lambda a, b: a @ b, [t(2, 3, 4), t(4, seed=1)]),
    # unary math and activations
    "exp": (lambda a: a.exp(), [t(2, 3)]),
    "log": (lambda a: a.log(), [t(2, 3, positive=True)]),
    "sqrt": (lambda a: a.sqrt(), [t(2, 3, positive=True)]),
    "abs": (lambda a: a.abs(), [apart(2, 3)]),
    "tanh": (lambda a: a.tanh(), [t(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), [t(2, 3)]),
    "relu": (lambda a: F.relu(a), [apart(3, 4)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, negative_slope=0.2), [apart(3, 4)]),
    "gelu_exact": (lambda a: F.gelu(a), [t(3, 4, scale=2.0)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [t(3, 4, scale=2.0)]),
    "clip": (lambda a: a.clip(-0.5, 0.6), [apart(3, 4)]),
    "clip_lower_only": (lambda a: npdl.clip(a, min=0.1), [apart(5)]),
    "maximum": (lambda a, b: npdl.maximum(a, b), [apart(3, 4), apart(4, seed=1)]),
    "minimum": (lambda a, b: npdl.minimum(a, b), [apart(3, 4), apart(3, 1, seed=1)]),
    "maximum_const": (lambda a: npdl.maximum(a, 0.05), [apart(3, 4)]),
    "where": (lambda a, b: npdl.where(MASK, a, b), [t(3, 4), t(4, seed=1)]),
    "masked_fill": (lambda a: a.masked_fill(MASK, -1.0), [t(3, 4)]),
    "masked_fill_bcast": (lambda a: a.masked_fill(np.array([True, False, True, False]), 0.0), [t(3, 4)]),
    # reductions
    "sum_all": (lambda a: a.sum(), [t(2, 3)]),
    "sum_axis": (lambda a: a.sum(axis=1), [t(2, 3, 4)]),
    "sum_tuple_keep": (lambda a: a.sum(axis=(0, 2), keepdims=True), [t(2, 3, 4)]),
    "sum_neg_axis": (lambda a: a.sum(axis=-1), [t(2, 3)]),
    "sum_0d": (lambda a: a.sum(), [t()]),
    "mean_all": (lambda a: a.mean(), [t(2, 3)]),
    "mean_axis": (lambda a: a.mean(axis=(0, 1)), [t(2, 3, 4)]),
    "max_all": (lambda a: a.max(), [apart(3, 4)]),
    "max_axis": (lambda a: a.max(axis=1), [apart(3, 4)]),
    "max_keep": (lambda a: a.max(axis=0, keepdims=True), [apart(3, 4)]),
    "min_axis": (lambda a: a.min(axis=(0, 2)), [apart(2, 3, 2)]),
    "var_all": (lambda a: a.var(), [t(3, 4)]),
    "var_axis_ddof": (lambda a: a.var(axis=1, ddof=1), [t(3, 4)]),
    "var_keep": (lambda a: a.var(axis=(0, 1), keepdims=True), [t(2, 3, 2)]),
    "logsumexp": (lambda a: a.logsumexp(axis=1), [t(3, 4)]),
    "logsumexp_all": (lambda a: F.logsumexp(a), [t(3, 4)]),
    # movement
    "reshape": (lambda a: a.reshape(4, 3) * npdl.arange(12, dtype=F64).reshape(4, 3), [t(2, 6)]),
    "reshape_neg1": (lambda a: a.reshape(-1), [t(2, 3)]),
    "transpose": (lambda a: a.transpose(2, 0, 1) @ npdl.ones(3, 1, dtype=F64), [t(2, 3, 4)]),
    "T": (lambda a: a.T @ npdl.ones(3, 2, dtype=F64), [t(3, 4)]),
    "permute": (lambda a: a.permute(1, 0, 2).reshape(3, 8), [t(2, 3, 4)]),
    "swapaxes": (lambda a: a.swapaxes(0, 2), [t(2, 3, 4)]),
    "broadcast_to": (lambda a: a.broadcast_to(2, 3, 4) * t(2, 3, 4, seed=5, grad=False), [t(3, 1)]),
    "expand": (lambda a: a.expand(2, -1, 4) * t(2, 3, 4, seed=5, grad=False), [t(3, 1)]),
    "squeeze": (lambda a: a.squeeze(1), [t(3, 1, 2)]),
    "unsqueeze": (lambda a: a.unsqueeze(0) * t(2, 3, seed=4, grad=False), [t(3)]),
    "flatten": (lambda a: a.flatten(1), [t(2, 3, 4)]),
    "getitem_slice": (lambda a: a[1:, ::2], [t(3, 4)]),
    "getitem_int": (lambda a: a[1], [t(3, 4)]),
    "getitem_ellipsis_none": (lambda a: a[..., None, 1], [t(2, 3)]),
    "getitem_int_array_repeat": (lambda a: a[IDX], [t(3, 4)]),
    "getitem_2d_int_arrays": (lambda a: a[np.array([0, 2, 0]), np.array([1, 1, 1])], [t(3, 4)]),
    "getitem_mixed_slice_array": (lambda a: a[:, np.array([3, 0, 3])], [t(3, 4)]),
    "getitem_bool_mask": (lambda a: a[MASK], [t(3, 4)]),
    "getitem_bool_rows": (lambda a: a[np.array([True, False, True])], [t(3, 4)]),
    "concat": (lambda a, b: npdl.concat([a, b, a], axis=1), [t(2, 3), t(2, 1, seed=1)]),
    "stack": (lambda a, b: npdl.stack([a, b], axis=1), [t(2, 3), t(2, 3, seed=1)]),
    "split_equal": (lambda a: npdl.split(a, 2, axis=1)[1] * 3.0, [t(2, 4)]),
    "split_indices": (lambda a: tuple(npdl.split(a, [1, 3], axis=0)), [t(4, 2)]),
    "split_one_used": (lambda a: a.split(3, axis=0)[0], [t(3, 2)]),
    "pad": (lambda a: npdl.pad(a, ((1, 0), (2, 1)), value=0.5), [t(2, 3)]),
    "pad_int": (lambda a: F.pad(a, 1), [t(2, 3)]),
    "take_rows_repeat": (lambda w: npdl.take(w, np.array([[0, 2], [2, 2]])), [t(3, 4)]),
    "take_axis1": (lambda w: w.take(np.array([3, 1, 3]), axis=1), [t(2, 4, 2)]),
    "embedding": (lambda w: F.embedding(w, np.array([[1, 1, 0], [3, 1, 1]])), [t(4, 3)]),
    "embedding_sparse": (lambda w: F.embedding(w, IDX, sparse=True), [t(3, 2)]),
    # neural-net functions
    "linear": (lambda x, w, b: F.linear(x, w, b), [t(2, 3, 4), t(5, 4, seed=1), t(5, seed=2)]),
    "linear_nobias": (lambda x, w: F.linear(x, w), [t(3, 4), t(2, 4, seed=1)]),
    "softmax": (lambda a: F.softmax(a, axis=1), [t(2, 3, 4)]),
    "softmax_large": (lambda a: F.softmax(a * 100.0), [t(2, 5)]),
    "log_softmax": (lambda a: F.log_softmax(a), [t(3, 4)]),
    "log_softmax_axis0": (lambda a: a.log_softmax(axis=0), [t(3, 4)]),
    "dropout": (lambda a: F.dropout(a, 0.4, training=True, rng=_rng()), [t(4, 5)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 4, w, b), [t(2, 3, 4), t(4, seed=1), t(4, seed=2)]),
    "layer_norm_2d_noaffine": (lambda x: F.layer_norm(x, (3, 4)), [t(2, 3, 4)]),
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
             [t(2, 3, 4), t(2, 5, 4, seed=1), t(2, 5, 3, seed=2)]),
    "sdpa_mask": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=ATTN_MASK),
                  [t(2, 2, 3, 4), t(2, 2, 4, 4, seed=1), t(2, 2, 4, 2, seed=2)]),
    "sdpa_causal_kpm": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=KPM, is_causal=True),
                        [t(2, 2, 4, 3), t(2, 2, 4, 3, seed=1), t(2, 2, 4, 3, seed=2)]),
    "sdpa_dropout": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, rng=_rng()),
                     [t(2, 3, 4), t(2, 3, 4, seed=1), t(2, 3, 4, seed=2)]),
    "sdpa_bcast_kv": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
                      [t(2, 3, 4), t(1, 3, 4, seed=1), t(3, 2, seed=2)]),
    # losses
    "cross_entropy": (lambda x: F.cross_entropy(x, CE_TARGETS), [t(2, 3, 4)]),
    "cross_entropy_sum": (lambda x: F.cross_entropy(x, CE_TARGETS, reduction="sum"), [t(2, 3, 4)]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, CE_TARGETS, reduction="none"), [t(2, 3, 4)]),
    "cross_entropy_ignore": (lambda x: F.cross_entropy(x, CE_IGNORE, ignore_index=-100), [t(2, 3, 4)]),
    "cross_entropy_smooth": (lambda x: F.cross_entropy(x, CE_IGNORE, ignore_index=-100, label_smoothing=0.1),
                             [t(2, 3, 4)]),
    "cross_entropy_1d": (lambda x: F.cross_entropy(x, np.array(2)), [t(4)]),
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x), CE_IGNORE, ignore_index=-100), [t(2, 3, 4)]),
    "bce_logits": (lambda x: F.binary_cross_entropy_with_logits(x, np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3]])),
                   [t(2, 3, scale=3.0)]),
    "bce_logits_none": (lambda x: F.binary_cross_entropy_with_logits(x, np.ones((2, 3)), reduction="none"),
                        [t(2, 3)]),
    "mse": (lambda x, y: F.mse_loss(x, y), [t(2, 3), t(2, 3, seed=1)]),
    "mse_sum": (lambda x: F.mse_loss(x, np.zeros((2, 3)), reduction="sum"), [t(2, 3)]),
    "l1": (lambda x, y: F.l1_loss(x, y), [apart(2, 3), apart(2, 3, seed=9)]),
    "astype_roundtrip": (lambda x: x.astype(np.float32).astype(np.float64) * 1.0, [t(3)]),
    # fused layer ops (their layers are gradchecked as wholes in tests/test_layers.py and beside)
    "conv2d": (lambda x, w, b: Conv2d.apply(x, w, b, stride=(1, 2), padding=(1, 0)),
               [t(2, 2, 4, 5), t(3, 2, 2, 2, seed=1), t(3, seed=2)]),
    "conv2d_dilated_nobias": (lambda x, w: Conv2d.apply(x, w, dilation=(2, 1)), [t(1, 2, 5, 3), t(2, 2, 2, 2, seed=1)]),
    "max_pool2d": (lambda x: MaxPool2d.apply(x, kernel=(2, 2), stride=(1, 2), padding=(1, 0)), [apart(1, 2, 4, 4)]),
    # windows that tile the input (gradient by assignment) and disjoint ones that leave rows out
    "max_pool2d_tiled": (lambda x: MaxPool2d.apply(x, kernel=(2, 2), stride=(2, 2)), [apart(2, 2, 4, 6)]),
    "max_pool2d_disjoint": (lambda x: MaxPool2d.apply(x, kernel=(2, 2), stride=(3, 2), dilation=(1, 1)),
                            [apart(1, 2, 5, 5)]),
    "avg_pool2d": (lambda x: AvgPool2d.apply(x, kernel=(2, 2), stride=(2, 2), padding=(1, 1)), [t(2, 2, 3, 3)]),
    "batch_norm": (lambda x, w, b: BatchNorm.apply(x, w, b), [t(3, 2, 2, 2), t(2, seed=1), t(2, seed=2)]),
    "batch_norm_noaffine": (lambda x: BatchNorm.apply(x, eps=1e-3), [t(4, 3)]),
    "rnn_recurrence": (lambda *a: RNNRecurrence.apply(*a, mask=np.array([[1, 1], [1, 0], [1, 0]], bool)),
                       recurrence("rnn")),
    "gru_recurrence": (lambda *a: GRURecurrence.apply(*a, reverse=True), recurrence("gru")),
    "lstm_recurrence": (lambda *a: LSTMRecurrence.apply(*a), recurrence("lstm")),
    "residual_layer_norm": (lambda w, b, x, y: ResidualLayerNorm.apply(w, b, x, y),
                            [t(4, seed=1), t(4, seed=2), t(2, 3, 4), t(2, 3, 4, seed=3)]),
    "residual_layer_norm_dropout": (lambda w, b, x, y: ResidualLayerNorm.apply(w, b, x, y, dropout_p=0.3, rng=_rng()),
                                    [t(4, seed=1), t(4, seed=2), t(2, 3, 4), t(2, 3, 4, seed=3)]),
    "dropout_add": (lambda x, y: DropoutAdd.apply(x, y, p=0.4, rng=_rng()), [t(2, 3, 4), t(2, 3, 4, seed=1)]),
    "linear_relu": (lambda x, w, b: LinearReLU.apply(x, w, b), [t(2, 3, 4), t(5, 4, seed=1), t(5, seed=2)]),
    # a model family's fused ops, found by name (see ``op``)
    "negative_sampling_loss": (lambda h, p, n: op("NegativeSamplingLoss").apply(h, p, n, weight=np.arange(1.0, 5.0)),
                               [t(4, 3), t(4, 3, seed=1), t(4, 2, 3, seed=2)]),
    "context_mean": (lambda x: op("ContextMean").apply(x, mask=W2V_MASK), [t(4, 3, 2)]),
    "skipgram_batch_loss": (lambda a, b: op("SkipGramBatchLoss").apply(a, b, negative=3, max_window=2, groups=2,
                                                                     **W2V_BATCH),
                            [t(10, 3, scale=0.5), t(10, 3, seed=1, scale=0.5)]),
    "cbow_batch_loss": (lambda a, b: op("CBOWBatchLoss").apply(a, b, negative=3, max_window=2, **W2V_BATCH),
                        [t(10, 3, scale=0.5), t(10, 3, seed=1, scale=0.5)]),
    # a move to the other device and back (cpu <-> the emulated device): ToDevice both ways
    "to_device": (lambda a: (a.to(_OTHER_DEVICE) * 2.0).to(a.device), [t(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name):
    fn, inputs = CASES[name]
    # float32 roundtrip loses precision by design; compare loosely there
    tol = dict(eps=1e-2, atol=1e-4, rtol=1e-3) if name == "astype_roundtrip" else {}
    assert npdl.gradcheck(fn, *inputs, **tol)


def test_every_function_in_npdl_has_a_case():
    """Every Function subclass defined anywhere in npdl must be run by some case, by class name."""
    prims = set(npdl_functions())
    assert {"Add", "Affine", "Conv2d", "LSTMRecurrence", "MultiHeadAttention"} <= prims  # the walk finds them
    used = set()
    for name, (fn, inputs) in CASES.items():
        out = fn(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        stack = [o._ctx for o in outs if o._ctx is not None]
        while stack:
            node = stack.pop()
            used.add(type(node).__name__)
            stack.extend(p._ctx for p in node.parents if isinstance(p, npdl.Tensor) and p._ctx is not None)
    missing = sorted(prims - used)
    assert not missing, f"Functions without a gradcheck case: {missing}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0, 1, 2, 3, 4, -1, -2, 0.5, -0.5, 1.5, 2.7])
def test_constant_powers_match_np_power(p, dtype):
    """The multiplication/sqrt/reciprocal fast paths of ``x ** p`` agree with ``np.power`` (a few ulp)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1000).astype(dtype) * 3
    if p != int(p) or p < 0:  # fractional powers of negatives are NaN, reciprocals of 0 are inf: positive bases
        x = np.abs(x) + dtype(0.1)
    got = (npdl.tensor(x, dtype=dtype) ** p).data
    want = np.power(x, dtype(p))
    assert got.dtype == dtype
    if p in (0, 1, -1, 0.5, 2):  # these are exact (one correctly rounded operation)
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps)
