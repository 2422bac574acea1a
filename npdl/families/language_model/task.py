"""Tasks for language models: ``language_model`` (streams, truncated BPTT) and ``sequence_lm``.

Language modelling with truncated backpropagation through time (Williams & Peng 1990;
Zaremba et al. 2014): the data hands out consecutive (B, T) windows of B parallel streams
(``npdl.families.language_model.data``), and the task carries the model's final state of one window into
the next as its initial state, DETACHED, so gradients flow through T steps only while the
state still summarises everything read so far. The carried state starts at zero at every
epoch start, is part of the checkpoint (``state_dict``), and so a run resumed mid-epoch
continues with exactly the state it was interrupted with.

Models opt out of carrying (a Transformer, whose context is its window) with the class
attribute ``stateful_across_batches = False``: every batch then gets ``state=None``.

Metrics: ``loss`` (mean cross-entropy, nats per token) and ``perplexity`` = exp(loss).
Evaluation runs each split as one stream in the data's eval batch size, from a fresh state,
without disturbing the training state.

``sequence_lm``: ``model(inputs, use_cache=False) -> (logits (B, T, V), state)`` on padded
``LMBatch``es (``npdl.families.language_model.alternating``); the loss covers the real targets
only (``mask``), whatever the configured loss's ``ignore_index``; eval reports loss (nats per
token), perplexity, token accuracy and sequence accuracy (every target of a sequence right).
"""
from __future__ import annotations


import numpy as np

import npdl
import npdl.functional as F
from npdl.core.backend import to_host
from npdl.core.tensor import Tensor
from npdl.train import metrics as M
from npdl.train.tasks import Task, register_task


def _state_arrays(state):
    """A state (Tensor or nested tuples of them) as nested lists of arrays, for checkpoints."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return [_state_arrays(s) for s in state]
    return np.array(to_host(state.data if isinstance(state, Tensor) else state), copy=True)   # host arrays


def _state_tensors(obj):
    """Inverse of ``_state_arrays``: lists become tuples, arrays constant Tensors."""
    if isinstance(obj, list):
        return tuple(_state_tensors(s) for s in obj)
    return Tensor(np.array(obj, copy=True))


def _detach(state):
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(s) for s in state)
    return state.detach() if isinstance(state, Tensor) else state


@register_task
class LanguageModelTask(Task):
    """``model(ids (B, T), state) -> (logits (B, T, V), state)``; next-token cross-entropy, perplexity."""

    name = "language_model"
    default_loss = None          # the fused softmax cross-entropy over (B*T, V) is the loss
    monitor = ("val.perplexity", "min")
    metrics = ("loss", "perplexity")

    def __init__(self, model, data, loss_fn, options=None):
        super().__init__(model, data, loss_fn, options)
        self.state = None

    @property
    def stateful(self) -> bool:
        return bool(getattr(self.model, "stateful_across_batches", True))

    def start_epoch(self, epoch: int, resumed: bool = False) -> None:
        if not resumed:          # a new pass over the stream starts from zeros
            self.state = None

    def train_step(self, batch):
        x, y = batch
        logits, state = self.model(x, self.state if self.stateful else None)
        # truncated BPTT: the next window starts where this one ended, but no gradient crosses
        self.state = _detach(state) if self.stateful else None
        v = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, v), np.asarray(y).reshape(-1)), int(np.size(y))

    def dry_run(self, batch):
        return self.model(batch[0])[0]          # never touches the carried state

    @npdl.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        total = M.Mean()
        state = None
        for x, y in self.data.loader(split).batches():
            logits, state = self.model(x, state if self.stateful else None)
            v = logits.shape[-1]
            loss = F.cross_entropy(logits.reshape(-1, v), np.asarray(y).reshape(-1))
            total.add(float(loss.item()), int(np.size(y)))
        loss = total.value
        return {"loss": loss, "perplexity": M.perplexity(loss)}

    def state_dict(self) -> dict:
        return {} if self.state is None else {"state": _state_arrays(self.state)}

    def load_state_dict(self, state: dict) -> None:
        self.state = _state_tensors(state["state"]) if state and state.get("state") is not None else None


@register_task
class SequenceLMTask(Task):
    """Next-token prediction on padded batches; ``monitor = val.loss``."""

    name = "sequence_lm"
    monitor = ("val.loss", "min")
    metrics = ("loss", "perplexity", "token_accuracy", "sequence_accuracy")

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
            pred = to_host(logits.data.argmax(axis=-1))   # metrics on the host, once per eval batch
            tokens.add(M.accuracy(pred[batch.mask], batch.targets[batch.mask]), int(batch.mask.sum()))
            right_seqs += int(((pred == batch.targets) | ~batch.mask).all(axis=1).sum())
            n_seqs += len(pred)
        return {"loss": loss.value, "perplexity": M.perplexity(loss.value), "token_accuracy": tokens.value,
                "sequence_accuracy": right_seqs / max(n_seqs, 1)}
