"""Autoregressive decoding for encoder-decoder models: greedy search and beam search.

Both are batched over sentences and run under ``npdl.no_grad()``. With ``use_cache=True``
(default) each step feeds only the newest token: the decoder's self-attention keys/values
grow in a per-layer KV cache and the cross-attention keys/values of the encoder memory are
projected once (``npdl.nn.attention.MultiHeadAttention``, ``cache=``). ``use_cache=False``
recomputes the whole prefix every step (the reference for the equality test and the
benchmark); both give the same tokens.

Sentences that are finished are dropped from the batch (and from the cache), so a batch
costs what its longest output costs only for the rows still running.

The model interface: ``encode(src, src_mask) -> memory``, ``decode(tgt_in, memory, src_mask,
cache=None) -> logits (B, T, V)``, ``new_cache()``, ``max_len`` (positional table size).
Masks are the data's: True = real token.

Beam search follows the usual batched formulation (as in fairseq): every step takes the 2K
best continuations of the K live hypotheses of a sentence; those ending in <eos> within the
best K are finished, the best K others live on; a sentence stops when it has K finished
hypotheses (or at the length limit, where the live ones are finished as they stand). Finished
scores are normalised by GNMT's length penalty lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016,
arXiv:1609.08144, eq. 14), |Y| counting the generated tokens including <eos>; alpha = 0 ranks
by total log-probability.
"""
from __future__ import annotations

import numpy as np

import npdl
from npdl.core.backend import device_of, get_array_module, to_device, to_host
from npdl.core.tensor import wrap
from npdl.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from npdl.nn.attention import take_cache_rows


def decode_limit(model, src_mask: np.ndarray, max_len: int | None = None, extra: int = 50) -> int:
    """Most tokens to generate: ``max_len`` (default: longest source + ``extra``), at most ``model.max_len``."""
    want = int(np.asarray(src_mask).sum(axis=1).max(initial=1)) + extra if max_len is None else int(max_len)
    return max(1, min(want, int(getattr(model, "max_len", want))))


def _take_cache(cache: list[dict] | None, rows: np.ndarray, parts=("self", "cross")) -> None:
    """Keep (and reorder) batch rows ``rows`` of every cached key/value array, in place.

    Beam search calls this every step; an identity ``rows`` (no hypothesis changed parent) costs nothing.
    """
    if cache is None or (len(rows) == _cache_rows(cache) and np.array_equal(rows, np.arange(len(rows)))):
        return
    for layer in cache:
        for part in parts:
            if part in layer:
                take_cache_rows(layer[part], rows)


def _cache_rows(cache: list[dict]) -> int:
    """Batch rows a decoder cache holds (-1 while empty)."""
    kv = cache[0].get("self", {}) if cache else {}
    return kv["k"].shape[0] if "k" in kv else -1


def _strip(row: np.ndarray, eos: int) -> np.ndarray:
    """Generated ids up to (not including) the first <eos>, padding removed."""
    hit = np.flatnonzero(row == eos)
    row = row[: hit[0]] if hit.size else row
    return row[row != PAD_ID]


def _top_indices(x: np.ndarray, w: int) -> np.ndarray:
    """Column indices of the ``w`` largest entries of each row of x (N, V), best first.

    For the few columns a beam needs, ``w`` argmax passes are several times faster than
    ``np.argpartition`` (and break ties like ``argmax``, towards the lower id, as greedy does).
    """
    if w > 32:
        part = np.argpartition(x, x.shape[1] - w, axis=1)[:, x.shape[1] - w:]
        return np.take_along_axis(part, np.argsort(-np.take_along_axis(x, part, 1), axis=1, kind="stable"), 1)
    y, rows = x.copy(), np.arange(x.shape[0])
    out = np.empty((x.shape[0], w), dtype=np.int64)
    for i in range(w):
        out[:, i] = y.argmax(axis=1)
        y[rows, out[:, i]] = -np.inf
    return out


def _rows(a, index: np.ndarray):
    """a[index] for a host ``index`` (the search runs on the host), ``a`` on any device."""
    return a[index] if type(a) is np.ndarray else a[to_device(index, device_of(a))]


def _step(model, tokens: np.ndarray, memory, src_mask, cache) -> np.ndarray:
    """Logits (N, V) for the next position after ``tokens`` (N, t), on the host (the search runs there)."""
    if cache is not None:
        return to_host(model.decode(tokens[:, -1:], memory, src_mask, cache=cache).data[:, -1])
    return to_host(model.decode(tokens, memory, src_mask).data[:, -1])


@npdl.no_grad()
def greedy(model, src: np.ndarray, src_mask: np.ndarray, max_len: int | None = None, bos: int = BOS_ID,
           eos: int = EOS_ID, use_cache: bool = True) -> list[np.ndarray]:
    """Greedy decoding: the most probable next token at each step.

    src (B, S) ids, src_mask (B, S) True = token. Returns B int64 arrays of generated ids
    (no <bos>, cut before the first <eos>); at most ``decode_limit(model, src_mask, max_len)`` tokens.
    """
    src, src_mask = np.asarray(src), np.asarray(src_mask, dtype=bool)
    b = src.shape[0]
    limit = decode_limit(model, src_mask, max_len)
    memory = model.encode(src, src_mask).data
    out = np.full((b, limit), PAD_ID, dtype=np.int64)
    alive = np.arange(b)
    tokens = np.full((b, 1), bos, dtype=np.int64)
    cache = model.new_cache() if use_cache else None
    for step in range(limit):
        nxt = _step(model, tokens, wrap(memory), src_mask, cache).argmax(axis=-1)
        out[alive, step] = nxt
        keep = nxt != eos
        tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
        if not keep.all():
            alive, tokens, memory, src_mask = alive[keep], tokens[keep], _rows(memory, keep), src_mask[keep]
            _take_cache(cache, np.flatnonzero(keep))
            if not alive.size:
                break
    return [_strip(row, eos) for row in out]


def gnmt_length_penalty(length, alpha: float):
    """GNMT's lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016, eq. 14)."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


@npdl.no_grad()
def beam_search(model, src: np.ndarray, src_mask: np.ndarray, beam_size: int = 4, length_penalty: float = 0.6,
                max_len: int | None = None, bos: int = BOS_ID, eos: int = EOS_ID, use_cache: bool = True,
                return_scores: bool = False):
    """Beam search with ``beam_size`` hypotheses per sentence (see the module docstring).

    src (B, S) ids, src_mask (B, S) True = token. Returns B int64 arrays (the best hypothesis
    of each sentence, no <bos>/<eos>), and with ``return_scores`` also their normalised
    scores (B,). ``beam_size=1`` gives exactly the greedy output.

    Raises:
        ValueError: beam_size < 1 or a negative length penalty.
    """
    if beam_size < 1:
        raise ValueError(f"beam_search: beam_size must be >= 1, got {beam_size}")
    if length_penalty < 0:
        raise ValueError(f"beam_search: length_penalty must be >= 0, got {length_penalty}")
    k = beam_size
    src, src_mask = np.asarray(src), np.asarray(src_mask, dtype=bool)
    b = src.shape[0]
    limit = decode_limit(model, src_mask, max_len)
    enc = model.encode(src, src_mask).data
    memory = get_array_module(enc).repeat(enc, k, axis=0)     # (B*K, S, d): sentence-major
    mask = np.repeat(src_mask, k, axis=0)
    scores = np.full((b, k), -np.inf)
    scores[:, 0] = 0.0                                                   # one live hypothesis at first
    tokens = np.full((b * k, 1), bos, dtype=np.int64)
    sent = np.arange(b)                                                  # original ids of live sentences
    finished: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(b)]
    cache = model.new_cache() if use_cache else None
    for step in range(limit):
        n = sent.size
        logits = _step(model, tokens, wrap(memory), mask, cache)         # (n*K, V)
        v = logits.shape[-1]
        # the best 2K continuations of a sentence are among the best 2K of each of its hypotheses,
        # and within a row the logits rank like the log-probabilities: select first, normalise after
        w = min(2 * k, v)
        part = _top_indices(logits, w)                                     # (n*K, w)
        mx = logits.max(axis=1, keepdims=True)
        lse = mx + np.log(np.exp(logits - mx).sum(axis=1, keepdims=True))
        logp = (np.take_along_axis(logits, part, 1) - lse).astype(np.float64)
        cand = (scores.reshape(-1, 1) + logp).reshape(n, k * w)
        width = min(2 * k, k * w)
        top = np.argsort(-cand, axis=1, kind="stable")[:, :width]       # (n, 2K) positions in (K, w)
        top_scores = np.take_along_axis(cand, top, 1)
        beam = top // w
        tok = np.take_along_axis(part.reshape(n, k * w), top, 1)
        is_eos = (tok == eos) & np.isfinite(top_scores)
        lp = gnmt_length_penalty(step + 1, length_penalty)
        for j, r in zip(*np.nonzero(is_eos[:, :k])):                     # <eos> among the best K: finished
            finished[sent[j]].append((top_scores[j, r] / lp, tokens[j * k + beam[j, r], 1:].copy()))
        # the best K candidates that do not end the sentence live on (there are >= K of the 2K)
        live = ~(tok == eos)
        pick = np.argsort(~live, axis=1, kind="stable")[:, :k]
        rows = (np.arange(n)[:, None] * k + np.take_along_axis(beam, pick, 1)).ravel()
        scores = np.take_along_axis(top_scores, pick, 1)
        tokens = np.concatenate([tokens[rows], np.take_along_axis(tok, pick, 1).reshape(-1, 1)], axis=1)
        _take_cache(cache, rows, parts=("self",))
        done = np.array([len(finished[s]) >= k for s in sent])
        if step == limit - 1:
            break
        if done.any():
            keep_s = ~done
            keep_rows = np.repeat(keep_s, k)
            sent, scores, tokens = sent[keep_s], scores[keep_s], tokens[keep_rows]
            memory, mask = _rows(memory, keep_rows), mask[keep_rows]
            _take_cache(cache, np.flatnonzero(keep_rows))
            if not sent.size:
                break
    # at the length limit the live hypotheses are finished as they stand
    lp = gnmt_length_penalty(tokens.shape[1] - 1, length_penalty)
    for j, s in enumerate(sent):
        if len(finished[s]) < k:
            for r in range(k):
                if np.isfinite(scores[j, r]):
                    finished[s].append((scores[j, r] / lp, tokens[j * k + r, 1:].copy()))
    best = [max(f, key=lambda h: h[0]) for f in finished]
    outs = [_strip(h[1], eos) for h in best]
    if return_scores:
        return outs, np.array([h[0] for h in best])
    return outs
