"""transformer_lm: gradchecks, causality and right padding, KV-cache decoding and the sliding
window, and the ``alternating`` LM and ``npdl sample`` end to end."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl.families.language_model.transformer import TransformerLM
from npdl.nn.attention import ContextTooLongError
from npdl.registry import MODELS

V, D, H, FF = 11, 8, 2, 12
# two token sequences, the second right-padded
IDS = np.array([[4, 6, 7, 5, 8, 9, 5], [4, 10, 5, 6, 5, 0, 0]])


def lm(norm_first=True, tie_weights=True, positional="learned", activation="gelu", seed=0, max_len=16, layers=2):
    return TransformerLM(V, max_len, D, H, layers, FF, 0.0, activation, norm_first, positional, tie_weights,
                         rng=np.random.default_rng(seed))


def _perturb(model, seed=3):
    """Non-trivial LayerNorm parameters and biases, so their gradients are checked for real."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if "norm" in name or name.endswith("bias"):
            p.data = p.data + 0.3 * rng.standard_normal(p.shape)


# ---- gradchecks (float64, tiny sizes, causal mask) -----------------------------------------------
@pytest.mark.parametrize("norm_first,tie_weights,positional", [(True, True, "learned"), (False, False, "sinusoidal")])
def test_gradcheck_lm_causal(norm_first, tie_weights, positional):
    model = lm(norm_first, tie_weights, positional, max_len=7, layers=1).double()
    _perturb(model)
    npdl.gradcheck(lambda *ps: model(IDS, use_cache=False)[0], *model.parameters())


# ---- padding ----------------------------------------------------------------------------------------
def test_lm_right_padding_and_causality():
    model = lm().eval()
    with npdl.no_grad():
        full = model(IDS[:1], use_cache=False)[0].data
        short = model(IDS[:1, :4], use_cache=False)[0].data                   # later tokens cannot matter
        padded = model(np.pad(IDS[:1, :4], ((0, 0), (0, 3))), use_cache=False)[0].data
    np.testing.assert_allclose(short, full[:, :4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded[:, :4], full[:, :4], rtol=1e-5, atol=1e-6)


# ---- KV cache ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first,activation,positional",
                         [(True, "gelu", "learned"), (False, "relu", "sinusoidal")])
def test_kv_cache_decoding_equals_full_recomputation(norm_first, activation, positional):
    model = lm(norm_first, positional=positional, activation=activation).eval()
    ids = np.random.default_rng(0).integers(1, V, (3, 9))
    with npdl.no_grad():
        full = model(ids, use_cache=False)[0].data                            # (B, T, V), no cache
        out, state = model(ids[:, :4])                                        # prompt: cache built
        steps = [out.data]
        for t in range(4, 9):                                                 # one token at a time
            out, state = model(ids[:, t:t + 1], state)
            steps.append(out.data)
        chunked, s2 = model(ids[:, :2])
        rest, s2 = model(ids[:, 2:], s2)                                      # several new tokens at once
    assert state["offset"] == 9 and state["layers"][0]["k"].shape == (3, 9, D)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([chunked.data, rest.data], axis=1), full, rtol=1e-4, atol=1e-5)


def test_lm_cache_rules():
    model = lm(max_len=6)
    _, state = model(IDS[:, :2], use_cache=False)
    assert state is None                                                      # training: no cache
    with pytest.raises(RuntimeError, match="no_grad"):
        model(IDS[:, :2], use_cache=True)
    assert type(model).stateful_across_batches is False
    with npdl.no_grad():
        with pytest.raises(ContextTooLongError, match="max_len=6"):
            model(IDS)                                                        # 7 tokens in one call
        _, state = model(IDS[:, :5])
        with pytest.raises(ValueError, match="use_cache=False"):
            model(IDS[:, :1], state, use_cache=False)


def test_lm_context_window_slides_past_max_len():
    model = lm(max_len=6).eval()
    ids = np.random.default_rng(2).integers(1, V, (2, 12))
    with npdl.no_grad():
        _, state = model(ids[:, :5])
        out, state = model(ids[:, 5:7], state)                                # 7 > 6: re-encode the last 3
        np.testing.assert_allclose(out.data, model(ids[:, 4:7], use_cache=False)[0].data[:, 1:], rtol=1e-4, atol=1e-5)
        for t in range(7, 12):                                                # and keep going, one at a time
            out, state = model(ids[:, t:t + 1], state)
        window = ids[:, 12 - state["offset"]:12]
        np.testing.assert_allclose(out.data[:, 0], model(window, use_cache=False)[0].data[:, -1], rtol=1e-4, atol=1e-5)
    assert state["offset"] <= 6


def test_built_from_a_config_spec():
    g = MODELS.build({"type": "transformer_lm", "d_model": 8, "nhead": 2, "tie_weights": False},
                     vocab_size=V, max_len=8)
    assert g(IDS[:, :6], use_cache=False)[0].shape == (2, 6, V) and "head.weight" in g.state_dict()


# ---- alternating: data, task, training --------------------------------------------------------------
def test_alternating_data_is_fixed_and_alternates():
    from npdl.families.language_model.alternating import Alternating

    a, b = Alternating(n_train=50, max_len=9).prepare(), Alternating(n_train=50, max_len=9).prepare()
    zero, one = a.symbols
    for s, t in zip(a.seqs["train"], b.seqs["train"]):
        np.testing.assert_array_equal(s, t)
        assert 2 <= len(s) <= 9 and set(s.tolist()) <= {zero, one} and np.all(s[1:] != s[:-1])
    batch = next(a.loader("train").batches(0, seed=0))
    np.testing.assert_array_equal(batch.mask, batch.inputs != 0)
    assert np.all(batch.targets[batch.mask] != batch.inputs[batch.mask])     # next symbol = the other one
    assert a.info() == {"vocab_size": 8, "max_len": 9}


def test_alternating_lm_learns_in_process():
    from npdl.families.language_model.alternating import Alternating
    from npdl.optim import AdamW
    from npdl.families.language_model.task import SequenceLMTask

    npdl.manual_seed(0)
    data = Alternating(n_train=300, n_val=50, n_test=50, max_len=12, batch_tokens=96).prepare()
    model = TransformerLM(8, 12, 16, 2, 1, 32, 0.0, rng=np.random.default_rng(0))
    task = SequenceLMTask(model, data, npdl.nn.CrossEntropyLoss())
    opt = AdamW(model.named_parameters(), lr=1e-2)
    for epoch in range(6):
        for batch in data.loader("train").batches(epoch):
            loss, n = task.train_step(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    metrics = task.evaluate("test")
    assert metrics["sequence_accuracy"] == 1.0 and metrics["token_accuracy"] == 1.0
    assert metrics["perplexity"] < 1.2


@pytest.mark.slow
def test_alternating_config_reaches_full_sequence_accuracy(workdir):
    from typer.testing import CliRunner

    from npdl.cli.main import app
    from tests.conftest import ROOT

    res = CliRunner().invoke(app, ["train", str(ROOT / "configs" / "transformer_alternating.yaml"),
                                   "--runs-dir", str(workdir / "runs")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import json

    run = next((workdir / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["sequence_accuracy"] == 1.0


def test_npdl_sample_drives_transformer_lm_past_max_len(workdir, mirror):
    """The decoder-only LM through the language-model task on PTB, then `npdl sample` (KV cache, sliding)."""
    from typer.testing import CliRunner

    from npdl.cli.main import app
    from npdl.data import download
    from tests.conftest import write_config

    download.download("ptb", workdir / "datasets", mirror=str(mirror / "ptb"), progress=False)
    cfg = {"name": "tlm", "seed": 0, "data": {"type": "ptb", "batch_size": 4, "bptt": 16},
           "model": {"type": "transformer_lm", "max_len": 16, "d_model": 16, "nhead": 2, "num_layers": 1,
                     "dim_feedforward": 32},
           "optimizer": {"type": "adamw", "lr": 1e-3},
           "train": {"max_steps": 2, "checkpoint_every": 2, "test_at_end": False}}
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(write_config(workdir / "tlm.yaml", cfg)), "--runs-dir", "runs"])
    assert res.exit_code == 0, res.output
    run = str(next((workdir / "runs").iterdir()))
    outs = [runner.invoke(app, ["sample", run, "--prompt", "the company", "--length", "40", "--seed", "3"])
            for _ in range(2)]
    assert outs[0].exit_code == 0, outs[0].output
    assert outs[0].output == outs[1].output and len(outs[0].output.split()) >= 40
