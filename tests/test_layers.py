"""Every registered layer: built from a minimal spec, and gradchecked in float64 at tiny sizes."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
import npdl.nn  # noqa: F401  (registers every layer)
from npdl.registry import LAYERS


def floats(*shape, seed=0):
    return npdl.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=np.float64, requires_grad=True)


def ids(*shape, high=5, seed=0):
    return npdl.tensor(np.random.default_rng(seed).integers(0, high, shape))


# name -> (minimal spec kwargs, input factory, call) ; call(layer, x) defaults to layer(x)
CASES = {
    "linear": ({"out_features": 3}, lambda: floats(2, 4)),
    "embedding": ({"num_embeddings": 5, "embedding_dim": 3}, lambda: ids(2, 4)),
    "dropout": ({"p": 0.3}, lambda: floats(3, 4)),
    "layer_norm": ({}, lambda: floats(2, 3, 4)),
    "batch_norm": ({}, lambda: floats(4, 3, 2, 2)),
    "batch_norm1d": ({"num_features": 3}, lambda: floats(5, 3)),
    "batch_norm2d": ({}, lambda: floats(3, 2, 3, 3)),
    "relu": ({}, lambda: floats(3, 4)),
    "leaky_relu": ({"negative_slope": 0.1}, lambda: floats(3, 4)),
    "gelu": ({}, lambda: floats(3, 4)),
    "tanh": ({}, lambda: floats(3, 4)),
    "sigmoid": ({}, lambda: floats(3, 4)),
    "softmax": ({}, lambda: floats(3, 4)),
    "log_softmax": ({"axis": 0}, lambda: floats(3, 4)),
    "flatten": ({}, lambda: floats(2, 3, 2)),
    "conv2d": ({"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1}, lambda: floats(2, 3, 5, 4)),
    "max_pool2d": ({"kernel_size": 2}, lambda: floats(1, 2, 4, 4)),
    "avg_pool2d": ({"kernel_size": 3, "stride": 2, "padding": 1}, lambda: floats(1, 2, 5, 5)),
    # recurrent: several steps; sequence layers return (output, final state)
    "rnn_cell": ({"hidden_size": 3}, lambda: floats(2, 4)),
    "lstm_cell": ({"hidden_size": 3}, lambda: floats(2, 4), lambda m, x: m(x)[1]),
    "gru_cell": ({"hidden_size": 3}, lambda: floats(2, 4)),
    "rnn": ({"hidden_size": 3, "num_layers": 2}, lambda: floats(2, 4, 3), lambda m, x: m(x, lengths=[4, 2])[0]),
    "lstm": ({"hidden_size": 2, "bidirectional": True}, lambda: floats(2, 4, 3),
             lambda m, x: m(x, mask=np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool))[0]),
    "gru": ({"hidden_size": 2, "num_layers": 2}, lambda: floats(2, 3, 3), lambda m, x: m(x)[1]),
    # attention and Transformers (masks exercised in tests/test_attention.py, test_transformer.py)
    "multi_head_attention": ({"embed_dim": 4, "num_heads": 2}, lambda: floats(2, 3, 4),
                             lambda m, x: m(x, key_padding_mask=np.array([[0, 0, 1], [0, 0, 0]], bool))),
    "sinusoidal_positional_encoding": ({"d_model": 4, "max_len": 8}, lambda: floats(2, 3, 4)),
    "learned_positional_embedding": ({"max_len": 8, "d_model": 4}, lambda: floats(2, 3, 4)),
    "transformer_encoder_layer": ({"d_model": 4, "nhead": 2, "dim_feedforward": 8, "dropout": 0.0},
                                  lambda: floats(2, 3, 4), lambda m, x: m(x, is_causal=True)),
    "transformer_decoder_layer": ({"d_model": 4, "nhead": 2, "dim_feedforward": 8, "dropout": 0.0},
                                  lambda: floats(2, 3, 4), lambda m, x: m(x, x * 0.5, tgt_is_causal=True)),
    "transformer_encoder": ({"num_layers": 2, "d_model": 4, "nhead": 2, "dim_feedforward": 8, "dropout": 0.0,
                             "norm_first": True}, lambda: floats(2, 3, 4)),
    "transformer_decoder": ({"num_layers": 2, "d_model": 4, "nhead": 2, "dim_feedforward": 8, "dropout": 0.0},
                            lambda: floats(2, 3, 4), lambda m, x: m(x, x * 0.5)),
}


def _build(name):
    spec, make = CASES[name][:2]
    layer = LAYERS.build({"type": name, **spec})
    return layer, make


def test_every_registered_layer_has_a_case():
    assert set(LAYERS.names()) - set(CASES) == set()


def _call(name):
    return CASES[name][2] if len(CASES[name]) > 2 else (lambda m, inp: m(inp))


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_from_minimal_spec(name):
    layer, make = _build(name)
    out = _call(name)(layer, make())
    assert isinstance(out, (npdl.Tensor, tuple))


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_layer(name):
    layer, make = _build(name)
    layer.double()
    x = make()
    call = _call(name)
    if name == "dropout":
        # the same mask on every evaluation: reseed the default generator inside the function
        def fn(inp, *ps):
            npdl.manual_seed(0)
            return call(layer, inp)
    else:
        def fn(inp, *ps):
            return call(layer, inp)
    call(layer, x)  # materialise lazy parameters
    layer.double()
    params = list(layer.parameters())
    inputs = [x] if x.dtype == np.float64 else []
    if not inputs and not params:
        pytest.skip("nothing differentiable")
    if inputs:
        assert npdl.gradcheck(fn, x, *params)
    else:
        assert npdl.gradcheck(lambda *ps: call(layer, x), *params)


def test_batch_norm_eval_uses_running_stats():
    bn = LAYERS.build({"type": "batch_norm", "num_features": 2, "momentum": 1.0})
    x = npdl.tensor(np.array([[1.0, 10.0], [3.0, 30.0]]))
    bn(x)
    np.testing.assert_allclose(bn.running_mean, [2.0, 20.0])
    np.testing.assert_allclose(bn.running_var, [2.0, 200.0])  # unbiased
    bn.eval()
    out = bn(x).numpy()
    np.testing.assert_allclose(out[:, 0], (np.array([1.0, 3.0]) - 2.0) / np.sqrt(2.0 + 1e-5), rtol=1e-5)


def test_dropout_identity_in_eval_and_scaled_in_train():
    d = LAYERS.build({"type": "dropout", "p": 0.5})
    x = npdl.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    assert d(x) is x


def test_embedding_padding_idx_gets_no_gradient():
    emb = LAYERS.build({"type": "embedding", "num_embeddings": 4, "embedding_dim": 2, "padding_idx": 0})
    assert np.all(emb.weight.data[0] == 0)
    emb(np.array([[0, 1, 0, 2]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[0], [0.0, 0.0])
    np.testing.assert_array_equal(emb.weight.grad[1], [1.0, 1.0])


def test_lazy_linear_infers_in_features():
    lin = LAYERS.build({"type": "linear", "out_features": 4})
    assert lin.weight is None and lin.num_parameters() == 0
    lin(npdl.randn(2, 7))
    assert lin.weight.shape == (4, 7) and lin.in_features == 7


class TestPyTorchParity:
    torch = None

    @pytest.fixture(autouse=True)
    def _torch(self):
        self.torch = pytest.importorskip("torch")

    def _compare(self, ours, theirs, x):
        torch = self.torch
        ours.double()
        theirs.double()
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        xa = npdl.tensor(x, dtype=np.float64, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        ya, yt = ours(xa), theirs(xt)
        np.testing.assert_allclose(ya.numpy(), yt.detach().numpy(), atol=1e-10)
        (ya * ya).sum().backward()
        (yt * yt).sum().backward()
        np.testing.assert_allclose(xa.grad, xt.grad.numpy(), atol=1e-9)
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(), atol=1e-9)

    def test_linear(self):
        from npdl.nn import Linear
        self._compare(Linear(3, in_features=5), self.torch.nn.Linear(5, 3), np.random.default_rng(0).random((4, 5)))

    def test_conv2d(self):
        from npdl.nn.conv import Conv2d
        x = np.random.default_rng(0).random((2, 3, 7, 6))
        self._compare(Conv2d(4, (3, 2), in_channels=3, stride=(2, 1), padding=1, dilation=(1, 2)),
                      self.torch.nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2)), x)

    def test_layer_norm_and_batch_norm(self):
        from npdl.nn import LayerNorm
        from npdl.nn.conv import BatchNorm
        x = np.random.default_rng(1).random((4, 3, 5))
        self._compare(LayerNorm(5), self.torch.nn.LayerNorm(5), x)
        self._compare(BatchNorm(3), self.torch.nn.BatchNorm1d(3), x)

    def test_pools(self):
        from npdl.nn.conv import AvgPool2d, MaxPool2d
        torch = self.torch
        x = np.random.default_rng(2).random((2, 2, 7, 7))
        for ours, theirs in [(MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
                             (AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1))]:
            xa = npdl.tensor(x, dtype=np.float64, requires_grad=True)
            xt = torch.tensor(x, requires_grad=True)
            ya, yt = ours(xa), theirs(xt)
            np.testing.assert_allclose(ya.numpy(), yt.detach().numpy(), atol=1e-12)
            (ya * ya).sum().backward()
            (yt * yt).sum().backward()
            np.testing.assert_allclose(xa.grad, xt.grad.numpy(), atol=1e-12)
