"""The decoder-only Transformer language model ``transformer_lm`` (GPT-style; Vaswani et al. 2017,
arXiv:1706.03762; Radford et al. 2018), causal, with a KV cache for incremental decoding.

Tokens are embedded by ``npdl.nn.token_embedding.TokenEmbedding`` (token + position, dropout).
It follows the step protocol of every npdl language model (``logits, state = model(ids, state)``,
see ``npdl.families.language_model.sampling``), its state being the KV cache.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core.grad_mode import is_grad_enabled
from npdl.core.tensor import Tensor
from npdl.nn.attention import ContextTooLongError
from npdl.nn.layers import Linear
from npdl.nn.module import Module
from npdl.nn.token_embedding import TokenEmbedding, as_token_ids
from npdl.nn.transformer import TransformerEncoder
from npdl.registry import MODELS
from npdl.schema import PositiveInt, UnitInterval

Positional = Literal["learned", "sinusoidal"]
Activation = Literal["relu", "gelu"]


@MODELS.register("transformer_lm")
class TransformerLM(Module):
    """Decoder-only causal language model (GPT-style): ids (B, T) -> logits (B, T, vocab_size).

    Embeddings -> ``num_layers`` self-attention layers run with the causal mask (an encoder
    stack without cross-attention, which is exactly a decoder-only block; Radford et al. 2018)
    -> [final LayerNorm when pre-norm] -> output projection, tied to the token embedding
    (``tie_weights``, Press & Wolf 2017) or its own ``head``.

    forward(ids, state=None, use_cache=None) -> (logits (B, T, V), state):
        the sampling protocol of ``npdl.families.language_model.sampling``: feed the prompt with ``state=None``,
        then one token at a time passing the returned ``state`` back. ``state`` is a KV cache
        (``{"layers": [per-layer k/v dicts], "offset": next position, "ids": recent tokens}``),
        so a new token attends to the cached keys/values instead of recomputing the prefix.
        ``use_cache=None`` builds the cache exactly when gradients are off (inference); training
        returns ``state=None``.
        Past ``max_len`` tokens the context window slides: the latest ``max_len // 2`` tokens
        are re-encoded from position 0 (absolute positions live in the cached keys, so the cache
        cannot simply drop its oldest entries), so sampling can run for any length.
    Right padding needs no mask: under the causal mask a real token never sees a later pad;
    losses must ignore the padded targets. Left padding is not supported.

    ``stateful_across_batches = False``: the language-model task passes ``state=None`` for
    every training batch (the cache is for decoding, not truncated BPTT).

    Raises (forward):
        npdl.nn.attention.ContextTooLongError: more than ``max_len`` tokens in one call.
        RuntimeError: a cache (``state``) used while gradients are enabled.
    """

    stateful_across_batches = False

    def __init__(self, vocab_size: PositiveInt, max_len: PositiveInt = 512, d_model: PositiveInt = 128,
                 nhead: PositiveInt = 4, num_layers: PositiveInt = 2, dim_feedforward: PositiveInt = 512,
                 dropout: UnitInterval = 0.1, activation: Activation = "gelu", norm_first: bool = True,
                 positional: Positional = "learned", tie_weights: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"transformer_lm: d_model {d_model} is not divisible by nhead {nhead}")
        self.vocab_size, self.max_len, self.tie_weights = vocab_size, max_len, tie_weights
        self.embed = TokenEmbedding(vocab_size, d_model, max_len, positional, 0, dropout, rng=rng)
        self.transformer = TransformerEncoder(num_layers, d_model, nhead, dim_feedforward, dropout, activation,
                                              norm_first, rng=rng)
        if not tie_weights:
            self.head = Linear(vocab_size, d_model, bias=False, rng=rng)

    def new_state(self) -> dict:
        """An empty KV cache: one dict per layer, the position of the next token, the recent ids."""
        return {"layers": self.transformer.new_cache(), "offset": 0,
                "ids": np.zeros((0, 0), np.int64)}

    def forward(self, ids, state: dict | None = None, use_cache: bool | None = None):
        ids = as_token_ids(ids)
        if use_cache is None:
            use_cache = state is not None or not is_grad_enabled()
        if state is not None and not use_cache:
            raise ValueError("transformer_lm: a state (KV cache) was given with use_cache=False")
        if not use_cache:
            x = self.transformer(self.embed(ids), is_causal=True)             # (B, T, d), fused layers
            return self._logits(x), None
        if is_grad_enabled():
            raise RuntimeError("transformer_lm: the KV cache is for inference; call it under `with npdl.no_grad():`")
        state = self.new_state() if state is None else state
        if len(state.get("layers", ())) != len(self.transformer.layers):
            raise ValueError("transformer_lm: state does not belong to this model; start from state=None")
        t = ids.shape[1]
        if state["offset"] + t > self.max_len:
            # the context is full: slide it. Absolute positions are baked into the cached keys, so
            # re-encode the most recent tokens from position 0 (half the window, so this happens
            # once every max_len/2 tokens rather than at every step)
            if t > self.max_len:
                raise ContextTooLongError(f"transformer_lm: {t} tokens in one call exceed max_len={self.max_len}; "
                                           "set model.max_len to at least the sequence length (e.g. data.bptt)")
            window = np.concatenate([state["ids"], ids], axis=1)[:, -max(self.max_len // 2, t):]
            logits, state = self._extend(window, self.new_state())
            return logits[:, -t:], state
        return self._extend(ids, state)

    def _extend(self, ids: np.ndarray, state: dict):
        """Run ``ids`` after the cached context in ``state`` (updated in place): (logits (B, T, V), state)."""
        x = self.embed(ids, offset=state["offset"])                            # positions offset.. offset+T-1
        x = self.transformer(x, is_causal=True, cache=state["layers"])        # attends to the cached k/v
        state["offset"] += ids.shape[1]
        seen = ids if state["ids"].size == 0 else np.concatenate([state["ids"], ids], axis=1)
        state["ids"] = seen[:, -self.max_len:]                                 # for sliding the window later
        return self._logits(x), state

    def _logits(self, x: Tensor) -> Tensor:
        if self.tie_weights:
            return F.linear(x, self.embed.token.weight)                        # (B, T, V)
        return self.head(x)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, max_len={self.max_len}, tie_weights={self.tie_weights}"
