"""``npdl bench beam``: beam-search (and greedy) decoding speed with and without the KV cache.

The model is Multi30k-sized (``configs/transformer_multi30k.yaml``: d_model 256, 3+3 layers, 8
heads, ff 512, shared 8k vocabulary) with random weights, so no training or data is needed; a
random model seldom emits <eos>, so every sentence is decoded to the fixed length ``out_len``
(25 tokens, about a Multi30k caption). The sources are random ids of 8-24 tokens. Setting
``NPDL_BENCH_BEAM_RUN=runs/<a seq2seq run>`` measures that trained run on the first sentences of
its test split instead (outputs then end at <eos>).

Both paths decode the same sentences and must give the same tokens (asserted on the untimed
warm-up call). A round decodes the batch once with the cache and once without
(``npdl.bench.alternate``); the figure is sentences per second, median and spread over rounds,
and the ratio of medians is the speed-up from the cache. The cached path feeds one token per
step, the uncached one recomputes the whole prefix (quadratic in the output length).

History (issue 17): the README's 51.8 sentences/s and 5.7x (beam 4, cached) came from this same
setup (commit 8480869; the decoding code has had only refactors that do not change the work
since: 304738b, cef7e20, ec46b46), and the README's commit (77b4052) and today's code decode
equally fast side by side. Beam's per-token GEMMs have 4x the rows of greedy's (128 x 256 by
256 x 256), which OpenBLAS splits over 2 threads; on a loaded 2-core machine a 2-thread GEMM
stalls whenever one thread is preempted (measured under load: beam 1.5-2.1 sentences/s with 2
BLAS threads, 13.7-14.1 with 1). Lower figures therefore come from load, not a regression;
``--threads`` and the spread over rounds now show it.
"""
from __future__ import annotations

import os

import numpy as np

from npdl.bench import Figure, Settings, alternate, timed

MODEL = dict(vocab=8000, d_model=256, nhead=8, layers=3, dim_feedforward=512)
QUICK = dict(vocab=40, d_model=8, nhead=2, layers=1, dim_feedforward=16)


def _random_setup(n: int, seed: int = 0, vocab: int = 8000, d_model: int = 256, nhead: int = 8, layers: int = 3,
                  dim_feedforward: int = 512):
    from npdl.data.text_batching import pad_batch
    from npdl.families.seq2seq.model import TransformerSeq2Seq

    model = TransformerSeq2Seq(vocab, vocab, d_model=d_model, nhead=nhead, num_encoder_layers=layers,
                               num_decoder_layers=layers, dim_feedforward=dim_feedforward, dropout=0.1,
                               norm_first=True, max_len=128, share_vocab=True, rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    srcs = [np.concatenate([rng.integers(6, vocab, rng.integers(8, 25)), [3]]) for _ in range(n)]
    src, mask = pad_batch(sorted(srcs, key=len))
    return model, src, mask, (f"random model (d {d_model}, {layers}+{layers} layers, {nhead} heads, "
                              f"ff {dim_feedforward}, vocab {vocab})")


def _run_setup(run_dir: str, n: int):
    from npdl import experiment
    from npdl.data.text_batching import pad_batch

    run, exp, _, _ = experiment.from_run(run_dir, prepare=True)
    src, mask = pad_batch(sorted(exp.data.src["test"][:n], key=len))
    return exp.model, src, mask, f"trained run {run.name}, first {n} test sentences"


def run(settings: Settings, sentences: int = 32, beam_size: int = 4, out_len: int = 25) -> list[Figure]:
    """Sentences per second for beam search (and greedy), with and without the KV cache."""
    from npdl.families.seq2seq import decoding

    if settings.quick:
        sentences, out_len = 3, 5
    run_dir = os.environ.get("NPDL_BENCH_BEAM_RUN")
    model, src, mask, what = (_run_setup(run_dir, sentences) if run_dir else
                              _random_setup(sentences, **(QUICK if settings.quick else MODEL)))
    model.eval()
    max_len = None if run_dir else out_len
    figures = []
    for name, fn in (("beam", lambda c: decoding.beam_search(model, src, mask, beam_size, 0.6, max_len, use_cache=c)),
                     ("greedy", lambda c: decoding.greedy(model, src, mask, max_len, use_cache=c))):
        out_cache, out_full = fn(True), fn(False)        # warm-up, and the outputs to compare
        if not all(np.array_equal(a, b) for a, b in zip(out_cache, out_full)):
            raise AssertionError(f"{name}: KV-cache decoding and full recomputation gave different tokens")
        seconds = alternate({"KV cache": timed(lambda: fn(True)), "no cache": timed(lambda: fn(False))},
                            settings.rounds_or(3))
        label = f"{name} (beam {beam_size})" if name == "beam" else name
        tokens = sum(len(o) for o in out_cache)
        figures.append(Figure("beam", f"{label} decoding", "sentences/s",
                              {k: [sentences / s for s in v] for k, v in seconds.items()},
                              f"{sentences} sentences, {tokens} output tokens; {what}; same outputs both ways; "
                              "ratio = speed-up from the cache", ">= 5" if name == "beam" else ""))
    return figures
