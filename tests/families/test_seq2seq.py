"""transformer_seq2seq, greedy / beam decoding with a KV cache, the seq2seq task and ``npdl translate``."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import npdl
import npdl.functional as F
from npdl.cli.main import app
from npdl.data.text_batching import pad_batch
from npdl.families.seq2seq import decoding
from npdl.families.seq2seq.model import TransformerSeq2Seq
from npdl.nn.attention import ContextTooLongError
from tests.conftest import write_config

V = 11


def tiny_model(seed=0, share=True, tie=True, norm_first=False, positional="sinusoidal", dropout=0.0, v=V, d=8,
               max_len=40, layers=2):
    return TransformerSeq2Seq(v, v if share else v + 3, d_model=d, nhead=2, num_encoder_layers=layers,
                              num_decoder_layers=layers, dim_feedforward=12, dropout=dropout, norm_first=norm_first,
                              positional=positional, max_len=max_len, share_vocab=share, tie_embeddings=tie,
                              rng=np.random.default_rng(seed))


def batch(seed=0, v=V, lengths=((4, 3), (2, 5), (5, 1))):
    """Right-padded src/tgt_in with masks (True = token) for the given (src, tgt) lengths."""
    rng = np.random.default_rng(seed)
    src, sm = pad_batch([rng.integers(6, v, n) for n, _ in lengths])
    tgt, tm = pad_batch([np.concatenate([[2], rng.integers(6, v, m)]) for _, m in lengths])
    return src, sm, tgt, tm


def perturb(model, seed=3):
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if "norm" in name or "bias" in name:
            p.data = p.data + 0.3 * rng.standard_normal(p.shape)


# ---- gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("share,tie,norm_first,positional", [(True, True, False, "sinusoidal"),
                                                             (False, False, True, "learned")])
def test_gradcheck_seq2seq_with_padding_and_causal_masks(share, tie, norm_first, positional):
    m = tiny_model(share=share, tie=tie, norm_first=norm_first, positional=positional, layers=1).double()
    perturb(m)
    src, sm, tgt, tm = batch()
    npdl.gradcheck(lambda *ps: m(src, sm, tgt, tm), *m.parameters())


# ---- masks --------------------------------------------------------------------------------
def test_padding_does_not_change_outputs():
    m = tiny_model().double()
    m.eval()
    src, sm, tgt, tm = batch()
    with npdl.no_grad():
        full = m(src, sm, tgt).data
        for i in range(src.shape[0]):
            n, t = sm[i].sum(), tm[i].sum()
            alone = m(src[i:i + 1, :n], sm[i:i + 1, :n], tgt[i:i + 1, :t]).data
            np.testing.assert_allclose(full[i, :t], alone[0], atol=1e-10)
        # more padding (and garbage ids under it) changes nothing either
        src2 = np.concatenate([src, np.full((3, 4), 7)], axis=1)
        sm2 = np.concatenate([sm, np.zeros((3, 4), bool)], axis=1)
        np.testing.assert_allclose(m(src2, sm2, tgt).data, full, atol=1e-10)


def test_causal_future_tokens_do_not_leak():
    m = tiny_model().double()
    m.eval()
    src, sm, tgt, _ = batch()
    with npdl.no_grad():
        a = m(src, sm, tgt).data
        tgt2 = tgt.copy()
        tgt2[:, -1] = 9
        b = m(src, sm, tgt2).data
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], atol=1e-12)


def test_shared_and_tied_embeddings():
    m = tiny_model(share=True, tie=True)
    names = set(m.state_dict())
    assert "src_embed.weight" in names and "tgt_embed.weight" not in names and "out_bias" in names
    m2 = tiny_model(share=False, tie=False)
    assert {"tgt_embed.weight", "generator.weight"} <= set(m2.state_dict())
    with pytest.raises(ValueError, match="share_vocab"):
        TransformerSeq2Seq(10, 12, d_model=8, nhead=2, share_vocab=True)


def test_too_long_input_is_a_clear_error():
    m = tiny_model(max_len=6)
    src, sm = pad_batch([np.arange(7) % 5 + 6])
    with npdl.no_grad(), pytest.raises(ContextTooLongError, match="max_len=6"):
        m.encode(src, sm)


# ---- decoding -----------------------------------------------------------------------------
def sources(n=7, seed=1, v=V):
    rng = np.random.default_rng(seed)
    return pad_batch([np.concatenate([rng.integers(6, v, rng.integers(1, 8)), [3]]) for _ in range(n)])


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("norm_first", [False, True])
def test_kv_cache_equals_full_recomputation(norm_first):
    m = tiny_model(seed=4, norm_first=norm_first).double()
    m.eval()
    src, sm = sources()
    g1 = decoding.greedy(m, src, sm, max_len=12)
    g2 = decoding.greedy(m, src, sm, max_len=12, use_cache=False)
    assert same(g1, g2)
    b1, s1 = decoding.beam_search(m, src, sm, beam_size=3, max_len=12, return_scores=True)
    b2, s2 = decoding.beam_search(m, src, sm, beam_size=3, max_len=12, use_cache=False, return_scores=True)
    assert same(b1, b2)
    np.testing.assert_allclose(s1, s2, rtol=1e-9)
    # the cached step logits equal the full recomputation's last position
    with npdl.no_grad():
        mem = m.encode(src, sm)
        cache, tokens = m.new_cache(), np.full((src.shape[0], 1), 2)
        for step in range(5):
            inc = m.decode(tokens[:, -1:], mem, sm, cache=cache).data[:, -1]
            full = m.decode(tokens, mem, sm).data[:, -1]
            np.testing.assert_allclose(inc, full, atol=1e-10)
            tokens = np.concatenate([tokens, inc.argmax(-1)[:, None]], axis=1)


def test_beam4_cached_and_uncached_decoding_give_identical_tokens():
    """Beam 4 in float32 with outputs past the cache's first capacity (16 positions): the
    preallocated cache, reordered in place every step and shrunk as sentences finish, decodes
    exactly the tokens of full recomputation."""
    m = tiny_model(seed=7, norm_first=True)
    m.eval()
    src, sm = sources(6, seed=3)
    cached, s1 = decoding.beam_search(m, src, sm, beam_size=4, max_len=30, return_scores=True)
    full, s2 = decoding.beam_search(m, src, sm, beam_size=4, max_len=30, use_cache=False, return_scores=True)
    assert same(cached, full)
    assert max(len(o) for o in cached) > 16
    np.testing.assert_allclose(s1, s2, rtol=1e-4)


def test_take_cache_rows_reorders_a_growing_cache_in_place():
    from npdl.nn.attention import MultiHeadAttention, take_cache_rows

    mha = MultiHeadAttention(8, 2, rng=np.random.default_rng(0)).double()
    x = np.random.default_rng(1).standard_normal((3, 20, 8))
    with npdl.no_grad():
        cache = {}
        for i in range(17):  # past the first capacity: the buffers regrow
            mha(npdl.tensor(x[:, i:i + 1], dtype=np.float64), is_causal=True, cache=cache)
        before = cache["k"].copy()
        rows = np.array([2, 2, 0])
        take_cache_rows(cache, rows)
        np.testing.assert_array_equal(cache["k"], before[rows])
        take_cache_rows(cache, np.array([1]))  # drop rows: a view of the first row of the buffer
        np.testing.assert_array_equal(cache["k"], before[[2]])
        assert cache["k"].shape == (1, 17, 8) and np.shares_memory(cache["k"], cache["k_buf"])
        # the next step appends after the reordered prefix and matches a fresh computation
        out = mha(npdl.tensor(x[2:3, 17:18], dtype=np.float64), is_causal=True, cache=cache).data
        full = mha(npdl.tensor(x[2:3, :18], dtype=np.float64), is_causal=True).data[:, -1:]
    np.testing.assert_allclose(out, full, rtol=1e-10, atol=1e-12)


def test_beam_size_one_is_greedy_and_batching_does_not_matter():
    m = tiny_model(seed=5).double()
    m.eval()
    src, sm = sources(9, seed=2)
    g = decoding.greedy(m, src, sm, max_len=10)
    assert same(decoding.beam_search(m, src, sm, beam_size=1, max_len=10), g)
    one_by_one = [decoding.beam_search(m, src[i:i + 1], sm[i:i + 1], beam_size=3, max_len=10)[0] for i in range(9)]
    assert same(decoding.beam_search(m, src, sm, beam_size=3, max_len=10), one_by_one)


def test_beam_search_finds_at_least_greedys_probability():
    m = tiny_model(seed=6).double()
    m.eval()
    # a random model almost never says <eos>, and outputs cut at the limit are not compared:
    # raise <eos>'s logit so that most greedy outputs end (here 6 of 8) and the check runs
    m.out_bias.data[3] = 1.7
    src, sm = sources(8, seed=3)

    def logprob(i, y):
        with npdl.no_grad():
            tgt = np.concatenate([[2], y])[None]
            lp = F.log_softmax(m(src[i:i + 1], sm[i:i + 1], tgt), axis=-1).data[0]
        full = np.concatenate([y, [3]])
        return lp[np.arange(len(full)), full].sum()

    g = decoding.greedy(m, src, sm, max_len=8)
    b = decoding.beam_search(m, src, sm, beam_size=4, length_penalty=0.0, max_len=8)
    ended = [i for i in range(8) if len(g[i]) < 8 and len(b[i]) < 8]  # both ended with <eos>
    assert len(ended) >= 4, (g, b)
    for i in ended:
        assert logprob(i, b[i]) >= logprob(i, g[i]) - 1e-9


def test_length_penalty_prefers_longer_outputs():
    assert decoding.gnmt_length_penalty(1, 0.0) == 1.0
    np.testing.assert_allclose(decoding.gnmt_length_penalty(7, 1.0), 2.0)
    m = tiny_model(seed=7).double()
    m.eval()
    src, sm = sources(16, seed=4)
    lengths = [sum(len(h) for h in decoding.beam_search(m, src, sm, beam_size=4, length_penalty=a, max_len=15))
               for a in (0.0, 2.0)]
    assert lengths[1] >= lengths[0]
    with pytest.raises(ValueError):
        decoding.beam_search(m, src, sm, beam_size=0)


def test_decode_limit_respects_model_max_len():
    m = tiny_model(max_len=9)
    m.eval()
    src, sm = sources(3)
    assert decoding.decode_limit(m, sm) == 9
    out = decoding.greedy(m, src, sm, max_len=100)
    assert all(len(o) <= 9 for o in out)


# ---- training + CLI ---------------------------------------------------------------------
REVERSE = {  # trains to ~96% held-out sequence accuracy in ~5 s
    "name": "rev", "seed": 0,
    "data": {"type": "reverse", "n_train": 2000, "n_val": 100, "n_test": 100, "min_length": 1, "max_length": 5,
             "batch_tokens": 128},
    "model": {"type": "transformer_seq2seq", "d_model": 32, "nhead": 2, "num_encoder_layers": 2,
              "num_decoder_layers": 2, "dim_feedforward": 64, "dropout": 0.0, "norm_first": True},
    "optimizer": {"type": "adamw", "lr": 5.0e-3},
    "schedule": {"type": "cosine", "warmup_steps": 20},
    "eval": {"beam_size": 2},
    "train": {"epochs": 6, "log_every": 50},
}


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rev")
    cfg = write_config(root / "rev.yaml", REVERSE)
    res = CliRunner().invoke(app, ["train", str(cfg), "--runs-dir", str(root / "runs")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = next((root / "runs").iterdir())
    return run


def test_reverse_trains_and_reports_sequence_accuracy(reverse_run):
    summary = json.loads((reverse_run / "summary.json").read_text())
    assert summary["test"]["sequence_accuracy"] > 0.9
    assert "sequence_accuracy_beam" in summary["test"]
    assert summary["best"]["metric"] == "val.sequence_accuracy"


def test_translate_cli(reverse_run):
    runner = CliRunner()
    res = runner.invoke(app, ["translate", str(reverse_run), "1 2 3 4"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == "4 3 2 1"
    res = runner.invoke(app, ["translate", str(reverse_run), "-", "--beam", "3", "--length-penalty", "1.0"],
                        input="5 6\n\n0 1 2\n", catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-3:] == ["6 5", "", "2 1 0"]
    res = runner.invoke(app, ["translate", str(reverse_run), "1 2 3 4 5 6 7 8 9"], catch_exceptions=False)
    assert res.exit_code == 0 and "truncated" in res.output
    res = runner.invoke(app, ["translate", str(reverse_run), "1 x 3"])
    assert res.exit_code == 2 and "symbols" in res.output
    res = runner.invoke(app, ["translate", str(reverse_run), "1 2", "--beam", "0"])
    assert res.exit_code == 2


def test_eval_task_beam(reverse_run):
    res = CliRunner().invoke(app, ["eval", str(reverse_run), "--task", "beam"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "sequence_accuracy" in res.output
