"""Transformer layers and stacks: gradchecks, padding invariance, KV-cache decoding, PyTorch equivalence."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl.nn.transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                 TransformerEncoderLayer)
from npdl.registry import LAYERS
from npdl.config import check_spec

D, NH, FF, B, T, S = 4, 2, 6, 2, 3, 4
SRC_KPM = np.array([[False, False, True], [False, False, False]])  # (B, T), True = padding
MEM_KPM = np.array([[False, False, False, True], [False, True, True, True]])  # (B, S)
CAUSAL = np.triu(np.ones((T, T), bool), 1)


def floats(*shape, seed=0, grad=True, dtype=np.float64):
    return npdl.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=dtype, requires_grad=grad)


def enc_layer(norm_first, activation="relu", dropout=0.0, seed=0):
    return TransformerEncoderLayer(D, NH, FF, dropout, activation, norm_first, rng=np.random.default_rng(seed)).double()


def dec_layer(norm_first, activation="relu", dropout=0.0, seed=0):
    return TransformerDecoderLayer(D, NH, FF, dropout, activation, norm_first, rng=np.random.default_rng(seed)).double()


def _perturb_norms(module, seed=3):
    """Non-trivial LayerNorm weights and biases, so their gradients are checked for real."""
    rng = np.random.default_rng(seed)
    for name, p in module.named_parameters():
        if "norm" in name:
            p.data = p.data + 0.3 * rng.standard_normal(p.shape)


# ---- gradchecks ---------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_gradcheck_encoder_layer(norm_first, activation):
    layer = enc_layer(norm_first, activation)
    _perturb_norms(layer)
    x = floats(B, T, D)
    npdl.gradcheck(lambda x, *ps: layer(x, src_key_padding_mask=SRC_KPM, is_causal=True), x, *layer.parameters())


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_decoder_layer(norm_first):
    layer = dec_layer(norm_first, "gelu")
    _perturb_norms(layer)
    x, mem = floats(B, T, D), floats(B, S, D, seed=1)
    npdl.gradcheck(lambda x, m, *ps: layer(x, m, tgt_mask=CAUSAL, tgt_key_padding_mask=SRC_KPM,
                                           memory_key_padding_mask=MEM_KPM), x, mem, *layer.parameters())


def test_gradcheck_stacks_with_dropout():
    enc = TransformerEncoder(2, D, NH, FF, dropout=0.2, norm_first=True, rng=np.random.default_rng(0)).double()
    dec = TransformerDecoder(2, D, NH, FF, dropout=0.2, rng=np.random.default_rng(1)).double()
    assert "norm.weight" in enc.state_dict() and "norm.weight" not in dec.state_dict()
    x, y = floats(B, T, D), floats(B, T, D, seed=1)

    def fn(x, y, *ps):
        npdl.manual_seed(0)  # the same dropout masks at every evaluation
        mem = enc(x, src_key_padding_mask=SRC_KPM)
        return dec(y, mem, tgt_is_causal=True, memory_key_padding_mask=SRC_KPM)

    npdl.gradcheck(fn, x, y, *enc.parameters(), *dec.parameters())


# ---- padding and causality ------------------------------------------------------------------
def test_padding_tokens_do_not_change_real_outputs():
    enc = TransformerEncoder(2, D, NH, FF, dropout=0.0, rng=np.random.default_rng(0)).double()
    dec = TransformerDecoder(2, D, NH, FF, dropout=0.0, norm_first=True, rng=np.random.default_rng(1)).double()
    x, y = floats(B, T, D, grad=False), floats(B, T, D, seed=1, grad=False)
    x2 = x.data.copy()
    x2[SRC_KPM] = 50.0 * np.random.default_rng(9).standard_normal((SRC_KPM.sum(), D))
    x2 = npdl.tensor(x2, dtype=np.float64)

    def run(src):
        mem = enc(src, src_key_padding_mask=SRC_KPM)
        return mem.data, dec(y, mem, tgt_is_causal=True, memory_key_padding_mask=SRC_KPM).data

    (m1, o1), (m2, o2) = run(x), run(x2)
    real = ~SRC_KPM
    np.testing.assert_allclose(m1[real], m2[real], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(o1, o2, rtol=1e-12, atol=1e-12)


def test_causal_outputs_ignore_the_future():
    layer = enc_layer(False)
    x = floats(B, T, D, grad=False)
    x2 = x.data.copy()
    x2[:, -1] += 5.0
    a, b = layer(x, is_causal=True).data, layer(npdl.tensor(x2, dtype=np.float64), is_causal=True).data
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], rtol=1e-12, atol=1e-12)


# ---- KV-cache decoding ----------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_kv_cache_decoder_layer_equals_full_recomputation(norm_first):
    layer = dec_layer(norm_first).eval()
    tgt, mem = floats(B, 5, D, grad=False), floats(B, S, D, seed=1, grad=False)
    with npdl.no_grad():
        full = layer(tgt, mem, tgt_is_causal=True, memory_key_padding_mask=MEM_KPM).data
        cache = {}
        steps = [layer(tgt[:, i:i + 1], mem, tgt_is_causal=True, memory_key_padding_mask=MEM_KPM, cache=cache).data
                 for i in range(5)]
    np.testing.assert_allclose(np.concatenate(steps, 1), full, rtol=1e-10, atol=1e-12)
    assert cache["self"]["k"].shape == (B, 5, D) and cache["cross"]["k"].shape == (B, S, D)


def test_kv_cache_decoder_stack_equals_full_recomputation():
    dec = TransformerDecoder(3, D, NH, FF, norm_first=True, rng=np.random.default_rng(4)).double().eval()
    tgt, mem = floats(B, 6, D, grad=False), floats(B, S, D, seed=1, grad=False)
    with npdl.no_grad():
        full = dec(tgt, mem, tgt_is_causal=True, memory_key_padding_mask=MEM_KPM).data
        cache = dec.new_cache()
        first = dec(tgt[:, :2], mem, tgt_is_causal=True, memory_key_padding_mask=MEM_KPM, cache=cache).data
        rest = [dec(tgt[:, i:i + 1], mem, tgt_is_causal=True, memory_key_padding_mask=MEM_KPM, cache=cache).data
                for i in range(2, 6)]
    np.testing.assert_allclose(np.concatenate([first, *rest], 1), full, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="new_cache"), npdl.no_grad():
        dec(tgt, mem, cache=[{}])
    with pytest.raises(RuntimeError, match="no_grad"):
        dec(tgt, mem, cache=dec.new_cache())


@pytest.mark.parametrize("norm_first", [False, True])
def test_kv_cache_causal_encoder_stack_equals_full_recomputation(norm_first):
    """A decoder-only language model is a causal encoder stack; its cache must match too."""
    enc = TransformerEncoder(2, D, NH, FF, norm_first=norm_first, rng=np.random.default_rng(5)).double().eval()
    x = floats(B, 5, D, grad=False)
    with npdl.no_grad():
        full = enc(x, is_causal=True).data
        cache = enc.new_cache()
        steps = [enc(x[:, :3], is_causal=True, cache=cache).data]
        steps += [enc(x[:, i:i + 1], is_causal=True, cache=cache).data for i in (3, 4)]
    np.testing.assert_allclose(np.concatenate(steps, 1), full, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="new_cache"), npdl.no_grad():
        enc(x, cache=[{}, {}, {}])


# ---- PyTorch equivalence --------------------------------------------------------------------
def _load_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _check_grads(ours, theirs, pairs):
    for n_in, t_in in pairs:
        np.testing.assert_allclose(n_in.grad, t_in.grad.numpy(), rtol=1e-8, atol=1e-10)
    mine = dict(ours.named_parameters())
    names = [n for n, _ in theirs.named_parameters()]
    assert sorted(names) == sorted(mine)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad, p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    d, h, ff, b, t = 8, 2, 16, 3, 5
    tl = torch.nn.TransformerEncoderLayer(d, h, ff, 0.0, "gelu", batch_first=True, norm_first=norm_first).double()
    nl = TransformerEncoderLayer(d, h, ff, 0.0, "gelu", norm_first).double()
    _load_from_torch(nl, tl)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, t, d))
    kpm = np.zeros((b, t), bool)
    kpm[0, -2:] = kpm[2, -1] = True
    mask = np.triu(np.ones((t, t), bool), 1)
    tx, nx = torch.tensor(x, requires_grad=True), npdl.tensor(x, dtype=np.float64, requires_grad=True)
    t_out = tl(tx, src_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(kpm))
    n_out = nl(nx, src_mask=mask, src_key_padding_mask=kpm)
    np.testing.assert_allclose(n_out.data, t_out.detach().numpy(), rtol=1e-9, atol=1e-11)
    gy = rng.standard_normal(n_out.shape)
    t_out.backward(torch.tensor(gy))
    n_out.backward(gy)
    _check_grads(nl, tl, [(nx, tx)])


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    d, h, ff, b, t, s = 8, 4, 16, 2, 4, 5
    tl = torch.nn.TransformerDecoderLayer(d, h, ff, 0.1, batch_first=True, norm_first=norm_first).double().eval()
    nl = TransformerDecoderLayer(d, h, ff, 0.1, norm_first=norm_first).double().eval()
    _load_from_torch(nl, tl)
    rng = np.random.default_rng(1)
    x, mem = rng.standard_normal((b, t, d)), rng.standard_normal((b, s, d))
    mkpm = np.zeros((b, s), bool)
    mkpm[1, -2:] = True
    causal = np.triu(np.ones((t, t), bool), 1)
    tx, tm = (torch.tensor(a, requires_grad=True) for a in (x, mem))
    nx, nm = (npdl.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, mem))
    t_out = tl(tx, tm, tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(mkpm))
    n_out = nl(nx, nm, tgt_is_causal=True, memory_key_padding_mask=mkpm)
    np.testing.assert_allclose(n_out.data, t_out.detach().numpy(), rtol=1e-9, atol=1e-11)
    gy = rng.standard_normal(n_out.shape)
    t_out.backward(torch.tensor(gy))
    n_out.backward(gy)
    _check_grads(nl, tl, [(nx, tx), (nm, tm)])


def test_stacks_import_torch_state_dicts():
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    d, h, ff, n = 8, 2, 16, 2
    t_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(d, h, ff, 0.0, batch_first=True,
                                                                         norm_first=True),
                                        n, norm=torch.nn.LayerNorm(d), enable_nested_tensor=False).double()
    t_dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(d, h, ff, 0.0, batch_first=True), n).double()
    enc = TransformerEncoder(n, d, h, ff, 0.0, norm_first=True).double()
    dec = TransformerDecoder(n, d, h, ff, 0.0).double()
    _load_from_torch(enc, t_enc)
    _load_from_torch(dec, t_dec)
    rng = np.random.default_rng(2)
    src, tgt = rng.standard_normal((2, 5, d)), rng.standard_normal((2, 3, d))
    skpm = np.array([[False] * 4 + [True], [False] * 5])
    causal = np.triu(np.ones((3, 3), bool), 1)
    t_mem = t_enc(torch.tensor(src), src_key_padding_mask=torch.tensor(skpm))
    t_out = t_dec(torch.tensor(tgt), t_mem, tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(skpm))
    mem = enc(npdl.tensor(src, dtype=np.float64), src_key_padding_mask=skpm)
    out = dec(npdl.tensor(tgt, dtype=np.float64), mem, tgt_is_causal=True, memory_key_padding_mask=skpm)
    np.testing.assert_allclose(mem.data[~skpm], t_mem.detach().numpy()[~skpm], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-9, atol=1e-11)


def test_sequence_first_layout_matches_batch_first():
    a = TransformerEncoder(2, D, NH, FF, 0.0, rng=np.random.default_rng(0)).double()
    b = TransformerEncoder(2, D, NH, FF, 0.0, batch_first=False).double()
    b.load_state_dict(a.state_dict())
    x = floats(B, T, D, grad=False)
    np.testing.assert_allclose(b(x.swapaxes(0, 1), src_key_padding_mask=SRC_KPM).data.swapaxes(0, 1),
                               a(x, src_key_padding_mask=SRC_KPM).data, rtol=1e-12, atol=1e-12)


# ---- modes, dtypes, registry ----------------------------------------------------------------
def test_dropout_only_in_training_and_float32_kept():
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.5, rng=np.random.default_rng(0))
    x = floats(2, 5, 8, dtype=np.float32)
    a, b = layer(x).data, layer(x).data
    assert a.dtype == np.float32 and not np.allclose(a, b)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, layer(x).data)
    layer.train()
    layer(x).mean().backward()
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_registered_and_validated():
    spec = {"type": "transformer_encoder", "num_layers": 2, "d_model": 8, "nhead": 2, "dim_feedforward": 16}
    enc = LAYERS.build(spec)
    assert len(enc.layers) == 2 and "norm" not in enc._modules
    assert "norm.weight" in LAYERS.build({**spec, "final_norm": True}).state_dict()
    assert isinstance(LAYERS.build({"type": "transformer_decoder_layer", "d_model": 8, "nhead": 2}),
                      TransformerDecoderLayer)
    problems = check_spec(LAYERS, {"type": "transformer_encoder_layer", "d_model": 8, "nhead": 2,
                                "activation": "swish", "dropout": 1.5}, "")
    assert {p.path for p in problems} == {"activation", "dropout"}


# ---- the fused block ops --------------------------------------------------------------------
def test_gradcheck_fused_block_ops():
    from npdl.core.ops import block_ops as ops

    w, b = floats(D, seed=5), floats(D, seed=6)
    x, y = floats(B, T, D), floats(B, T, D, seed=1)

    def seeded(fn):
        def inner(*a):
            npdl.manual_seed(0)
            return fn(*a)
        return inner

    npdl.gradcheck(lambda w, b, x: ops.ResidualLayerNorm.apply(w, b, x, eps=1e-3), w, b, x)
    npdl.gradcheck(lambda w, b, x, y: ops.ResidualLayerNorm.apply(w, b, x, y), w, b, x, y)
    npdl.gradcheck(seeded(lambda w, b, x, y: ops.ResidualLayerNorm.apply(w, b, x, y, dropout_p=0.3,
                                                                         rng=npdl.default_rng())), w, b, x, y)
    npdl.gradcheck(lambda x, y: ops.DropoutAdd.apply(x, y), x, y)
    npdl.gradcheck(seeded(lambda x, y: ops.DropoutAdd.apply(x, y, p=0.4, rng=npdl.default_rng())), x, y)
    lw, lb = floats(5, D, seed=7), floats(5, seed=8)
    npdl.gradcheck(lambda x, lw, lb: ops.LinearReLU.apply(x, lw, lb), x, lw, lb)
    npdl.gradcheck(lambda x, lw: ops.LinearReLU.apply(x, lw), x, lw)
    npdl.gradcheck(seeded(lambda x, lw, lb: ops.LinearReLU.apply(x, lw, lb, dropout_p=0.5, rng=npdl.default_rng())),
                   x, lw, lb)


def test_fused_block_ops_match_the_composites():
    from npdl.core.ops import block_ops as ops
    import npdl.functional as F

    w, b = floats(D, seed=5), floats(D, seed=6)
    x, y = floats(B, T, D), floats(B, T, D, seed=1)
    np.testing.assert_allclose(ops.ResidualLayerNorm.apply(w, b, x, y).data,
                               F.layer_norm(x + y, D, w, b).data, rtol=1e-12, atol=1e-12)
    lw, lb = floats(5, D, seed=7), floats(5, seed=8)
    np.testing.assert_allclose(ops.LinearReLU.apply(x, lw, lb).data, F.relu(F.linear(x, lw, lb)).data)


def test_keep_mask_rate_and_reproducibility():
    from npdl.core.ops.attention_ops import keep_mask

    a = keep_mask((1000, 1000), 0.1, np.random.default_rng(0))
    assert abs(1.0 - a.mean() - 0.1) < 2e-3
    np.testing.assert_array_equal(a, keep_mask((1000, 1000), 0.1, np.random.default_rng(0)))
    assert keep_mask((7, 3), 0.0, np.random.default_rng(0)).all()
    assert keep_mask((7, 3), 0.9999999, np.random.default_rng(0)).mean() < 0.01


def test_block_op_slabs_give_the_same_numbers(monkeypatch):
    from npdl.core import parallel
    from npdl.core.ops import block_ops

    w, b = floats(D, seed=5), floats(D, seed=6)
    x, y = floats(7, 3, D), floats(7, 3, D, seed=1)
    lw, lb = floats(5, D, seed=7), floats(5, seed=8)

    def run():
        for t in (w, b, x, y, lw, lb):
            t.grad = None
        npdl.manual_seed(0)
        out = block_ops.ResidualLayerNorm.apply(w, b, x, y, dropout_p=0.2, rng=npdl.default_rng())
        out2 = block_ops.LinearReLU.apply(out, lw, lb, dropout_p=0.3, rng=npdl.default_rng())
        out2.backward(np.random.default_rng(3).standard_normal(out2.shape))
        return out2.data, w.grad, b.grad, x.grad, y.grad, lw.grad, lb.grad

    monkeypatch.setattr(parallel, "THREADS", 1)
    single = run()
    monkeypatch.setattr(parallel, "THREADS", 4)
    monkeypatch.setattr(parallel, "MIN_SLAB", 1)
    for a, c in zip(single, run()):
        np.testing.assert_array_equal(a, c)
