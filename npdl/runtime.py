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
import os
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
