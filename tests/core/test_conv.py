"""Convolution and pooling beyond the gradient checks: chunked im2col, max-pool ties."""
import numpy as np
import pytest

import npdl
from npdl.core.ops import conv
from npdl.core.ops.conv import Conv2d
from npdl.core.ops.pool import MaxPool2d


def _conv_step(x, w, b, **kw):
    xt, wt, bt = (npdl.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w, b))
    y = Conv2d.apply(xt, wt, bt, **kw)
    (y * npdl.tensor(np.cos(np.arange(y.data.size)).reshape(y.shape), dtype=np.float64)).sum().backward()
    return y.data, xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("kw", [{"padding": (2, 2)}, {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}])
def test_conv_in_chunks_matches_one_chunk(monkeypatch, kw):
    """A batch split into chunks of images (the last one partial) gives what one chunk gives."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((7, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    whole = _conv_step(x, w, b, **kw)
    per_image = 3 * 3 * 3 * whole[0].shape[2] * whole[0].shape[3] * x.itemsize   # one image's columns
    monkeypatch.setattr(conv, "CHUNK_BYTES", 3 * per_image)   # chunks of 3 images: 3, 3, 1
    assert conv._chunk(7, per_image) == 3
    chunked = _conv_step(x, w, b, **kw)
    for a, c in zip(whole, chunked):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


def test_conv_output_is_contiguous_nchw():
    x = npdl.tensor(np.ones((2, 3, 5, 5), np.float32))
    y = Conv2d.apply(x, npdl.tensor(np.ones((4, 3, 3, 3), np.float32)), padding=(1, 1))
    assert y.shape == (2, 4, 5, 5) and y.data.flags.c_contiguous


@pytest.mark.parametrize("stride", [(2, 2), (1, 1), (3, 3)])
def test_max_pool_gives_a_tied_window_gradient_to_its_first_maximum(stride):
    """After a ReLU whole windows tie at zero: the gradient goes to the first entry (row-major), as PyTorch."""
    x = npdl.tensor(np.zeros((1, 1, 4, 4)), dtype=np.float64, requires_grad=True)
    y = MaxPool2d.apply(x, kernel=(2, 2), stride=stride)
    y.sum().backward()
    expected = np.zeros((4, 4))
    for r in range(y.shape[2]):
        for c in range(y.shape[3]):
            expected[r * stride[0], c * stride[1]] += 1
    np.testing.assert_array_equal(x.grad[0, 0], expected)


def test_conv_gives_the_same_bits_on_one_thread_and_on_several(monkeypatch):
    """The batch's parts (and their weight-gradient sums) do not depend on the thread count."""
    from npdl.core import parallel

    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((9, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2 * 18 * 36 * 8)      # 2 images a chunk: 5 chunks, 4 parts
    assert len(conv._part_bounds(9, 2)) == 4
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(parallel, "THREADS", threads)
        results.append(_conv_step(x, w, b, padding=(1, 1)))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("n, nb", [(1, 1), (7, 3), (128, 6), (5, 5), (9, 2)])
def test_parts_cover_the_batch_in_whole_chunks(n, nb):
    bounds = conv._part_bounds(n, nb)
    assert bounds[0][0] == 0 and bounds[-1][1] == n and len(bounds) <= conv.PARTS
    assert all(hi == lo2 for (_, hi), (lo2, _) in zip(bounds, bounds[1:]))
    assert all(lo < hi and lo % nb == 0 for lo, hi in bounds)


@pytest.mark.parametrize("kw", [{"padding": (2, 2)}, {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}])
def test_conv_forward_layouts_agree(monkeypatch, kw):
    """One GEMM per chunk with the images innermost (many rows of columns) gives what one GEMM per
    image gives, chunked (3, 3, 1 images) or not, and is gradient-checked on its own."""
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((7, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    monkeypatch.setattr(conv, "ONE_GEMM_ROWS", 10**9)
    per_image = _conv_step(x, w, b, **kw)
    monkeypatch.setattr(conv, "ONE_GEMM_ROWS", 1)
    for chunk_images in (7, 3):
        cols_per_image = 3 * 3 * 3 * per_image[0].shape[2] * per_image[0].shape[3] * x.itemsize
        monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_images * cols_per_image)
        one_gemm = _conv_step(x, w, b, **kw)
        for a, c in zip(per_image, one_gemm):
            np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)
    xs, ws, bs = (npdl.tensor(a, dtype=np.float64, requires_grad=True) for a in (x[:2], w[:2], b[:2]))  # 2 images, 2 outputs
    assert npdl.gradcheck(lambda x_, w_, b_: Conv2d.apply(x_, w_, b_, **kw), xs, ws, bs)


@pytest.mark.parametrize("one_gemm_rows", [1, 10**9])
def test_conv_weight_gradient_without_an_input_gradient(monkeypatch, one_gemm_rows):
    """A first layer (input without a gradient) gets the weight and bias gradients it gets with one,
    in both backward layouts (channel-major for narrow convolutions, images innermost for wide)."""
    monkeypatch.setattr(conv, "ONE_GEMM_ROWS", one_gemm_rows)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2 * 3 * 3 * 3 * 9 * 8 * 8)      # chunks of 2 images: 2, 2, 2, 1
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((7, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    _, _, gw, gb = _conv_step(x, w, b, padding=(1, 1))
    wt, bt = (npdl.tensor(a, dtype=np.float64, requires_grad=True) for a in (w, b))
    y = Conv2d.apply(npdl.tensor(x, dtype=np.float64), wt, bt, padding=(1, 1))
    (y * npdl.tensor(np.cos(np.arange(y.data.size)).reshape(y.shape), dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(wt.grad, gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bt.grad, gb, rtol=1e-12, atol=1e-12)
    assert npdl.gradcheck(lambda w_, b_: Conv2d.apply(npdl.tensor(x[:2], dtype=np.float64), w_, b_, padding=(1, 1)),
                          npdl.tensor(w, dtype=np.float64, requires_grad=True),
                          npdl.tensor(b, dtype=np.float64, requires_grad=True))
