"""Run one side of a benchmark in a fresh process: its step time and its memory.

``python -m npdl.bench.worker MODULE:SETUP '{"kwarg": ...}' STEPS WARMUP [--npdl-runtime]``
imports nothing but what ``SETUP`` needs; ``SETUP(**kwargs)`` imports its library, builds the
model and inputs and returns a zero-argument ``step``. The worker then records the process's
resident memory (the baseline: interpreter + library + inputs), resets the peak, times
``STEPS`` steps after ``WARMUP`` untimed ones and prints one JSON line:

* ``ms``: median ms per step;
* ``baseline_mb``: RSS after imports and setup; ``peak_mb``: the raw peak of the whole process;
* ``work_mb``: the peak during the steps over the baseline - the memory the work itself takes,
  which is what compares libraries of very different sizes (a bare ``import torch`` alone is
  ~200 MB).

With ``--npdl-runtime`` the worker first applies ``npdl.runtime.keep_freed_memory`` - to npdl's
and the reference's processes alike (``npdl.bench.conditions``); every worker flushes subnormal
floats to zero (``npdl.runtime.flush_denormals``), as the ``npdl`` command does. Threads come from the
environment the parent sets (``conditions.child_env``).
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from functools import partial

from npdl.runtime import flush_denormals, keep_freed_memory, peak_rss_mb


def rss_mb() -> float:
    """This process's resident memory now, MiB (Linux VmRSS; the peak elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0: clear_refs 5); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_isolated(target: str, steps: int, warmup: int, npdl_runtime: bool = False, env: dict | None = None,
                 timeout: float = 900, **kwargs) -> dict:
    """Run ``target`` ('pkg.module:setup') in a subprocess; returns the worker's JSON result."""
    cmd = [sys.executable, "-m", "npdl.bench.worker", target, json.dumps(kwargs), str(steps), str(warmup)]
    if npdl_runtime:
        cmd.append("--npdl-runtime")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {target} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def alternating_rounds(targets: dict[str, str], rounds: int, env: dict, npdl_runtime: bool, steps: int,
                       warmup: int, extra: dict[str, dict] | None = None, **kwargs) -> dict[str, list[dict]]:
    """``run_isolated`` results per side over ``rounds`` rounds of ``npdl.bench.alternate``: each
    round runs every side once, in a fresh process, under the same ``env`` and allocator.

    ``extra``: per-side keyword arguments on top of the shared ``kwargs``.
    """
    from npdl.bench import alternate

    sides = {name: partial(run_isolated, target, steps, warmup, npdl_runtime, env, **kwargs,
                           **(extra or {}).get(name, {}))
             for name, target in targets.items()}
    return alternate(sides, rounds)


GEMMS_ALONE = "npdl's GEMMs alone"   # the side that runs only a step's matrix products: BLAS's floor


def isolated_figures(bench: str, label: str, targets: dict[str, str], settings, steps: int, warmup: int,
                     rounds: int, note: str = "", target: str = "", memory: bool = False, npdl_runtime: bool | None = None,
                     extra: dict[str, dict] | None = None, timed_only: tuple[str, ...] = (), **kwargs) -> list:
    """Figures of one process-isolated comparison: ms/step per side (and with ``memory`` the work's
    peak over the baseline and the raw peak), every side under ``settings``' threads and allocator.

    Sides named in ``timed_only`` (a floor such as "npdl's GEMMs alone", whose buffers are not a
    model's) appear in the time figure only."""
    from npdl.bench import Figure
    from npdl.bench.conditions import child_env

    malloc = settings.npdl_malloc if npdl_runtime is None else npdl_runtime
    results = alternating_rounds(targets, rounds, child_env(settings.threads), malloc, steps, warmup, extra, **kwargs)
    figures = [Figure(bench, label, "ms", {k: [r["ms"] for r in v] for k, v in results.items()},
                      note, target)]
    if memory:
        sized = {k: v for k, v in results.items() if k not in timed_only}
        figures += [Figure(bench, f"{label}: memory of the work (peak over the baseline after imports)", "MB",
                           {k: [r["work_mb"] for r in v] for k, v in sized.items()}, note, target),
                    Figure(bench, f"{label}: raw peak RSS (library and inputs included)", "MB",
                           {k: [r["peak_mb"] for r in v] for k, v in sized.items()}, note)]
    return figures


def measure(setup, steps: int, warmup: int) -> dict:
    """Time ``steps`` steps of ``setup()``'s step and the memory they take (see the module docstring)."""
    from npdl.bench import median_ms

    step = setup()
    baseline = rss_mb()
    before = peak_rss_mb()          # the raw peak so far (imports and setup)
    reset = reset_peak()
    ms = median_ms(step, steps, warmup)
    peak = peak_rss_mb()
    return {"ms": ms, "baseline_mb": baseline, "peak_mb": max(before, peak),
            "work_mb": max(0.0, (peak if reset else max(before, peak)) - baseline)}


def main() -> None:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2])
    steps, warmup = int(sys.argv[3]), int(sys.argv[4])
    if "--npdl-runtime" in sys.argv[5:]:
        keep_freed_memory()
    flush_denormals()   # every side alike, as the npdl command does (NPDL_DENORMALS=keep: neither)
    module, func = target.split(":")
    setup = getattr(importlib.import_module(module), func)
    print(json.dumps(measure(lambda: setup(**kwargs), steps, warmup)))


if __name__ == "__main__":
    main()
