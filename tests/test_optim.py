"""Optimizers: hand-computed first steps, PyTorch trajectories, state dicts, sparse rows, groups, clipping."""
from __future__ import annotations

import json

import numpy as np
import pytest

import npdl
import npdl.optim as O
from npdl.core.sparse import RowSparseGrad
from npdl.nn.layers import Embedding, LayerNorm, Linear
from npdl.nn.module import Module, Parameter
from npdl.config import check_spec
from npdl.registry import OPTIMIZERS
from npdl.schema import ArgumentError

W0 = np.array([1.0, -2.0, 3.0])
G1 = np.array([0.5, -1.0, 2.0])
G2 = np.array([0.1, 0.2, -0.3])


def two_steps(cls, **kw):
    """Weights after each of two steps with the fixed gradients G1, G2 (float64)."""
    p = Parameter(W0.copy())
    opt = cls([("w", p)], **kw)
    out = []
    for g in (G1, G2):
        p.grad = g.copy()
        opt.step()
        out.append(p.data.copy())
    return out


# ---- closed forms of the first two steps, written out per optimizer ------------------------------
def sgd_expected(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    d1 = G1 + weight_decay * W0
    b1 = d1                                          # the buffer starts as the first gradient
    s1 = (d1 + momentum * b1 if nesterov else b1) if momentum else d1
    w1 = W0 - lr * s1
    d2 = G2 + weight_decay * w1
    b2 = momentum * b1 + (1 - dampening) * d2
    s2 = (d2 + momentum * b2 if nesterov else b2) if momentum else d2
    return [w1, w1 - lr * s2]


def adam_expected(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    w = W0.copy()
    m = v = vmax = np.zeros(3)
    out = []
    for t, g in ((1, G1), (2, G2)):
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(vv / (1 - b2 ** t)) + eps)
        out.append(w)
    return out


def rmsprop_expected(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    w, s, a, b = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    out = []
    for g in (G1, G2):
        g = g + weight_decay * w
        s = alpha * s + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        denom = np.sqrt(s - a * a if centered else s) + eps
        if momentum:
            b = momentum * b + g / denom
            w = w - lr * b
        else:
            w = w - lr * g / denom
        out.append(w)
    return out


def adagrad_expected(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    w, s = W0.copy(), np.full(3, initial_accumulator_value)
    out = []
    for t, g in ((1, G1), (2, G2)):
        g = g + weight_decay * w
        s = s + g * g
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        out.append(w)
    return out


def test_sgd_plain_first_steps_by_hand():
    w1, w2 = two_steps(O.SGD, lr=0.1)
    np.testing.assert_allclose(w1, [1.0 - 0.05, -2.0 + 0.1, 3.0 - 0.2])
    np.testing.assert_allclose(w2, [0.95 - 0.01, -1.9 - 0.02, 2.8 + 0.03])


def test_adam_first_step_is_sign_times_lr():
    # bias correction makes step 1 exactly lr * g / (|g| + eps) (Kingma & Ba 2015, Sec. 3)
    (w1, _) = two_steps(O.Adam, lr=0.01)
    np.testing.assert_allclose(w1, W0 - 0.01 * np.sign(G1), atol=1e-9)


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, weight_decay=0.2), dict(lr=0.1, momentum=0.9),
             dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.2), dict(lr=0.1, momentum=0.9, nesterov=True),
             dict(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.2)]
ADAM_CASES = [dict(lr=0.1), dict(lr=0.1, weight_decay=0.2), dict(lr=0.1, amsgrad=True, betas=(0.8, 0.9)),
              dict(lr=0.05, weight_decay=0.2, amsgrad=True, eps=1e-3)]
RMS_CASES = [dict(lr=0.01), dict(lr=0.01, weight_decay=0.2), dict(lr=0.01, momentum=0.9),
             dict(lr=0.01, centered=True), dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, alpha=0.9)]
ADAGRAD_CASES = [dict(lr=0.1), dict(lr=0.1, weight_decay=0.2), dict(lr=0.1, lr_decay=0.5),
                 dict(lr=0.1, initial_accumulator_value=0.3, lr_decay=0.1, weight_decay=0.1)]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_two_steps(kw):
    np.testing.assert_allclose(two_steps(O.SGD, **kw), sgd_expected(**kw), rtol=1e-12)


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_two_steps(kw):
    np.testing.assert_allclose(two_steps(O.Adam, **kw), adam_expected(**kw), rtol=1e-12)


@pytest.mark.parametrize("kw", ADAM_CASES + [dict(lr=0.1, weight_decay=0.5)])
def test_adamw_two_steps(kw):
    kw = {"weight_decay": 1e-2, **kw}
    np.testing.assert_allclose(two_steps(O.AdamW, **kw), adam_expected(decoupled=True, **kw), rtol=1e-12)


@pytest.mark.parametrize("kw", RMS_CASES)
def test_rmsprop_two_steps(kw):
    np.testing.assert_allclose(two_steps(O.RMSprop, **kw), rmsprop_expected(**kw), rtol=1e-12)


@pytest.mark.parametrize("kw", ADAGRAD_CASES)
def test_adagrad_two_steps(kw):
    np.testing.assert_allclose(two_steps(O.Adagrad, **kw), adagrad_expected(**kw), rtol=1e-12)


# ---- PyTorch trajectories on a quadratic ------------------------------------------------------------
A = np.array([[3.0, 0.5, 0.1], [0.5, 2.0, 0.3], [0.1, 0.3, 1.0]])
B = np.array([1.0, -2.0, 0.5])
TORCH_CASES = ([("SGD", "sgd", kw) for kw in SGD_CASES] + [("Adam", "adam", kw) for kw in ADAM_CASES]
               + [("AdamW", "adamw", kw) for kw in ADAM_CASES + [dict(lr=0.1, weight_decay=0.5, amsgrad=True)]]
               + [("RMSprop", "rmsprop", kw) for kw in RMS_CASES]
               + [("Adagrad", "adagrad", kw) for kw in ADAGRAD_CASES])


@pytest.mark.parametrize("torch_name,name,kw", TORCH_CASES)
def test_matches_torch_trajectory(torch_name, name, kw):
    torch = pytest.importorskip("torch")
    w0 = np.array([1.0, -1.0, 2.0])
    p, t = Parameter(w0.copy()), torch.tensor(w0.copy(), requires_grad=True)
    opt = OPTIMIZERS.get(name)([("w", p)], **kw)
    topt = getattr(torch.optim, torch_name)([t], **kw)
    for _ in range(10):
        p.grad = A @ p.data - B          # gradient of 0.5 w^T A w - b^T w
        t.grad = torch.tensor(A @ t.detach().numpy() - B)
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-6, atol=1e-9)


# ---- state dicts -------------------------------------------------------------------------------------
def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [("layer.weight", Parameter(rng.standard_normal((2, 3)).astype(dtype))),
            ("layer.bias", Parameter(rng.standard_normal(3).astype(dtype)))]


def fake_grads(named, k):
    for i, (_, p) in enumerate(named):
        p.grad = np.sin(p.data * (k + 1) + i)      # deterministic, depends on the weights


@pytest.mark.parametrize("name,kw", [("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                     ("adam", dict(amsgrad=True, weight_decay=0.1)), ("adamw", {}),
                                     ("rmsprop", dict(momentum=0.5, centered=True)), ("adagrad", dict(lr_decay=0.1))])
def test_state_dict_round_trip(name, kw):
    cls = OPTIMIZERS.get(name)
    named = make_params()
    opt = cls(named, **kw)
    for k in range(3):
        fake_grads(named, k)
        opt.step()
    sd = opt.state_dict()
    scalars = {n: {k: v for k, v in s.items() if not hasattr(v, "shape")} for n, s in sd["state"].items()}  # arrays: NumPy or device
    json.dumps({"groups": sd["param_groups"], "step": sd["step"], "state": scalars})  # JSON-able but the arrays
    copy = [(n, Parameter(p.data.copy())) for n, p in named]
    fresh = cls(copy, **kw)
    fresh.load_state_dict(sd)
    assert fresh.step_count == 3
    for k in range(3, 6):
        for params, o in ((named, opt), (copy, fresh)):
            fake_grads(params, k)
            o.step()
    for (_, a), (_, b) in zip(named, copy):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_a_snapshot():
    named = make_params()
    opt = O.Adam(named)
    fake_grads(named, 0)
    opt.step()
    sd = opt.state_dict()
    before = sd["state"]["layer.weight"]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"]["layer.weight"]["exp_avg"], before)


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    named = make_params()
    opt = O.Adam(named, lr=0.01)
    fake_grads(named, 0)
    opt.step()
    sd = opt.state_dict()
    sd["param_groups"][0]["params"] = ["layer.weight", "layer.gain"]     # bias missing, gain unknown
    sd["param_groups"][0]["lrr"] = 0.1
    sd["state"]["layer.weight"]["exp_avg"] = np.zeros((3, 2))
    sd["state"]["layer.bias"].pop("exp_avg_sq")
    sd["state"]["encoder.w"] = {"step": 1}
    sd["param_groups"][0]["lr"] = 0.5
    target = O.Adam(make_params(1), lr=0.01)
    with pytest.raises(O.OptimizerStateError) as e:
        target.load_state_dict(sd)
    msg = str(e.value)
    for piece in ("missing parameters (1): layer.bias", "unknown parameters (1): layer.gain", "lrr",
                  "shape mismatch", "(2, 3)", "(3, 2)", "missing 'exp_avg_sq'", "unknown parameter 'encoder.w'"):
        assert piece in msg, piece
    assert len(e.value.problems) == 6
    assert isinstance(e.value, ValueError)
    assert target.state == {} and target.param_groups[0]["lr"] == 0.01 and target.step_count == 0


def test_load_state_dict_group_count():
    named = make_params()
    two = O.SGD(named, lr=0.1, no_decay_1d=True, weight_decay=0.1)
    one = O.SGD(make_params(), lr=0.1)
    with pytest.raises(O.OptimizerStateError, match="2 parameter groups.*has 1"):
        one.load_state_dict(two.state_dict())


# ---- sparse gradients --------------------------------------------------------------------------------
ALL = [("sgd", dict(lr=0.1)), ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
       ("adam", dict(lr=0.1, weight_decay=0.1)), ("adamw", dict(lr=0.1, amsgrad=True)),
       ("rmsprop", dict(momentum=0.5, centered=True)), ("adagrad", dict(weight_decay=0.1))]


def test_sparse_sgd_equals_dense_update():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 4))
    rows, vals = np.array([1, 4, 1, 0]), rng.standard_normal((4, 4))
    ps, pd = Parameter(w.copy()), Parameter(w.copy())
    ps.grad = RowSparseGrad(rows, vals, (6, 4))
    pd.grad = ps.grad.to_dense()
    O.SGD([ps], lr=0.3).step()
    O.SGD([pd], lr=0.3).step()
    np.testing.assert_allclose(ps.data, pd.data, rtol=1e-15)
    np.testing.assert_array_equal(ps.data[[2, 3, 5]], w[[2, 3, 5]])


@pytest.mark.parametrize("name,kw", ALL)
def test_sparse_updates_touched_rows_lazily(name, kw):
    """Touched rows follow the dense rule on just those rows; other rows, and their state, stay put."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 3))
    rows, touched = np.array([4, 1, 4]), [1, 4]
    sparse_p = Parameter(w.copy())
    sub_p = Parameter(w[touched].copy())                    # the touched rows as a dense parameter
    so, do = OPTIMIZERS.get(name)([sparse_p], **kw), OPTIMIZERS.get(name)([sub_p], **kw)
    for k in range(2):
        vals = rng.standard_normal((3, 3))
        sparse_p.grad = RowSparseGrad(rows, vals, (6, 3))
        sub_p.grad = sparse_p.grad.coalesce().values.copy()
        so.step()
        do.step()
    np.testing.assert_allclose(sparse_p.data[touched], sub_p.data, rtol=1e-12)
    untouched = [0, 2, 3, 5]
    np.testing.assert_array_equal(sparse_p.data[untouched], w[untouched])
    for key, buf in so.state["0"].items():
        if isinstance(buf, np.ndarray):
            init = {"sum": kw.get("initial_accumulator_value", 0.0)}.get(key, 0.0)
            assert np.all(buf[untouched] == init), key


def test_sparse_grad_from_embedding_autograd():
    emb = Embedding(7, 3, sparse=True, rng=np.random.default_rng(0))
    before = emb.weight.data.copy()
    emb(np.array([[2, 5, 2]])).sum().backward()
    assert isinstance(emb.weight.grad, RowSparseGrad)
    O.Adam(emb.named_parameters(), lr=0.1).step()
    changed = np.flatnonzero(np.any(emb.weight.data != before, axis=1))
    assert changed.tolist() == [2, 5]


# ---- allocation, dtype, skipping ---------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", ALL + [("adam", dict(amsgrad=True)), ("sgd", dict(lr=0.1, momentum=0.9,
                                                                                       nesterov=True))])
def test_no_per_step_reallocation(name, kw):
    named = make_params(dtype=np.float32)
    opt = OPTIMIZERS.get(name)(named, **kw)
    data = [p.data for _, p in named]
    fake_grads(named, 0)
    opt.step()
    bufs = {(n, k): v for n, s in opt.state.items() for k, v in s.items() if isinstance(v, np.ndarray)}
    scratch = dict(opt._scratch)
    for k in range(1, 4):
        fake_grads(named, k)
        opt.step()
    after = {(n, k): v for n, s in opt.state.items() for k, v in s.items() if isinstance(v, np.ndarray)}
    assert after.keys() == bufs.keys()
    assert all(after[k] is bufs[k] for k in bufs)
    assert opt._scratch.keys() == scratch.keys() and all(opt._scratch[k] is scratch[k] for k in scratch)
    assert all(p.data is d for (_, p), d in zip(named, data))     # weights updated in place


@pytest.mark.parametrize("name,kw", ALL)
def test_float32_stays_float32(name, kw):
    kw = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in kw.items()}  # np.float64 hyperparameters
    named = make_params(dtype=np.float32)
    opt = OPTIMIZERS.get(name)(named, **kw)
    for k in range(2):
        fake_grads(named, k)
        opt.step()
    assert all(p.data.dtype == np.float32 for _, p in named)
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray))
    assert all(type(opt.param_groups[0][k]) is float for k, v in kw.items() if isinstance(v, float))


def test_params_without_grad_are_skipped_and_zero_grad():
    named = make_params()
    opt = O.Adam(named)
    named[0][1].grad = np.ones((2, 3))
    bias = named[1][1].data.copy()
    opt.step()
    np.testing.assert_array_equal(named[1][1].data, bias)
    assert list(opt.state) == ["layer.weight"]
    opt.zero_grad()
    assert all(p.grad is None for _, p in named)


def test_plain_parameter_list_is_named_by_position():
    ps = [Parameter(np.zeros(2)), Parameter(np.zeros(3))]
    opt = O.SGD(ps, lr=0.1, momentum=0.9)
    for p in ps:
        p.grad = np.ones_like(p.data)
    opt.step()
    assert opt.param_groups[0]["param_names"] == ["0", "1"] and set(opt.state) == {"0", "1"}


# ---- parameter groups --------------------------------------------------------------------------------
class Net(Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.embed = Embedding(5, 4, rng=rng)
        self.proj = Linear(4, 4, rng=rng)
        self.norm = LayerNorm(4)
        self.ln_f = LayerNorm(4)


def names(group):
    return [n for n, _ in group["params"]]


def test_param_groups_no_decay_names_and_1d():
    groups = O.param_groups(Net().named_parameters())
    assert [names(g) for g in groups] == [["embed.weight", "proj.weight"],
                                          ["proj.bias", "norm.weight", "norm.bias", "ln_f.weight", "ln_f.bias"]]
    assert "weight_decay" not in groups[0] and groups[1]["weight_decay"] == 0.0
    by_name = O.param_groups(Net().named_parameters(), no_decay_1d=False)
    assert names(by_name[1]) == ["proj.bias", "norm.weight", "norm.bias", "ln_f.bias"]   # ln_f.weight decays


def test_param_groups_overrides_first_match_wins():
    groups = O.param_groups(Net().named_parameters(), no_decay=["bias"], no_decay_1d=False,
                            groups=[{"match": r"^embed\.", "lr": 0.01}, {"match": "weight", "lr": 0.5}])
    got = {(tuple(names(g))): {k: v for k, v in g.items() if k != "params"} for g in groups}
    assert got == {("embed.weight",): {"lr": 0.01}, ("proj.weight", "norm.weight", "ln_f.weight"): {"lr": 0.5},
                   ("proj.bias", "norm.bias", "ln_f.bias"): {"weight_decay": 0.0}}


def test_optimizer_config_groups_build_and_decay():
    net = Net()
    spec = {"type": "adamw", "lr": 1e-3, "weight_decay": 0.5, "no_decay": ["bias", "norm"], "no_decay_1d": True,
            "groups": [{"match": "^embed", "lr": 1e-2}]}
    assert check_spec(OPTIMIZERS, spec, "optimizer", provided=["params"]) == []
    opt = OPTIMIZERS.build(spec, params=net.named_parameters())
    summary = [(g["param_names"], g["lr"], g["weight_decay"], g["initial_lr"]) for g in opt.param_groups]
    assert summary == [(["embed.weight"], 1e-2, 0.5, 1e-2), (["proj.weight"], 1e-3, 0.5, 1e-3),
                       (["proj.bias", "norm.weight", "norm.bias", "ln_f.weight", "ln_f.bias"], 1e-3, 0.0, 1e-3)]
    before = {n: p.data.copy() for n, p in net.named_parameters()}
    for _, p in net.named_parameters():
        p.grad = np.zeros_like(p.data)          # zero gradient: only decoupled decay moves weights
    opt.step()
    for n, p in net.named_parameters():
        decay = {"embed.weight": 1 - 1e-2 * 0.5, "proj.weight": 1 - 1e-3 * 0.5}.get(n, 1.0)
        np.testing.assert_allclose(p.data, before[n] * decay, rtol=1e-6)


def test_group_dicts_override_defaults():
    (n1, w), (n2, b) = make_params()
    opt = O.SGD([{"params": [(n1, w)]}, {"params": [(n2, b)], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [(g["lr"], g["momentum"]) for g in opt.param_groups] == [(0.1, 0.0), (0.5, 0.9)]
    assert set(opt.state_dict()["param_groups"][1]) >= {"lr", "initial_lr", "momentum", "params"}


def test_group_and_hyperparameter_errors_are_all_reported():
    with pytest.raises(ArgumentError) as e:
        O.Adam(Net().named_parameters(), groups=[{"match": "^emb", "lrr": 0.1}, {"match": "decoder", "lr": 1.0}])
    assert "groups[0].lrr" in str(e.value) and "did you mean 'lr'" in str(e.value)
    assert "groups[1].match: 'decoder' matches no parameter" in str(e.value)       # reported together
    with pytest.raises(ArgumentError) as e:
        O.Adam(Net().named_parameters(), groups=[{"match": "decoder", "lr": 1.0}, {"match": "(", "lr": 1.0}])
    assert "groups[0].match" in str(e.value) and "matches no parameter" in str(e.value)
    assert "groups[1].match" in str(e.value) and "invalid regular expression" in str(e.value)
    with pytest.raises(ArgumentError, match="positive"):
        O.SGD(make_params(), lr=-1.0)
    with pytest.raises(ArgumentError, match="in range"):
        O.Adam(make_params(), betas=(0.9, 1.0))
    with pytest.raises(ArgumentError, match="Nesterov"):
        O.SGD(make_params(), lr=0.1, nesterov=True)
    p = Parameter(np.zeros(2))
    with pytest.raises(ArgumentError, match="same object"):
        O.SGD([("a", p), ("b", p)], lr=0.1)
    with pytest.raises(ArgumentError, match="no parameters"):
        O.SGD([], lr=0.1)
    assert check_spec(OPTIMIZERS, {"type": "adam", "lr": 0}, "optimizer", provided=["params"])


# ---- clipping ----------------------------------------------------------------------------------------
def clip_fixture(dtype=np.float64):
    dense = Parameter(np.zeros(2, dtype))
    dense.grad = np.array([3.0, 4.0], dtype)                                   # norm 5
    sparse = Parameter(np.zeros((4, 2), dtype))
    sparse.grad = RowSparseGrad(np.array([0, 2, 0]), np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]], dtype), (4, 2))
    return dense, sparse                        # coalesced rows [2, 0] and [0, 2]: squared norm 8


def test_clip_grad_norm_global_over_dense_and_sparse():
    dense, sparse = clip_fixture()
    total = O.clip_grad_norm_([dense, ("emb", sparse), Parameter(np.zeros(3))], max_norm=1.0)
    assert total == pytest.approx(np.sqrt(33.0))
    scale = 1.0 / (np.sqrt(33.0) + 1e-6)
    np.testing.assert_allclose(dense.grad, [3 * scale, 4 * scale])
    np.testing.assert_allclose(sparse.grad.to_dense(), [[2 * scale, 0], [0, 0], [0, 2 * scale], [0, 0]])
    dense, sparse = clip_fixture()
    assert O.clip_grad_norm_([dense, sparse], max_norm=10.0) == pytest.approx(np.sqrt(33.0))
    np.testing.assert_array_equal(dense.grad, [3.0, 4.0])
    assert O.clip_grad_norm_([dense, sparse], 1.0, norm_type=float("inf")) == pytest.approx(4.0)
    np.testing.assert_allclose(dense.grad, [0.75, 1.0], rtol=1e-6)
    dense, sparse = clip_fixture()
    assert O.clip_grad_norm_([dense, sparse], 100.0, norm_type=1.0) == pytest.approx(11.0)


def test_clip_grad_norm_nonfinite_leaves_grads_and_float32():
    dense, sparse = clip_fixture(np.float32)
    dense.grad[0] = np.nan
    assert np.isnan(O.clip_grad_norm_([dense, sparse], 1.0))
    np.testing.assert_array_equal(sparse.grad.to_dense()[2], [0.0, 2.0])
    dense, sparse = clip_fixture(np.float32)
    O.clip_grad_norm_([dense, sparse], 1.0)
    assert dense.grad.dtype == np.float32 and sparse.grad.values.dtype == np.float32


def test_grad_norm_of_huge_finite_float32_gradients_is_finite():
    p = npdl.tensor(np.zeros(4, np.float32), requires_grad=True)
    p.grad = np.full(4, 3e19, np.float32)          # each square overflows float32, the norm does not
    assert O.grad_norm([p]) == pytest.approx(6e19, rel=1e-6)
    assert O.clip_grad_norm_([p], 1.0) == pytest.approx(6e19, rel=1e-6)
    np.testing.assert_allclose(p.grad, 0.5, rtol=1e-5)


def test_clip_grad_value_clamps_summed_rows():
    dense, sparse = clip_fixture()
    O.clip_grad_value_([dense, sparse], 1.5)
    np.testing.assert_array_equal(dense.grad, [1.5, 1.5])
    np.testing.assert_array_equal(sparse.grad.to_dense(), [[1.5, 0], [0, 0], [0, 1.5], [0, 0]])


def test_clip_with_a_module_and_bad_arguments():
    net = Net()
    for p in net.parameters():
        p.grad = np.full_like(p.data, 10.0)
    assert O.clip_grad_norm_(net, 1.0) > 1.0
    assert np.sqrt(sum(float(np.sum(p.grad ** 2)) for p in net.parameters())) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError):
        O.clip_grad_norm_(net, 0.0)
    with pytest.raises(ValueError):
        O.clip_grad_value_(net, -1.0)
    assert npdl.optim is O
