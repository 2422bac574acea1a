"""The conditions every side of a benchmark runs under, and the facts printed with the figures.

Threads come from one setting: ``default_threads()`` is what threadpoolctl reports for NumPy's
BLAS; ``threads_set(n)`` limits BLAS (threadpoolctl) and npdl's own pool in this process, and
``child_env(n)`` gives a child process the same through the environment (OpenBLAS, OpenMP and
MKL read it at start-up; npdl's pool reads OPENBLAS_NUM_THREADS). References get the same
number explicitly: ``torch.set_num_threads(n)``, gensim's ``workers=n``.

Allocator: with ``Settings.npdl_malloc`` every process, npdl's and the references', runs with
``npdl.runtime.keep_freed_memory`` (the in-process benchmarks share one process anyway).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import os
import platform

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def default_threads() -> int:
    """The BLAS thread count threadpoolctl reports for NumPy (the core count without threadpoolctl)."""
    import numpy  # noqa: F401 - loads the BLAS library threadpoolctl inspects

    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except Exception:  # noqa: BLE001 - threadpoolctl missing or unusable
        pass
    return os.cpu_count() or 1


@contextlib.contextmanager
def threads_set(n: int):
    """Within the block, BLAS and npdl's thread pool in this process use ``n`` threads (restored after)."""
    from npdl.core import parallel

    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n, user_api="blas")
    except Exception:  # noqa: BLE001 - threadpoolctl missing: the environment of children still applies
        limiter = contextlib.nullcontext()
    before = parallel.THREADS
    parallel.THREADS = n   # in_slabs reads it per call; the pool is sized from it when first used
    try:
        with limiter:
            yield
    finally:
        parallel.THREADS = before


def child_env(n: int) -> dict[str, str]:
    """This process's environment with every thread-count variable set to ``n``."""
    return {**os.environ, **{var: str(n) for var in THREAD_VARS}}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def facts(settings) -> dict:
    """Machine, CPU, BLAS, threads, allocator, library versions and date: printed and saved with the figures."""
    from npdl.runs import blas_info
    from npdl.runtime import denormals_flushed

    blas = blas_info()
    return {"date": _dt.datetime.now().isoformat(timespec="seconds"), "machine": platform.node(),
            "platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "blas": " ".join(str(blas[k]) for k in ("name", "version") if blas.get(k)) or "unknown",
            "threads": settings.threads,
            "allocator": ("npdl.runtime.keep_freed_memory in every process (both sides)" if settings.npdl_malloc
                          else "glibc defaults in every process (both sides)"),
            "denormals": ("flushed to zero (npdl.runtime.flush_denormals) in every process (both sides)"
                          if denormals_flushed() else "IEEE subnormals kept in every process (both sides)"),
            "python": platform.python_version(), "numpy": _version("numpy"), "torch": _version("torch"),
            "gensim": _version("gensim"), "npdl": _version("npdl"),
            "rounds": settings.rounds if settings.rounds is not None else "each benchmark's default",
            "quick": settings.quick}
