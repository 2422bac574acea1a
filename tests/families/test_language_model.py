"""Recurrent language models: data windows, gradients through carried state, truncated BPTT,
resume mid-epoch, sampling, the CLI, PyTorch equivalence, and real PTB data."""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from typer.testing import CliRunner

import npdl
from npdl import config as cfgmod
from npdl import experiment
from npdl.cli.main import app
from npdl.data.sources import DataError
from npdl.families.language_model.data import PTB, LMStreamLoader, TextCorpus
from npdl.families.language_model.rnn import RNNLM
from npdl.families.language_model.sampling import next_token_distribution, sample
from npdl.families.language_model.task import LanguageModelTask
from npdl.train import checkpoint
from tests.conftest import ROOT, mirrored_root, write_config

runner = CliRunner()
WORDS = "the cat sat on a mat and the dog ran to the big red house near a small tree".split()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def corpus(path, lines=300, seed=0):
    rng = np.random.default_rng(seed)
    path.write_text("\n".join(" ".join(rng.choice(WORDS, 7)) for _ in range(lines)) + "\n")
    return path


def lm_config(path, **over) -> dict:
    cfg = {"name": "tinylm", "seed": 0,
           "data": {"type": "text", "path": str(path), "level": "word", "batch_size": 4, "bptt": 6},
           "model": {"type": "rnn_lm", "hidden_size": 12, "num_layers": 2, "dropout": 0.2},
           "optimizer": {"type": "sgd", "lr": 1.0},
           "train": {"epochs": 2, "grad_clip": 0.5, "log_every": 10}}
    for key, value in over.items():
        node = cfg
        *head, last = key.split(".")
        for h in head:
            node = node[h]
        node[last] = value
    return cfg


# ---- data: Zaremba's windows --------------------------------------------------------------
def test_stream_windows_follow_each_row_and_resume_exactly():
    ids = np.arange(103)
    loader = LMStreamLoader(ids, batch_size=4, bptt=5)            # rows of 25: (25 - 1) // 5 = 4 windows
    batches = list(loader.batches())
    assert len(loader) == len(batches) == 4
    x0, y0 = batches[0]
    assert x0.shape == y0.shape == (4, 5)
    np.testing.assert_array_equal(x0[1], np.arange(25, 30))       # row b is the b-th quarter of the stream
    np.testing.assert_array_equal(y0, x0 + 1)                     # targets: the next token
    np.testing.assert_array_equal(batches[1][0][:, 0], x0[:, -1] + 1)  # the next window continues each row
    resumed = list(loader.batches(epoch=3, start=2))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(resumed, batches[2:]))
    tail = LMStreamLoader(ids, batch_size=4, bptt=5, tail=True)
    assert len(tail) == 5 and tail.tokens == 4 * 24                # every token but each row's first


def test_stream_too_short_is_an_error():
    with pytest.raises(ValueError, match="too short"):
        LMStreamLoader(np.arange(10), batch_size=4, bptt=5)


def test_text_corpus_split_vocab_and_artifacts(tmp_path):
    path = corpus(tmp_path / "c.txt")
    data = TextCorpus(str(path), batch_size=4, bptt=6).prepare()
    n = sum(len(s) for s in data.streams.values())
    assert n == 300 * 8                                           # 7 words + <eos> per line
    assert len(data.streams["val"]) == len(data.streams["test"]) == 120
    assert data.info()["vocab_size"] == len(set(WORDS)) + 2       # + <unk>, <eos>
    data.save_artifacts(tmp_path)
    again = TextCorpus(str(path))
    again.load_artifacts(tmp_path)
    assert again.vocab == data.vocab and again.info() == data.info()
    ids, unknown = data.encode_prompt("the zebra sat")
    assert unknown == ["zebra"] and ids[1] == data.vocab.unk_id


def test_text_corpus_char_level(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("abcab\nbca\n" * 50)
    data = TextCorpus(str(path), level="char", batch_size=2, bptt=4, val_fraction=0.1, test_fraction=0.1).prepare()
    assert set(data.vocab.tokens) == {"<unk>", "a", "b", "c", "\n"}
    assert data.decode(data.streams["train"][:10]) == "abcab\nbca\n"


def test_text_corpus_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="text corpus not found: .*nope.txt"):
        TextCorpus(str(tmp_path / "nope.txt")).prepare()


def test_split_too_small_is_a_data_error(tmp_path):
    data = TextCorpus(str(corpus(tmp_path / "c.txt", lines=20)), batch_size=4, bptt=6, eval_batch_size=100).prepare()
    with pytest.raises(DataError, match="text: the val split: .*too short"):
        data.loader("val")


def test_declared_sizes_before_download():
    data = PTB(bptt=20)
    assert data.info() == {"vocab_size": 10000}
    x, y = data.example_batch()
    assert x.shape == y.shape == (2, 20) and x.dtype == np.int64


# ---- the model: gradients through carried state --------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_gradcheck_through_several_bptt_windows(cell, tie):
    """Three windows with the state carried (not detached): gradients reach the first window."""
    m = RNNLM(7, cell=cell, hidden_size=3, num_layers=2, tie_weights=tie, init_range=0.5,
              rng=np.random.default_rng(0)).double()
    rng = np.random.default_rng(1)
    windows = [rng.integers(0, 7, (2, 3)) for _ in range(3)]
    shape = (2, 2, 3)
    init = [npdl.tensor(rng.standard_normal(shape) * 0.5, dtype=np.float64, requires_grad=True)
            for _ in range(2 if cell == "lstm" else 1)]

    def run(*inputs):
        state = tuple(inputs[:len(init)]) if cell == "lstm" else inputs[0]
        outs = []
        for w in windows:
            logits, state = m(w, state)
            outs.append(logits)
        return (*outs, *(state if cell == "lstm" else (state,)))

    npdl.gradcheck(run, *init, *m.parameters())


def test_tied_weights_share_one_parameter():
    m = RNNLM(11, hidden_size=4, tie_weights=True)
    assert m.decoder.weight is m.embedding.weight
    names = [n for n, _ in m.named_parameters()]
    assert "decoder.weight" not in names and "decoder.weight" in m.state_dict()
    with pytest.raises(ValueError, match="tie_weights"):
        RNNLM(11, hidden_size=4, embed_dim=5, tie_weights=True)


def test_init_range_is_uniform_over_every_parameter():
    m = RNNLM(50, hidden_size=8, init_range=0.1)
    for name, p in m.named_parameters():
        assert np.abs(p.data).max() <= 0.1, name


def test_matches_pytorch_lm():
    torch = pytest.importorskip("torch")
    m = RNNLM(13, hidden_size=5, num_layers=2, embed_dim=4, rng=np.random.default_rng(0))
    emb = torch.nn.Embedding(13, 4)
    lstm = torch.nn.LSTM(4, 5, num_layers=2, batch_first=True)
    dec = torch.nn.Linear(5, 13)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(m.embedding.weight.data))
        for k, v in lstm.state_dict().items():
            v.copy_(torch.from_numpy(getattr(m.rnn, k).data))
        dec.weight.copy_(torch.from_numpy(m.decoder.weight.data))
        dec.bias.copy_(torch.from_numpy(m.decoder.bias.data))
    ids = np.random.default_rng(2).integers(0, 13, (3, 6))
    state = None
    tstate = None
    for window in (ids[:, :3], ids[:, 3:]):                          # the state carried across two windows
        logits, state = m(window, state)
        with torch.no_grad():
            out, tstate = lstm(emb(torch.from_numpy(window)), tstate)
            ref = dec(out)
        np.testing.assert_allclose(logits.data, ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(state[1].data, tstate[1].numpy(), atol=1e-5)


# ---- the task: truncated BPTT ----------------------------------------------------------------
def _build(tmp_path, **over):
    path = write_config(tmp_path / "lm.yaml", lm_config(corpus(tmp_path / "c.txt"), **over))
    return experiment.build(cfgmod.load(path))


def test_state_is_detached_between_batches_and_memory_stays_flat(tmp_path):
    exp = _build(tmp_path, **{"data.batch_size": 2, "data.bptt": 4})
    task, loader = exp.task, exp.data.loader("train")
    task.start_epoch(0)
    batches = list(loader.batches())
    sizes = []
    tracemalloc.start()
    try:
        for i in range(200):
            loss, n = task.train_step(batches[i % len(batches)])
            loss.backward()
            exp.optimizer.step()
            exp.optimizer.zero_grad()
            h, c = task.state
            assert h._ctx is None and c._ctx is None and not h.requires_grad   # a leaf: no graph behind it
            if i in (20, 199):
                gc.collect()
                sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert sizes[1] - sizes[0] < 256 * 1024, sizes                 # flat: no graph kept from earlier batches


def test_state_resets_each_epoch_and_eval_leaves_it_alone(tmp_path):
    exp = _build(tmp_path)
    task = exp.task
    task.start_epoch(0)
    x, y = next(exp.data.loader("train").batches())
    task.train_step((x, y))
    carried = task.state[0].data.copy()
    metrics = task.evaluate("val")
    assert set(metrics) == {"loss", "perplexity"}
    assert np.isclose(metrics["perplexity"], np.exp(metrics["loss"]))
    np.testing.assert_array_equal(task.state[0].data, carried)
    task.start_epoch(1, resumed=True)
    assert task.state is not None
    task.start_epoch(1)
    assert task.state is None


def test_stateless_models_get_no_state(tmp_path):
    exp = _build(tmp_path)
    seen = []
    model = exp.model
    original = type(model).forward

    class Stateless(type(model)):
        stateful_across_batches = False

        def forward(self, ids, state=None):
            seen.append(state)
            return original(self, ids, state)

    model.__class__ = Stateless
    task = LanguageModelTask(model, exp.data, None)
    task.start_epoch(0)
    for batch in list(exp.data.loader("train").batches())[:3]:
        task.train_step(batch)
    assert seen == [None, None, None] and task.state is None


def test_resume_mid_epoch_is_bit_identical(tmp_path):
    """N steps in one go == M steps, checkpoint, rebuild, resume for N - M (weights, state, RNG)."""
    exp = _build(tmp_path)
    steps_per_epoch = len(exp.data.loader("train"))
    m, n = steps_per_epoch // 2, steps_per_epoch + 7                 # stop mid-epoch 0, end in epoch 1
    exp.settings.max_steps = n
    exp.settings.test_at_end = False
    straight = exp.trainer()
    straight.fit()

    first = _build(tmp_path)
    first.settings.max_steps, first.settings.test_at_end = m, False
    t1 = first.trainer()
    t1.fit()
    assert t1.batch_in_epoch == m and t1.task.state is not None
    checkpoint.save(tmp_path / "mid.npz", **t1.state())

    second = _build(tmp_path)
    second.settings.max_steps, second.settings.test_at_end = n, False
    t2 = second.trainer()
    t2.restore(checkpoint.load(tmp_path / "mid.npz"))
    np.testing.assert_array_equal(t2.task.state[0].data, t1.task.state[0].data)
    t2.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), t2.model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for a, b in zip(straight.task.state, t2.task.state):
        np.testing.assert_array_equal(a.data, b.data)


# ---- sampling ------------------------------------------------------------------------------
class CountingLM:
    """A fake LM following the protocol: logits favour (last id + 1) % V; state counts tokens seen."""

    def __init__(self, v=5):
        self.v, self.calls = v, []

    def __call__(self, ids, state):
        self.calls.append((ids.shape, state))
        logits = np.full(ids.shape + (self.v,), -5.0)
        for t in range(ids.shape[1]):
            logits[0, t, (ids[0, t] + 1) % self.v] = 5.0
        return npdl.tensor(logits), (state or 0) + ids.shape[1]


def test_sample_feeds_the_prompt_once_then_one_token_with_the_state():
    lm = CountingLM()
    out = sample(lm, [1, 2, 3], 4, temperature=0)
    np.testing.assert_array_equal(out, [4, 0, 1, 2])
    assert [c[0] for c in lm.calls] == [(1, 3), (1, 1), (1, 1), (1, 1)]
    assert [c[1] for c in lm.calls] == [None, 3, 4, 5]


def test_sampling_is_reproducible_with_a_seed():
    m = RNNLM(30, hidden_size=8, num_layers=1, rng=np.random.default_rng(0))
    a = sample(m, [1, 2], 40, temperature=1.5, rng=np.random.default_rng(7))
    b = sample(m, [1, 2], 40, temperature=1.5, rng=np.random.default_rng(7))
    c = sample(m, [1, 2], 40, temperature=1.5, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert m.training                                                # the mode is restored


def test_top_k_and_temperature():
    p = next_token_distribution(np.array([1.0, 3.0, 2.0, 0.0]), temperature=1.0, top_k=2)
    assert p[0] == p[3] == 0 and np.isclose(p.sum(), 1) and p[1] > p[2]
    assert next_token_distribution(np.array([1.0, 3.0, 2.0]), temperature=0).tolist() == [0, 1, 0]
    with pytest.raises(ValueError):
        next_token_distribution(np.zeros(3), top_k=0)


# ---- the command line ----------------------------------------------------------------------
@pytest.mark.parametrize("level", ["word", "char"])
def test_cli_train_then_sample_twice_with_a_seed(workdir, level):
    cfg = lm_config(corpus(workdir / "c.txt"), **{"data.level": level, "train.epochs": 1})
    path = write_config(workdir / "lm.yaml", cfg)
    res = invoke("train", path, "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    assert "test.perplexity" in res.output
    args = ("sample", "tinylm", "--runs-dir", workdir / "runs", "--prompt", "the cat zebra", "--length", "15",
            "--seed", "3", "--top-k", "5")
    one, two = invoke(*args), invoke(*args)
    assert one.exit_code == 0, one.output
    assert one.output == two.output and "the cat zebra" in one.output
    if level == "word":
        assert "not in the vocabulary" in one.output and "'zebra'" in one.output
    other = invoke(*args[:-4], "--seed", "4")
    assert other.exit_code == 0 and other.output != one.output


def test_cli_sample_refuses_a_classifier_run(workdir):
    from tests.conftest import tiny_config

    res = invoke("train", write_config(workdir / "t.yaml", tiny_config()), "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["sample", "tiny", "--runs-dir", str(workdir / "runs")])
    assert res.exit_code == 2 and "not a language model" in res.output


def test_check_shipped_configs_without_data(workdir):
    paths = [ROOT / "configs" / n for n in ("lstm_ptb.yaml", "char_rnn.yaml", "lstm_babi_qa1.yaml")]
    res = invoke("check", *paths)
    assert res.exit_code == 0, res.output
    # rich wraps its output at the terminal's width (80 columns when there is none) wherever the
    # checkout's path pushes the words: compare the text with whitespace normalised, which
    # neither the width nor the path changes
    text = " ".join(res.output.split())
    assert text.count("not downloaded") == 3 and "(RNNLM," in text and "(LSTMQA," in text


def test_zaremba_config_milestones_match_the_epoch_length():
    cfg = cfgmod.load(ROOT / "configs" / "lstm_ptb.yaml").data
    data = cfg["data"]
    epoch = (929_589 // data["batch_size"] - 1) // data["bptt"]      # PTB train tokens with <eos>
    assert cfg["schedule"]["milestones"] == [epoch * k for k in range(4, 13)]
    assert cfg["optimizer"]["lr"] == 20.0 and cfg["train"]["grad_clip"] == 0.25   # lr 1, clip 5 on summed loss


# ---- real data -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ptb_root(tmp_path_factory):
    return mirrored_root(tmp_path_factory, "ptb")


def test_ptb_vocab_and_epoch_length(ptb_root):
    data = PTB(batch_size=20, bptt=20).prepare(ptb_root)
    assert len(data.vocab) == 10000 and data.vocab.tokens[:2] == ("<unk>", "<eos>")
    assert {k: len(v) for k, v in data.streams.items()} == {"train": 929589, "val": 73760, "test": 82430}
    assert len(data.loader("train")) == 2323
    assert data.decode(data.streams["train"][:3]).split() == ["aer", "banknote", "berlitz"]


@pytest.mark.slow
def test_ptb_short_training_run_learns(ptb_root, workdir):
    path = write_config(workdir / "p.yaml", {**cfgmod.load(ROOT / "configs" / "lstm_ptb.yaml").data,
                                             "train": {"max_steps": 300, "grad_clip": 0.25, "eval_every": 300}})
    res = invoke("train", path, "--runs-dir", workdir / "runs", "--data-root", ptb_root)
    assert res.exit_code == 0, res.output
    import json

    run = next((workdir / "runs").iterdir())
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert evals[0]["perplexity"] < 700
