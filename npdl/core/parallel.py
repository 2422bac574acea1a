"""Splitting independent NumPy work over the cores with one shared thread pool.

NumPy releases the GIL inside BLAS calls and large ufunc loops, so threads that each work on
their own rows of an array run in parallel. Attention (per batch row), the fused layer-norm
blocks (per token row) and word2vec's groups all use this one pool. Results never depend on
the number of threads: work is cut into the same pieces either way.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
import contextlib
from contextlib import contextmanager
from typing import Callable, Iterator

MIN_SLAB = 1 << 16  # elements of work per slab below which a thread hand-off costs more than it saves


def _thread_count() -> int:
    """As many threads as BLAS is told to use (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS), else the cores."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


THREADS = _thread_count()
_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _POOL
    _POOL = None  # a forked child has the pool object but none of its threads


os.register_at_fork(after_in_child=_forget_pool)


def pool() -> ThreadPoolExecutor:
    """The shared pool of ``THREADS - 1`` workers (the calling thread is the other one)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(THREADS - 1, 1), thread_name_prefix="npdl")
    return _POOL


def in_slabs(fn: Callable[[int, int], None], n: int, work: int) -> None:
    """Call ``fn(lo, hi)`` over contiguous slabs covering range(n), on up to ``THREADS`` threads.

    ``fn`` must write disjoint outputs per slab; ``work`` (elements touched) decides how
    many slabs are worth a thread. The calling thread runs the first slab itself.
    """
    k = min(THREADS, n, max(1, work // MIN_SLAB))
    if k <= 1:
        fn(0, n)
        return
    bounds = [n * i // k for i in range(k + 1)]
    futures = [pool().submit(fn, bounds[i], bounds[i + 1]) for i in range(1, k)]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()


def map_interleaved(fn: Callable[[int], object], count: int, threads: int) -> list:
    """``[fn(0), ..., fn(count - 1)]`` with this thread taking every ``threads``-th item, the pool the rest."""
    if threads <= 1 or count <= 1:
        return [fn(i) for i in range(count)]
    later = {i: pool().submit(fn, i) for i in range(count) if i % threads}
    mine = {i: fn(i) for i in range(0, count, threads)}
    return [mine[i] if i in mine else later[i].result() for i in range(count)]


_BLAS_CONTROL = None   # threadpoolctl's controller, built once (a few ms); False when unusable


@contextmanager
def blas_on_one_thread() -> Iterator[None]:
    """NumPy's BLAS runs on one thread inside the with block (threadpoolctl, ~8 us a switch).

    For work npdl itself spreads over its threads (``in_parts``): each thread then runs its own
    GEMMs, instead of every GEMM asking for all the cores while another thread holds them.
    """
    global _BLAS_CONTROL
    if _BLAS_CONTROL is None:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS_CONTROL = ThreadpoolController()
        except Exception:  # noqa: BLE001 - no threadpoolctl, or a BLAS it cannot drive: leave BLAS alone
            _BLAS_CONTROL = False
    if _BLAS_CONTROL is False:
        yield
        return
    with _BLAS_CONTROL.limit(limits=1, user_api="blas"):
        yield


def in_parts(fn: Callable[[int], None], parts: int) -> None:
    """Call ``fn(0), ..., fn(parts - 1)`` on up to ``THREADS`` threads, BLAS on one thread each.

    The caller fixes ``parts`` from the work alone (never from ``THREADS``), so anything summed
    per part comes out the same on any number of threads.
    """
    threads = min(THREADS, parts)
    with blas_on_one_thread() if threads > 1 else contextlib.nullcontext():
        map_interleaved(fn, parts, threads)


def step_scope(uses_own_threads: bool):
    """The context of one training step: BLAS on one thread when the model's heavy ops spread
    their own work over npdl's threads (``in_parts``), else nothing.

    Why the whole step and not only those ops: after a GEMM on several threads, OpenBLAS's worker
    threads spin for a while waiting for the next one, and a spinning worker takes a core from
    npdl's own threads. In ``cnn_mnist``'s step on 2 threads the fully connected layers' 2-thread
    GEMMs slowed the convolutions' parts that came after them: 174 ms a step, 143 ms with every
    GEMM of the step on one thread (medians of 8 interleaved rounds in one process; the same
    weights to the last bit: OpenBLAS cuts a GEMM's output between its threads, not the sums).
    """
    return blas_on_one_thread() if uses_own_threads and THREADS > 1 else contextlib.nullcontext()
