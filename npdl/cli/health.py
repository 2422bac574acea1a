"""``npdl health RUN``: the run's training-health records as tables, with what is out of range."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from npdl.cli.app import command, console, fail

PARAM_STATS = ("grad_norm", "weight_norm", "update_ratio")
ACT_STATS = ("dead_relu", "saturated", "attn_entropy")


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


@command()
def health(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
           runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder that holds the runs.")):
    """Per-layer gradient / weight / update statistics and activation health, flagging what is off."""
    from npdl.runs import resolve
    from npdl.train.health_rules import diagnose

    r = resolve(run, runs_dir)
    # a hand-edited or damaged record may hold text or lists: only numbers are statistics
    records = [{k: v for k, v in e.items() if k == "event" or type(v) in (int, float)}
               for e in r.metrics() if e.get("event") == "health"]
    if not records:
        raise fail(f"run {r.name} has no health records; train with `--set train.health_every=N` "
                   "(e.g. 100) to record them every N steps")
    findings = diagnose(records)
    flags: dict[str, list[str]] = {}
    for f in findings:
        flags.setdefault(f.layer, []).append(f"{f.what} (step {f.step})")
    last = _medians(records)
    console.print(f"run {r.name}: {len(records)} health records, steps {records[0].get('step')}.."
                  f"{records[-1].get('step')}; each value is the median over the records")

    params = _layers(last, PARAM_STATS)
    if params:
        console.print(_table("parameters", ("parameter", "grad norm", "weight norm", "update ratio (log10)"),
                             [(name, *[_fmt(last.get(f"{s}/{name}")) for s in PARAM_STATS], flags.get(name, []))
                              for name in params]))
    acts = _layers(last, ACT_STATS)
    if acts:
        console.print(_table("activations", ("layer", "dead ReLU", "saturated", "attention entropy (nats)"),
                             [(name, _fmt(last.get(f"dead_relu/{name}")), _fmt(last.get(f"saturated/{name}")),
                               _entropy(last, name), _under(flags, name))
                              for name in acts]))

    if not findings:
        console.print("[green]healthy[/]: every statistic within its range in every record", markup=True)
        return
    console.print(f"[yellow]{len(findings)} finding(s)[/], by the step each first happened:", markup=True)
    for f in findings:
        console.print(f"  {f.message()}", soft_wrap=True)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple]) -> Table:
    """A table of one row per layer: its name, its statistics (right-aligned), then its flags
    (the last item of each row, a list: "ok" when empty)."""
    table = Table(title=title)
    for i, col in enumerate((*columns, "flags")):
        table.add_column(col, justify="left" if i in (0, len(columns)) else "right")
    for *cells, found in rows:
        table.add_row(*cells, "; ".join(found) or "ok")
    return table


def _under(flags: dict[str, list[str]], name: str) -> list[str]:
    """The flags of layer ``name`` and of its parts (an attention layer's heads: ``name/head0``)."""
    return [f for layer, found in flags.items() if layer == name or layer.startswith(name + "/") for f in found]


def _medians(records: list[dict]) -> dict[str, float]:
    """Each statistic's median over the records (one step's values can be a spike or, at the end
    of a decayed schedule, a step with no update at all)."""
    values: dict[str, list[float]] = {}
    for e in records:
        for k, v in e.items():
            if "/" in k and isinstance(v, (int, float)):
                values.setdefault(k, []).append(float(v))
    return {k: float(np.median(v)) for k, v in values.items()}


def _layers(event: dict, stats: tuple[str, ...]) -> list[str]:
    """Layer names that have any of ``stats`` in ``event``, in the order they were recorded."""
    out: dict[str, None] = {}
    for key in event:
        stat, _, rest = key.partition("/")
        if stat in stats and rest:
            out.setdefault(rest.split("/")[0] if stat == "attn_entropy" else rest, None)
    return list(out)


def _entropy(event: dict, name: str) -> str:
    """Per-head entropies as 'min .. max (H heads)' (one number for one head)."""
    heads = [v for k, v in event.items() if k.startswith(f"attn_entropy/{name}/") and v is not None]
    if not heads:
        return "-"
    if len(heads) == 1:
        return _fmt(heads[0])
    return f"{_fmt(min(heads))} .. {_fmt(max(heads))} ({len(heads)} heads)"
