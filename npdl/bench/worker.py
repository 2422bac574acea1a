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
import os
import subprocess
import sys

from npdl.runtime import keep_freed_memory, peak_rss_mb


def run_isolated(target: str, timeout: float = 900, npdl_runtime: bool = False, env: dict | None = None,
                 **kwargs) -> dict:
    """Run ``target`` ('pkg.module:function') in a subprocess; returns its dict + max_rss_mb."""
    cmd = [sys.executable, "-m", "npdl.bench.worker", target, json.dumps(kwargs)]
    if npdl_runtime:
        cmd.append("--npdl-runtime")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {target} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def alternating_rounds(targets: dict[str, str], rounds: int, threads: int | None = None,
                       extra: dict[str, dict] | None = None, **kwargs) -> dict[str, list[dict]]:
    """``run_isolated`` results per target name: every target once per round, in a fresh process,
    the order reversed every other round so load from other processes hits them alike.

    ``threads``: OPENBLAS_NUM_THREADS for the children (None: NumPy's default); ``extra``:
    per-target keyword arguments on top of the shared ``kwargs``.
    """
    env = None if threads is None else {**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}
    results: dict[str, list[dict]] = {k: [] for k in targets}
    for r in range(rounds):
        for name in (list(targets) if r % 2 == 0 else list(reversed(targets))):
            results[name].append(run_isolated(targets[name], env=env, **kwargs, **(extra or {}).get(name, {})))
    return results


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
