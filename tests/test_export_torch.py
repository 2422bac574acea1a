"""Exported weights load into the equivalent PyTorch modules with ``load_state_dict(strict=True)``.

Skipped without torch (and safetensors). Every npdl layer with parameters is checked against the
torch module a user would build for it, both ways (npdl -> file -> torch, torch -> file -> npdl
through ``init_from``'s loader); then trained runs (an MLP, a Transformer classifier, a Transformer
LM) are exported with the CLI and loaded into torch modules written here, mirroring npdl's models.
Same outputs, float32 tolerance, eval mode.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import npdl  # noqa: E402
import npdl.nn as L  # noqa: E402
from npdl import experiment  # noqa: E402
from npdl.cli.main import app  # noqa: E402
from npdl.train import weights  # noqa: E402
from tests.conftest import tiny_config, write_config  # noqa: E402

TOL = {"rtol": 1e-4, "atol": 1e-5}
rng = np.random.default_rng(0)


def arr(*shape):
    return rng.normal(size=shape).astype(np.float32)


def ids(*shape, high=10):
    return rng.integers(0, high, shape)


def first(out):
    """The main output of a layer call: output of (output, state) pairs, the h of an LSTM cell."""
    return out[0] if isinstance(out, (tuple, list)) else out


def run_npdl(layer, inputs):
    layer.eval()
    with npdl.no_grad():
        return first(layer(*[npdl.tensor(x) if x.dtype.kind == "f" else x for x in inputs])).data


def run_torch(module, inputs):
    module.eval()
    with torch.no_grad():
        return first(module(*[torch.from_numpy(np.asarray(x)) for x in inputs])).numpy()


def randomize_npdl(layer):
    r = np.random.default_rng(1)
    for mod in layer.modules():
        for name, p in mod._parameters.items():
            if p is not None:
                p.data = r.normal(0, 0.5, p.shape).astype(p.dtype)
        for name, b in mod._buffers.items():
            if isinstance(b, np.ndarray) and b.dtype.kind == "f" and b.size > 1:
                mod._buffers[name] = np.abs(r.normal(1, 0.5, b.shape)).astype(b.dtype)


def randomize_torch(module):
    torch.manual_seed(2)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)
        for name, b in module.named_buffers():
            if b.is_floating_point() and b.numel() > 1:
                b.copy_(torch.randn_like(b).mul(0.5).add(1).abs())


D, H, FF = 8, 2, 16
# (id, npdl layer, torch module, inputs, call) -- call adapts npdl's argument order where it differs
CASES = [
    ("linear", lambda: L.Linear(5, 3), lambda: nn.Linear(3, 5), lambda: [arr(4, 3)]),
    ("linear_no_bias", lambda: L.Linear(5, 3, bias=False), lambda: nn.Linear(3, 5, bias=False), lambda: [arr(4, 3)]),
    ("embedding", lambda: L.Embedding(10, 4), lambda: nn.Embedding(10, 4), lambda: [ids(3, 5)]),
    ("layer_norm", lambda: L.LayerNorm(6), lambda: nn.LayerNorm(6), lambda: [arr(2, 3, 6)]),
    ("conv2d", lambda: L.Conv2d(4, 3, in_channels=2, padding=1, stride=2),
     lambda: nn.Conv2d(2, 4, 3, padding=1, stride=2), lambda: [arr(2, 2, 7, 7)]),
    ("batch_norm2d", lambda: L.BatchNorm(3), lambda: nn.BatchNorm2d(3), lambda: [arr(2, 3, 4, 4)]),
    ("batch_norm1d", lambda: L.BatchNorm(5), lambda: nn.BatchNorm1d(5), lambda: [arr(4, 5)]),
    ("lstm", lambda: L.LSTM(5, 3, num_layers=2, bidirectional=True),
     lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True), lambda: [arr(2, 6, 3)]),
    ("gru", lambda: L.GRU(5, 3, num_layers=2), lambda: nn.GRU(3, 5, num_layers=2, batch_first=True),
     lambda: [arr(2, 6, 3)]),
    ("rnn_relu", lambda: L.RNN(5, 3, nonlinearity="relu", bidirectional=True),
     lambda: nn.RNN(3, 5, nonlinearity="relu", bidirectional=True, batch_first=True), lambda: [arr(2, 6, 3)]),
    ("lstm_cell", lambda: L.LSTMCell(5, 3), lambda: nn.LSTMCell(3, 5), lambda: [arr(4, 3)]),
    ("gru_cell", lambda: L.GRUCell(5, 3), lambda: nn.GRUCell(3, 5), lambda: [arr(4, 3)]),
    ("rnn_cell", lambda: L.RNNCell(5, 3, bias=False), lambda: nn.RNNCell(3, 5, bias=False), lambda: [arr(4, 3)]),
    ("mha", lambda: L.MultiHeadAttention(D, H), lambda: nn.MultiheadAttention(D, H, batch_first=True),
     lambda: [arr(2, 5, D), arr(2, 3, D), arr(2, 3, D)]),
    ("mha_no_bias", lambda: L.MultiHeadAttention(D, H, bias=False),
     lambda: nn.MultiheadAttention(D, H, bias=False, batch_first=True), lambda: [arr(2, 5, D)] * 3),
    ("mha_unpacked", lambda: L.MultiHeadAttention(D, H, packed=False),
     lambda: nn.MultiheadAttention(D, H, batch_first=True), lambda: [arr(2, 5, D), arr(2, 3, D), arr(2, 3, D)]),
    ("mha_kdim_vdim", lambda: L.MultiHeadAttention(D, H, packed=False, kdim=3, vdim=5),
     lambda: nn.MultiheadAttention(D, H, kdim=3, vdim=5, batch_first=True),
     lambda: [arr(2, 5, D), arr(2, 4, 3), arr(2, 4, 5)]),
    ("encoder_layer", lambda: L.TransformerEncoderLayer(D, H, FF, activation="gelu"),
     lambda: nn.TransformerEncoderLayer(D, H, FF, activation="gelu", batch_first=True), lambda: [arr(2, 5, D)]),
    ("decoder_layer_pre_norm", lambda: L.TransformerDecoderLayer(D, H, FF, norm_first=True),
     lambda: nn.TransformerDecoderLayer(D, H, FF, norm_first=True, batch_first=True),
     lambda: [arr(2, 5, D), arr(2, 3, D)]),
    ("encoder_pre_norm", lambda: L.TransformerEncoder(2, D, H, FF, norm_first=True),
     lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF, norm_first=True, batch_first=True), 2,
                                   norm=nn.LayerNorm(D), enable_nested_tensor=False), lambda: [arr(2, 5, D)]),
    ("decoder", lambda: L.TransformerDecoder(2, D, H, FF),
     lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, FF, batch_first=True), 2),
     lambda: [arr(2, 5, D), arr(2, 3, D)]),
]


@pytest.mark.parametrize("make_npdl, make_torch, make_inputs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_layer_loads_into_its_torch_module_and_back(tmp_path, make_npdl, make_torch, make_inputs):
    inputs = make_inputs()
    ours = make_npdl()
    randomize_npdl(ours)
    weights.save_safetensors(ours, tmp_path / "npdl.safetensors", {})
    theirs = make_torch()
    theirs.load_state_dict(load_file(tmp_path / "npdl.safetensors"), strict=True)
    np.testing.assert_allclose(run_torch(theirs, inputs), run_npdl(ours, inputs), **TOL)

    randomize_torch(theirs)                                  # the other way: torch's file into npdl
    save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, tmp_path / "torch.safetensors")
    fresh = make_npdl()
    weights.init_model(fresh, str(tmp_path / "torch.safetensors"))
    np.testing.assert_allclose(run_npdl(fresh, inputs), run_torch(theirs, inputs), **TOL)


# ---- trained runs, exported by the CLI, loaded into torch mirrors of npdl's models --------------
class TorchMLP(nn.Module):
    """npdl's ``mlp`` (no dropout, no batch norm): ``layers`` = Flatten, then Linear/ReLU pairs."""

    def __init__(self, sizes):
        super().__init__()
        mods = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)


class TorchTokenEmbedding(nn.Module):
    """npdl's TokenEmbedding with learned positions: token + segment + position, optional LayerNorm."""

    def __init__(self, vocab, d, max_len, num_segments, layer_norm):
        super().__init__()
        self.token = nn.Embedding(vocab, d)
        self.position = nn.Embedding(max_len, d)          # npdl's learned_positional_embedding.weight
        if num_segments > 1:
            self.segment = nn.Embedding(num_segments, d)
        if layer_norm:
            self.norm = nn.LayerNorm(d)

    def forward(self, ids, segments=None):
        x = self.token(ids)
        if segments is not None:
            x = x + self.segment(segments)
        x = x + self.position.weight[: ids.shape[1]]
        return self.norm(x) if hasattr(self, "norm") else x


def encoder(d, nhead, ff, layers, activation, norm_first):
    layer = nn.TransformerEncoderLayer(d, nhead, ff, dropout=0.1, activation=activation, batch_first=True,
                                       norm_first=norm_first)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d) if norm_first else None,
                                 enable_nested_tensor=False)


class TorchClassifier(nn.Module):
    """npdl's ``transformer_classifier`` (learned positions, mean pooling, post-norm)."""

    def __init__(self, vocab, classes, max_len, d, nhead, ff, layers):
        super().__init__()
        self.embed = TorchTokenEmbedding(vocab, d, max_len, 2, layer_norm=True)
        self.encoder = encoder(d, nhead, ff, layers, "relu", norm_first=False)
        self.head = nn.Linear(d, classes)

    def forward(self, ids, segments):
        mask = ids != 0                                                   # True = real token
        x = self.encoder(self.embed(ids, segments), src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).float()
        return self.head((x * m).sum(1) / m.sum(1).clamp(min=1))


class TorchLM(nn.Module):
    """npdl's ``transformer_lm`` (pre-norm, GELU, final LayerNorm, output tied to the token embedding)."""

    def __init__(self, vocab, max_len, d, nhead, ff, layers):
        super().__init__()
        self.embed = TorchTokenEmbedding(vocab, d, max_len, 0, layer_norm=False)
        self.transformer = encoder(d, nhead, ff, layers, "gelu", norm_first=True)

    def forward(self, ids):
        causal = nn.Transformer.generate_square_subsequent_mask(ids.shape[1])
        x = self.transformer(self.embed(ids), mask=causal, is_causal=True)
        return x @ self.embed.token.weight.T


def train_and_export(workdir: Path, cfg: dict) -> tuple[object, dict]:
    runner = CliRunner()
    path = write_config(workdir / f"{cfg['name']}.yaml", cfg)
    res = runner.invoke(app, ["train", str(path), "--runs-dir", str(workdir / "runs")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = next(p for p in (workdir / "runs").iterdir() if p.name.startswith(cfg["name"] + "-"))
    out = workdir / f"{cfg['name']}.safetensors"
    res = runner.invoke(app, ["export", str(run), "--format", "safetensors", "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    _, exp, _, _ = experiment.from_run(run)
    return exp.model, load_file(out)


def test_trained_mlp_loads_into_torch(workdir):
    model, state = train_and_export(workdir, tiny_config(**{"model.hidden": [16, 8]}))
    theirs = TorchMLP([2, 16, 8, 2])
    theirs.load_state_dict(state, strict=True)
    x = arr(9, 2)
    np.testing.assert_allclose(run_torch(theirs, [x]), run_npdl(model, [x]), **TOL)


def test_trained_transformer_classifier_loads_into_torch(workdir):
    words = ["how", "what", "is", "the", "best", "way", "to", "learn", "cook", "rice", "python", "fast"]
    r = np.random.default_rng(3)
    lines = ["question1,question2,is_duplicate"]
    for i in range(80):
        q = lambda: " ".join(r.choice(words, r.integers(2, 7)))  # noqa: E731
        lines.append(f"{q()},{q()},{i % 2}")
    (workdir / "pairs.csv").write_text("\n".join(lines) + "\n")
    cfg = {"name": "clf", "seed": 0,
           "data": {"type": "qqp_csv", "path": str(workdir / "pairs.csv"), "max_len": 16, "batch_tokens": 256},
           "model": {"type": "transformer_classifier", "d_model": 16, "nhead": 2, "num_layers": 2,
                     "dim_feedforward": 32},
           "optimizer": {"type": "adam", "lr": 0.01}, "train": {"max_steps": 4}}
    model, state = train_and_export(workdir, cfg)
    vocab, max_len = model.embed.token.num_embeddings, model.embed.position.max_len
    theirs = TorchClassifier(vocab, 2, max_len, 16, 2, 32, 2)
    theirs.load_state_dict(state, strict=True)
    tokens = r.integers(1, vocab, (3, 7))
    tokens[1, 5:] = 0                                                     # padding: True = real in npdl's mask
    segments = np.zeros_like(tokens)
    segments[:, 3:] = 1
    model.eval()
    with npdl.no_grad():
        want = model(tokens, segments).data
    np.testing.assert_allclose(run_torch(theirs, [tokens, segments]), want, **TOL)


def test_trained_transformer_lm_loads_into_torch(workdir):
    cfg = {"name": "lm", "seed": 0,
           "data": {"type": "alternating", "n_train": 200, "n_val": 20, "n_test": 20, "max_len": 12,
                    "batch_tokens": 128},
           "model": {"type": "transformer_lm", "d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32},
           "optimizer": {"type": "adamw", "lr": 0.01}, "train": {"max_steps": 4}}
    model, state = train_and_export(workdir, cfg)
    theirs = TorchLM(model.vocab_size, model.max_len, 16, 2, 32, 2)
    theirs.load_state_dict(state, strict=True)
    tokens = np.random.default_rng(4).integers(0, model.vocab_size, (2, 9))
    model.eval()
    with npdl.no_grad():
        want = model(tokens, use_cache=False)[0].data
    assert not math.isnan(float(np.abs(want).sum()))
    np.testing.assert_allclose(run_torch(theirs, [tokens]), want, **TOL)
