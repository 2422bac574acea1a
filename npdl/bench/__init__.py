"""Benchmarks: npdl beside references measured in the same run, by one method.

The method (every benchmark):

* **Interleaved rounds.** ``alternate`` runs one round of every side (npdl and each
  reference), the order reversed every other round, so a burst of load on a shared machine
  hits all sides alike. A round is one timed call in-process (an epoch, a training step, a
  loop of tiny ops) or one fresh process per side (``npdl.bench.worker``).
* **Medians and spreads.** Each side reports the median over rounds and the spread
  (min-max); comparisons are ratios of medians (``Figure.ratios``).
* **Same conditions.** One ``Settings`` (threads, allocator, rounds) applies to every side:
  BLAS, npdl's pool, ``torch.set_num_threads`` and gensim's workers get the same thread count,
  and every process gets the same malloc settings (``npdl.bench.conditions``).

A benchmark's ``run(settings)`` returns a list of ``Figure``; the CLI prints them, writes them
as JSON (``--json``) and renders the README table from that JSON (``--markdown``).
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable, TypeVar

T = TypeVar("T")


@dataclasses.dataclass
class Settings:
    """What every benchmark of one ``npdl bench`` invocation shares.

    threads: for BLAS, npdl's pool, torch and gensim alike; rounds: None = each benchmark's
    default; quick: tiny sizes and 1-2 rounds (smoke tests); npdl_malloc: every process (both
    sides) runs with ``npdl.runtime.keep_freed_memory``.
    """

    threads: int
    rounds: int | None = None
    quick: bool = False
    npdl_malloc: bool = True

    def rounds_or(self, default: int) -> int:
        """The requested rounds, else ``default`` (2 with ``quick``)."""
        if self.rounds is not None:
            return self.rounds
        return min(default, 2) if self.quick else default


@dataclasses.dataclass
class Figure:
    """One measured quantity for several sides, a sample per round each.

    ``sides`` maps a side's name to its samples (the first side is the subject, usually npdl);
    ``ratios()`` divides the subject's median by each other side's. With ``unit`` a time, a
    ratio below 1 means the subject is faster; with a rate (words/s, sentences/s), above 1.
    """

    bench: str
    name: str
    unit: str
    sides: dict[str, list[float]]
    note: str = ""
    target: str = ""

    def median(self, side: str) -> float:
        return float(statistics.median(self.sides[side]))

    def spread(self, side: str) -> tuple[float, float]:
        return float(min(self.sides[side])), float(max(self.sides[side]))

    def ratios(self) -> dict[str, float]:
        """subject median / reference median, per reference side with samples."""
        names = [k for k, v in self.sides.items() if v]
        if len(names) < 2:
            return {}
        first = self.median(names[0])
        return {k: first / self.median(k) for k in names[1:] if self.median(k)}

    def to_dict(self) -> dict:
        sides = {k: {"median": self.median(k), "min": self.spread(k)[0], "max": self.spread(k)[1],
                     "samples": [float(x) for x in v]} for k, v in self.sides.items() if v}
        subject = next(iter(self.sides), "")
        return {"bench": self.bench, "name": self.name, "unit": self.unit, "note": self.note,
                "target": self.target, "sides": sides,
                "ratios": {f"{subject} / {k}": r for k, r in self.ratios().items()}}


def alternate(sides: dict[str, Callable[..., T]], rounds: int, warmup: int = 0,
              make_input: Callable[[], tuple] | None = None) -> dict[str, list[T]]:
    """Each side's results over ``rounds`` rounds, the sides taking turns.

    Every round calls each side once (order reversed every other round, so neither side always
    runs right after the other); ``make_input()``, when given, draws one input per round that
    every side gets. The first ``warmup`` rounds are run and discarded.
    """
    results: dict[str, list[T]] = {k: [] for k in sides}
    for r in range(warmup + rounds):
        args = make_input() if make_input is not None else ()
        for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
            value = sides[name](*args)
            if r >= warmup:
                results[name].append(value)
    return results


def timed(fn: Callable[..., object]) -> Callable[..., float]:
    """``fn`` that returns its own wall time in seconds instead of its result."""

    def call(*args) -> float:
        t0 = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t0

    return call


def per_call(fn: Callable[[], object], min_time: float = 0.05) -> Callable[[], float]:
    """A round for tiny work: seconds per call of ``fn`` over a loop sized once to ~``min_time``."""
    import timeit

    timer = timeit.Timer(fn)
    number = max(1, int(timer.autorange()[0] * min_time / 0.2))
    return lambda: timer.timeit(number) / number


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


def try_import_torch():
    """PyTorch if installed (an optional reference), else None."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "no reference"
        return None
    return torch


def has_module(name: str) -> bool:
    """Whether ``name`` is importable, without importing it (keeps torch out of the parent)."""
    import importlib.util

    return importlib.util.find_spec(name) is not None
