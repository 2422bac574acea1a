"""Module behaviour: registration, dotted names, state_dict round trip, strict loading, repr, init."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl import nn
from npdl.nn import init


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, in_features=4)
        self.norm = nn.LayerNorm(3)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.register_buffer("steps", np.zeros((), np.int64))

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.heads = nn.ModuleDict({"a": nn.Linear(2, in_features=3)})
        self.seq = nn.Sequential(nn.ReLU(), nn.Linear(2, in_features=2))

    def forward(self, x):
        for b in self.blocks:
            x = b(x) @ npdl.ones(3, 4)
        return self.seq(self.heads["a"](x @ npdl.ones(4, 3)))


def test_parameters_registered_with_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names[:4] == ["blocks.0.scale", "blocks.0.fc.weight", "blocks.0.fc.bias", "blocks.0.norm.weight"]
    assert "heads.a.weight" in names and "seq.1.bias" in names
    assert net.num_parameters() == sum(p.size for p in net.parameters())
    assert len(list(net.modules())) == 13  # Net, list, 2 x (block, fc, norm), dict, a, seq, relu, linear


def test_tied_parameters_counted_once_but_saved_under_each_name():
    a, b = nn.Linear(2, in_features=2), nn.Linear(2, in_features=2)
    b.weight = a.weight
    s = nn.Sequential(a, b)
    assert [n for n, _ in s.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert set(s.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias"}


def test_state_dict_round_trip_and_buffers():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert "blocks.1.steps" in sd
    b.load_state_dict(sd)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
        assert pa.data is not pb.data


def test_strict_load_reports_every_problem_and_changes_nothing():
    net = Net()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    bad = dict(net.state_dict())
    bad.pop("blocks.0.fc.bias")
    bad["blocks.1.fc.weight"] = np.zeros((9, 9), np.float32)
    bad["extra.weight"] = np.zeros(2, np.float32)
    bad["blocks.0.scale"] = np.full(1, 7.0, np.float32)  # valid change, must NOT be applied
    with pytest.raises(nn.StateDictError) as err:
        net.load_state_dict(bad)
    msg = str(err.value)
    assert "missing keys (1): blocks.0.fc.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "shape mismatch for blocks.1.fc.weight: model has (3, 4), state dict has (9, 9)" in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_load_returns_missing_and_unexpected():
    net = Block()
    missing, unexpected = net.load_state_dict({"scale": np.full(1, 2.0, np.float32), "zzz": np.ones(1)},
                                              strict=False)
    assert "fc.weight" in missing and unexpected == ["zzz"]
    assert net.scale.data[0] == 2.0


def test_train_eval_and_zero_grad():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(npdl.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_shows_tree_with_parameter_counts():
    text = repr(Net())
    assert text.startswith("Net(  # ") and "(blocks): ModuleList(" in text
    assert "(fc): Linear(in_features=4, out_features=3, bias=True)  # 15 params" in text


def test_double_casts_parameters_and_buffers():
    net = nn.Sequential(nn.Linear(2, in_features=3), nn.BatchNorm(2)).double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net[1].running_mean.dtype == np.float64


@pytest.mark.parametrize("fn,kw", [
    (init.xavier_uniform_, {}), (init.xavier_normal_, {}), (init.kaiming_uniform_, {"nonlinearity": "relu"}),
    (init.kaiming_normal_, {"nonlinearity": "relu"}), (init.lecun_normal_, {}), (init.lecun_uniform_, {}),
    (init.normal_, {"std": 0.5}), (init.uniform_, {"low": -1, "high": 1}), (init.orthogonal_, {}),
])
def test_initializers_are_seeded_and_scaled(fn, kw):
    shape = (200, 300)
    a = fn(nn.Parameter(np.zeros(shape, np.float32)), rng=np.random.default_rng(0), **kw)
    b = fn(nn.Parameter(np.zeros(shape, np.float32)), rng=np.random.default_rng(0), **kw)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32
    expected_std = {
        init.xavier_uniform_: np.sqrt(2 / 500), init.xavier_normal_: np.sqrt(2 / 500),
        init.kaiming_uniform_: np.sqrt(2 / 300), init.kaiming_normal_: np.sqrt(2 / 300),
        init.lecun_normal_: np.sqrt(1 / 300), init.lecun_uniform_: np.sqrt(1 / 300),
        init.normal_: 0.5, init.uniform_: np.sqrt(1 / 3), init.orthogonal_: np.sqrt(1 / 300),
    }[fn]
    np.testing.assert_allclose(a.data.std(), expected_std, rtol=0.05)


def test_orthogonal_is_orthogonal():
    w = init.orthogonal_(nn.Parameter(np.zeros((4, 6))), rng=np.random.default_rng(1))
    np.testing.assert_allclose(w.data @ w.data.T, np.eye(4), atol=1e-6)
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()


def test_initializer_aliases_are_the_same_functions():
    assert init.glorot_uniform_ is init.xavier_uniform_ and init.glorot_normal_ is init.xavier_normal_
    assert init.he_uniform_ is init.kaiming_uniform_ and init.he_normal_ is init.kaiming_normal_
