"""Run one benchmark function in a fresh process and report its result with peak memory.

``python -m npdl.bench.worker MODULE:FUNCTION '{"kwarg": ...}'`` imports nothing but what the
function needs, calls it, and prints one JSON line: the function's dict result plus
``max_rss_mb`` (this process's own peak, see ``npdl.runtime.peak_rss_mb``), so npdl and
PyTorch are each measured in a process of their own. With ``npdl_runtime=True`` the worker
first applies the ``npdl`` command's process settings (``npdl.runtime.keep_freed_memory``),
so an npdl figure is what ``npdl train`` gets.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys

from npdl.runtime import keep_freed_memory, peak_rss_mb


def run_isolated(target: str, timeout: float = 900, npdl_runtime: bool = False, **kwargs) -> dict:
    """Run ``target`` ('pkg.module:function') in a subprocess; returns its dict + max_rss_mb."""
    cmd = [sys.executable, "-m", "npdl.bench.worker", target, json.dumps(kwargs)]
    if npdl_runtime:
        cmd.append("--npdl-runtime")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {target} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if "--npdl-runtime" in sys.argv[3:]:
        keep_freed_memory()
    module, func = target.split(":")
    result = getattr(importlib.import_module(module), func)(**kwargs)
    result["max_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
