"""The ``text_classification`` task of the Transformer classifier.

``model(ids, segments=..., mask=...) -> logits (B, C)`` on ``PairBatch``es; eval reports loss,
accuracy, F1 of class 1 (QQP: duplicate) and, beside them, the majority-class baseline (always
predict the training split's most frequent class).
"""
from __future__ import annotations

import numpy as np

import npdl
import npdl.functional as F
from npdl.core.backend import to_host
from npdl.train import metrics as M
from npdl.train.tasks import Task, register_task


@register_task
class TextClassificationTask(Task):
    """Single texts or text pairs -> class; ``monitor = val.accuracy``."""

    name = "text_classification"
    monitor = ("val.accuracy", "max")
    metrics = ("loss", "accuracy", "f1", "majority_accuracy", "majority_f1")

    def logits(self, batch):
        return self.model(batch.ids, segments=batch.segments, mask=batch.mask)

    def train_step(self, batch):
        return self.loss_fn(self.logits(batch), batch.labels), len(batch.labels)

    def dry_run(self, batch):
        return self.logits(batch)

    @npdl.no_grad()
    def probabilities(self, batch) -> np.ndarray:
        """Class probabilities (B, C) of a batch, on the host (the model should be in eval mode)."""
        return to_host(F.softmax(self.logits(batch), axis=-1).data)

    @npdl.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        loss = M.Mean()
        preds, targets = [], []
        for batch in self.data.loader(split).batches():
            logits = self.logits(batch)
            loss.add(self.loss_fn(logits, batch.labels).item(), len(batch.labels))
            preds.append(to_host(logits.data.argmax(axis=-1)))   # metrics on the host, once per eval batch
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
