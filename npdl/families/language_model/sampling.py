"""Sampling text from a language model, one token at a time (model-agnostic).

The protocol a language model implements to be sampled from (``rnn_lm`` does; a Transformer
LM does the same with its key/value cache as the state):

    logits, state = model(ids, state)

* ``ids``: (B, T) integer array, the tokens that FOLLOW what ``state`` has already seen;
* ``state``: ``None`` for an empty context, else exactly what the previous call returned
  (opaque here: an RNN's (h, c), a Transformer's cache; never inspected or copied);
* ``logits``: (B, T, V), row t scoring the token after ``ids[:, t]``.

``sample`` feeds the whole prompt in one call, then each drawn token alone (T = 1), reusing
the state, so each step costs one token's work, not the whole prefix's. It runs under
``no_grad`` with the model in eval mode (dropout off), and restores the mode afterwards.
"""
from __future__ import annotations

import numpy as np

import npdl
from npdl.core.backend import to_host
from npdl.nn.module import evaluating


def next_token_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
    """Probabilities (V,) float64 from one row of logits (V,): softmax(logits / temperature), top-k truncated.

    ``temperature`` 0 puts all mass on the arg-max (greedy decoding); ``top_k`` keeps the k most
    likely tokens (Fan et al. 2018, arXiv:1805.04833) and renormalises.

    Raises:
        ValueError: a negative temperature or a top_k below 1.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    z = np.asarray(to_host(logits), np.float64).reshape(-1)   # sampling runs on the host
    if temperature == 0:
        p = np.zeros_like(z)
        p[int(np.argmax(z))] = 1.0
        return p
    z = z / temperature
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    z -= z.max()
    p = np.exp(z)
    return p / p.sum()


def sample(model, prompt_ids, length: int, temperature: float = 1.0, top_k: int | None = None,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw ``length`` tokens continuing ``prompt_ids``; returns them as an int64 array (length,).

    Args:
        model: follows the protocol in the module docstring.
        prompt_ids: (P,) ints, P >= 1 (start from e.g. ``<eos>`` for a fresh sentence).
        temperature, top_k: see ``next_token_distribution``.
        rng: the only source of randomness: the same generator state gives the same tokens.

    Raises:
        ValueError: an empty prompt, a negative length, a bad temperature or top_k.
    """
    prompt = np.asarray(prompt_ids, np.int64).reshape(-1)
    if prompt.size == 0:
        raise ValueError("sample: the prompt needs at least one token (e.g. the end-of-sentence id)")
    if length < 0:
        raise ValueError(f"sample: length must be >= 0, got {length}")
    rng = rng if rng is not None else np.random.default_rng()
    out = np.empty(length, np.int64)
    with evaluating(model), npdl.no_grad():
        logits, state = model(prompt[None, :], None)
        for i in range(length):
            p = next_token_distribution(logits.data[0, -1], temperature, top_k)
            # inverse-CDF draw: one uniform per token, so a seed fixes the whole sequence
            tok = min(int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right")), p.size - 1)
            out[i] = tok
            if i + 1 < length:
                logits, state = model(np.array([[tok]], np.int64), state)
    return out
