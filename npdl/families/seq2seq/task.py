"""The ``seq2seq`` task: encoder-decoder training with teacher forcing, evaluation by decoding.

Training: ``model(src, src_mask, tgt_in) -> logits (B, T, V)`` against ``tgt_out`` with the
configured loss (default ``cross_entropy`` with ``ignore_index: 0``, the pad id; add
``label_smoothing: 0.1`` as in Vaswani et al. 2017 §5.4). ``n_items`` is the number of target
tokens, so the reported throughput is target tokens per second.

Evaluation of a split: ``loss`` (the configured loss), ``ppl`` (exp of the per-token NLL without
smoothing), then the outputs are decoded (greedy, or beam with ``eval.decode: beam``) and scored:

* text data (``data.metric == "bleu"``): ``bleu``, corpus BLEU of the detokenized outputs against
  the raw reference lines, exactly as sacrebleu's default (13a tokenization, cased;
  ``npdl.train.bleu.corpus_bleu``);
* synthetic data: ``sequence_accuracy``, the share of outputs equal to their target.

Periodic evaluations stay cheap with ``eval.bleu_every`` (decode at every N-th evaluation only;
the others report losses) and ``eval.bleu_subset`` (decode the first N sentences only); the test
split is always decoded in full, greedily and (``eval.test_beam``) with beam search too
(``bleu_beam``). ``evaluate_beam(split)`` decodes with beam search only (``npdl eval RUN --task beam``).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np

import npdl
import npdl.functional as F
from npdl.data.text_batching import pad_batch
from npdl.families.seq2seq import decoding
from npdl.nn.module import evaluating
from npdl.schema import ArgumentError
from npdl.schema import NonNegativeFloat, PositiveInt
from npdl.train import metrics as M
from npdl.train.bleu import corpus_bleu
from npdl.train.tasks import Task, register_task


@dataclasses.dataclass
class Seq2SeqEvalOptions:
    """The ``eval:`` section of a seq2seq config."""

    decode: Literal["greedy", "beam"] = "greedy"   # how periodic (val) evaluations decode
    beam_size: PositiveInt = 4
    length_penalty: NonNegativeFloat = 0.6         # GNMT alpha (Wu et al. 2016); 0 = raw log-probability
    max_decode_len: PositiveInt | None = None      # generated tokens; None = source length + 50 (model's max_len caps)
    bleu_every: PositiveInt = 1                    # decode at every N-th periodic evaluation (others: losses only)
    bleu_subset: PositiveInt | None = None         # periodic evaluations decode the first N sentences only
    test_beam: bool = True                         # the test split also reports beam-search figures
    decode_batch: PositiveInt = 200                # sentences per decoding batch


@register_task
class Seq2SeqTask(Task):
    """Teacher-forced training of ``transformer_seq2seq``-like models; BLEU / sequence accuracy by decoding."""

    name = "seq2seq"
    default_loss = {"type": "cross_entropy", "ignore_index": 0}
    monitor = ("val.loss", "min")
    eval_options = Seq2SeqEvalOptions

    def __init__(self, model, data, loss_fn, options=None):
        super().__init__(model, data, loss_fn, options)
        if loss_fn is not None and getattr(loss_fn, "ignore_index", 0) != 0:
            raise ArgumentError([("loss.ignore_index", "a seq2seq loss must ignore the padding: set "
                                                       "ignore_index: 0 (the pad id)")])
        self.metric = getattr(data, "metric", "bleu")
        # the best checkpoint is chosen by the decoding metric when every evaluation computes it
        if self.options.bleu_every == 1:
            self.monitor = (f"val.{self.metric}", "max")
        self._evals = 0

    def metric_names(self) -> tuple[str, ...]:
        return ("loss", "ppl", self.metric, "decode_seconds")

    # ---- training ----------------------------------------------------------------------
    def train_step(self, batch):
        logits = self.model(batch.src, batch.src_mask, batch.tgt_in)
        return self.loss_fn(logits, batch.tgt_out), int(batch.tgt_mask.sum())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"evals": np.asarray(self._evals)}

    def load_state_dict(self, state) -> None:
        self._evals = int(state.get("evals", 0))

    # ---- decoding ----------------------------------------------------------------------
    def decode_sources(self, sources: list[np.ndarray], beam_size: int = 1, length_penalty: float | None = None,
                       max_len: int | None = None, use_cache: bool = True) -> list[np.ndarray]:
        """Generated target ids for each source id array (with <eos>), batched by length.

        ``beam_size`` 1 = greedy; ``length_penalty`` defaults to ``eval.length_penalty``.
        """
        opts = self.options
        alpha = opts.length_penalty if length_penalty is None else length_penalty
        max_len = opts.max_decode_len if max_len is None else max_len
        order = np.argsort([len(s) for s in sources], kind="stable")     # similar lengths share a batch
        out: list[np.ndarray | None] = [None] * len(sources)
        with evaluating(self.model):
            for lo in range(0, len(order), opts.decode_batch):
                idx = order[lo: lo + opts.decode_batch]
                src, mask = pad_batch([sources[i] for i in idx])
                if beam_size == 1:
                    hyps = decoding.greedy(self.model, src, mask, max_len=max_len, use_cache=use_cache)
                else:
                    hyps = decoding.beam_search(self.model, src, mask, beam_size, alpha, max_len=max_len,
                                                use_cache=use_cache)
                for i, h in zip(idx, hyps):
                    out[i] = h
        return out

    def _score(self, split: str, beam_size: int, limit: int | None = None) -> dict[str, float]:
        """Decode (the first ``limit`` sentences of) ``split`` and score the outputs."""
        sources = self.data.src[split][:limit] if limit else self.data.src[split]
        started = time.perf_counter()
        hyps = [self.data.decode_target(h) for h in self.decode_sources(sources, beam_size)]
        seconds = time.perf_counter() - started
        refs = self.data.references(split)[: len(hyps)]
        if self.metric == "bleu":
            value = corpus_bleu(hyps, refs).score
        else:  # sequence accuracy: the whole output must equal the target
            value = M.accuracy(np.array(hyps, dtype=object), np.array(refs, dtype=object))
        return {self.metric: value, "decode_seconds": seconds}

    # ---- evaluation --------------------------------------------------------------------
    @npdl.no_grad()
    def losses(self, split: str) -> dict[str, float]:
        """Teacher-forced ``loss`` (configured) and ``ppl`` (unsmoothed per-token NLL) over ``split``."""
        loss, nll = M.Mean(), M.Mean()
        smoothing = getattr(self.loss_fn, "label_smoothing", 0.0)
        for batch in self.data.loader(split).batches():
            logits = self.model(batch.src, batch.src_mask, batch.tgt_in)
            n = int(batch.tgt_mask.sum())
            value = self.loss_fn(logits, batch.tgt_out).item()
            loss.add(value, n)
            nll.add(F.cross_entropy(logits, batch.tgt_out, ignore_index=0).item() if smoothing else value, n)
        return {"loss": loss.value, "ppl": M.perplexity(nll.value)}

    def evaluate(self, split: str) -> dict[str, float]:
        out = self.losses(split)
        opts = self.options
        if split == "test":
            out.update(self._score(split, 1))
            if opts.test_beam and opts.beam_size > 1:
                beam = self._score(split, opts.beam_size)
                out[f"{self.metric}_beam"] = beam[self.metric]
                out["decode_seconds_beam"] = beam["decode_seconds"]
            return out
        self._evals += 1
        if (self._evals - 1) % opts.bleu_every == 0:
            out.update(self._score(split, opts.beam_size if opts.decode == "beam" else 1, opts.bleu_subset))
        return out

    def evaluate_beam(self, split: str = "test") -> dict[str, float]:
        """Beam-search figures on ``split`` (``eval.beam_size``, ``eval.length_penalty``)."""
        opts = self.options
        out = self._score(split, opts.beam_size)
        out.update(beam_size=opts.beam_size, length_penalty=opts.length_penalty, sentences=len(self.data.src[split]))
        return out

