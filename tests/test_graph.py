"""``npdl graph``: the autograd graph of one training step (nn/graph.py, nn/graph_dot.py, cli/graph.py)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import npdl
from npdl.cli.main import app
from npdl.models.mlp import MLP
from npdl.nn.graph import record
from npdl.nn.graph_dot import collapse, quote, to_dot
from npdl.nn.losses import CrossEntropyLoss
from tests.conftest import ROOT, tiny_config, write_config

QUICKSTART = ROOT / "configs" / "quickstart.yaml"
runner = CliRunner()
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def mlp_graph(activation="relu"):
    npdl.manual_seed(0)
    model = MLP(sizes=[3, 5, 4, 2], activation=activation)
    loss_fn = CrossEntropyLoss()
    x = npdl.tensor(np.random.default_rng(0).standard_normal((6, 3)))
    y = np.array([0, 1, 1, 0, 1, 0])
    return model, record(model, lambda: loss_fn(model(x), y), {"(loss)": loss_fn})


def test_mlp_graph_has_the_forward_ops_in_order_each_in_its_module():
    model, g = mlp_graph()
    assert g.ops() == ["Affine", "Relu", "Affine", "Relu", "Affine", "CrossEntropy"]
    ops = [n for n in g.nodes if n.kind == "op"]
    assert [n.module for n in ops] == ["layers.1", "layers.2", "layers.3", "layers.4", "layers.5", "(loss)"]
    assert g.modules["layers.1"] == "Linear" and g.modules["(loss)"] == "CrossEntropyLoss"
    assert [n.seq for n in ops] == sorted(n.seq for n in ops)
    assert g.nodes[-1].kind == "loss" and np.isfinite(g.loss)


def test_every_parameter_appears_exactly_once_with_its_size():
    model, g = mlp_graph("tanh")
    params = [n for n in g.nodes if n.kind == "param"]
    assert sorted(n.label for n in params) == sorted(name for name, _ in model.named_parameters())
    sizes = {name: p.size for name, p in model.named_parameters()}
    assert all(n.size == sizes[n.label] and n.module == n.label.rsplit(".", 1)[0] for n in params)
    dot = to_dot(g)
    for name, size in sizes.items():
        assert dot.count(f'"{name}\\n') == 1 and f"{size:,} params" in dot


def test_edges_carry_the_shapes_and_dtypes_of_the_tensors():
    _, g = mlp_graph()
    ids = {n.id: n for n in g.nodes}
    into_loss = [e for e in g.edges if ids[e.dst].label == "CrossEntropy"]
    assert {(e.shape, e.dtype) for e in into_loss} == {((6, 2), "float32"), ((6,), "int64")}
    first = [e for e in g.edges if e.dst == next(n.id for n in g.nodes if n.kind == "op")]
    assert {e.shape for e in first} == {(6, 3), (5, 3), (5,)}
    assert to_dot(g).count("(6, 5) float32") == 2  # Linear -> Relu -> Linear


def test_an_op_outside_every_module_has_no_module():
    npdl.manual_seed(0)
    model = MLP(sizes=[2, 3])
    x = npdl.tensor(np.ones((4, 2)))
    g = record(model, lambda: (model(x) * 2.0).sum())
    assert g.ops() == ["Affine", "Mul", "Sum"]
    assert [n.module for n in g.nodes if n.kind == "op"] == ["layers.1", None, None]


def test_a_step_without_graph_is_a_clear_error():
    model = MLP(sizes=[2, 3])
    with npdl.no_grad(), pytest.raises(ValueError, match="no loss with a graph"):
        record(model, lambda: model(npdl.tensor(np.ones((1, 2)))).sum())


def test_module_depth_is_one_node_per_module_run_and_stays_acyclic(workdir):
    from npdl import config, experiment

    exp = experiment.build(config.load(ROOT / "configs" / "transformer_reverse.yaml",
                                       ["data.n_train=64", "data.batch_tokens=64"]))
    batch = next(iter(exp.data.loader("train").batches(0)))
    g = record(exp.model, lambda: exp.task.train_step(batch)[0], {"(loss)": exp.loss_fn})
    nodes, edges = collapse(g)
    order = {n.id: i for i, n in enumerate(nodes)}
    assert all(order[e.src] < order[e.dst] for e in edges)  # nodes are listed in a topological order
    modules = [n for n in nodes if n.kind == "module"]
    assert {"encoder.layers.0.self_attn", "decoder.layers.1.multihead_attn", "(model)"} <= {
        n.module or "(model)" for n in modules}
    assert sum(n.kind == "param" for n in nodes) == len(list(exp.model.named_parameters()))
    dot = to_dot(g, "module")
    assert dot.count('"cluster_encoder.layers.0"') == 1 and "ResidualLayerNorm" in dot


@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_quoted_labels_cannot_end_early_or_break_lines(text):
    q = quote(text)
    assert q[0] == q[-1] == '"' and "\n" not in q and "\r" not in q
    i, body = 1, q[1:-1]
    while i <= len(body):  # every quote inside is escaped: the string ends only at the last character
        ch = q[i]
        assert ch != '"', q
        i += 2 if ch == "\\" else 1


@needs_dot
def test_dot_text_is_valid_graphviz():
    _, g = mlp_graph()
    for depth in ("op", "module"):
        done = subprocess.run(["dot", "-Tcanon"], input=to_dot(g, depth, title='a "quoted" \\ title'),
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_cli_writes_the_quickstart_graph_as_dot(workdir):
    res = invoke("graph", QUICKSTART, "-o", workdir / "g.dot")
    assert res.exit_code == 0, res.output
    dot = (workdir / "g.dot").read_text()
    assert dot.startswith("digraph step {") and dot.rstrip().endswith("}")
    for name in ("layers.1.weight", "layers.5.bias", "CrossEntropy", "loss = "):
        assert name in dot
    res = invoke("graph", QUICKSTART, "--depth", "module")  # DOT on stdout
    assert res.exit_code == 0 and res.output.startswith("digraph step {") and "layers.3: Linear" in res.output


def test_cli_graph_of_a_run_folder(workdir):
    cfg = write_config(workdir / "tiny.yaml", tiny_config(**{"train.max_steps": 2}))
    assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    res = invoke("graph", "tiny", "--runs-dir", workdir / "runs", "-o", workdir / "run.dot")
    assert res.exit_code == 0, res.output
    assert "layers.1.weight" in (workdir / "run.dot").read_text()


def test_cli_user_errors_exit_2(workdir, monkeypatch):
    res = invoke("graph", QUICKSTART, "-o", workdir / "g.pdf")
    assert res.exit_code == 2 and "use .dot, .svg or .png" in res.output
    res = invoke("graph", QUICKSTART, "--depth", "layer")
    assert res.exit_code == 2 and "--depth must be one of op, module" in res.output
    res = invoke("graph", "no-such-run", "--runs-dir", workdir / "runs")
    assert res.exit_code == 2 and "run not found" in res.output
    monkeypatch.setenv("PATH", str(workdir))  # no `dot` anywhere on it
    res = invoke("graph", QUICKSTART, "-o", workdir / "g.svg")
    assert res.exit_code == 2 and "apt-get install graphviz" in res.output and "g.dot" in res.output
    assert not (workdir / "g.svg").exists()


@needs_dot
def test_cli_renders_svg_and_png_with_graphviz(workdir):
    assert invoke("graph", QUICKSTART, "-o", workdir / "g.svg").exit_code == 0
    assert "<svg" in (workdir / "g.svg").read_text()
    assert invoke("graph", QUICKSTART, "--depth", "module", "-o", workdir / "g.png").exit_code == 0
    assert (workdir / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_process_writes_the_quickstart_graph(workdir):
    done = subprocess.run([sys.executable, "-m", "npdl", "graph", str(QUICKSTART), "-o", "g.dot"],
                          capture_output=True, text=True, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "6 ops, 6 parameters" in done.stdout
    assert (workdir / "g.dot").read_text().count("->") == 14
