"""The ``qa`` task (bAbI): ``model(story, story_mask, question, question_mask) -> answer logits``.

Batches come from ``npdl.families.qa.data``; eval reports loss and accuracy (an answer never
seen in training is class 0 and always counts wrong).
"""
from __future__ import annotations

import npdl
from npdl.train import metrics as M
from npdl.train.tasks import Task, register_task


@register_task
class QATask(Task):
    """``model(story, story_mask, question, question_mask) -> logits (B, num_answers)``; accuracy."""

    name = "qa"
    monitor = ("val.accuracy", "max")
    metrics = ("loss", "accuracy")

    def train_step(self, batch):
        *inputs, answer = batch
        return self.loss_fn(self.model(*inputs), answer), len(answer)

    def dry_run(self, batch):
        return self.model(*batch[:-1])

    @npdl.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        loss = M.Mean()
        correct = count = 0
        for *inputs, answer in self.data.loader(split).batches():
            logits = self.model(*inputs)
            loss.add(float(self.loss_fn(logits, answer).item()), len(answer))
            correct += int((logits.data.argmax(axis=-1) == answer).sum())
            count += len(answer)
        return {"loss": loss.value, "accuracy": correct / max(count, 1)}
