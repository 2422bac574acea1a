"""``npdl bench beam``: beam-search (and greedy) decoding speed with and without the KV cache.

The model is Multi30k-sized (``configs/transformer_multi30k.yaml``: d_model 256, 3+3 layers, 8
heads, ff 512, shared 8k vocabulary) with random weights, so no training or data is needed; a
random model seldom emits <eos>, so every sentence is decoded to the fixed length ``out_len``
(25 tokens, about a Multi30k caption). The sources are random ids of 8-24 tokens. Setting
``NPDL_BENCH_BEAM_RUN=runs/<a seq2seq run>`` measures that trained run on the first sentences of
its test split instead (outputs then end at <eos>).

Both paths decode the same sentences and must give the same tokens (asserted). The figure is
sentences per second (median of ``repeat`` timings after a warm-up); the cached path feeds one
token per step, the uncached one recomputes the whole prefix (quadratic in the output length).
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

from npdl.bench import Row


def _random_setup(n: int, seed: int = 0):
    from npdl.data.text_batching import pad_batch
    from npdl.families.seq2seq.model import TransformerSeq2Seq

    model = TransformerSeq2Seq(8000, 8000, d_model=256, nhead=8, num_encoder_layers=3, num_decoder_layers=3,
                               dim_feedforward=512, dropout=0.1, norm_first=True, max_len=128, share_vocab=True,
                               rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    srcs = [np.concatenate([rng.integers(6, 8000, rng.integers(8, 25)), [3]]) for _ in range(n)]
    src, mask = pad_batch(sorted(srcs, key=len))
    return model, src, mask, "random Multi30k-sized model (d 256, 3+3 layers, 8k vocab)"


def _run_setup(run_dir: str, n: int):
    from npdl import experiment
    from npdl.data.text_batching import pad_batch

    run, exp, _, _ = experiment.from_run(run_dir, prepare=True)
    src, mask = pad_batch(sorted(exp.data.src["test"][:n], key=len))
    return exp.model, src, mask, f"trained run {run.name}, first {n} test sentences"


def _time(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up (and the output to compare)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run(sentences: int = 32, beam_size: int = 4, out_len: int = 25, repeat: int = 3) -> list[Row]:
    """Sentences per second for beam search (and greedy), with and without the KV cache."""
    from npdl.families.seq2seq import decoding

    run_dir = os.environ.get("NPDL_BENCH_BEAM_RUN")
    model, src, mask, what = _run_setup(run_dir, sentences) if run_dir else _random_setup(sentences)
    model.eval()
    max_len = None if run_dir else out_len
    rows = []
    for name, fn in (("beam", lambda c: decoding.beam_search(model, src, mask, beam_size, 0.6, max_len, use_cache=c)),
                     ("greedy", lambda c: decoding.greedy(model, src, mask, max_len, use_cache=c))):
        t_cache, out_cache = _time(lambda: fn(True), repeat)
        t_full, out_full = _time(lambda: fn(False), max(1, repeat - 1))
        same = all(np.array_equal(a, b) for a, b in zip(out_cache, out_full))
        if not same:
            raise AssertionError(f"{name}: KV-cache decoding and full recomputation gave different tokens")
        label = f"{name} (beam {beam_size})" if name == "beam" else name
        tokens = sum(len(o) for o in out_cache)
        rows += [Row(f"{label}, KV cache", sentences / t_cache, "sentences/s",
                     f"{sentences} sentences, {tokens} output tokens; {what}"),
                 Row(f"{label}, no cache (prefix recomputed)", sentences / t_full, "sentences/s", "same outputs"),
                 Row(f"{label}: speed-up from the cache", t_full / t_cache, "x", "")]
    return rows
