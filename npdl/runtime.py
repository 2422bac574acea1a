"""Process-level settings for the ``npdl`` command, and process measurements.

``keep_freed_memory``: glibc hands large freed blocks back to the kernel by default, so a
training step that frees and re-allocates its activations page-faults them in again every
time (measured on the Transformer encoder layer benchmark: ~8,000 minor faults per step, a
third of the step). Telling the allocator to keep up to 256 MiB of freed heap removes
that. The ``npdl`` command applies it at start-up (``NPDL_MALLOC=default`` turns it off);
importing npdl as a library never changes the allocator.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import resource
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt parameter numbers (glibc malloc.h)


def keep_freed_memory() -> bool:
    """glibc: serve blocks up to 32 MiB from the heap, trim it only past 256 MiB free.

    Returns False (and changes nothing) off glibc, or when ``NPDL_MALLOC=default``.
    """
    if not sys.platform.startswith("linux") or os.environ.get("NPDL_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    except (OSError, AttributeError):
        return False


_MXCSR_DAZ, _MXCSR_FTZ = 1 << 6, 1 << 15    # SSE control bits: denormal inputs are zero, results flush to zero
_MXCSR_MASKS = 0x1F80                        # the exception-mask bits every MXCSR starts with


class _Fenv(ctypes.Structure):
    """glibc's ``fenv_t`` on x86-64 (bits/fenv.h): the 28-byte x87 environment, then MXCSR."""
    _fields_ = [("x87", ctypes.c_uint32 * 7), ("mxcsr", ctypes.c_uint32)]


def denormals_kept() -> bool:
    """Whether ``NPDL_DENORMALS=keep`` asks for IEEE subnormals (no ``flush_denormals``)."""
    return os.environ.get("NPDL_DENORMALS") == "keep"


def flush_denormals() -> bool:
    """x86-64 Linux: subnormal floats count as zero (MXCSR's DAZ and FTZ), as TensorFlow's threads do.

    Why: arithmetic on subnormals (|x| < 1.2e-38 in float32) takes a microcode assist ~100 times
    slower than a normal operation, and training makes them: Adam's first moment of a weight
    whose gradient stays zero (a dead ReLU unit) decays by 0.9 a step, subnormal after ~800
    steps. In ``npdl bench mlp``, 46% of the moments were subnormal after one epoch and the
    epochs slowed from 0.64 s to 1.97 s. Flushed, such values become 0, which changes a weight
    only when an update is below 1e-38 - never visible in float32 weights of normal size.

    Applies to the calling thread and the threads it starts afterwards (pthreads copy the
    floating-point environment). Returns False (and changes nothing) elsewhere, with
    ``NPDL_DENORMALS=keep``, or when the environment does not look like glibc's.
    """
    if denormals_kept():
        return False
    found = _fenv()
    if found is None:
        return False
    libm, env = found
    env.mxcsr |= _MXCSR_DAZ | _MXCSR_FTZ
    return libm.fesetenv(ctypes.byref(env)) == 0


def denormals_flushed() -> bool:
    """Whether this thread's MXCSR has DAZ and FTZ set (what ``flush_denormals`` sets)."""
    found = _fenv()
    return found is not None and found[1].mxcsr & (_MXCSR_DAZ | _MXCSR_FTZ) == _MXCSR_DAZ | _MXCSR_FTZ


def _fenv():
    """(libm, this thread's ``fenv_t``) on x86-64 Linux when it looks like glibc's; else None."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        env = _Fenv()
        if libm.fegetenv(ctypes.byref(env)) != 0 or env.mxcsr & _MXCSR_MASKS != _MXCSR_MASKS:
            return None
        return libm, env
    except (OSError, AttributeError):
        return None


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MiB.

    Linux: VmHWM from /proc/self/status. ``ru_maxrss`` is not used there because it survives
    fork + exec, so a benchmark worker started by a large parent would report the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0
