"""Every registered model, gradient-checked as a whole: float64 central differences at tiny sizes.

The layers and fused ops are checked one by one elsewhere; here each model family is checked
end to end, from the ids or pixels it is given to its output (word2vec: to its training loss,
on both the fused and the reference path), against every parameter at once. A model is built
through the registry from a config-like spec plus what its data would provide, materialised by
one forward pass (lazily sized layers), cast to float64, and every parameter that starts
constant (zero biases, unit norms, word2vec's zero output table) is perturbed so its gradient
is checked for real. The guard at the end fails when a model is registered without a case here.
"""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl import experiment  # noqa: F401  (registers every model family)
from npdl.families.word2vec.data import NoiseSampler, W2VBatch
from npdl.registry import MODELS

V = 7                                                       # vocabulary of the token models


def floats(*shape, seed=0):
    return npdl.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=np.float64, requires_grad=True)


def tensors(out) -> tuple:
    """A model's output (a Tensor, or nested tuples holding Tensors and None) as a flat tuple."""
    if isinstance(out, npdl.Tensor):
        return (out,)
    if isinstance(out, (tuple, list)):
        return tuple(t for o in out for t in tensors(o))
    return ()


# ---- inputs ------------------------------------------------------------------------------------------
IDS = np.array([[1, 4, 6, 2, 5], [3, 6, 2, 0, 0]])          # (B, T), the second row right-padded
MASK = IDS != 0
SEGMENTS = np.array([[0, 0, 0, 1, 1], [0, 0, 1, 0, 0]])


def w2v_batch() -> W2VBatch:
    """Nine words in two segments, reduced windows 1..2."""
    words = np.array([1, 3, 2, 5, 6, 1, 4, 2, 3])
    return W2VBatch(words, np.array([1, 2, 2, 1, 2, 1, 2, 2, 1]), np.array([0, 0, 0, 0, 1, 1, 1, 1, 1]), (0,), 9)


NOISE = NoiseSampler(np.arange(1, V + 1))


def w2v_loss(model):
    # a fresh generator per call: every evaluation of the loss draws the same negatives
    return model.batch_loss(w2v_batch(), NOISE, max_window=2, rng=np.random.default_rng(0))


# name -> (spec, what the data provides, model -> output); several cases may share a model type.
# CBOW runs with update: gradient, the exact gradient of the mean; its default ("word2vec", as
# word2vec.c) deliberately hands every context word the whole gradient, which is not a derivative.
CASES = {
    "mlp": ({"type": "mlp", "hidden": [5, 4], "activation": "tanh", "batch_norm": True},
            {"in_features": 6, "num_classes": 3}, lambda m: m(X_MLP)),
    "cnn": ({"type": "cnn", "channels": [2], "kernel_size": 3, "hidden": [4], "batch_norm": True},
            {"num_classes": 3, "in_channels": 1}, lambda m: m(X_CNN)),
    "sequential": ({"type": "sequential", "layers": [{"type": "linear", "out_features": 5}, {"type": "gelu"},
                                                    {"type": "layer_norm"}, {"type": "linear", "out_features": 2}]},
                   {}, lambda m: m(X_MLP)),
    "skipgram": ({"type": "skipgram", "dim": 4, "negative": 2, "negative_pool": 3, "groups": 2}, {"vocab_size": V},
                 w2v_loss),
    "skipgram-pairs": ({"type": "skipgram", "dim": 4, "negative": 2, "negative_pool": 0}, {"vocab_size": V},
                       w2v_loss),
    "cbow": ({"type": "cbow", "dim": 4, "negative": 2, "negative_pool": 3, "groups": 2, "update": "gradient"},
             {"vocab_size": V}, w2v_loss),
    "cbow-pairs": ({"type": "cbow", "dim": 4, "negative": 2, "negative_pool": 0, "update": "gradient"},
                   {"vocab_size": V}, w2v_loss),
    "cbow-softmax": ({"type": "cbow", "dim": 4, "loss": "softmax", "update": "gradient"}, {"vocab_size": V},
                     w2v_loss),
    "rnn_lm": ({"type": "rnn_lm", "cell": "lstm", "hidden_size": 4, "num_layers": 2, "embed_dim": 3},
               {"vocab_size": V}, lambda m: m(IDS)),
    "rnn_lm-gru-tied": ({"type": "rnn_lm", "cell": "gru", "hidden_size": 4, "num_layers": 1, "tie_weights": True},
                        {"vocab_size": V}, lambda m: m(IDS)),
    "lstm_qa": ({"type": "lstm_qa", "embed_dim": 3, "hidden_size": 3, "dropout": 0.0}, {"vocab_size": V, "num_answers": 3},
                lambda m: m(IDS, MASK, IDS[:, :3], MASK[:, :3])),
    "transformer_classifier": ({"type": "transformer_classifier", "d_model": 4, "nhead": 2, "num_layers": 1,
                                "dim_feedforward": 6, "dropout": 0.0},
                               {"vocab_size": V, "num_classes": 2, "max_len": 5},
                               lambda m: m(IDS, SEGMENTS, MASK)),
    "transformer_lm": ({"type": "transformer_lm", "d_model": 4, "nhead": 2, "num_layers": 1, "dim_feedforward": 6,
                        "dropout": 0.0}, {"vocab_size": V, "max_len": 5}, lambda m: m(IDS, use_cache=False)),
    "transformer_seq2seq": ({"type": "transformer_seq2seq", "d_model": 4, "nhead": 2, "num_encoder_layers": 1,
                             "num_decoder_layers": 1, "dim_feedforward": 6, "dropout": 0.0},
                            {"src_vocab_size": V, "tgt_vocab_size": V, "max_len": 5, "share_vocab": True},
                            lambda m: m(IDS, MASK, IDS[:, :4], MASK[:, :4])),
}
X_MLP = floats(4, 6, seed=1)
X_CNN = floats(2, 1, 6, 6, seed=2)


def build(name: str):
    spec, provided, call = CASES[name]
    npdl.manual_seed(0)
    model = MODELS.build(spec, **provided)
    call(model)                                             # materialise lazily sized layers
    model.double()
    rng = np.random.default_rng(3)
    for p in model.parameters():
        if np.ptp(p.data) == 0:                             # constant at init: zeros, ones
            p.data = p.data + 0.3 * rng.standard_normal(p.shape)
    return model, call


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_whole_model(name):
    model, call = build(name)
    params = list(model.parameters())
    inputs = [X_MLP] if name in ("mlp", "sequential") else [X_CNN] if name == "cnn" else []
    assert params and all(p.dtype == np.float64 for p in params)
    assert npdl.gradcheck(lambda *args: tensors(call(model)), *inputs, *params)


def test_every_registered_model_has_a_case():
    covered = {spec["type"] for spec, _, _ in CASES.values()}
    assert covered == set(MODELS.names()), f"models without a whole-model gradcheck: {set(MODELS.names()) - covered}"


def test_cnn_pools_before_its_blocks_last_relu_with_the_same_values_and_gradients():
    """max-pool then ReLU (npdl's order, a quarter of the ReLU's work) against the usual ReLU then
    max-pool: the same outputs and gradients to the bit, windows all negative and tied included."""
    from npdl.models.cnn import CNN
    from npdl.nn.conv import MaxPool2d
    from npdl.nn.layers import ReLU
    from npdl.nn.module import Sequential

    npdl.manual_seed(0)
    model = CNN(3, 1, [4, 5], 3, convs_per_block=2, hidden=[6])
    mods = list(model.features)
    assert [type(m).__name__ for m in mods[:5]] == ["Conv2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU"]
    x = np.random.default_rng(4).standard_normal((3, 1, 8, 8)).round(1)    # rounded: ties in windows
    x[0, 0, :4, :4] = -1.0                                                    # negative windows
    usual = list(mods)                                                        # each ReLU before its pool
    for k in range(len(usual) - 1):
        if isinstance(usual[k], MaxPool2d) and isinstance(usual[k + 1], ReLU):
            usual[k], usual[k + 1] = usual[k + 1], usual[k]
    assert [type(m).__name__ for m in usual[:5]] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    grads = []
    for features in (model.features, Sequential(*usual)):
        xt = npdl.tensor(x, requires_grad=True)
        out = model.head(features(xt))
        model.zero_grad()
        (out * npdl.tensor(np.arange(out.size).reshape(out.shape) - 4.0)).sum().backward()
        grads.append([out.data.copy(), xt.grad.copy()] + [p.grad.copy() for p in model.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*grads))
