"""Tasks for the Transformer classifier and the decoder-only LM on sequence toys.

``text_classification``: ``model(ids, segments=..., mask=...) -> logits (B, C)`` on
``PairBatch``es; eval reports loss, accuracy, F1 of class 1 (QQP: duplicate) and, beside
them, the majority-class baseline (always predict the training split's most frequent class).

``sequence_lm``: ``model(inputs, use_cache=False) -> (logits (B, T, V), state)`` on
``LMBatch``es; the loss covers the real targets only (``mask``), whatever the configured loss's
``ignore_index``; eval reports loss (nats per token), perplexity, token accuracy and sequence
accuracy (every target of a sequence right).
"""
from __future__ import annotations

import numpy as np

import npdl
import npdl.functional as F
from npdl.train import metrics as M
from npdl.train.tasks import Task, register_task


@register_task
class TextClassificationTask(Task):
    """Single texts or text pairs -> class; ``monitor = val.accuracy``."""

    name = "text_classification"
    monitor = ("val.accuracy", "max")

    def logits(self, batch):
        return self.model(batch.ids, segments=batch.segments, mask=batch.mask)

    def train_step(self, batch):
        return self.loss_fn(self.logits(batch), batch.labels), len(batch.labels)

    def dry_run(self, batch):
        return self.logits(batch)

    @npdl.no_grad()
    def probabilities(self, batch) -> np.ndarray:
        """Class probabilities (B, C) of a batch (the model should be in eval mode)."""
        return F.softmax(self.logits(batch), axis=-1).data

    @npdl.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        loss = M.Mean()
        preds, targets = [], []
        for batch in self.data.loader(split).batches():
            logits = self.logits(batch)
            loss.add(self.loss_fn(logits, batch.labels).item(), len(batch.labels))
            preds.append(logits.data.argmax(axis=-1))
            targets.append(batch.labels)
        pred, target = np.concatenate(preds), np.concatenate(targets)
        majority = np.full_like(target, getattr(self.data, "majority_class", 0))
        out = {"loss": loss.value, "accuracy": M.accuracy(pred, target)}
        if int(target.max(initial=0)) <= 1:  # binary: F1 of the positive class (QQP: duplicate)
            out["f1"] = M.f1(pred, target)
        out["majority_accuracy"] = M.accuracy(majority, target)
        if "f1" in out:
            out["majority_f1"] = M.f1(majority, target)
        return out


@register_task
class SequenceLMTask(Task):
    """Next-token prediction on padded batches; ``monitor = val.loss``."""

    name = "sequence_lm"
    monitor = ("val.loss", "min")

    def _flat(self, batch):
        logits, _ = self.model(batch.inputs, use_cache=False)                  # (B, T, V)
        mask = np.asarray(batch.mask, bool)
        if mask.all():
            return logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), logits
        return logits[mask], batch.targets[mask], logits                       # (N, V), (N,)

    def train_step(self, batch):
        flat, targets, _ = self._flat(batch)
        return self.loss_fn(flat, targets), len(targets)

    def dry_run(self, batch):
        return self.model(batch.inputs, use_cache=False)[0]

    @npdl.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        loss, tokens = M.Mean(), M.Mean()
        right_seqs = n_seqs = 0
        for batch in self.data.loader(split).batches():
            flat, targets, logits = self._flat(batch)
            loss.add(F.cross_entropy(flat, targets).item(), len(targets))
            pred = logits.data.argmax(axis=-1)
            tokens.add(M.accuracy(pred[batch.mask], batch.targets[batch.mask]), int(batch.mask.sum()))
            right_seqs += int(((pred == batch.targets) | ~batch.mask).all(axis=1).sum())
            n_seqs += len(pred)
        return {"loss": loss.value, "perplexity": M.perplexity(loss.value), "token_accuracy": tokens.value,
                "sequence_accuracy": right_seqs / max(n_seqs, 1)}
