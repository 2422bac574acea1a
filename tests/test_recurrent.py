"""Recurrent layers: fused-op gradchecks, layer gradchecks, variable lengths, and PyTorch equivalence."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl.core.ops.recurrent import RNNRecurrence
from npdl.core.ops.recurrent_gru import GRURecurrence
from npdl.core.ops.recurrent_lstm import LSTMRecurrence
from npdl.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, lengths_to_mask
from npdl.registry import LAYERS
from npdl.config import check_spec

F64 = np.float64


def floats(*shape, seed=0, scale=0.7, grad=True):
    data = np.random.default_rng(seed).standard_normal(shape) * scale
    return npdl.tensor(data, dtype=F64, requires_grad=grad)


# (T, B) masks: left-aligned lengths 4, 2, 1; and one with a gap (carry semantics hold anywhere)
MASK = lengths_to_mask(np.array([4, 2, 1]), 4).T.copy()
GAPPY = MASK.copy()
GAPPY[1, 0] = False


# ---- fused ops ------------------------------------------------------------------------
def _op_case(kind: str, bias: bool, seed: int = 0):
    """(x, h0, [c0], w_ih, w_hh, [b_ih, b_hh]) at T=4, B=3, I=2, H=2."""
    gates = {"lstm": 4, "gru": 3, "tanh": 1, "relu": 1}[kind]
    t, b, i, h = 4, 3, 2, 2
    args = [floats(t, b, i, seed=seed), floats(b, h, seed=seed + 1)]
    if kind == "lstm":
        args.append(floats(b, h, seed=seed + 2))
    args += [floats(gates * h, i, seed=seed + 3), floats(gates * h, h, seed=seed + 4)]
    if bias:
        args += [floats(gates * h, seed=seed + 5), floats(gates * h, seed=seed + 6)]
    return args


def _op(kind: str):
    if kind == "lstm":
        return LSTMRecurrence.apply, {}
    if kind == "gru":
        return GRURecurrence.apply, {}
    return RNNRecurrence.apply, {"nonlinearity": kind}


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh", "relu"])
@pytest.mark.parametrize("mask", [None, MASK, GAPPY], ids=["full", "lengths", "gappy"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_fused_op_gradcheck(kind, mask, reverse, bias):
    fn, kw = _op(kind)
    args = _op_case(kind, bias)
    npdl.gradcheck(lambda *a: fn(*a, mask=mask, reverse=reverse, **kw), *args)


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_fused_op_padded_steps_carry_state(kind, reverse):
    fn, kw = _op(kind)
    args = _op_case(kind, True)
    n_states = 2 if kind == "lstm" else 1
    outs = fn(*args, mask=MASK, reverse=reverse, **kw)
    assert np.all(outs[0].data[~MASK] == 0)                  # zero outputs at padded steps
    for b, n in enumerate(MASK.sum(axis=0)):                 # each sequence alone, unpadded
        alone = [args[0][:n, b:b + 1]] + [s[b:b + 1] for s in args[1:1 + n_states]] + args[1 + n_states:]
        ref = fn(*alone, reverse=reverse, **kw)
        np.testing.assert_allclose(outs[0].data[:n, b], ref[0].data[:, 0], atol=1e-12)
        for k in range(1, 1 + n_states):                     # final state = state at the last real step
            np.testing.assert_allclose(outs[k].data[b], ref[k].data[0], atol=1e-12)


def test_fused_op_shape_errors():
    x, h0, c0, w_ih, w = _op_case("lstm", False)
    with pytest.raises(ValueError, match="weight_hh"):
        LSTMRecurrence.apply(x, h0, c0, w_ih, floats(8, 3))
    with pytest.raises(ValueError, match="weight_ih"):
        LSTMRecurrence.apply(x, h0, c0, floats(8, 3), w)
    with pytest.raises(ValueError, match="mask"):
        LSTMRecurrence.apply(x, h0, c0, w_ih, w, mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="h0"):
        LSTMRecurrence.apply(x, floats(2, 2), c0, w_ih, w)
    with pytest.raises(ValueError, match="both biases"):
        LSTMRecurrence.apply(x, h0, c0, w_ih, w, floats(8))


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh"])
def test_fused_op_backward_twice_with_retain_graph(kind):
    fn, kw = _op(kind)
    args = _op_case(kind, True)
    outs = fn(*args, mask=MASK, **kw)
    loss = sum((o * (k + 1.0)).sum() for k, o in enumerate(outs))
    loss.backward(retain_graph=True)
    first = [a.grad.copy() for a in args]
    loss.backward()                                  # backward consumed its buffers: recomputed
    for a, g in zip(args, first):
        np.testing.assert_allclose(a.grad, 2 * g, atol=1e-12)


# ---- layers: gradcheck in float64 ------------------------------------------------------
LAYER_KINDS = {"lstm": (LSTM, {}), "gru": (GRU, {}), "rnn": (RNN, {}), "rnn_relu": (RNN, {"nonlinearity": "relu"})}


def _flat(out):
    y, state = out
    return (y,) + (tuple(state) if isinstance(state, tuple) else (state,))


@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
@pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])
def test_layer_gradcheck(kind, batch_first):
    cls, kw = LAYER_KINDS[kind]
    b, t, i, h = 2, 4, 3, 2
    m = cls(h, i, num_layers=2, bidirectional=True, batch_first=batch_first, rng=np.random.default_rng(0), **kw)
    m.double()
    x = floats(*((b, t, i) if batch_first else (t, b, i)), seed=1)
    h0 = floats(4, b, h, seed=2)
    state = (h0, floats(4, b, h, seed=3)) if kind == "lstm" else h0
    lengths = np.array([4, 2])
    extra = list(state) if kind == "lstm" else [state]
    npdl.gradcheck(lambda x, *ps: _flat(m(x, state=state, lengths=lengths)), x, *extra, *m.parameters())


@pytest.mark.parametrize("cls,kw", [(LSTMCell, {}), (GRUCell, {}), (RNNCell, {}), (RNNCell, {"nonlinearity": "relu"})])
def test_cell_gradcheck(cls, kw):
    cell = cls(3, 4, rng=np.random.default_rng(0), **kw).double()
    x = floats(2, 4, seed=1)
    h = floats(2, 3, seed=2)
    state = (h, floats(2, 3, seed=3)) if cls is LSTMCell else h
    extra = list(state) if cls is LSTMCell else [state]

    def two_steps(x, *ps):  # a state fed back once covers the state gradient path
        s = cell(x, state)
        s = cell(x * 0.5, s)
        return tuple(s) if isinstance(s, tuple) else s

    npdl.gradcheck(two_steps, x, *extra, *cell.parameters())


# ---- variable lengths ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_padding_does_not_change_real_steps(kind):
    cls, _ = LAYER_KINDS[kind]
    m = cls(3, 2, num_layers=2, bidirectional=True, rng=np.random.default_rng(0)).double()
    lengths = np.array([5, 2, 3])
    x = np.random.default_rng(1).standard_normal((3, 5, 2))
    y, st = m(npdl.tensor(x, dtype=F64), lengths=lengths)
    x_noise = x.copy()
    x_noise[~lengths_to_mask(lengths, 5)] = 99.0        # garbage in the padding changes nothing
    y2, _ = m(npdl.tensor(x_noise, dtype=F64), mask=lengths_to_mask(lengths, 5))
    np.testing.assert_array_equal(y.data, y2.data)
    hn = st[0].data if kind == "lstm" else st.data
    for b, n in enumerate(lengths):                       # each sequence alone, unpadded
        yb, sb = m(npdl.tensor(x[b:b + 1, :n], dtype=F64))
        np.testing.assert_allclose(y.data[b, :n], yb.data[0], atol=1e-12)
        assert np.all(y.data[b, n:] == 0)
        np.testing.assert_allclose(hn[:, b], (sb[0] if kind == "lstm" else sb).data[:, 0], atol=1e-12)


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_workspace_reuse_never_touches_live_results(cls):
    m = cls(3, 2, bidirectional=True, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    xs = [npdl.tensor(rng.standard_normal((2, 5, 2)), requires_grad=True) for _ in range(2)]
    lengths = np.array([5, 3])
    y1, _ = m(xs[0], lengths=lengths)
    kept = y1.data.copy()
    y2, _ = m(xs[1], lengths=lengths)            # y1's graph is alive: its buffers must not be reused
    np.testing.assert_array_equal(y1.data, kept)
    (y1.sum() + 2 * y2.sum()).backward()
    grads = [p.grad.copy() for p in m.parameters()]
    m.zero_grad()
    m(xs[0], lengths=lengths)[0].sum().backward()
    (2 * m(xs[1], lengths=lengths)[0].sum()).backward()
    for g, p in zip(grads, m.parameters()):
        np.testing.assert_allclose(g, p.grad, rtol=1e-5, atol=1e-6)
    ws = m._workspaces[0]
    before = {k: id(v) for k, v in ws.items()}
    m(xs[0], lengths=lengths)[0].sum().backward()  # nothing alive any more: the same buffers serve again
    assert {k: id(v) for k, v in ws.items()} == before


def test_empty_sequence_keeps_initial_state():
    m = GRU(3, 2, rng=np.random.default_rng(0)).double()
    h0 = floats(1, 2, 3, seed=4)
    y, h = m(floats(2, 4, 2, seed=5), state=h0, lengths=np.array([0, 4]))
    assert np.all(y.data[0] == 0)
    np.testing.assert_array_equal(h.data[:, 0], h0.data[:, 0])
    h.sum().backward()
    np.testing.assert_array_equal(h0.grad[:, 0], 1.0)       # passed straight through


def test_state_carries_across_batches():
    m = LSTM(3, 2, num_layers=2, rng=np.random.default_rng(0)).double()
    x = npdl.tensor(np.random.default_rng(1).standard_normal((2, 6, 2)), dtype=F64)
    full, (h, c) = m(x)
    a, st = m(x[:, :4])
    b, (h2, c2) = m(x[:, 4:], state=(st[0].detach(), st[1].detach()))
    np.testing.assert_allclose(np.concatenate([a.data, b.data], axis=1), full.data, atol=1e-12)
    np.testing.assert_allclose(h2.data, h.data, atol=1e-12)
    np.testing.assert_allclose(c2.data, c.data, atol=1e-12)


def test_long_sequence_backward_is_finite():
    m = LSTM(4, 3, rng=np.random.default_rng(0))
    x = npdl.tensor(np.random.default_rng(1).standard_normal((2, 1000, 3)), requires_grad=True)
    y, (h, c) = m(x)
    (y.sum() + h.sum()).backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert all(np.isfinite(p.grad).all() for p in m.parameters()) and np.isfinite(x.grad).all()
    cell = GRUCell(4, 3, rng=np.random.default_rng(0))   # 1000 unrolled cell steps: a deep graph
    s = None
    for t in range(1000):
        s = cell(x[:, t], s)
    s.sum().backward()
    assert np.isfinite(cell.weight_hh.grad).all()


def test_dropout_between_layers_only():
    x = npdl.tensor(np.random.default_rng(1).standard_normal((2, 5, 3)))
    one = GRU(4, 3, num_layers=1, dropout=0.5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(one(x)[0].data, one.eval()(x)[0].data)   # no dropout after the last layer
    two = GRU(4, 3, num_layers=2, dropout=0.5, rng=np.random.default_rng(0))
    assert not np.allclose(two(x)[0].data, two.eval()(x)[0].data)


def test_lazy_input_size_and_registry():
    m = LAYERS.build({"type": "lstm", "hidden_size": 4, "num_layers": 2, "bidirectional": True})
    assert m._parameters["weight_ih_l0"] is None                  # created on the first call
    y, (h, c) = m(npdl.randn(2, 3, 5))
    assert y.shape == (2, 3, 8) and h.shape == (4, 2, 4) and m.weight_ih_l0.shape == (16, 5)
    for name in ("rnn", "gru", "rnn_cell", "lstm_cell", "gru_cell"):
        assert name in LAYERS
    assert check_spec(LAYERS, {"type": "rnn", "hidden_size": 4, "nonlinearity": "sigmoid"}, "")


def test_user_errors():
    m = LSTM(4, 3)
    with pytest.raises(ValueError, match="input_size=3"):
        m(npdl.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"\(B, T, input_size\)"):
        m(npdl.randn(5, 3))
    with pytest.raises(ValueError, match="lengths"):
        m(npdl.randn(2, 5, 3), lengths=[6, 2])
    with pytest.raises(ValueError, match="mask"):
        m(npdl.randn(2, 5, 3), mask=np.ones((5, 2), bool))
    with pytest.raises(ValueError, match="h_0"):
        m(npdl.randn(2, 5, 3), state=(npdl.zeros(2, 2, 4), npdl.zeros(1, 2, 4)))


# ---- PyTorch equivalence ------------------------------------------------------------
TORCH_KINDS = {"lstm": (LSTM, "LSTM", {}), "gru": (GRU, "GRU", {}), "rnn": (RNN, "RNN", {}),
               "rnn_relu": (RNN, "RNN", {"nonlinearity": "relu"})}


def _torch_state(torch, st):
    return tuple(torch.tensor(s.data, requires_grad=True) for s in st) if isinstance(st, tuple) else \
        torch.tensor(st.data, requires_grad=True)


@pytest.mark.parametrize("kind", sorted(TORCH_KINDS))
@pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_matches_torch(kind, batch_first, packed):
    torch = pytest.importorskip("torch")
    cls, tname, kw = TORCH_KINDS[kind]
    b, t, i, h = 3, 5, 4, 3
    torch.manual_seed(0)
    ref = getattr(torch.nn, tname)(i, h, num_layers=2, bidirectional=True, batch_first=batch_first, **kw).double()
    m = cls(h, i, num_layers=2, bidirectional=True, batch_first=batch_first, **kw)
    m.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    m.double()
    assert list(m.state_dict()) == list(ref.state_dict())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b, t, i) if batch_first else (t, b, i))
    h0 = npdl.tensor(rng.standard_normal((4, b, h)), dtype=F64, requires_grad=True)
    state = (h0, npdl.tensor(rng.standard_normal((4, b, h)), dtype=F64, requires_grad=True)) if kind == "lstm" else h0
    lengths = np.array([5, 2, 4]) if packed else None
    xn = npdl.tensor(x, dtype=F64, requires_grad=True)
    y, st = m(xn, state=state, lengths=lengths)

    xt = torch.tensor(x, requires_grad=True)
    st_t = _torch_state(torch, state)
    if packed:
        seq = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                                      enforce_sorted=False)
        yp, st_ref = ref(seq, st_t)
        y_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, batch_first=batch_first, total_length=t)
    else:
        y_ref, st_ref = ref(xt, st_t)
    ours, theirs = _flat((y, st)), (y_ref,) + (tuple(st_ref) if isinstance(st_ref, tuple) else (st_ref,))
    w = [np.random.default_rng(k).standard_normal(o.shape) for k, o in enumerate(ours)]
    sum(((o * npdl.tensor(v, dtype=F64)).sum() for o, v in zip(ours, w)), npdl.tensor(0.0, dtype=F64)).backward()
    sum((r * torch.tensor(v)).sum() for r, v in zip(theirs, w)).backward()
    for o, r in zip(ours, theirs):
        np.testing.assert_allclose(o.data, r.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(xn.grad, xt.grad.numpy(), atol=1e-10)
    for s, s_ref in zip(state if isinstance(state, tuple) else (state,),
                        st_t if isinstance(st_t, tuple) else (st_t,)):
        np.testing.assert_allclose(s.grad, s_ref.grad.numpy(), atol=1e-10)
    for (name, p), (tn, tp) in zip(m.named_parameters(), ref.named_parameters()):
        assert name == tn
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cls,tname,kw", [(LSTMCell, "LSTMCell", {}), (GRUCell, "GRUCell", {}),
                                         (RNNCell, "RNNCell", {"nonlinearity": "relu"})])
def test_cells_match_torch(cls, tname, kw):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = getattr(torch.nn, tname)(4, 3, **kw).double()
    cell = cls(3, 4, **kw)
    cell.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    cell.double()
    x = np.random.default_rng(1).standard_normal((2, 4))
    hs = np.random.default_rng(2).standard_normal((2, 2, 3))
    state = (npdl.tensor(hs[0], dtype=F64), npdl.tensor(hs[1], dtype=F64)) if cls is LSTMCell else \
        npdl.tensor(hs[0], dtype=F64)
    out = cell(npdl.tensor(x, dtype=F64), state)
    out_ref = ref(torch.tensor(x), tuple(torch.tensor(s) for s in hs) if cls is LSTMCell else torch.tensor(hs[0]))
    for o, r in zip(out if isinstance(out, tuple) else (out,), out_ref if isinstance(out_ref, tuple) else (out_ref,)):
        np.testing.assert_allclose(o.data, r.detach().numpy(), atol=1e-12)
    assert cell(npdl.tensor(x, dtype=F64)) is not None           # state defaults to zeros


def test_torch_state_dict_loads_into_float32_and_back():
    torch = pytest.importorskip("torch")
    ref = torch.nn.LSTM(5, 4, num_layers=2, bidirectional=True, bias=False)
    m = LSTM(4, num_layers=2, bidirectional=True, bias=False, batch_first=False)   # lazy input_size
    m.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    assert m.weight_ih_l0.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((6, 2, 5)).astype(np.float32)
    np.testing.assert_allclose(m(npdl.tensor(x))[0].data, ref(torch.tensor(x))[0].detach().numpy(), atol=1e-5)
    ref.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
