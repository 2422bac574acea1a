"""Word2vec: skip-gram and CBOW (Mikolov et al. 2013a, arXiv:1301.3781) trained with negative
sampling (Mikolov et al. 2013b, arXiv:1310.4546), and CBOW also with a full softmax.

Two tables, as in word2vec.c: ``in_embed`` (syn0, the word vectors one keeps; init
U(-0.5/dim, 0.5/dim)) and ``out_embed`` (syn1neg, the output vectors; init 0). Both have
row-sparse gradients, so an SGD step touches only the rows a batch used.

Two ways to compute the loss of a ``W2VBatch`` (``batch_loss``), both through the autograd
engine, the sparse gradients and the optimizer:

* ``negative_pool: 0`` - the reference path: the batch's pairs are listed explicitly, each gets
  K independent negatives (word2vec.c's estimator), and ``forward`` composes ``Embedding``
  lookups with the fused ``NegativeSamplingLoss`` / ``ContextMean`` ops. CBOW with
  ``loss: softmax`` always takes it (logits over the whole vocabulary: small vocabularies only).
* ``negative_pool: S > 0`` (default) - the fast path: one fused node per batch
  (``SkipGramBatchLoss`` / ``CBOWBatchLoss``) that gathers each word once, handles windows as a
  band and scores all inputs against one pool of S negatives with a GEMM, each with weight K/S
  (same expected gradient as K independent negatives; see ``npdl.families.word2vec.ops``). It
  bypasses the per-op graph for speed, not the engine: the loss is one ``Function``.
  ``groups`` G cuts the batch into G parts, each scored against its own pool of S words, and
  ``threads`` computes the parts on that many threads (default 1: see below). What matters for
  quality is the negative weight a pool word collects per step, w = (pairs per step / G) * K / S:
  a summed update that large behaves like many sequential ones only while w stays moderate.
  Measured on the text8 prefix after 5 epochs (gensim: skip-gram 8.6%, CBOW 8.2-8.7%): skip-gram
  w ~340 collapses (0.5%), w ~170 gives 8.6-8.7%, w ~85 8.4%; CBOW w ~115 7.2-7.3%, w ~30-60
  8.1-8.6%. Defaults (chosen on the development half of the analogy sections for the least wall
  time to gensim's 5-epoch accuracy, one thread: ``npdl.families.word2vec.bench``): skip-gram
  S = 64, G = 4 (w ~170), CBOW S = 32, G = 4 (w ~57), with 2,000-word batches.

  Why one thread by default: a part is ~40 NumPy calls on arrays of a few hundred rows, most of
  them 2-80 us, and every call releases and retakes the GIL. With two threads each retake waits
  for the other thread (softplus of a 500 x 64 array: 35 us alone, 51 us a call with two threads
  taking turns), so on the 2-core development machine two threads are slower than one: an epoch
  of ``configs/{skipgram,cbow}_text8_prefix.yaml`` (``--set train.epochs=1 --set
  model.threads=2``) trains in 4.6 s against 3.7 s (skip-gram) and 5.0 s against 3.3 s (CBOW).
  The parts' GEMMs still use BLAS's threads.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core import random as _random
from npdl.core.tensor import Tensor
from npdl.families.word2vec import ops as w2v_ops
from npdl.nn import init
from npdl.nn.layers import Embedding
from npdl.nn.module import Module
from npdl.registry import MODELS
from npdl.schema import NonNegativeInt, PositiveInt


class _Word2Vec(Module):
    """Shared tables and batch plumbing of skip-gram and CBOW."""

    def __init__(self, vocab_size: int, dim: int, negative: int, negative_pool: int, groups: int, threads: int,
                 rng=None):
        super().__init__()
        rng = _random.resolve(rng)
        self.vocab_size, self.dim, self.negative, self.negative_pool = vocab_size, dim, negative, negative_pool
        self.groups, self.threads, self.loss = groups, threads, "negative_sampling"
        self.in_embed = Embedding(vocab_size, dim, sparse=True, rng=rng)
        self.out_embed = Embedding(vocab_size, dim, sparse=True, rng=rng)
        init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim, rng)   # word2vec.c: (rand - 0.5) / dim
        init.zeros_(self.out_embed.weight)

    def vectors(self) -> np.ndarray:
        """(V, dim) the word vectors (the input embeddings)."""
        return self.in_embed.weight.data

    def batch_loss(self, batch, noise, max_window: int, rng: np.random.Generator) -> Tensor:
        """Summed loss of a ``W2VBatch``; ``noise`` draws negatives (``NoiseSampler``)."""
        if self.negative_pool > 0 and self.loss == "negative_sampling":
            pool = noise.draw(self.negative_pool * self.groups, rng)
            return self._fused.apply(self.in_embed.weight, self.out_embed.weight, words=batch.words,
                                     window=batch.window, segment=batch.segment, pool=pool,
                                     negative=self.negative, max_window=max_window, groups=self.groups,
                                     threads=self.threads, **self._fused_options())
        return self.pairs_loss(batch, noise, max_window, rng)

    def _fused_options(self) -> dict:
        return {}


def batch_pairs(batch, max_window: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre positions t, context positions u) of every pair of a ``W2VBatch``, (P,) each."""
    m = w2v_ops.band_mask(batch.window, batch.segment, max_window, np.bool_)
    t, k = np.nonzero(m)
    return t, t + k - max_window


@MODELS.register("skipgram")
class SkipGram(_Word2Vec):
    """Skip-gram: each context word's vector predicts the centre word (word2vec.c's pairing).

    forward(inputs (P,), targets (P,), negatives (P, K)) -> summed negative-sampling loss.
    """

    _fused = w2v_ops.SkipGramBatchLoss

    def __init__(self, vocab_size: PositiveInt, dim: PositiveInt = 100, negative: PositiveInt = 5,
                 negative_pool: NonNegativeInt = 64, groups: PositiveInt = 4, threads: PositiveInt = 1,
                 rng: np.random.Generator | None = None):
        super().__init__(vocab_size, dim, negative, negative_pool, groups, threads, rng)

    def forward(self, inputs, targets, negatives) -> Tensor:
        h = self.in_embed(inputs)                                          # (P, D)
        return w2v_ops.NegativeSamplingLoss.apply(h, self.out_embed(targets), self.out_embed(negatives))

    def pairs_loss(self, batch, noise, max_window, rng) -> Tensor:
        t, u = batch_pairs(batch, max_window)
        return self(batch.words[u], batch.words[t], noise.draw((len(t), self.negative), rng))


@MODELS.register("cbow")
class CBOW(_Word2Vec):
    """CBOW: the mean of the context vectors predicts the centre word.

    forward(context (P, C), mask (P, C) bool, targets (P,), negatives (P, K) or None for
    softmax) -> summed loss. ``update``: how dL/dh reaches the context vectors: "word2vec"
    (word2vec.c and gensim: each context word gets all of it, c times the gradient of the
    mean) or "gradient" (the exact gradient, dL/dh / c).
    """

    _fused = w2v_ops.CBOWBatchLoss

    def __init__(self, vocab_size: PositiveInt, dim: PositiveInt = 100, negative: PositiveInt = 5,
                 negative_pool: NonNegativeInt = 32,
                 loss: Literal["negative_sampling", "softmax"] = "negative_sampling",
                 update: Literal["word2vec", "gradient"] = "word2vec", groups: PositiveInt = 4,
                 threads: PositiveInt = 1, rng: np.random.Generator | None = None):
        super().__init__(vocab_size, dim, negative, negative_pool, groups, threads, rng)
        self.loss, self.update = loss, update

    def _fused_options(self) -> dict:
        return {"update": self.update}

    def forward(self, context, mask, targets, negatives=None) -> Tensor:
        h = w2v_ops.ContextMean.apply(self.in_embed(context), mask=mask, update=self.update)   # (P, D)
        if self.loss == "softmax":
            logits = F.linear(h, self.out_embed.weight)                     # (P, V); no bias, as word2vec
            return F.cross_entropy(logits, np.asarray(targets), reduction="sum")
        return w2v_ops.NegativeSamplingLoss.apply(h, self.out_embed(targets), self.out_embed(negatives))

    def pairs_loss(self, batch, noise, max_window, rng) -> Tensor:
        m = w2v_ops.band_mask(batch.window, batch.segment, max_window, np.bool_)
        has = m.any(1)
        pos = np.arange(len(batch.words))[has, None] + np.arange(-max_window, max_window + 1)
        context = batch.words[np.clip(pos, 0, len(batch.words) - 1)]
        negatives = None if self.loss == "softmax" else noise.draw((int(has.sum()), self.negative), rng)
        return self(context, m[has], batch.words[has], negatives)
