"""2-D max and average pooling over (N, C, H, W), by kernel-offset slabs (see ``conv.py``)."""
from __future__ import annotations

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import extras, get_array_module  # `xpm`: the array module (`xp` is the padded input here)
from npdl.core.ops.conv import _offset_slab, _pad, _unpad, out_size
from npdl.core.parallel import in_slabs


def _windows(xp: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) view of the receptive fields of padded input ``xp`` (pooling)."""
    (sh, sw), (dh, dw) = stride, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = extras(get_array_module(xp)).sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return win[:, :, : sh * oh : sh, : sw * ow : sw, ::dh, ::dw]


def _in_slabs(xpm, fn, n: int, work: int) -> None:
    """``fn(lo, hi)`` over slabs of range(n): on npdl's threads for NumPy arrays, at once elsewhere."""
    if xpm is np:
        in_slabs(fn, n, work)
    else:
        fn(0, n)


POOL_CHUNK_BYTES = 1 << 18   # of pooling input per chunk (256 KiB beat 64 KiB, 1 and 4 MiB on cnn_mnist)


def _in_pool_chunks(fn, xp):
    """``fn(lo, hi)`` made to walk its images a POOL_CHUNK_BYTES chunk of the input at a time.

    Pooling passes over its input once per kernel offset; in chunks that stay in L2 those passes
    cost one trip through memory instead of KH*KW (cnn_mnist's first max-pool backward: 17 -> 10 ms).
    """
    step = max(1, POOL_CHUNK_BYTES // max(xp[:1].nbytes, 1))

    def chunked(lo: int, hi: int) -> None:
        for start in range(lo, hi, step):
            fn(start, min(start + step, hi))

    return chunked


class MaxPool2d(Function):
    """Maximum over each window; the gradient goes to the first maximal entry (row-major in the
    window, as PyTorch), which matters after a ReLU where whole windows tie at zero.

    Forward is a running ``np.maximum`` over the KH*KW kernel-offset slabs; backward scans the
    offsets in order and hands each window's gradient to the first slab equal to its maximum.
    No (..., KH*KW) window copy is ever made. Both run over slabs of the batch on npdl's threads
    (each image is independent, so the result does not depend on the threads).
    """

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)):
        kh, kw = kernel
        oh = out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
        ow = out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"max_pool2d: input {x.shape[2]}x{x.shape[3]} is too small for kernel {kernel}")
        fill = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xpm = get_array_module(x)
        xp = _pad(x, padding, fill)
        out = xpm.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)

        def images(lo: int, hi: int) -> None:
            part, o = xp[lo:hi], out[lo:hi]
            xpm.copyto(o, _offset_slab(part, 0, 0, stride, dilation, oh, ow))
            for i in range(kh):
                for j in range(kw):
                    if i or j:
                        xpm.maximum(o, _offset_slab(part, i, j, stride, dilation, oh, ow), out=o)

        _in_slabs(xpm, _in_pool_chunks(images, xp), x.shape[0], xp.size)
        ctx.saved = (xp, out)
        ctx.meta = (x.shape, kernel, stride, padding, dilation)
        return out

    @staticmethod
    def backward(ctx, g):
        xp, out = ctx.saved
        x_shape, (kh, kw), stride, padding, dilation = ctx.meta
        oh, ow = out.shape[2:]
        xpm = get_array_module(g)
        spans = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        # windows that never overlap (stride >= span, the usual 2x2/2) receive their gradient by
        # assignment, and when they also tile the padded input exactly nothing needs zeroing first:
        # ~35% less time than zero-filling and adding every slab
        disjoint = stride[0] >= spans[0] and stride[1] >= spans[1]
        tiles = disjoint and tuple(stride) == spans and xp.shape[2:] == (oh * stride[0], ow * stride[1])
        gxp = xpm.empty(xp.shape, dtype=g.dtype) if tiles else xpm.zeros(xp.shape, dtype=g.dtype)

        def images(lo: int, hi: int) -> None:
            x_part, o_part, g_part, gx_part = xp[lo:hi], out[lo:hi], g[lo:hi], gxp[lo:hi]
            taken, last = None, (kh - 1, kw - 1)
            for i in range(kh):
                for j in range(kw):
                    hit = _offset_slab(x_part, i, j, stride, dilation, oh, ow) == o_part
                    if taken is None:
                        taken = hit                          # (read before anything changes it)
                    else:
                        xpm.greater(hit, taken, out=hit)     # hit and not taken: one bool pass, no temporary
                        if (i, j) != last:
                            taken |= hit
                    target = _offset_slab(gx_part, i, j, stride, dilation, oh, ow)
                    if disjoint:
                        xpm.multiply(g_part, hit, out=target)
                    else:
                        target += g_part * hit

        _in_slabs(xpm, _in_pool_chunks(images, xp), xp.shape[0], xp.size)
        return _unpad(gxp, padding, x_shape)


class AvgPool2d(Function):
    """Mean over each window (zero padding counts toward the divisor, as PyTorch's default)."""

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        kh, kw = kernel
        oh = out_size(x.shape[2], kh, stride[0], padding[0], 1)
        ow = out_size(x.shape[3], kw, stride[1], padding[1], 1)
        if oh < 1 or ow < 1:
            raise ValueError(f"avg_pool2d: input {x.shape[2]}x{x.shape[3]} is too small for kernel {kernel}")
        xp = _pad(x, padding)
        win = _windows(xp, kh, kw, stride, (1, 1), oh, ow)
        ctx.meta = (x.shape, xp.shape, kernel, stride, padding)
        return win.mean(axis=(-2, -1))

    @staticmethod
    def backward(ctx, g):
        x_shape, xp_shape, (kh, kw), stride, padding = ctx.meta
        share = g / g.dtype.type(kh * kw)           # every input of a window gets an equal share
        gxp = get_array_module(g).zeros(xp_shape, dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                _offset_slab(gxp, i, j, stride, (1, 1), *g.shape[2:])[...] += share
        return _unpad(gxp, padding, x_shape)
