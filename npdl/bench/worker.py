"""Run one benchmark function in a fresh process and report its result with peak memory.

``python -m npdl.bench.worker MODULE:FUNCTION '{"kwarg": ...}'`` imports nothing but what the
function needs, calls it, and prints one JSON line: the function's dict result plus
``max_rss_mb`` (``ru_maxrss`` of this process), so npdl and PyTorch are each measured in
a process of their own.
"""
from __future__ import annotations

import importlib
import json
import resource
import subprocess
import sys


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in kilobytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_isolated(target: str, timeout: float = 900, **kwargs) -> dict:
    """Run ``target`` ('pkg.module:function') in a subprocess; returns its dict + max_rss_mb."""
    proc = subprocess.run([sys.executable, "-m", "npdl.bench.worker", target, json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {target} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    module, func = target.split(":")
    result = getattr(importlib.import_module(module), func)(**kwargs)
    result["max_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
