"""Multi-head attention and positional encodings: gradchecks, masks, KV cache, PyTorch equivalence."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl.nn.attention import (ContextTooLongError, LearnedPositionalEmbedding, MultiHeadAttention,
                               SinusoidalPositionalEncoding)
from npdl.registry import LAYERS
from npdl.config import check_spec

E, H, B, T, S = 4, 2, 2, 3, 4


def floats(*shape, seed=0, dtype=np.float64, grad=True):
    data = np.random.default_rng(seed).standard_normal(shape)
    return npdl.tensor(data, dtype=dtype, requires_grad=grad)


KPM = np.array([[False, False, False, True], [False, False, True, True]])  # (B, S), True = padding
KPM_SELF = KPM[:, 1:]  # (B, T)
ATTN = np.array([[False, True, True, False], [False, False, True, False], [True, False, False, False]])  # (T, S)
CAUSAL = np.triu(np.ones((T, T), bool), 1)  # True above the diagonal = future, blocked


def mha(seed=0, **kw):
    return MultiHeadAttention(E, H, rng=np.random.default_rng(seed), **kw).double()


# ---- gradchecks ---------------------------------------------------------------------------
GRAD_CASES = {
    "self": (dict(), "self", dict()),
    "self_kpm_mask": (dict(), "self", dict(key_padding_mask=KPM_SELF, attn_mask=CAUSAL)),
    "self_causal_kpm": (dict(), "self", dict(key_padding_mask=KPM_SELF, is_causal=True)),
    "self_per_head_mask": (dict(), "self", dict(attn_mask=np.tile(CAUSAL, (B * H, 1, 1)))),
    "self_float_mask": (dict(), "self", dict(attn_mask=np.where(CAUSAL, -np.inf, 0.3))),
    "cross_kv_same": (dict(), "cross", dict(key_padding_mask=KPM, attn_mask=ATTN)),
    "cross_kv_apart": (dict(), "apart", dict(key_padding_mask=KPM)),
    "separate_self": (dict(packed=False), "self", dict(is_causal=True)),
    "separate_kdim_vdim": (dict(packed=False, kdim=3, vdim=5), "apart", dict(key_padding_mask=KPM, attn_mask=ATTN)),
    "no_bias": (dict(bias=False), "cross", dict(is_causal=True)),
    "seq_first": (dict(batch_first=False), "apart", dict(key_padding_mask=KPM)),
}


def _inputs(kind, m):
    q = floats(B, T, E)
    if kind == "self":
        return q, q, q
    k = floats(B, S, m.kdim, seed=1)
    v = k if kind == "cross" else floats(B, S, m.vdim, seed=2)
    if not m.batch_first:
        q, k = floats(T, B, E), floats(S, B, m.kdim, seed=1)
        v = floats(S, B, m.vdim, seed=2)
    return q, k, v


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck_multi_head_attention(name):
    ctor, kind, kw = GRAD_CASES[name]
    m = mha(**ctor)
    q, k, v = _inputs(kind, m)
    leaves = [q] if kind == "self" else ([q, k] if k is v else [q, k, v])
    npdl.gradcheck(lambda *a: m(q, k, v, **kw), *leaves, *m.parameters())


def test_gradcheck_attention_dropout():
    m = mha(dropout=0.4)
    x = floats(B, T, E)

    def fn(*_):
        npdl.manual_seed(0)  # the same dropout mask at every evaluation
        return m(x, x, x, is_causal=True)

    npdl.gradcheck(fn, x, *m.parameters())
    m.eval()
    np.testing.assert_array_equal(m(x, x, x).data, m(x, x, x).data)


def test_fully_masked_row_gives_zeros_not_nan():
    m = mha()
    x = floats(B, T, E)
    kpm = np.ones((B, T), bool)
    out = m(x, x, x, key_padding_mask=kpm)
    assert np.isfinite(out.data).all()
    np.testing.assert_allclose(out.data, np.broadcast_to(m.out_proj.bias.data, out.shape))


def test_padding_values_do_not_change_real_outputs():
    m = mha()
    q = floats(B, T, E)
    mem = floats(B, S, E, seed=1).data
    mem2 = mem.copy()
    mem2[KPM] = 100.0 * np.random.default_rng(5).standard_normal((KPM.sum(), E))
    a = m(q, npdl.tensor(mem, dtype=np.float64), npdl.tensor(mem, dtype=np.float64), key_padding_mask=KPM)
    b = m(q, npdl.tensor(mem2, dtype=np.float64), npdl.tensor(mem2, dtype=np.float64), key_padding_mask=KPM)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32_and_need_weights():
    m = MultiHeadAttention(8, 2, rng=np.random.default_rng(0))
    x = floats(2, 5, 8, dtype=np.float32)
    out, w = m(x, x, x, attn_mask=np.triu(np.ones((5, 5), bool), 1), need_weights=True)
    assert out.dtype == np.float32 and w.shape == (2, 5, 5)
    np.testing.assert_allclose(w.data.sum(-1), 1.0, rtol=1e-5)
    assert np.all(w.data[:, np.triu(np.ones((5, 5), bool), 1)] == 0)
    _, wh = m(x, x, x, need_weights=True, average_attn_weights=False)
    assert wh.shape == (2, 2, 5, 5)
    out.sum().backward()
    assert x.grad.dtype == np.float32 and m.in_proj_weight.grad.dtype == np.float32


def test_self_attention_by_default():
    m = mha()
    x = floats(B, T, E)
    np.testing.assert_array_equal(m(x).data, m(x, x, x).data)


# ---- errors ---------------------------------------------------------------------------------
def test_user_errors_are_typed_and_clear():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(6, 4)
    with pytest.raises(ValueError, match="packed=False"):
        MultiHeadAttention(4, 2, kdim=3)
    m = mha()
    x = floats(B, T, E)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B, S\)"):
        m(x, x, x, key_padding_mask=np.zeros((B, T + 1), bool))
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        m(x, x, x, attn_mask=np.zeros((T, T + 1), bool))
    with pytest.raises(TypeError, match="boolean"):
        m(x, x, x, attn_mask=np.zeros((T, T), np.int64))
    with pytest.raises(ValueError, match="embed_dim"):
        m(floats(B, T, E + 1), x, x)
    with pytest.raises(RuntimeError, match="no_grad"):
        m(x, x, x, cache={})


# ---- KV cache -------------------------------------------------------------------------------
@pytest.mark.parametrize("packed", [True, False])
def test_kv_cache_self_attention_matches_full(packed):
    m = mha(packed=packed)
    x = floats(B, 5, E, grad=False)
    kpm = np.zeros((B, 5), bool)
    kpm[1, 0] = True
    with npdl.no_grad():
        full = m(x, x, x, is_causal=True, key_padding_mask=kpm).data
        cache = {}
        steps = [m(x[:, i:i + 1], x[:, i:i + 1], x[:, i:i + 1], is_causal=True, key_padding_mask=kpm[:, :i + 1],
                   cache=cache).data for i in range(5)]
        # two tokens at once after a prefix of three: the causal mask must respect the offset
        cache2 = {}
        m(x[:, :3], x[:, :3], x[:, :3], is_causal=True, cache=cache2)
        tail = m(x[:, 3:], x[:, 3:], x[:, 3:], is_causal=True, cache=cache2).data
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-10, atol=1e-12)
    with npdl.no_grad():
        nomask = m(x, x, x, is_causal=True).data
    np.testing.assert_allclose(tail, nomask[:, 3:], rtol=1e-10, atol=1e-12)
    assert cache["k"].shape == (B, 5, E)


def test_kv_cache_static_cross_attention():
    m = mha()
    x, mem = floats(B, 3, E, grad=False), floats(B, S, E, seed=1, grad=False)
    with npdl.no_grad():
        full = m(x, mem, mem, key_padding_mask=KPM).data
        cache = {}
        first = m(x[:, :1], mem, mem, key_padding_mask=KPM, cache=cache, static_kv=True).data
        k_id = id(cache["k"])
        rest = m(x[:, 1:], None, None, key_padding_mask=KPM, cache=cache, static_kv=True).data
    assert id(cache["k"]) == k_id  # projected once, reused
    np.testing.assert_allclose(np.concatenate([first, rest], 1), full, rtol=1e-10, atol=1e-12)


# ---- PyTorch equivalence --------------------------------------------------------------------
def _torch_state(tm):
    return {k: v.detach().numpy() for k, v in tm.state_dict().items()}


@pytest.mark.parametrize("kind", ["self", "cross", "apart"])
@pytest.mark.parametrize("masks", ["none", "kpm_attn", "per_head_float"])
def test_matches_torch_multihead_attention(kind, masks):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    e, h, b, t, s = 8, 2, 3, 4, 5
    tm = torch.nn.MultiheadAttention(e, h, batch_first=True).double()
    m = MultiHeadAttention(e, h).double()
    m.load_state_dict(_torch_state(tm))
    rng = np.random.default_rng(0)
    q = rng.standard_normal((b, t, e))
    k = q if kind == "self" else rng.standard_normal((b, s, e))
    v = k if kind != "apart" else rng.standard_normal((b, s, e))
    s = k.shape[1]
    kw = {}
    if masks == "kpm_attn":
        kpm = np.zeros((b, s), bool)
        kpm[0, -1] = kpm[2, -2:] = True
        kw = dict(key_padding_mask=kpm, attn_mask=np.triu(np.ones((t, s), bool), 1))
    elif masks == "per_head_float":
        am = rng.standard_normal((b * h, t, s))
        am[:, 0, 1:] = -np.inf
        kw = dict(attn_mask=am)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tk = tq if kind == "self" else tk
    tv = tk if kind != "apart" else tv
    nq, nk, nv = (npdl.tensor(a, dtype=np.float64, requires_grad=True) for a in (q, k, v))
    nk = nq if kind == "self" else nk
    nv = nk if kind != "apart" else nv
    t_out, t_w = tm(tq, tk, tv, need_weights=True, **{a: torch.tensor(m_) for a, m_ in kw.items()})
    n_out, n_w = m(nq, nk, nv, need_weights=True, **kw)
    np.testing.assert_allclose(n_out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(n_w.data, t_w.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(n_out.shape)
    t_out.backward(torch.tensor(gy))
    n_out.backward(gy)
    for ta, na in ((tq, nq), (tk, nk), (tv, nv)):
        np.testing.assert_allclose(na.grad, ta.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(dict(m.named_parameters())[name].grad, p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_matches_torch_separate_projections_kdim_vdim():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    e, h = 6, 3
    tm = torch.nn.MultiheadAttention(e, h, kdim=4, vdim=5, batch_first=True).double()
    m = MultiHeadAttention(e, h, packed=False, kdim=4, vdim=5).double()
    ts = _torch_state(tm)
    bias = np.split(ts["in_proj_bias"], 3)
    m.load_state_dict({"q_proj.weight": ts["q_proj_weight"], "k_proj.weight": ts["k_proj_weight"],
                       "v_proj.weight": ts["v_proj_weight"], "q_proj.bias": bias[0], "k_proj.bias": bias[1],
                       "v_proj.bias": bias[2], "out_proj.weight": ts["out_proj.weight"],
                       "out_proj.bias": ts["out_proj.bias"]})
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 5))
    kpm = np.array([[False, False, True, True], [False] * 4])
    t_out, _ = tm(*(torch.tensor(a) for a in (q, k, v)), key_padding_mask=torch.tensor(kpm))
    n_out = m(*(npdl.tensor(a, dtype=np.float64) for a in (q, k, v)), key_padding_mask=kpm)
    np.testing.assert_allclose(n_out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_matches_torch_sequence_first():
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    tm = torch.nn.MultiheadAttention(8, 4).double()  # torch's default: (T, B, E)
    m = MultiHeadAttention(8, 4, batch_first=False).double()
    m.load_state_dict(_torch_state(tm))
    x = np.random.default_rng(2).standard_normal((5, 2, 8))
    t_out, _ = tm(*(torch.tensor(x),) * 3)
    xn = npdl.tensor(x, dtype=np.float64)
    np.testing.assert_allclose(m(xn, xn, xn).data, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)


# ---- positional encodings -------------------------------------------------------------------
def test_sinusoidal_table_follows_the_paper():
    d = 6
    pe = SinusoidalPositionalEncoding(d, max_len=50)
    x = npdl.zeros(1, 50, d)
    table = pe(x).data[0]
    pos, i = 17, 2  # PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...)
    np.testing.assert_allclose(table[pos, 2 * i], np.sin(pos / 10000 ** (2 * i / d)), rtol=1e-5)
    np.testing.assert_allclose(table[pos, 2 * i + 1], np.cos(pos / 10000 ** (2 * i / d)), rtol=1e-5)
    np.testing.assert_allclose(pe(npdl.zeros(2, 3, d), offset=17).data[1, 0], table[17], rtol=1e-6)
    assert table.dtype == np.float32
    assert "pe" not in pe.state_dict()
    odd = SinusoidalPositionalEncoding(5, max_len=4)(npdl.zeros(1, 4, 5))
    assert odd.shape == (1, 4, 5)


@pytest.mark.parametrize("cls", [SinusoidalPositionalEncoding, LearnedPositionalEmbedding])
def test_positional_errors_and_gradcheck(cls):
    layer = (cls(4, max_len=6) if cls is SinusoidalPositionalEncoding
             else cls(6, 4, rng=np.random.default_rng(0))).double()
    x = floats(2, 3, 4)
    npdl.gradcheck(lambda x, *ps: layer(x, offset=2), x, *layer.parameters())
    with pytest.raises(ContextTooLongError, match="max_len=6"):
        layer(x, offset=4)
    with pytest.raises(ValueError, match=r"\(B, T, 4\)"):
        layer(floats(2, 3, 5))


def test_learned_positional_only_touches_used_rows():
    layer = LearnedPositionalEmbedding(8, 4, rng=np.random.default_rng(0))
    layer(floats(2, 3, 4, dtype=np.float32), offset=2).sum().backward()
    g = layer.weight.grad
    assert np.all(g[[0, 1, 5, 6, 7]] == 0) and np.all(g[2:5] == 2.0)


def test_registered_and_built_from_specs():
    m = LAYERS.build({"type": "multi_head_attention", "embed_dim": 8, "num_heads": 2, "dropout": 0.1})
    assert isinstance(m, MultiHeadAttention)
    assert LAYERS.build({"type": "sinusoidal_positional_encoding", "d_model": 8}).max_len == 5000
    assert LAYERS.build({"type": "learned_positional_embedding", "max_len": 16, "d_model": 8}).weight.shape == (16, 8)
    problems = check_spec(LAYERS, {"type": "multi_head_attention", "embed_dim": 0, "num_heads": 2, "dropout": 1.0}, "")
    assert {p.path for p in problems} == {"embed_dim", "dropout"}


# ---- the fused op itself --------------------------------------------------------------------
def test_gradcheck_fused_attention_op_layouts():
    from npdl.core.ops.attention_ops import MultiHeadAttention as Op
    mask = np.array([[True, True, False, True], [True, False, False, True], [False, False, False, False]])
    qkv = floats(B, S, 3 * E)
    npdl.gradcheck(lambda a: Op.apply(a, layout="qkv", num_heads=H, causal=True), qkv)
    q, kv = floats(B, T, E), floats(B, S, 2 * E, seed=1)
    npdl.gradcheck(lambda a, b: Op.apply(a, b, layout="q_kv", num_heads=H, mask=mask, scale=0.7), q, kv)
    k, v = floats(B, S, E, seed=2), floats(B, S, 2 * E, seed=3)  # value heads wider than key heads
    bias = np.random.default_rng(4).standard_normal((B, 1, T, S))
    out = Op.apply(q, k, v, layout="q_k_v", num_heads=H, bias=bias)
    assert out.shape == (B, T, 2 * E)
    npdl.gradcheck(lambda a, b, c: Op.apply(a, b, c, layout="q_k_v", num_heads=H, bias=bias, mask=mask), q, k, v)
    np.testing.assert_array_equal(Op.apply(q, k, v, layout="q_k_v", num_heads=H, mask=mask).data[:, 2], 0.0)


def test_fused_attention_matches_per_head_reference():
    from npdl.core.ops.attention_ops import MultiHeadAttention as Op
    import npdl.functional as F
    qkv = floats(B, T, 3 * E, grad=False)
    out = Op.apply(qkv, layout="qkv", num_heads=H, causal=True).data
    d = E // H
    for h in range(H):
        q, k, v = (qkv[:, :, i * E + h * d: i * E + (h + 1) * d] for i in range(3))
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=True).data
        np.testing.assert_allclose(out[:, :, h * d:(h + 1) * d], ref, rtol=1e-12, atol=1e-12)


def test_threaded_slabs_give_the_same_numbers(monkeypatch):
    from npdl.core import parallel
    from npdl.core.ops import attention_ops as ops

    b, t, s = 5, 3, 4
    q, kv = floats(b, t, E), floats(b, s, 2 * E, seed=1)
    kpm = np.random.default_rng(2).random((b, 1, 1, s)) > 0.3
    kpm[..., 0] = True

    def run():
        q.grad = kv.grad = None
        npdl.manual_seed(0)
        out = ops.MultiHeadAttention.apply(q, kv, layout="q_kv", num_heads=H, mask=kpm, causal=True,
                                           dropout_p=0.3, rng=npdl.default_rng())
        out.backward(np.random.default_rng(3).standard_normal(out.shape))
        return out.data, q.grad, kv.grad

    monkeypatch.setattr(parallel, "THREADS", 1)
    single = run()
    monkeypatch.setattr(parallel, "THREADS", 3)
    monkeypatch.setattr(parallel, "MIN_SLAB", 1)
    for a, c in zip(single, run()):
        np.testing.assert_array_equal(a, c)
