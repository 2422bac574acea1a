"""2-D convolution over (N, C, H, W) via strided slab copies (im2col), and batch normalisation.

No Python loop runs over pixels: loops run over the KH*KW kernel offsets, each a strided slab
copy (or add) over a chunk of images, and over chunks of the batch sized for the L2 cache, which
npdl's threads share out (``npdl.core.parallel``) without the result depending on their number.
The slab helpers here (``out_size``, ``_offset_slab``, ``_pad``, ``_unpad``) serve pooling too
(``pool.py``).
"""
from __future__ import annotations

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import get_array_module  # `xpm`: the array module (`xp` is the padded input here)
from npdl.core.parallel import in_parts
from npdl.core.ops.nn import standardize, standardize_backward


def out_size(n: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution/pool along one spatial axis."""
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _offset_slab(xp: np.ndarray, i: int, j: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """xp[:, :, rows, cols] seen by kernel offset (i, j): (N, C, OH, OW) strided view."""
    (sh, sw), (dh, dw) = stride, dilation
    return xp[:, :, i * dh: i * dh + sh * oh: sh, j * dw: j * dw + sw * ow: sw]


# im2col columns are built and consumed a chunk of images at a time: a chunk's columns (about
# CHUNK_BYTES) stay in the core's L2 cache between the copies that build them and the GEMM that
# reads them. Materialising the whole batch's columns at once (80 MB for cnn_mnist's second
# convolution) made every step page-fault a fresh buffer in, and stream it through memory twice;
# chunked, that convolution's forward went from 52 to 31 ms and its backward from 99 to 81 ms
# (one thread, B=128). Backward rebuilds the columns rather than keeping them from forward.
CHUNK_BYTES = 4 << 20


def _chunk(n: int, per_image: int) -> int:
    """Images per chunk: as many as fit ``CHUNK_BYTES`` of columns (at least one)."""
    return max(1, min(n, CHUNK_BYTES // max(per_image, 1)))


# The batch is cut into at most PARTS parts of whole chunks; parts run on npdl's threads (NumPy
# releases the GIL in the copies and GEMMs), each with its own column buffer and weight-gradient
# sum. The cut depends on the batch and chunk size only, so results never depend on the threads.
PARTS = 4

# Forward: a convolution whose columns have at least ONE_GEMM_ROWS rows (C*KH*KW) runs one GEMM per
# chunk over columns with the images innermost (long slab copies, one wide GEMM) and then transposes
# the output into (N, O, OH, OW); with fewer rows the transposition costs more than the GEMM, and one
# GEMM per image writes the output in place. cnn_mnist on one thread: the second convolution (800
# rows) 35 -> 27 ms; the first (25 rows) would go from 3.2 to 10.5 ms, mostly the transposition.
ONE_GEMM_ROWS = 128


def _part_bounds(n: int, nb: int) -> list[tuple[int, int]]:
    """[(lo, hi), ...] image ranges of the parts: consecutive whole chunks, at most PARTS of them."""
    chunks = -(-n // nb)
    k = min(PARTS, chunks)
    cuts = [chunks * i // k * nb for i in range(k)] + [n]
    return [(cuts[i], min(cuts[i + 1], n)) for i in range(k)]


def _run_parts(xpm, fn, parts: int) -> None:
    """``fn(k)`` for every part: on npdl's threads for NumPy arrays, in order on other devices."""
    if xpm is np:
        in_parts(fn, parts)
    else:
        for k in range(parts):
            fn(k)


def _in_parts(xpm, fn, n: int, nb: int) -> None:
    """``fn(lo, hi)`` over the parts' image ranges (see ``_run_parts``)."""
    bounds = _part_bounds(n, nb)
    _run_parts(xpm, lambda k: fn(*bounds[k]), len(bounds))


def _im2col(xp: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int, out: np.ndarray) -> np.ndarray:
    """(C*KH*KW, m*OH*OW) matrix of receptive fields of a padded chunk ``xp`` (m, C, Hp, Wp), columns
    ordered (n, h, w); ``out`` a reusable buffer. One slab copy of whole (OH, OW) planes per offset."""
    m, c = xp.shape[:2]
    cols = out.reshape(c, kh, kw, m, oh, ow)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _offset_slab(xp, i, j, stride, dilation, oh, ow).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, m * oh * ow)


def _im2col_images_last(chunk: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int,
                        x_buf: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(C*KH*KW, OH*OW*m) matrix of receptive fields of a padded chunk (m, C, Hp, Wp): rows (c, i, j)
    like ``weight.reshape(O, -1)``, columns (h, w, n). ``x_buf`` and ``out`` are reusable flat
    buffers of at least C*Hp*Wp*m and C*KH*KW*OH*OW*m elements.

    The chunk is first copied to (C, Hp, Wp, m) in ``x_buf``; with the m images innermost each
    kernel offset's slab copy then moves runs of OW*m floats, not rows of OW (cnn_mnist's second
    convolution: 14-float rows; its weight gradient's columns went from about 12 to 4 ms a step
    on one thread).
    """
    m, c, hp, wp = chunk.shape
    (sh, sw), (dh, dw) = stride, dilation
    xt = x_buf[:c * hp * wp * m].reshape(c, hp, wp, m)
    get_array_module(chunk).copyto(xt, chunk.transpose(1, 2, 3, 0))
    cols = out[:c * kh * kw * oh * ow * m].reshape(c, kh, kw, oh, ow, m)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xt[:, i * dh: i * dh + sh * oh: sh, j * dw: j * dw + sw * ow: sw]
    return cols.reshape(c * kh * kw, oh * ow * m)


def _col2im_images_last(cols: np.ndarray, gxt: np.ndarray, kh: int, kw: int, stride, dilation, oh: int,
                        ow: int) -> None:
    """Adjoint of ``_im2col_images_last``: add (C*KH*KW, OH*OW*m) columns, ordered
    (c, i, j) x (h, w, n), into the padded-input gradient ``gxt`` laid out (C, Hp, Wp, m).

    With the m images of a chunk innermost, a kernel offset's add walks runs of OW*m floats (stride
    1) instead of rows of OW: cnn_mnist's second convolution runs 14 floats a row; its col2im went
    from 24 to 15 ms a step (one thread). Each element still receives its KH*KW terms in the same
    order (i, j) as before, so the sums are the same to the bit.
    """
    c, m = gxt.shape[0], gxt.shape[3]
    (sh, sw), (dh, dw) = stride, dilation
    blocks = cols.reshape(c, kh, kw, oh, ow, m)
    for i in range(kh):
        for j in range(kw):
            gxt[:, i * dh: i * dh + sh * oh: sh, j * dw: j * dw + sw * ow: sw] += blocks[:, i, j]


def _sum_in_order(sums: list | None):
    """The parts' sums added in part order (the same result on any number of threads); None stays None."""
    if sums is None:
        return None
    total = sums[0]
    for more in sums[1:]:
        total += more
    return total


def _pad(x: np.ndarray, padding, value=0.0) -> np.ndarray:
    """(N, C, H + 2 ph, W + 2 pw) copy of ``x`` with a border of ``value`` (a filled buffer and one
    interior copy: a quarter of ``np.pad``'s time on cnn_mnist's activations)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = get_array_module(x).full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _unpad(gxp: np.ndarray, padding, shape) -> np.ndarray:
    ph, pw = padding
    return gxp[:, :, ph: ph + shape[2], pw: pw + shape[3]]


class Conv2d(Function):
    """y[n, o] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, c, s*h + d*i, s*w + d*j]

    x (N, C, H, W), weight (O, C, KH, KW), bias (O,) or absent -> (N, O, OH, OW), C-contiguous.
    Per chunk of images, forward: with many rows of columns (C*KH*KW >= ``ONE_GEMM_ROWS``) one
    GEMM over the chunk's columns with the images innermost, then the output transposed into
    place; with few, one GEMM (O, C*KH*KW) @ (C*KH*KW, OH*OW) per image, writing the output in
    place. Backward: the weight gradient and the columns' gradient, one GEMM each over the
    chunk's columns with the images innermost (channel-major for a narrow convolution whose input
    needs no gradient), and a col2im. Only the padded input is kept for backward (its columns are
    rebuilt).
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        n, c, h, w = x.shape
        o, cw, kh, kw = weight.shape
        if c != cw:
            raise ValueError(f"conv2d: input has {c} channels, weight expects {cw}")
        oh = out_size(h, kh, stride[0], padding[0], dilation[0])
        ow = out_size(w, kw, stride[1], padding[1], dilation[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"conv2d: input {h}x{w} is too small for kernel {kh}x{kw} with padding {padding}")
        xpm = get_array_module(x)
        xp = _pad(x, padding)
        w2 = weight.reshape(o, -1)                            # (O, C*KH*KW)
        nb = _chunk(n, w2.shape[1] * oh * ow * x.dtype.itemsize)
        out = xpm.empty((n, o, oh * ow), dtype=x.dtype)

        rows, hp, wp = w2.shape[1], xp.shape[2], xp.shape[3]

        def images_last(lo: int, hi: int) -> None:            # images [lo, hi), a chunk at a time
            x_last = xpm.empty(c * hp * wp * nb, dtype=x.dtype)
            cols = xpm.empty(rows * oh * ow * nb, dtype=x.dtype)
            res = xpm.empty(o * oh * ow * nb, dtype=x.dtype)
            for start in range(lo, hi, nb):
                m = min(nb, hi - start)
                cm = _im2col_images_last(xp[start:start + m], kh, kw, stride, dilation, oh, ow, x_last, cols)
                r = xpm.matmul(w2, cm, out=res[:o * oh * ow * m].reshape(o, oh * ow * m))
                xpm.copyto(out[start:start + m], r.reshape(o, oh * ow, m).transpose(2, 0, 1))

        def per_image(lo: int, hi: int) -> None:
            cols = xpm.empty((nb, c, kh, kw, oh, ow), dtype=x.dtype)
            for start in range(lo, hi, nb):
                chunk = xp[start:min(start + nb, hi)]
                m = chunk.shape[0]
                for i in range(kh):                           # per-image columns: (m, C*KH*KW, OH*OW)
                    for j in range(kw):
                        cols[:m, :, i, j] = _offset_slab(chunk, i, j, stride, dilation, oh, ow)
                xpm.matmul(w2, cols[:m].reshape(m, -1, oh * ow), out=out[start:start + m])

        part = images_last if rows >= ONE_GEMM_ROWS else per_image
        _in_parts(xpm, part, n, nb)
        if bias is not None:
            out += bias[:, None]
        ctx.saved = (xp, weight)
        ctx.meta = (x.shape, stride, padding, dilation, oh, ow, bias is not None)
        return out.reshape(n, o, oh, ow)

    @staticmethod
    def backward(ctx, g):
        xp, weight = ctx.saved
        x_shape, stride, padding, dilation, oh, ow, has_bias = ctx.meta
        o, c, kh, kw = weight.shape
        n = xp.shape[0]
        needs = ctx.needs_input_grad
        xpm = get_array_module(g)
        w2 = weight.reshape(o, -1)
        g3 = g.reshape(n, o, oh * ow)
        (ph, pw), (hp, wp), rows = padding, xp.shape[2:], w2.shape[1]
        nb = _chunk(n, rows * oh * ow * g.dtype.itemsize)
        bounds = _part_bounds(n, nb)
        # both GEMMs take their operands the way OpenBLAS runs them fastest here: the weight gradient
        # as (C*KH*KW, O) = cols @ g^T and the columns' gradient from a contiguous W^T (cnn_mnist's
        # second convolution on one thread: 31.7 -> 27.1 and 26.1 -> 22.6 ms alone)
        gws = [xpm.zeros(w2.shape[::-1], dtype=g.dtype) for _ in bounds] if needs[1] else None
        # the bias gradient summed per chunk from its gradient copy while in cache, not in a pass of its own
        gbs = [xpm.zeros(o, dtype=g.dtype) for _ in bounds] if has_bias and needs[2] else None
        gx = xpm.empty(x_shape, dtype=g.dtype) if needs[0] else None
        w2t = xpm.ascontiguousarray(w2.T) if needs[0] else None

        # a chunk's gradient and columns: with the images innermost, as the column gradient needs them
        # and a wide convolution's weight gradient runs fastest; a narrow convolution with no input
        # gradient (a first layer) copies them channel-major, whole OH*OW planes at a time (cnn_mnist's
        # first convolution: 8.6 -> 6.7 ms for its weight gradient, one thread)
        images_last = gx is not None or rows >= ONE_GEMM_ROWS

        def part(k: int) -> None:
            lo, hi = bounds[k]
            # flat buffers: a short last chunk's views stay contiguous
            g_chunk = xpm.empty(o * oh * ow * nb, dtype=g.dtype)
            if gws is not None:
                x_last = xpm.empty(c * hp * wp * nb, dtype=g.dtype) if images_last else None
                cols = xpm.empty(rows * oh * ow * nb, dtype=g.dtype)
            if gx is not None:
                dcols = xpm.empty(rows * nb * oh * ow, dtype=g.dtype)
                gxt = xpm.empty(c * hp * wp * nb, dtype=g.dtype)
            for start in range(lo, hi, nb):
                m = min(nb, hi - start)
                gl = g_chunk[:o * oh * ow * m].reshape(o, oh * ow * m)
                if images_last:
                    xpm.copyto(gl.reshape(o, oh * ow, m), g3[start:start + m].transpose(1, 2, 0))
                else:
                    xpm.copyto(gl.reshape(o, m, oh * ow), g3[start:start + m].transpose(1, 0, 2))
                if gbs is not None:
                    gbs[k] += gl.sum(axis=1)
                if gws is not None:
                    if images_last:
                        cm = _im2col_images_last(xp[start:start + m], kh, kw, stride, dilation, oh, ow, x_last, cols)
                    else:
                        cm = _im2col(xp[start:start + m], kh, kw, stride, dilation, oh, ow, cols[:rows * oh * ow * m])
                    gws[k] += cm @ gl.T
                if gx is not None:
                    d = xpm.matmul(w2t, gl, out=dcols[:rows * m * oh * ow].reshape(rows, oh * ow * m))
                    gt = gxt[:c * hp * wp * m].reshape(c, hp, wp, m)
                    gt[...] = 0
                    _col2im_images_last(d, gt, kh, kw, stride, dilation, oh, ow)
                    inside = gt[:, ph: ph + x_shape[2], pw: pw + x_shape[3]]       # the padding's gradient dropped
                    xpm.copyto(gx[start:start + m], inside.transpose(3, 0, 1, 2))

        if gws is not None or gx is not None or gbs is not None:
            _run_parts(xpm, part, len(bounds))
        gw = _sum_in_order(gws)
        gw = gw.T.reshape(weight.shape) if gw is not None else None
        if not has_bias:
            return gx, gw
        return gx, gw, _sum_in_order(gbs)


class BatchNorm(Function):
    """Batch normalisation in training mode over every axis but the channel axis 1
    (Ioffe & Szegedy 2015, arXiv:1502.03167): y = (x - mean_B) / sqrt(var_B + eps) * w + b.

    x (N, C, ...); weight, bias (C,) or absent. When ``stats`` (a dict) is given, the batch
    mean and biased variance (C,) are stored in it for the caller's running averages.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5, stats=None):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xhat, rstd, mu, var = standardize(x, axes, eps)
        if stats is not None:
            stats["mean"], stats["var"] = mu.reshape(-1), var.reshape(-1)
        ctx.saved = (xhat, rstd, weight)
        ctx.axes, ctx.shape, ctx.has_bias = axes, shape, bias is not None
        out = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(shape)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved
        axes, shape = ctx.axes, ctx.shape
        needs = ctx.needs_input_grad
        gxhat = g * weight.reshape(shape) if weight is not None else g
        grads = [standardize_backward(gxhat, xhat, rstd, axes) if needs[0] else None]
        if weight is not None:
            grads.append((g * xhat).sum(axis=axes) if needs[1] else None)
            if ctx.has_bias:
                grads.append(g.sum(axis=axes) if needs[2] else None)
        return tuple(grads)
