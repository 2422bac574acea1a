"""Training health: statistics (train/health.py), verdicts (train/health_rules.py), ``npdl health``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import npdl
from npdl import config, experiment
from npdl.cli.main import app
from npdl.nn.attention import MultiHeadAttention
from npdl.nn.conv import Conv2d
from npdl.nn.layers import ReLU, Sigmoid, Tanh
from npdl.nn.module import Module
from npdl.optim.optimizers import SGD
from npdl.runs import Run
from npdl.train import health
from npdl.train.health_rules import diagnose
from tests.conftest import ROOT, tiny_config, write_config

QUICKSTART = ROOT / "configs" / "quickstart.yaml"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ---- the statistics ------------------------------------------------------------------------


def test_dead_relu_units_are_zero_for_every_example():
    acts = health.Activations()
    out = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    acts.relu("a", out)                                  # units 0 and 3 never fire
    conv = np.zeros((2, 3, 4, 4))
    conv[1, 2, 3, 3] = 1.0                               # channel 2 fires once, channels 0, 1 never
    acts.relu("c", conv)
    acts.relu("a", np.array([[0.0, 0.0, 0.0, 5.0]]))     # a second call revives unit 3
    assert acts.stats() == {"dead_relu/a": 0.25, "dead_relu/c": pytest.approx(2 / 3)}


def test_saturation_and_attention_entropy():
    acts = health.Activations()
    acts.squash("t", np.array([-0.995, 0.5, 0.999, 0.0]), -0.99, 0.99)
    s = 6
    uniform = np.full((2, 1, 3, s), 1.0 / s)
    onehot = np.zeros((2, 1, 3, s))
    onehot[..., 0] = 1.0
    masked = uniform.copy()
    masked[:, :, 0] = 0.0                                # fully masked rows are not distributions: skipped
    acts.attention("m", np.concatenate([uniform, onehot, masked], axis=1))
    st = acts.stats()
    assert st["saturated/t"] == 0.5
    assert st["attn_entropy/m/head0"] == pytest.approx(math.log(s))
    assert st["attn_entropy/m/head1"] == pytest.approx(0.0, abs=1e-12)
    assert st["attn_entropy/m/head2"] == pytest.approx(math.log(s))


class Net(Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu, self.tanh, self.sig = Conv2d(2, 3, in_channels=1, padding=1), ReLU(), Tanh(), Sigmoid()
        self.attn = MultiHeadAttention(4, 2)

    def forward(self, img, seq):
        a = self.relu(self.conv(img)).sum()
        return a + self.tanh(seq).sum() + self.sig(seq).sum() + self.attn(seq).sum()


def test_capture_sees_each_kind_of_layer_and_restores_the_forwards():
    npdl.manual_seed(0)
    net = Net()
    img, seq = npdl.tensor(np.ones((2, 1, 5, 5))), npdl.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)))
    plain = net(img, seq).item()
    with health.capture(net) as acts:
        assert net(img, seq).item() == plain            # capturing changes no number
    st = acts.stats()
    assert set(st) == {"dead_relu/relu", "saturated/tanh", "saturated/sig", "attn_entropy/attn/head0",
                       "attn_entropy/attn/head1"}
    assert all(0.0 <= st[f"attn_entropy/attn/head{h}"] <= math.log(3) + 1e-6 for h in range(2))
    assert not any("forward" in m.__dict__ for m in net.modules())
    out, w = net.attn(seq, need_weights=True)           # the caller's own need_weights still works
    with health.capture(net):
        out2, w2 = net.attn(seq, need_weights=True)
    assert np.array_equal(out.data, out2.data) and np.array_equal(w.data, w2.data) and w2.shape == (2, 3, 3)


def test_probe_update_ratio_is_the_relative_size_of_the_step():
    npdl.manual_seed(0)
    from npdl.models.mlp import MLP

    model = MLP(sizes=[3, 4])
    (model(npdl.tensor(np.ones((2, 3)))) ** 2).sum().backward()
    w = model.layers[1].weight
    g, w0 = w.grad.copy(), w.data.copy()
    opt = SGD(list(model.named_parameters()), lr=0.1)
    probe = health.Probe(model)
    opt.step()
    h = probe.finish(lr=0.1)
    assert h["lr"] == 0.1
    assert h["grad_norm/layers.1.weight"] == pytest.approx(np.linalg.norm(g), rel=1e-5)
    assert h["weight_norm/layers.1.weight"] == pytest.approx(np.linalg.norm(w0), rel=1e-5)
    expected = math.log10(0.1 * np.linalg.norm(g) / np.linalg.norm(w0))
    assert h["update_ratio/layers.1.weight"] == pytest.approx(expected, abs=1e-5)


# ---- the verdicts --------------------------------------------------------------------------


def event(step, lr=0.01, **stats):
    return {"event": "health", "step": step, "lr": lr, **{k.replace("__", "/"): v for k, v in stats.items()}}


def test_diagnose_flags_each_problem_at_the_step_it_first_happened():
    events = [
        {"event": "train", "step": 1, "loss": 1.0},
        event(10, grad_norm__w=0.1, update_ratio__w=-3.0, dead_relu__r=0.1, attn_entropy__a__head0=1.2),
        event(20, grad_norm__w=1e-9, update_ratio__w=-0.5, dead_relu__r=0.8, attn_entropy__a__head0=0.01),
        event(30, grad_norm__w=1e4, update_ratio__w=-6.0, dead_relu__r=0.9, saturated__t=0.7, update_ratio__b=None),
    ]
    found = {(f.what, f.layer): f for f in diagnose(events)}
    assert set(found) == {("vanishing gradient", "w"), ("updates too large", "w"), ("ReLUs dead", "r"),
                          ("attention collapsed", "a/head0"), ("exploding gradient", "w"),
                          ("updates too small", "w"), ("saturated", "t")}
    assert found[("ReLUs dead", "r")].step == 20 and found[("ReLUs dead", "r")].count == 2
    assert found[("exploding gradient", "w")].step == 30 and found[("exploding gradient", "w")].total == 3
    assert "step 20: r: ReLUs dead" in found[("ReLUs dead", "r")].message()
    assert diagnose([events[1]]) == []


def test_small_updates_while_the_schedule_is_quiet_are_not_flagged():
    events = [event(1, lr=1e-5, update_ratio__w=-7.0), event(2, lr=1e-2, update_ratio__w=-3.0),
              event(3, lr=1e-4, update_ratio__w=-6.5)]
    assert diagnose(events) == []
    assert [f.step for f in diagnose(events + [event(4, lr=5e-3, update_ratio__w=-5.5)])] == [4]


# ---- in training and on the command line ---------------------------------------------------


def train_with(workdir, sets, prepare_model=None, name="run"):
    cfg = config.load(QUICKSTART, sets)
    exp = experiment.build(cfg)
    if prepare_model is not None:
        prepare_model(exp.model)
    run = Run.create(workdir / "runs", name)
    run.write_config(cfg.to_yaml())
    exp.trainer(run).fit()
    return run


def test_health_records_change_no_number_of_training(workdir):
    sets = ["train.max_steps=40", "train.epochs=null"]
    plain = train_with(workdir, sets, name="plain")
    checked = train_with(workdir, sets + ["train.health_every=3"], name="checked")
    records = [e for e in checked.metrics() if e["event"] == "health"]
    assert [e["step"] for e in records] == list(range(3, 41, 3))
    assert {"grad_norm/layers.1.weight", "update_ratio/layers.5.bias", "dead_relu/layers.4"} <= set(records[0])
    strip = lambda r: [{k: v for k, v in e.items() if k != "throughput"} for e in r.metrics()  # noqa: E731
                       if e["event"] != "health"]
    assert strip(plain) == strip(checked)


def test_npdl_health_passes_a_healthy_quickstart_run(workdir):
    train_with(workdir, ["train.health_every=25"], name="quick")
    res = invoke("health", "quick", "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    assert "20 health records" in res.output and "healthy" in res.output and "finding" not in res.output
    assert "layers.3.weight" in res.output and "layers.4" in res.output


def test_npdl_health_flags_a_relu_net_with_a_large_negative_bias(workdir):
    def kill(model):
        for layer in (model.layers[1], model.layers[3]):
            layer.bias.data[:] = -20.0                 # pre-activations < 0 for every input: ReLUs dead

    train_with(workdir, ["train.health_every=2", "train.max_steps=6", "train.epochs=null", "schedule.warmup_steps=1"], kill, name="dead")
    res = invoke("health", "dead", "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    assert "step 2: layers.2: ReLUs dead (dead_relu = 1;" in res.output
    assert "step 2: layers.1.weight: vanishing gradient (grad_norm = 0;" in res.output
    assert "in 3 of 3 health records" in res.output


def test_npdl_health_flags_a_huge_learning_rate(workdir):
    cfg = write_config(workdir / "hot.yaml", tiny_config(**{"optimizer.lr": 50.0, "train.health_every": 2,
                                                            "train.max_steps": 10, "train.epochs": None}))
    assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    res = invoke("health", "tiny", "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    assert "step 2: layers.1.weight: updates too large (update_ratio = " in res.output


def test_npdl_health_without_records_and_bad_settings_exit_2(workdir):
    cfg = write_config(workdir / "tiny.yaml", tiny_config(**{"train.max_steps": 2, "train.epochs": None}))
    assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    res = invoke("health", "tiny", "--runs-dir", workdir / "runs")
    assert res.exit_code == 2 and "no health records" in res.output and "train.health_every" in res.output
    res = invoke("train", cfg, "--runs-dir", workdir / "runs", "--set", "train.health_every=0")
    assert res.exit_code == 2 and "train.health_every" in res.output


def test_transformer_health_has_attention_entropy_and_ffn_relus(workdir):
    sets = ["data.n_train=64", "data.n_val=16", "data.n_test=16", "data.batch_tokens=64", "train.max_steps=2",
            "train.epochs=null", "train.health_every=1", "train.test_at_end=false", "schedule.warmup_steps=1"]
    exp = experiment.build(config.load(ROOT / "configs" / "transformer_reverse.yaml", sets))
    trainer = exp.trainer()
    trainer.fit()
    records = [e for e in trainer.history if e["event"] == "health"]
    assert len(records) == 2
    keys = set(records[0])
    assert {f"attn_entropy/decoder.layers.1.multihead_attn/head{h}" for h in range(4)} <= keys
    assert "dead_relu/encoder.layers.0.ffn" in keys
    assert all(0 <= records[0][k] <= math.log(64) for k in keys if k.startswith("attn_entropy/"))
    json.dumps(records)  # the event is plain JSON
