"""The encoder-only Transformer classifier ``transformer_classifier`` (Vaswani et al. 2017,
arXiv:1706.03762; BERT-style inputs, Devlin et al. 2019): single texts or ``[CLS] q1 [SEP] q2 [SEP]``
pairs -> class logits.

Tokens are embedded by ``npdl.nn.token_embedding.TokenEmbedding`` (token + position + segment,
LayerNorm, dropout). Masks: the model takes ``mask`` (B, T) with **True = real token** (what
``pad_batch`` returns) and hands the stack its negation, PyTorch's key_padding_mask (True = padding).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core.tensor import Tensor
from npdl.nn.layers import Linear
from npdl.nn.module import Module
from npdl.nn.token_embedding import TokenEmbedding, as_token_ids
from npdl.nn.transformer import TransformerEncoder
from npdl.registry import MODELS
from npdl.schema import NonNegativeInt, PositiveInt, UnitInterval

Positional = Literal["learned", "sinusoidal"]
Activation = Literal["relu", "gelu"]
PAD_ID = 0  # npdl.data.tokenizers.PAD_ID; a mask defaults to ids != PAD_ID


@MODELS.register("transformer_classifier")
class TransformerClassifier(Module):
    """Encoder-only classifier: ids (B, T) [+ segments (B, T)] -> logits (B, num_classes).

    Embeddings (token + position + segment, LayerNorm, dropout) -> ``num_layers`` encoder
    layers with a key-padding mask -> pooling -> dropout -> linear head. ``pooling='cls'``
    takes position 0 (the ``[CLS]`` token, Devlin et al. 2019); ``'mean'`` averages the real
    tokens only (padding excluded). Sentence pairs are ``[CLS] q1 [SEP] q2 [SEP]`` with
    segment 0 up to the first ``[SEP]`` and 1 after (``num_segments=2``); single texts pass
    ``segments=None``. ``vocab_size``, ``num_classes``, ``max_len`` (and ``num_segments``)
    come from the data.

    forward(ids, segments=None, mask=None): mask (B, T) True = real token; default ids != 0.
    Raises: ValueError: bad sizes (d_model % nhead), ids/segments of the wrong shape or range.
    """

    def __init__(self, vocab_size: PositiveInt, num_classes: PositiveInt, max_len: PositiveInt = 512,
                 d_model: PositiveInt = 128, nhead: PositiveInt = 4, num_layers: PositiveInt = 2,
                 dim_feedforward: PositiveInt = 512, dropout: UnitInterval = 0.1, activation: Activation = "relu",
                 norm_first: bool = False, positional: Positional = "learned",
                 pooling: Literal["cls", "mean"] = "mean", num_segments: NonNegativeInt = 2,
                 embedding_norm: bool = True, rng: np.random.Generator | None = None):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"transformer_classifier: d_model {d_model} is not divisible by nhead {nhead}")
        self.pooling, self.num_classes, self.dropout = pooling, num_classes, dropout
        self.embed = TokenEmbedding(vocab_size, d_model, max_len, positional, num_segments, dropout,
                                    layer_norm=embedding_norm, rng=rng)
        self.encoder = TransformerEncoder(num_layers, d_model, nhead, dim_feedforward, dropout, activation,
                                          norm_first, rng=rng)
        self.head = Linear(num_classes, d_model, rng=rng)

    def forward(self, ids, segments=None, mask=None) -> Tensor:
        ids = as_token_ids(ids)
        mask = ids != PAD_ID if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != ids.shape:
            raise ValueError(f"mask shape {mask.shape} differs from ids shape {ids.shape}")
        x = self.embed(ids, segments)                                          # (B, T, d)
        kpm = None if mask.all() else ~mask                                    # True = padding
        x = self.encoder(x, src_key_padding_mask=kpm)                          # (B, T, d)
        if self.pooling == "cls":
            pooled = x[:, 0]                                                   # (B, d)
        else:  # mean over real tokens: padded rows contribute nothing, whatever their values
            m = mask.astype(x.dtype)[..., None]                                # (B, T, 1)
            pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1)        # (B, d)
        return self.head(F.dropout(pooled, self.dropout, self.training))      # (B, C)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling}, num_classes={self.num_classes}"
