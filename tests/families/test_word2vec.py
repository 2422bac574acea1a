"""word2vec: fused ops (gradchecks), the text pipeline's formulas, batching, a planted relation
recovered end to end, the analogy evaluation, export round trips, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl import config, experiment
from npdl.data import parsers
from npdl.data.vocab import Vocab
from npdl.families.word2vec import ops as W
from npdl.families.word2vec.data import CorpusLoader, NoiseSampler, W2VBatch, keep_probability, noise_distribution
from npdl.families.word2vec.task import UnknownWordError, analogy_accuracy, load_word2vec, save_word2vec

F64 = np.float64


def table(v, d, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    return npdl.tensor(rng.standard_normal((v, d)) * scale, dtype=F64, requires_grad=True)


def toy_batch(n=15, w=2, v=13, seed=0):
    """Words with repeats, short windows and three segments (windows must not cross them)."""
    rng = np.random.default_rng(seed)
    return dict(words=rng.integers(0, v, n), window=rng.integers(1, w + 1, n),
                segment=np.repeat(np.arange(3), [4, 1, n - 5]), pool=rng.integers(0, v, 6))


# ---- gradchecks ------------------------------------------------------------------------
def test_negative_sampling_loss_gradcheck():
    rng = np.random.default_rng(0)
    h, pos, neg = (npdl.tensor(rng.standard_normal(s), dtype=F64, requires_grad=True)
                   for s in [(5, 4), (5, 4), (5, 3, 4)])
    weight = rng.random(5)
    assert npdl.gradcheck(lambda a, b, c: W.NegativeSamplingLoss.apply(a, b, c), h, pos, neg)
    assert npdl.gradcheck(lambda a, b, c: W.NegativeSamplingLoss.apply(a, b, c, weight=weight), h, pos, neg)
    # the value is word2vec's objective, negated: -log s(h.o) - sum_k log s(-h.n_k)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    want = -(np.log(sig((h.data * pos.data).sum(1))) + np.log(sig(-np.einsum("pkd,pd->pk", neg.data, h.data))).sum(1))
    assert np.isclose(W.NegativeSamplingLoss.apply(h, pos, neg).item(), want.sum())


def test_context_mean_gradcheck_and_masking():
    rng = np.random.default_rng(1)
    x = npdl.tensor(rng.standard_normal((4, 5, 3)), dtype=F64, requires_grad=True)
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    assert npdl.gradcheck(lambda a: W.ContextMean.apply(a, mask=mask), x)
    out = W.ContextMean.apply(x, mask=mask).data
    assert np.allclose(out[0], x.data[0, [0, 1, 3]].mean(0)) and np.allclose(out[1], 0)  # no context: zeros
    # word2vec's rule hands each context the whole output gradient (count times the true one)
    x.grad = None
    W.ContextMean.apply(x, mask=mask, update="word2vec").sum().backward()
    assert np.allclose(x.grad, mask[:, :, None] * np.ones(3))


@pytest.mark.parametrize("op", [W.SkipGramBatchLoss, W.CBOWBatchLoss])
def test_fused_batch_losses_gradcheck(op):
    b = toy_batch()
    w_in, w_out = table(13, 4, 1), table(13, 4, 2)
    for groups in (1, 3):
        fn = lambda a, c: op.apply(a, c, negative=3, max_window=2, groups=groups, **b)  # noqa: E731
        assert npdl.gradcheck(fn, w_in, w_out)
    # threads give the same bits as one thread (the groups do not depend on the thread count)
    grads = []
    for threads in (1, 2, 3):
        w_in.grad = w_out.grad = None
        op.apply(w_in, w_out, negative=3, max_window=2, groups=3, threads=threads, **b).backward()
        assert isinstance(w_in.grad, W.CoalescedRowGrad) and len(np.unique(w_in.grad.rows)) == len(w_in.grad.rows)
        grads.append((w_in.grad.to_dense(), w_out.grad.to_dense()))
    assert all(np.array_equal(p, q) for g in grads[1:] for p, q in zip(grads[0], g))


def explicit_pairs_loss(x, y, pool, b, w, negative):
    """Skip-gram loss pair by pair, as the module docstring defines it (a slow reference)."""
    sp = lambda z: np.log1p(np.exp(z))  # noqa: E731
    words, window, seg = b["words"], b["window"], b["segment"]
    total = 0.0
    for t in range(len(words)):
        for o in range(-window[t], window[t] + 1):
            u = t + o
            if o == 0 or not 0 <= u < len(words) or seg[u] != seg[t]:
                continue
            h = x[words[u]]
            total += sp(-h @ y[words[t]]) + negative / len(pool) * sum(sp(h @ y[n]) for n in pool)
    return total


def test_fused_skipgram_equals_the_pairwise_definition():
    b = toy_batch(seed=3)
    w_in, w_out = table(13, 4, 4), table(13, 4, 5)
    got = W.SkipGramBatchLoss.apply(w_in, w_out, negative=3, max_window=2, **b).item()
    assert np.isclose(got, explicit_pairs_loss(w_in.data, w_out.data, b["pool"], b, 2, 3))
    # two groups: each part of the batch (cut at a segment boundary) has its own half of the pool
    b["segment"] = np.repeat(np.arange(3), [4, 5, 6])
    lo, cut, hi = W.split_points(b["segment"], 2)
    assert b["segment"][cut] != b["segment"][cut - 1]
    parts = [{k: v[a:z] for k, v in b.items() if k != "pool"} | {"pool": b["pool"][3 * g:3 * g + 3]}
             for g, (a, z) in enumerate([(lo, cut), (cut, hi)])]
    got = W.SkipGramBatchLoss.apply(w_in, w_out, negative=3, max_window=2, groups=2, **b).item()
    assert np.isclose(got, sum(explicit_pairs_loss(w_in.data, w_out.data, p["pool"], p, 2, 3) for p in parts))


def test_shared_pool_matches_independent_negatives_in_expectation():
    """E over pools of the pool loss = the loss with K negatives drawn from P_n (the estimator)."""
    counts = np.array([50, 20, 10, 5, 5, 3, 2, 1, 1, 1, 1, 1, 1])
    noise, pn = NoiseSampler(counts), noise_distribution(counts)
    b = toy_batch(seed=5)
    w_in, w_out = table(13, 4, 6, 0.7), table(13, 4, 7, 0.7)
    rng = np.random.default_rng(0)
    with npdl.no_grad():
        pooled = np.mean([W.SkipGramBatchLoss.apply(w_in, w_out, negative=3, max_window=2,
                                                    **{**b, "pool": noise.draw(8, rng)}).item() for _ in range(3000)])
    # exact expectation: every pool position is an independent draw from P_n
    x, y = w_in.data, w_out.data
    softplus = np.log1p(np.exp(x @ y.T))                      # (V, V): softplus(x_u . y_n)
    expected = explicit_pairs_loss(x, y, np.arange(13), b, 2, 0)  # positives only
    m = W.band_mask(b["window"], b["segment"], 2, F64)
    inputs = b["words"][np.nonzero(m)[0] + np.nonzero(m)[1] - 2]
    expected += 3 * (softplus[inputs] @ pn).sum()
    assert pooled == pytest.approx(expected, rel=0.01)


# ---- the text pipeline ---------------------------------------------------------------------
def test_subsampling_and_negative_table_follow_their_formulas():
    corpus = ("the " * 500 + "cat " * 50 + "sat " * 20 + "mat " * 5).split()
    vocab = Vocab.build([corpus], specials=())
    counts = vocab.counts
    f = counts / counts.sum()
    t = 0.01
    assert np.allclose(keep_probability(counts, t), np.minimum(np.sqrt(t / f) + t / f, 1))
    assert np.allclose(keep_probability(counts, t, "paper"), np.minimum(np.sqrt(t / f), 1))   # 1 - P(discard)
    assert np.all(keep_probability(counts, 0) == 1)
    # the loader keeps each word at that rate
    ids = np.tile(np.arange(4, dtype=np.int32), 20000)
    keep = keep_probability(counts, t)
    loader = CorpusLoader(lambda: (ids, None), len(ids), keep, 10_000, 4, 5)
    loader.draw_epoch(0, 0)
    rate = np.bincount(loader.kept, minlength=4) / 20000
    assert np.allclose(rate, keep, atol=0.01)
    # negatives: P(w) = count^0.75 / sum, drawn by the sampler at that rate
    p = counts ** 0.75 / (counts ** 0.75).sum()
    assert np.allclose(noise_distribution(counts), p)
    draws = NoiseSampler(counts).draw(200_000, np.random.default_rng(0))
    assert np.allclose(np.bincount(draws, minlength=4) / 200_000, p, atol=0.005)


def test_batches_cover_the_epoch_respect_segments_and_resume_exactly():
    ids = np.arange(1000, dtype=np.int32)                      # word i is in sentence i // 10
    sentence = ids // 10
    loader = CorpusLoader(lambda: (ids, sentence), len(ids), np.full(1000, 0.8), 96, 7, 4)
    assert len(loader) == 11
    batches = list(loader.batches(epoch=2, seed=5))
    words = np.concatenate([b.words for b in batches])
    loader.draw_epoch(5, 2)
    assert np.array_equal(np.sort(words), np.sort(loader.kept))        # every kept word exactly once
    for b in batches:
        assert isinstance(b, W2VBatch) and b.window.min() >= 1 and b.window.max() <= 4
        assert np.all(np.diff(b.segment) >= 0)
        for s in np.unique(b.segment):                                  # a segment: one sentence, in order
            piece = b.words[b.segment == s]
            assert len(np.unique(piece // 10)) == 1 and np.all(np.diff(piece) > 0)
    resumed = list(loader.batches(epoch=2, start=4, seed=5))
    assert all(np.array_equal(a.words, c.words) and np.array_equal(a.window, c.window) and a.seed == c.seed
               for a, c in zip(batches[4:], resumed))
    other = np.concatenate([b.words for b in loader.batches(epoch=3, seed=5)])
    assert not np.array_equal(other, words)


# ---- end to end on a planted relation ----------------------------------------------------------
def planted_corpus(path, n_pairs=6, n_sentences=2000, seed=0):
    """country_i occurs with 'nation land id_i', capital_i with 'city town id_i' (shuffled)."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_sentences):
        i = rng.integers(n_pairs)
        s = [f"country{i}", "nation", "land"] if rng.random() < 0.5 else [f"capital{i}", "city", "town"]
        s.append(f"id{i}")
        rng.shuffle(s)
        lines.append(" ".join(s))
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_config(path, kind="skipgram", **model):
    return {"name": f"tiny_{kind}", "seed": 0,
            "data": {"type": "text_file", "path": str(path), "min_count": 1, "sample": 0, "window": 3,
                     "batch_size": 100, "streams": 8},
            "model": {"type": kind, "dim": 16, "negative": 5, "negative_pool": 16, **model},
            "optimizer": {"type": "sgd", "lr": 0.01}, "schedule": {"type": "linear"},
            "train": {"epochs": 10, "log_every": 1000}}


@pytest.mark.parametrize("kind, model", [("skipgram", {}), ("cbow", {}), ("skipgram", {"negative_pool": 0}),
                                         ("cbow", {"negative_pool": 0, "update": "gradient"}),
                                         ("cbow", {"loss": "softmax"})],
                         ids=["skipgram", "cbow", "skipgram-pairs", "cbow-pairs-gradient", "cbow-softmax"])
def test_planted_capital_relation_is_recovered(tmp_path, kind, model):
    path = planted_corpus(tmp_path / "planted.txt")
    exp = experiment.build(config.from_dict(tiny_config(path, kind, **model)))
    summary = exp.trainer().fit()
    assert summary["steps"] == exp.total_steps
    answers = [exp.task.analogy(f"country{i}", f"capital{i}", f"country{j}", 1)[0][0] == f"capital{j}"
               for i in range(6) for j in range(6) if i != j]
    assert np.mean(answers) >= 0.9


# ---- evaluation and export ---------------------------------------------------------------
def test_analogy_accuracy_counts_sections_and_coverage():
    words = ["a1", "b1", "a2", "b2", "a3", "b3", "x"]
    vec = np.zeros((7, 4))
    role = np.array([0, 0, 0, 1.0])
    for i in range(3):
        vec[2 * i, i] = 1
        vec[2 * i + 1] = vec[2 * i] + 2 * role
    vec[6] = [1, 1, 1, 0]
    questions = [("capital-common", ("a1", "b1", "a2", "b2")), ("capital-common", ("a2", "b2", "a3", "b3")),
                 ("gram1-adj", ("a1", "b1", "a3", "x")), ("gram1-adj", ("a1", "b1", "zz", "b3"))]
    acc = analogy_accuracy(vec, words, questions, restrict=7)
    assert acc["questions"] == 3 and acc["total_questions"] == 4           # 'zz' is not covered
    assert acc["semantic"] == 1.0 and acc["syntactic"] == 0.0 and acc["accuracy"] == pytest.approx(2 / 3)
    assert acc["sections"] == {"capital-common": 1.0, "gram1-adj": 0.0}
    assert analogy_accuracy(vec, words, questions, restrict=4)["questions"] == 1   # only the first 4 words


def test_analogy_accuracy_matches_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    vec = rng.standard_normal((300, 8)).astype(np.float32)
    questions = [("family" if k < 300 else "gram2-x", tuple(words[j] for j in rng.integers(0, 320, 4) % 300))
                 for k in range(600)]
    questions = [(s, q) for s, q in questions if len(set(q)) == 4]
    kv = gensim_models.KeyedVectors(8)
    kv.add_vectors(words, vec)
    ours = analogy_accuracy(vec, words, questions, restrict=200)
    path_lines = []
    for s in dict.fromkeys(s for s, _ in questions):
        path_lines.append(f": {s}")
        path_lines += [" ".join(q) for t, q in questions if t == s]
    (tmp_path / "q.txt").write_text("\n".join(path_lines) + "\n")
    score, _ = kv.evaluate_word_analogies(str(tmp_path / "q.txt"), restrict_vocab=200, case_insensitive=False)
    assert ours["accuracy"] == pytest.approx(score)


@pytest.mark.parametrize("binary", [False, True])
def test_export_round_trips(tmp_path, binary):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sät", "x"]
    vec = (rng.standard_normal((4, 7)) * 10.0 ** rng.integers(-6, 3, (4, 7))).astype(np.float32)
    path = save_word2vec(tmp_path / "v.w2v", words, vec, binary=binary)
    got_words, got = load_word2vec(path, binary=binary)
    assert got_words == words and np.array_equal(got, vec)
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert list(kv.index_to_key) == words and np.array_equal(kv.vectors, vec)


def test_bad_input_gives_clear_messages(tmp_path):
    path = planted_corpus(tmp_path / "planted.txt", n_sentences=100)
    exp = experiment.build(config.from_dict(tiny_config(path)))
    with pytest.raises(UnknownWordError, match=r"'contry1' is not in the vocabulary \(\d+ words\); closest: country1"):
        exp.task.neighbors("contry1")
    bad = tmp_path / "questions.txt"
    bad.write_text(": capital-common\ncountry1 capital1 country2 capital2\ncountry1 capital1 country2\n")
    exp.task.options.analogy_file = str(bad)
    with pytest.raises(parsers.CorruptDataError, match=r"questions.txt:3: expected 4 words"):
        exp.task.evaluate_analogy()
    with pytest.raises(parsers.CorruptDataError, match="header"):
        (tmp_path / "v.txt").write_text("not a header\n")
        load_word2vec(tmp_path / "v.txt")


# ---- real data (slow: minutes) -----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["skipgram", "cbow"])
def test_text8_prefix_analogy_within_two_points_of_gensim(kind, mirror, tmp_path_factory):
    """5 epochs on the 2.1M-word text8 prefix; gensim (when installed) with the same settings."""
    from npdl.families.word2vec import bench
    from npdl.data import download

    root = tmp_path_factory.mktemp("data")
    for name in ("text8_prefix", "analogy"):
        download.download(name, root, mirror=str(mirror), progress=False)
    questions = parsers.load_analogy(download.dataset_dir("analogy", root))
    ours = bench._npdl(kind, 5, root)
    acc = analogy_accuracy(ours["vectors"], ours["words"], questions)["accuracy"]
    assert acc >= 0.06                      # measured: skip-gram 8.6%, CBOW 7.2% (gensim: 8.6%, 8.2-8.7%)
    words = parsers.load_text8(download.dataset_dir("text8_prefix", root)).split()
    ref = bench._gensim(kind, 5, words)
    if ref is not None:
        ref_acc = analogy_accuracy(ref["vectors"], ref["words"], questions)["accuracy"]
        assert abs(acc - ref_acc) <= 0.02, (acc, ref_acc)


# ---- the benchmark -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["skipgram", "cbow"])
def test_word2vec_bench_trains_with_the_shipped_text8_settings(kind):
    from npdl.families.word2vec import bench
    from tests.conftest import ROOT

    shipped = config.load(ROOT / "configs" / f"{kind}_text8_prefix.yaml").data
    ours = bench._config(kind, 5, bench.TEXT8)
    for section in ("data", "model", "optimizer", "schedule"):
        assert ours[section] == shipped[section], section
