"""Fused word2vec ops with hand-written backward (Mikolov et al. 2013b, arXiv:1310.4546).

Loss of one (input h, output o) pair with K negatives n_k (eq. 4, negated, to minimise):
    l = -log s(h.o) - sum_k log s(-h.n_k) = softplus(-h.o) + sum_k softplus(h.n_k),  s = sigmoid,
    dl/d(h.o) = s(h.o) - 1,   dl/d(h.n_k) = s(h.n_k).
Losses are SUMS over pairs: word2vec takes one SGD step of size alpha per pair, which is SGD
with lr alpha on the sum.

* ``NegativeSamplingLoss`` and ``ContextMean`` are the building blocks of the autograd path
  (explicit pairs, K independent negatives per pair: word2vec.c's estimator).
* ``SkipGramBatchLoss`` and ``CBOWBatchLoss`` are the fast path: the whole loss of a
  ``W2VBatch`` in one node. Every word is gathered once (not once per pair); the window is a
  band (N, 2W+1) handled with batched matmuls on sliding-window views; the negatives come from
  one pool of S words drawn from P_n per batch, scored against every input with one GEMM
  (level-3 BLAS, as Ji et al. 2016, arXiv:1604.04661, share negatives within a window); their
  backward returns row-sparse gradients already coalesced (``CoalescedRowGrad``).

Shared-pool estimator: pair p scores its input h_p against all S pool words with weight K/S:
    l_p = softplus(-h_p.o_p) + (K/S) sum_{s in pool} softplus(h_p.n_s).
The pool is i.i.d. from P_n, so E[(K/S) sum_s f(n_s)] = K E_{n~P_n}[f(n)]: the expected loss and
gradient equal word2vec's K independent negatives per pair. Pairs sharing an input (skip-gram:
a word is the input of all its pairs) add their weights, so the GEMM is (N words x S), not
(pairs x S). word2vec.c skips a drawn negative equal to the pair's own target; the pool keeps
it (with weight K/S), a bias of order K P_n(target) / S per pair.
"""
from __future__ import annotations


import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import extras, get_array_module
from npdl.core.ops.elementwise import sigmoid_array as sigmoid
from npdl.core.parallel import map_interleaved
from npdl.core.sparse import CoalescedRowGrad


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) = -log sigmoid(-z), elementwise.

    Plain exp and log (log1p is not vectorised in NumPy: 5x slower); the only inexact entries,
    z > 88 in float32 where exp overflows, are recomputed in the stable form.
    """
    xp = get_array_module(z)
    with np.errstate(over="ignore"):
        e = xp.exp(z)
    e += 1
    xp.log(e, out=e)
    bad = xp.isinf(e)
    if xp is not np:
        return xp.where(bad, z, e)                       # no host round trip to ask bad.any()
    if bad.any():
        e[bad] = z[bad]                                  # softplus(z) = z + log1p(exp(-z)) = z there
    return e


def _on(xp, a):
    """Host bookkeeping (batch ids, masks) moved to ``xp``'s device; itself on the CPU."""
    return a if xp is np else xp.asarray(a)


def softplus_sum(z: np.ndarray) -> np.ndarray:
    """Row sums of softplus(z) for (N, S) ``z`` -> (N,) (a GEMV: 5x faster than ``.sum(1)`` here)."""
    return softplus(z) @ get_array_module(z).ones(z.shape[1], z.dtype)


class NegativeSamplingLoss(Function):
    """Sum over pairs p of w_p [softplus(-h_p.o_p) + sum_k softplus(h_p.n_pk)].

    Inputs: h (P, D) input vectors, pos (P, D) output vectors of the targets, neg (P, K, D)
    output vectors of the negatives; ``weight`` (P,) optional per-pair weights (constant).
    Output: scalar.
    """

    @staticmethod
    def forward(ctx, h, pos, neg, weight=None):
        xp = get_array_module(h)
        sp = xp.einsum("pd,pd->p", h, pos)
        sn = xp.matmul(neg, h[:, :, None])[:, :, 0]                       # (P, K)
        w = xp.ones(len(h), h.dtype) if weight is None else xp.asarray(weight, h.dtype)
        ctx.saved = (h, pos, neg)
        ctx.gp, ctx.gn = w * (sigmoid(sp) - 1), w[:, None] * sigmoid(sn)
        return xp.asarray(w @ softplus(-sp) + (w[:, None] * softplus(sn)).sum(), h.dtype)

    @staticmethod
    def backward(ctx, g):
        h, pos, neg = ctx.saved
        gp, gn = ctx.gp * g, ctx.gn * g
        dh = gp[:, None] * pos + get_array_module(g).matmul(gn[:, None, :], neg)[:, 0]
        return dh, gp[:, None] * h, gn[:, :, None] * h[:, None, :]


class ContextMean(Function):
    """Mean of the unmasked context vectors: x (P, C, D), mask (P, C) bool -> (P, D).

    CBOW's hidden layer (Mikolov et al. 2013a, sec. 3.1, averaged as in word2vec.c). A row with
    no unmasked context gives zeros. ``update="word2vec"`` makes backward hand every context the
    whole output gradient (word2vec.c's rule, c times the true gradient); the default
    "gradient" is the exact derivative.
    """

    @staticmethod
    def forward(ctx, x, mask=None, update="gradient"):
        xp = get_array_module(x)
        m = xp.ones(x.shape[:2], x.dtype) if mask is None else xp.asarray(mask, x.dtype)
        mean = m / xp.maximum(m.sum(1, keepdims=True), 1)                  # (P, C)
        ctx.share = m if update == "word2vec" else mean
        return xp.matmul(mean[:, None, :], x)[:, 0]

    @staticmethod
    def backward(ctx, g):
        return ctx.share[:, :, None] * g[:, None, :]


# ---- the fast path -----------------------------------------------------------------------
class Segments:
    """The equal-key runs of a key array, for summing value rows per key.

    The first ``ROUNDS`` occurrences of every key are added in rounds (round r adds the r-th
    occurrence of each key that has one: a duplicate-free fancy-index add), the rest of the few
    keys seen more often with ``np.add.reduceat``. 2.4x faster than ``np.add.reduceat`` alone
    (whose per-row cost dominates at 100 columns) on a 1,472-word text8 batch with 933 distinct
    words, at most 30 occurrences of one (measured).
    """

    ROUNDS = 8

    def __init__(self, keys: np.ndarray):
        self.order = np.argsort(keys, kind="stable")
        s = keys[self.order]
        first = np.ones(len(s), bool)
        first[1:] = s[1:] != s[:-1]
        self.starts = np.flatnonzero(first)
        self.unique = s[self.starts]
        self.rounds, self.tail = [], None
        if len(s) > len(self.starts):
            run = np.cumsum(first) - 1                                    # run of each sorted position
            rank = np.minimum(np.arange(len(s)) - self.starts[run], self.ROUNDS).astype(np.int8)
            by_rank = np.argsort(rank, kind="stable")                     # a radix sort for int8
            bounds = np.searchsorted(rank[by_rank], np.arange(1, self.ROUNDS + 1))
            self.rounds = [(run[sel], sel) for sel in np.split(by_rank, bounds)[1:-1] if len(sel)]
            tail = by_rank[bounds[-1]:]                                   # rank >= ROUNDS, in run order
            if len(tail):
                new = np.flatnonzero(np.concatenate(([True], run[tail][1:] != run[tail][:-1])))
                self.tail = (run[tail][new], tail, new)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """(len(unique), ...) sums of ``values`` rows per key (on ``values``' device)."""
        xp = get_array_module(values)
        v = values[_on(xp, self.order)]
        out = v[_on(xp, self.starts)]
        for rows, sel in self.rounds:
            out[_on(xp, rows)] += v[_on(xp, sel)]
        if self.tail is not None:
            rows, sel, starts = self.tail
            out[_on(xp, rows)] += xp.add.reduceat(v[_on(xp, sel)], _on(xp, starts), axis=0)
        return out


def band_mask(window: np.ndarray, segment: np.ndarray, max_window: int, dtype) -> np.ndarray:
    """M (N, 2W+1): M[t, W+o] = 1 when word t+o is in the reduced window of centre t.

    That is 0 < |o| <= window[t], 0 <= t+o < N and segment[t+o] == segment[t].
    """
    n, w = len(window), max_window
    off = np.arange(-w, w + 1)
    pos = np.arange(n)[:, None] + off
    m = (np.abs(off) <= window[:, None]) & (off != 0) & (pos >= 0) & (pos < n)
    m &= segment[np.clip(pos, 0, max(n - 1, 0))] == segment[:, None]
    return m.astype(dtype)


def _padded(rows: np.ndarray, w: int) -> np.ndarray:
    """(N + 2W, D) copy of ``rows`` between W zero rows on each side."""
    pad = get_array_module(rows).zeros((len(rows) + 2 * w, rows.shape[1]), rows.dtype)
    pad[w:w + len(rows)] = rows
    return pad


def padded_windows(pad: np.ndarray, w: int) -> np.ndarray:
    """(N, 2W+1, D) view of a padded (N + 2W, D) array: out[t, k] = pad[t + k] (no copy)."""
    n, d = len(pad) - 2 * w, pad.shape[1]
    step = d * pad.itemsize
    return extras(get_array_module(pad)).as_strided(pad, shape=(n, 2 * w + 1, d), strides=(step, step, pad.itemsize),
                                                    writeable=False)


def windows(a: np.ndarray, w: int) -> np.ndarray:
    """(N, 2W+1, D) view of a (N, D): windows(a)[t, k] = a[t + k - W], zero outside 0..N-1."""
    return padded_windows(_padded(a, w), w)


def transpose_band(a: np.ndarray, w: int) -> np.ndarray:
    """(N, 2W+1) band seen from the other end: out[u, m] = a[u + m - W, 2W - m] (zero outside).

    If a[t, W+o] belongs to the pair (t, t+o), out[u, m] belongs to the same pair seen from
    u = t+o, at offset W - o of u's window. A strided view of a padded copy (no gather).
    """
    n, kw = a.shape
    pad = _padded(a, w).ravel()
    item = pad.itemsize
    return extras(get_array_module(a)).as_strided(pad[2 * w:], shape=(n, kw), strides=(kw * item, (kw - 1) * item), writeable=False)


def negatives_terms(z: np.ndarray, weight: np.ndarray, want: bool):
    """sum_i weight_i sum_s softplus(z_is) and, if ``want``, weight_i * sigmoid(z_is) (in z's buffer)."""
    loss = weight @ softplus_sum(z)
    if not want:
        return loss, None
    g = sigmoid(z, out=z)
    g *= weight[:, None]
    return loss, g


def split_points(segment: np.ndarray, parts: int) -> list[int]:
    """Bounds [0, c_1, ..., N] cutting a batch into ``parts`` at segment boundaries near
    N/parts, 2N/parts, ... (windows never cross them); a part may be empty."""
    n = len(segment)
    cuts = [0]
    for g in range(1, parts):
        at = max(n * g // parts, cuts[-1], 1)
        later = np.flatnonzero(segment[at:] != segment[at - 1]) if at < n else []
        cuts.append(at + int(later[0]) if len(later) else n)
    return cuts + [n]


class _BatchLoss(Function):
    """Shared forward/backward of the fused batch losses (subclasses define ``_terms``).

    The batch is cut into G = ``groups`` groups at segment boundaries (windows do not cross
    them); group g is scored against its own slice of S = len(pool) / G pool words. Each pool word then
    carries the negative weight of 1/G of the batch: (pairs / G) * K / S, which must stay small
    for a summed update to behave like word2vec's sequential ones (measured, skip-gram, text8
    prefix, 5 epochs: weight ~340 collapses to 0.5% accuracy, ~170 gives 8.6%). Groups are
    computed on up to ``threads`` threads (NumPy releases the GIL in BLAS and large ufunc
    loops); the cut does not depend on ``threads``, so neither do the results, to the last bit.
    """

    @classmethod
    def _compute(cls, ctx, w_in, w_out, words, window, segment, pool, negative, max_window, groups=1, threads=1,
                 **opts):
        xp = get_array_module(w_in)
        dt = w_in.dtype
        want = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        size = len(pool) // groups
        if size * groups != len(pool) or size == 0:
            raise ValueError(f"word2vec loss: {len(pool)} pool words do not split into {groups} groups")
        ratio = dt.type(negative / size)
        p = w_out[_on(xp, pool)].reshape(groups, size, w_in.shape[1])
        cuts = split_points(segment, groups)
        words_d = _on(xp, words)                   # the ids index device tables; the bookkeeping stays on the host
        # one mask for the batch: windows stop at segment ends, and the cuts are segment ends,
        # so a part's rows of it are the part's own mask
        mask = _on(xp, band_mask(window, segment, max_window, dt))

        def part(g: int):
            lo, hi = cuts[g], cuts[g + 1]
            if hi == lo:  # nothing here survived subsampling: no pairs, no loss
                empty = xp.zeros((0, w_in.shape[1]), dt)
                return dt.type(0), (empty, empty, xp.zeros_like(p[g]))
            return cls._terms(w_in, w_out, words_d[lo:hi], p[g], mask[lo:hi], ratio, max_window, want, **opts)

        parts = map_interleaved(part, groups, threads)
        loss = sum(lo for lo, _ in parts)
        if want:
            ctx.grads = tuple(xp.concatenate([g[i] for _, g in parts]) for i in range(3))
            ctx.words, ctx.pool, ctx.shapes = words, pool, (w_in.shape, w_out.shape)
        return xp.asarray(loss, dt)

    @staticmethod
    def backward(ctx, g):
        dx, dy, dp = ctx.grads
        xp = get_array_module(dx)
        words, pool = Segments(ctx.words), Segments(ctx.pool)
        g_in = words.sum(dx)
        # out rows: the batch's words and the pool, merged without re-sorting the batch
        rows = np.concatenate([words.unique, pool.unique])
        rows.sort()
        rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]    # np.union1d, without its hashing
        g_out = xp.zeros((len(rows), dy.shape[1]), dy.dtype)
        g_out[_on(xp, np.searchsorted(rows, words.unique))] = words.sum(dy)
        g_out[_on(xp, np.searchsorted(rows, pool.unique))] += pool.sum(dp)
        if xp is not np or g != 1:        # (on a device: no host round trip to compare g)
            g_in *= g
            g_out *= g
        return (CoalescedRowGrad(_on(xp, words.unique.astype(np.int64)), g_in, ctx.shapes[0]),
                CoalescedRowGrad(_on(xp, rows.astype(np.int64)), g_out, ctx.shapes[1]))


class SkipGramBatchLoss(_BatchLoss):
    """Skip-gram negative-sampling loss of a batch, summed over its (centre, context) pairs.

    Inputs: w_in, w_out (V, D) tables. Keyword args: words, window, segment (N,) as in
    ``W2VBatch``; pool (G*S,) negative ids, S per group; negative K; max_window W; groups G;
    threads. Output: scalar.
    As in word2vec.c the pair (centre t, context u) trains input vector u against output
    vector t and t's negatives; t's reduced window decides which u are its contexts.
    Backward: ``CoalescedRowGrad`` for both tables (the rows of the words and the pool).
    """

    @staticmethod
    def forward(ctx, w_in, w_out, words=None, window=None, segment=None, pool=None, negative=5, max_window=5,
                groups=1, threads=1):
        return SkipGramBatchLoss._compute(ctx, w_in, w_out, words, window, segment, pool, negative, max_window,
                                          groups, threads)

    @staticmethod
    def _terms(w_in, w_out, words, p, m, ratio, w, want):
        xp = get_array_module(w_in)
        xpad = _padded(w_in[words], w)
        x = xpad[w:len(xpad) - w]                                           # (N, D)
        y = w_out[words]
        xw = padded_windows(xpad, w)                                       # (N, 2W+1, D)
        sp = xp.matmul(xw, y[:, :, None])[:, :, 0]                         # sp[t, W+o] = x[t+o].y[t]
        weight = ratio * transpose_band(m, w).sum(1)                        # K/S x (pairs with input u)
        loss, gn = negatives_terms(x @ p.T, weight, want)                   # (N, S) scores vs the pool
        loss += (m * softplus(-sp)).sum()
        if not want:
            return loss, None
        gp = m * (sigmoid(sp) - 1)
        dy = xp.matmul(gp[:, None, :], xw)[:, 0]
        dx = xp.matmul(transpose_band(gp, w)[:, None, :], windows(y, w))[:, 0] + gn @ p
        return loss, (dx, dy, gn.T @ x)


class CBOWBatchLoss(_BatchLoss):
    """CBOW negative-sampling loss of a batch: h_t = mean of t's window, scored against t and the pool.

    Inputs and keyword args as ``SkipGramBatchLoss``; ``update``: "gradient" (the exact
    gradient: each context word receives dL/dh / c_t) or "word2vec" (word2vec.c and gensim's
    rule: each context word receives the whole dL/dh, i.e. c_t times the gradient; the
    backward is then not the gradient of the loss, by design). Centres without any context
    in their window are skipped, as in word2vec.c.
    """

    @staticmethod
    def forward(ctx, w_in, w_out, words=None, window=None, segment=None, pool=None, negative=5, max_window=5,
                groups=1, threads=1, update="gradient"):
        return CBOWBatchLoss._compute(ctx, w_in, w_out, words, window, segment, pool, negative, max_window,
                                      groups, threads, update=update)

    @staticmethod
    def _terms(w_in, w_out, words, p, m, ratio, w, want, update):
        xp = get_array_module(w_in)
        count = m.sum(1)
        has = (count > 0).astype(m.dtype)
        mean = m / xp.maximum(count, 1)[:, None]
        xpad = _padded(w_in[words], w)
        h = xp.matmul(mean[:, None, :], padded_windows(xpad, w))[:, 0]
        y = w_out[words]
        sp = xp.einsum("nd,nd->n", h, y)
        loss, gn = negatives_terms(h @ p.T, ratio * has, want)
        loss += has @ softplus(-sp)
        if not want:
            return loss, None
        gp = has * (sigmoid(sp) - 1)
        dh = gp[:, None] * y + gn @ p
        share = m if update == "word2vec" else mean
        dx = xp.matmul(transpose_band(share, w)[:, None, :], windows(dh, w))[:, 0]
        return loss, (dx, gp[:, None] * h, gn.T @ h)
