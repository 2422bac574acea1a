"""The engine: accumulation, deep chains, no_grad, graph release, memory, error messages."""
from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npdl
import npdl.functional as F
from npdl.core.autograd import Function, GradientShapeError, unbroadcast


def test_tensor_used_twice_gets_both_contributions():
    x = npdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x + x          # dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 5.0, 7.0])


def test_grad_accumulates_across_backward_calls():
    x = npdl.tensor([1.0, -2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])


def test_same_tensor_as_both_operands_of_add_does_not_alias_grads():
    a = npdl.tensor([1.0, 2.0], requires_grad=True)
    b = npdl.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 10  # must not leak into b.grad
    np.testing.assert_allclose(b.grad, [1.0, 1.0])


def test_ten_thousand_node_chain():
    x = npdl.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001 ** 10_000, rtol=1e-3)


def test_long_unrolled_recurrence_backward():
    rng = np.random.default_rng(0)
    w = npdl.tensor(rng.standard_normal((8, 8)) * 0.1, requires_grad=True)
    h = npdl.zeros(1, 8)
    for _ in range(1000):
        h = (h @ w + 0.1).tanh()
    h.sum().backward()
    assert w.grad.shape == (8, 8) and np.isfinite(w.grad).all()


def test_no_grad_context_and_decorator():
    x = npdl.randn(3, requires_grad=True)
    with npdl.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None

    @npdl.no_grad()
    def f(t):
        return t.exp()

    assert not f(x).requires_grad
    assert npdl.is_grad_enabled()
    with npdl.no_grad():
        with npdl.enable_grad():
            assert (x * 2).requires_grad
        assert not npdl.is_grad_enabled()


def test_graph_released_after_backward():
    x = npdl.randn(4, 4, requires_grad=True)
    h = (x @ x).tanh()
    h_ref = weakref.ref(h)
    ctx_ref = weakref.ref(h._ctx)
    loss = h.sum()
    del h
    gc.collect()
    assert h_ref() is not None  # the graph keeps the intermediate alive until backward
    loss.backward()
    gc.collect()
    assert h_ref() is None and ctx_ref() is None


def test_retain_graph_allows_second_backward():
    x = npdl.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [8.0])


def test_second_backward_on_freed_graph_is_clear_error():
    x = npdl.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_backward_on_non_scalar_needs_grad():
    x = npdl.randn(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"needs a scalar.*\(2, 3\)"):
        y.backward()
    y.backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad, 2 * np.ones((2, 3)))


def test_backward_on_a_leaf_seeds_its_own_grad():
    x = npdl.tensor([1.5], requires_grad=True)
    x.backward()
    np.testing.assert_array_equal(x.grad, [1.0])
    seed = np.full((2, 2), 3.0, np.float32)
    w = npdl.zeros(2, 2, requires_grad=True)
    w.backward(seed)
    w.backward(seed)                      # accumulates; the caller's array is never aliased
    np.testing.assert_array_equal(w.grad, 6.0)
    np.testing.assert_array_equal(seed, 3.0)


def test_backward_without_graph_is_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        npdl.ones(3).sum().backward()


def test_wrong_grad_shape_in_custom_function_names_the_op():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return np.ones((5, 5))

    x = npdl.randn(2, 3, requires_grad=True)
    with pytest.raises(GradientShapeError, match=r"Broken\.backward.*\(5, 5\).*\(2, 3\)"):
        Broken.apply(x).sum().backward()


def test_user_defined_function_works_with_engine():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.saved = (x,)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return 3 * x * x * g

    x = npdl.randn(3, 2, dtype=np.float64, requires_grad=True)
    assert npdl.gradcheck(lambda x: Cube.apply(x), x)


def test_integer_tensors_never_require_grad():
    with pytest.raises(TypeError, match="only floating tensors"):
        npdl.tensor([1, 2, 3], requires_grad=True)
    idx = npdl.tensor([0, 2])
    assert idx.dtype == np.int64 and not idx.requires_grad


def test_float32_default_and_preserved():
    x = npdl.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == np.float32
    assert npdl.tensor(np.array([1.5], dtype=np.float64)).dtype == np.float32
    y = x * 2.5 + np.float64(1.0) - np.array([0.5, 0.25]) / 3.0
    y = (y ** 2).exp().log() * np.ones(2)
    y = F.softmax(y, axis=0) + F.gelu(y) + F.layer_norm(y, 2) + npdl.maximum(y, 0.1)
    assert y.dtype == np.float32
    loss = F.cross_entropy(y.reshape(1, 2), np.array([1])) + F.mse_loss(y, np.zeros(2))
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32


def test_float64_when_asked():
    x = npdl.randn(2, dtype=np.float64, requires_grad=True)
    assert (x * 2.0 + 1).dtype == np.float64


def test_creation_helpers_take_explicit_generator():
    a = npdl.randn(3, 4, rng=np.random.default_rng(5))
    b = npdl.randn(3, 4, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32
    assert npdl.rand(2, rng=np.random.default_rng(1)).data.max() < 1
    assert npdl.zeros(2, 3).shape == (2, 3) and npdl.ones((2,)).data.sum() == 2
    assert npdl.full((2, 2), 7.0).data[1, 1] == 7 and npdl.arange(5).dtype == np.int64
    assert npdl.zeros_like(a).shape == a.shape and npdl.ones_like(a).dtype == np.float32
    npdl.manual_seed(3)
    c = npdl.randn(2)
    npdl.manual_seed(3)
    np.testing.assert_array_equal(c.data, npdl.randn(2).data)


def test_tensor_basics():
    x = npdl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.size == 4 and len(x) == 2
    assert x.sum().item() == 10.0
    assert isinstance(x.numpy(), np.ndarray)
    d = x.detach()
    assert not d.requires_grad and d.data is x.data
    assert x.max(axis=1).tolist() == [2.0, 4.0]       # values, not indices
    assert x.argmax(axis=1).tolist() == [1, 1]
    assert (x > 2).dtype == bool and not (x > 2).requires_grad
    assert "requires_grad=True" in repr(x)
    with pytest.raises(RuntimeError, match="in-place"):
        x[0, 0] = 5.0
    with npdl.no_grad():
        x[0, 0] = 5.0
    assert x.data[0, 0] == 5.0


def test_numpy_scalar_on_the_left_defers_to_tensor():
    x = npdl.tensor([1.0, 2.0], requires_grad=True)
    y = np.float64(2.0) * x
    assert isinstance(y, npdl.Tensor) and y.dtype == np.float32


def test_sparse_embedding_grad_touches_only_used_rows():
    w = npdl.randn(1000, 8, requires_grad=True)
    idx = np.array([[3, 7, 3], [999, 3, 0]])
    F.embedding(w, idx, sparse=True).sum().backward()
    g = w.grad
    assert isinstance(g, npdl.RowSparseGrad)
    c = g.coalesce()
    assert c.rows.tolist() == [0, 3, 7, 999]
    np.testing.assert_allclose(c.values[1], 3 * np.ones(8))
    dense = npdl.randn(1000, 8, requires_grad=True)
    F.embedding(dense, idx).sum().backward()
    np.testing.assert_allclose(g.to_dense(), dense.grad)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="do not align"):
        npdl.randn(2, 3) @ npdl.randn(4, 2)
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        F.cross_entropy(npdl.randn(2, 4), np.array([1, 4]))
    with pytest.raises(IndexError, match="out of range for a table of 5 rows"):
        F.embedding(npdl.randn(5, 2), np.array([5]))
    with pytest.raises(ValueError, match=r"dropout probability"):
        F.dropout(npdl.randn(2), 1.5)
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(npdl.randn(2), np.zeros(2), reduction="avg")
    with pytest.raises(TypeError, match="float64"):
        npdl.gradcheck(lambda a: a * 2, npdl.randn(2, requires_grad=True))


def test_gradcheck_reports_input_index_and_values():
    class WrongGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 x g

    x = npdl.tensor([[1.0, 2.0]], dtype=np.float64, requires_grad=True)
    with pytest.raises(npdl.GradcheckError, match=r"input 0 \(shape \(1, 2\)\) at index \(0, 0\): numerical .*analytical"):
        npdl.gradcheck(lambda a: WrongGrad.apply(a), x)


def test_cross_entropy_matches_manual_and_ignores():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    targets = np.array([0, -1])
    loss = F.cross_entropy(npdl.tensor(logits, dtype=np.float64), targets, ignore_index=-1)
    manual = -np.log(np.exp(2.0) / np.exp(logits[0]).sum())
    np.testing.assert_allclose(loss.item(), manual)


def test_bce_with_logits_stable_for_large_inputs():
    x = npdl.tensor([1000.0, -1000.0, 50.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 0.0]), reduction="sum")
    np.testing.assert_allclose(loss.item(), 50.0, rtol=1e-6)
    loss.backward()
    assert np.isfinite(x.grad).all()


def test_memory_flat_over_1000_mlp_steps():
    """Nothing outlives a step: traced memory stays within 5% after warm-up."""
    rng = np.random.default_rng(0)
    w1 = npdl.tensor(rng.standard_normal((32, 64)) * 0.1, requires_grad=True)
    b1 = npdl.zeros(64, requires_grad=True)
    w2 = npdl.tensor(rng.standard_normal((64, 10)) * 0.1, requires_grad=True)
    x = npdl.tensor(rng.standard_normal((16, 32)))
    y = rng.integers(0, 10, 16)

    def step():
        for p in (w1, b1, w2):
            p.grad = None
        loss = F.cross_entropy(F.relu(x @ w1 + b1) @ w2, y)
        loss.backward()
        with npdl.no_grad():
            for p in (w1, b1, w2):
                p.data -= 0.01 * p.grad

    for _ in range(100):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(100):
            step()
        gc.collect()
        warm, _ = tracemalloc.get_traced_memory()
        for _ in range(900):
            step()
        gc.collect()
        final, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert final <= warm * 1.05 + 4096, (warm, final)


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)


@settings(max_examples=150, deadline=None)
@given(shape=shapes, data=st.data())
def test_unbroadcast_inverts_broadcasting(shape, data):
    """For any shape that broadcasts to a target: unbroadcast(ones) counts the copies."""
    target = data.draw(hnp.broadcastable_shapes(shape, min_dims=len(shape), max_dims=len(shape) + 2, max_side=4))
    full = np.broadcast_shapes(shape, target)
    g = np.ones(full)
    out = unbroadcast(g, shape)
    assert out.shape == shape
    np.testing.assert_allclose(out, np.full(shape, np.prod(full) / max(np.prod(shape), 1)))


@settings(max_examples=60, deadline=None)
@given(a_shape=shapes, data=st.data())
def test_broadcast_add_grads_have_input_shapes(a_shape, data):
    b_shape = data.draw(hnp.broadcastable_shapes(a_shape, max_dims=4, max_side=4))
    a = npdl.zeros(*a_shape, requires_grad=True) if a_shape else npdl.tensor(0.0, requires_grad=True)
    b = npdl.zeros(*b_shape, requires_grad=True) if b_shape else npdl.tensor(0.0, requires_grad=True)
    out = a * 2.0 + b
    out.sum().backward()
    full = np.broadcast_shapes(a_shape, b_shape)
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    np.testing.assert_allclose(a.grad.sum(), 2.0 * np.prod(full))
    np.testing.assert_allclose(b.grad.sum(), np.prod(full))


def test_dense_then_sparse_gradient_on_a_tied_weight():
    """Tied embedding + output projection: a dense and a row-sparse contribution to one leaf."""
    w = npdl.randn(10, 4, requires_grad=True)
    e = F.embedding(w, np.array([1, 2, 2]), sparse=True)
    (e @ w.T).sum().backward()
    ref = npdl.tensor(w.data, requires_grad=True)
    (F.embedding(ref, np.array([1, 2, 2])) @ ref.T).sum().backward()
    np.testing.assert_allclose(np.asarray(w.grad), ref.grad, rtol=1e-6)


def test_integer_arithmetic_stays_in_the_default_float():
    assert (npdl.arange(5) * 0.5).dtype == np.float32
    assert (npdl.arange(5) / 2).dtype == np.float32
    assert npdl.tensor([1, 2]).sqrt().dtype == np.float32
    w = npdl.randn(3, requires_grad=True)
    assert (w * npdl.arange(3)).dtype == np.float32
    assert (npdl.arange(3) * np.array([0.5, 1.0, 2.0])).dtype == np.float64   # a float64 input was given


def test_scalar_parameter_gradient_is_an_array():
    s = npdl.tensor(2.0, requires_grad=True)
    (s * npdl.ones(3)).sum().backward()
    assert type(s.grad) is type(s.data) and s.grad.shape == () and s.grad == 3.0   # an array (on s's device)
