"""Benchmarks: throughput of npdl beside references measured in the same run.

Each benchmark returns a list of ``Row`` (name, value, unit, note) so the CLI can print a
table and save JSON. Ratios are always against references measured in the same process
and sitting (hand-written NumPy; PyTorch when installed), never against stored numbers.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
import timeit
from typing import Callable


@dataclasses.dataclass
class Row:
    """One measured figure."""

    name: str
    value: float
    unit: str
    note: str = ""


def best_time(fn: Callable[[], object], min_total: float = 0.2, repeat: int = 5) -> float:
    """Seconds per call: the minimum over ``repeat`` runs of an auto-sized loop.

    The minimum is the least disturbed by other load on a shared 2-core machine.
    """
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * min_total / 0.2))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def median_ms(step: Callable[[], object], steps: int, warmup: int) -> float:
    """Median milliseconds of ``step`` over ``steps`` calls after ``warmup`` untimed ones.

    The median of per-step times resists the bursts of other load a shared machine adds.
    """
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def interleaved_medians(impls: dict[str, Callable], make_input: Callable[[], tuple], rounds: int,
                        warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each implementation, the implementations taking turns.

    Each round draws one input (``make_input()``) and runs every implementation on it, so a
    burst of load on a shared machine hits them alike; the first ``warmup`` rounds are untimed.
    """
    times: dict[str, list[float]] = {k: [] for k in impls}
    for r in range(warmup + rounds):
        args = make_input()
        for name, fn in impls.items():
            t0 = time.perf_counter()
            fn(*args)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def try_import_torch():
    """PyTorch if installed (an optional reference), else None."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "no reference"
        return None
    return torch
