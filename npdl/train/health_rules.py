"""``diagnose(events)``: what in a run's health records (``train/health.py``) is out of the healthy
range, and at which step it first happened. A pure function of the events, so ``npdl health``,
tests and notebooks read the same verdicts.

The ranges (each a module constant, so a reader sees what "healthy" means here):

* gradient norm of a parameter below ``VANISHING`` (nothing reaches it) or above ``EXPLODING``
  (or not finite);
* update ratio ``log10(|update| / |w|)`` above ``RATIO_HIGH`` (each step rewrites a tenth of the
  weight or more) or below ``RATIO_LOW`` (a hundred times slower than the rule-of-thumb -3).
  "Too small" is not judged where the learning rate is under ``QUIET_LR`` of the run's largest:
  the start of a warmup and the tail of a decay are slow on purpose;
* more than ``DEAD`` of a ReLU layer's units dead, more than ``SATURATED`` of a tanh / sigmoid
  layer's outputs saturated;
* an attention head whose mean entropy is below ``COLLAPSED`` nats (each query attends to
  essentially one key).
"""
from __future__ import annotations

import dataclasses
import math

VANISHING = 1e-7
EXPLODING = 1e3
RATIO_HIGH = -1.0
RATIO_LOW = -5.0
QUIET_LR = 0.1
DEAD = 0.5
SATURATED = 0.5
COLLAPSED = 0.1


@dataclasses.dataclass
class Finding:
    """One problem: ``what`` happened to ``layer`` (a parameter or module name), first at ``step``
    with ``value`` (the statistic ``key``), in ``count`` of ``total`` health records."""

    what: str
    layer: str
    key: str
    step: int
    value: float
    count: int
    total: int
    healthy: str  # the healthy range, for the message

    def message(self) -> str:
        return (f"step {self.step}: {self.layer}: {self.what} ({self.key.split('/')[0]} = {self.value:.3g}; "
                f"healthy: {self.healthy}) in {self.count} of {self.total} health records")


def _judge(stat: str, value: float, lr_quiet: bool) -> tuple[str, str] | None:
    """(problem, healthy range) when ``value`` of statistic ``stat`` is out of range, else None."""
    if stat == "grad_norm":
        if not math.isfinite(value) or value > EXPLODING:
            return "exploding gradient", f"<= {EXPLODING:g}"
        if value < VANISHING:
            return "vanishing gradient", f">= {VANISHING:g}"
    elif stat == "update_ratio":
        if value > RATIO_HIGH:
            return "updates too large", f"{RATIO_LOW:g} .. {RATIO_HIGH:g}, about -3"
        if value < RATIO_LOW and not lr_quiet:
            return "updates too small", f"{RATIO_LOW:g} .. {RATIO_HIGH:g}, about -3"
    elif stat == "dead_relu" and value > DEAD:
        return "ReLUs dead", f"<= {DEAD:g} of the units"
    elif stat == "saturated" and value > SATURATED:
        return "saturated", f"<= {SATURATED:g} of the outputs"
    elif stat == "attn_entropy" and value < COLLAPSED:
        return "attention collapsed", f">= {COLLAPSED:g} nats"
    return None


def diagnose(events: list[dict]) -> list[Finding]:
    """Findings from a run's events (any mix; only ``event == "health"`` ones are read), one per
    (statistic, layer, problem), ordered by the step where each first happened."""
    records = [e for e in events if e.get("event") == "health"]
    top_lr = max((e.get("lr") or 0.0 for e in records), default=0.0)
    found: dict[tuple[str, str], Finding] = {}
    for e in records:
        quiet = top_lr > 0 and (e.get("lr") or 0.0) < QUIET_LR * top_lr
        for key, value in e.items():
            if "/" not in key or not isinstance(value, (int, float)):
                continue  # None: a ratio with no meaning (zero weight, no update)
            stat, _, layer = key.partition("/")
            verdict = _judge(stat, float(value), quiet)
            if verdict is None:
                continue
            what, healthy = verdict
            f = found.get((key, what))
            if f is None:
                found[(key, what)] = Finding(what, layer, key, e.get("step", 0), float(value), 1, len(records),
                                             healthy)
            else:
                f.count += 1
    return sorted(found.values(), key=lambda f: (f.step, f.layer, f.what))
