"""The bAbI reader ``lstm_qa``: a story and a question in, one answer class out.

Two LSTMs over one embedding table; how the story reader learns what is asked (``reader``) is
described in the class docstring. Batches come from ``npdl.families.qa.data``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core import random as _random
from npdl.core.ops.movement import concat
from npdl.core.tensor import Tensor
from npdl.nn import init
from npdl.nn.layers import Embedding, Linear
from npdl.nn.module import Module
from npdl.nn.recurrent import LSTM
from npdl.registry import MODELS
from npdl.schema import PositiveFloat, PositiveInt, UnitInterval


@MODELS.register("lstm_qa")
class LSTMQA(Module):
    """bAbI reader: (story (B, Ls), story_mask, question (B, Lq), question_mask) -> answer logits (B, num_answers).

    One embedding table serves story and question. A question LSTM reads the question; a story
    LSTM reads the story word by word (sentences closed by ``<sep>``). How the story reader
    learns what is asked is ``reader``:

    * ``separate``: it does not; it starts from zeros (as the bAbI paper's LSTM baseline reads
      the story without the question, Weston et al. 2015, section 5);
    * ``init``: it starts from the question LSTM's final (h, c);
    * ``input`` (default): as ``init``, and the question vector q (the final h) is appended to
      every story word's embedding, so each gate sees the question at every step, not just a
      starting state that later words overwrite (the idea of input feeding, Luong et al. 2015,
      arXiv:1508.04025). Measured on qa1 (1k questions): 82% test accuracy; with init or separate
      the accuracy stayed near 50% over 50+ epochs.

    The answer is a softmax over the answer strings seen in training, from [story final h ; q]
    (B, 2H) after dropout. Padded steps carry the state (the LSTM's masks), so each final
    state is the one at the sequence's last real token.

    Raises:
        ValueError: a non-positive size (from the layers).
    """

    def __init__(self, vocab_size: PositiveInt, num_answers: PositiveInt, embed_dim: PositiveInt = 50,
                 hidden_size: PositiveInt = 100, num_layers: PositiveInt = 1, dropout: UnitInterval = 0.3,
                 reader: Literal["input", "init", "separate"] = "input", init_range: PositiveFloat | None = 0.1,
                 rng: np.random.Generator | None = None):
        super().__init__()
        rng = _random.resolve(rng)
        self.reader, self.dropout = reader, dropout
        self.embedding = Embedding(vocab_size, embed_dim, padding_idx=0, rng=rng)
        self.question_rnn = LSTM(hidden_size, embed_dim, num_layers=num_layers, dropout=dropout, rng=rng)
        story_in = embed_dim + (hidden_size if reader == "input" else 0)
        self.story_rnn = LSTM(hidden_size, story_in, num_layers=num_layers, dropout=dropout, rng=rng)
        self.classifier = Linear(num_answers, 2 * hidden_size, rng=rng)
        if init_range is not None:  # every parameter ~ U(-init_range, init_range), as rnn_lm (Zaremba et al.)
            for p in self.parameters():
                init.uniform_(p, -init_range, init_range, rng)
            self.embedding.weight.data[0] = 0

    def forward(self, story, story_mask, question, question_mask) -> Tensor:
        """-> logits (B, num_answers). Masks are (B, L) bool, True at real tokens."""
        q = F.dropout(self.embedding(question), self.dropout, self.training)          # (B, Lq, E)
        _, (q_h, q_c) = self.question_rnn(q, mask=np.asarray(question_mask, bool))    # (L, B, H) each
        s = F.dropout(self.embedding(story), self.dropout, self.training)             # (B, Ls, E)
        start = (q_h, q_c) if self.reader in ("init", "input") else None
        if self.reader == "input":
            b, t = s.shape[:2]
            rep = q_h[-1].reshape(b, 1, -1).broadcast_to((b, t, q_h.shape[-1]))
            s = concat([s, rep], axis=-1)
        _, (s_h, _) = self.story_rnn(s, start, mask=np.asarray(story_mask, bool))
        features = concat([s_h[-1], q_h[-1]], axis=-1)                                # (B, 2H)
        return self.classifier(F.dropout(features, self.dropout, self.training))

    def extra_repr(self) -> str:
        return f"reader={self.reader}"
