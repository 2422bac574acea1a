"""``npdl runs``, and reading run folders for ``compare`` and ``plot``."""
from __future__ import annotations

import math
from pathlib import Path

import typer
import yaml
from rich.table import Table

from npdl.cli.app import command, console, err_console, fail, shorten

MAX_WARNINGS = 5  # skipped metrics lines reported per run; the rest are counted


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _metrics(run) -> list[dict]:
    """The run's valid events; each skipped line of metrics.jsonl is reported on stderr."""
    events = run.metrics()
    for n, why in run.skipped[:MAX_WARNINGS]:
        err_console.print(f"warning: {run.path / 'metrics.jsonl'}:{n}: line skipped ({why})", markup=False,
                          soft_wrap=True)
    if len(run.skipped) > MAX_WARNINGS:
        err_console.print(f"warning: {run.path / 'metrics.jsonl'}: {len(run.skipped) - MAX_WARNINGS} more lines "
                          "skipped", markup=False, soft_wrap=True)
    return events


def _check_runs_dir(runs_dir: Path) -> None:
    """A runs folder that is missing lists no runs; one that cannot be looked at is an error."""
    import errno

    try:
        runs_dir.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        why = "path too long" if exc.errno == errno.ENAMETOOLONG else exc.strerror
        raise fail(f"cannot open the runs folder {shorten(str(runs_dir))}: {why}") from None
    if not runs_dir.is_dir():
        raise fail(f"{shorten(str(runs_dir))} is not a folder (give the folder that holds the runs)")


@command("runs")
def runs_(runs_dir: Path = typer.Argument(Path("runs"), help="Folder that holds the runs.")):
    """List runs: name, status, steps, best metric, wall time. Damaged runs are listed as corrupt,
    runs whose process is gone as dead (continue them with npdl resume)."""
    from npdl.runs import RunError, find_runs
    from npdl.sweeps import is_sweep

    _check_runs_dir(runs_dir)
    found = find_runs(runs_dir, complete=False)
    if not found:
        console.print(f"no runs under {runs_dir}", markup=False)
        return
    table = Table(title=f"runs in {runs_dir}")
    for col in ("run", "status", "steps", "best", "wall time"):
        table.add_column(col, justify="right" if col in ("steps", "wall time") else "left")
    notes = []
    for r in found:
        if is_sweep(r.path):
            table.add_row(*_sweep_row(r.path, notes))
            continue
        status, why = r.status()
        if status == "corrupt":
            table.add_row(r.name, status, "", "", "")
            notes.append(f"{r.name}: {status}: {why}")
            continue
        if why:
            notes.append(f"{r.name}: {status}: {why}")
        m = r.manifest()
        try:
            s = r.summary()
        except RunError as exc:
            s = {}
            status = "corrupt"
            notes.append(f"{r.name}: corrupt: {exc}")
        best = s.get("best") if isinstance(s.get("best"), dict) else None
        if best is None or _number(best.get("value")) is None:
            try:
                best = _best_from_metrics(r)
            except RunError as exc:
                best = None
                notes.append(f"{r.name}: {exc}")
        best_text = (f"{best.get('metric')} {_number(best['value']):.4f}"
                     if best and _number(best.get("value")) is not None else "")
        wall = _number(s.get("wall_seconds"))
        steps = next((v for v in (s.get("steps"), m.get("steps")) if isinstance(v, int) and not isinstance(v, bool)), 0)
        table.add_row(r.name, status, f"{steps:,}", best_text, f"{wall:.0f} s" if wall is not None else "")
    console.print(table)
    for note in notes:
        console.print(note, markup=False, soft_wrap=True)


def _sweep_row(path: Path, notes: list[str]) -> list[str]:
    """A sweep folder as one line: how many members are in which state, the sum of their steps
    and wall times; its members are listed by ``npdl runs SWEEP`` (they are runs inside it)."""
    from collections import Counter

    from npdl.runs import RunError
    from npdl.sweeps import Sweep

    try:
        sweep = Sweep.open(path)
        members = sweep.members()
        runs = [sweep.run_of(m.name) for m in members]
    except RunError as exc:
        notes.append(f"{path.name}: corrupt sweep: {exc}")
        return [path.name, "corrupt", "", "", ""]
    states = Counter(r.status()[0] if r is not None else "pending" for r in runs)
    steps = wall = 0
    for r in runs:
        try:
            s = r.summary() if r is not None else {}
        except RunError:
            continue
        steps += s.get("steps") if isinstance(s.get("steps"), int) and not isinstance(s.get("steps"), bool) else 0
        wall += _number(s.get("wall_seconds")) or 0
    status = "sweep: " + ", ".join(f"{n} {s}" for s, n in states.most_common())
    notes.append(f"{path.name}: a sweep of {len(members)} runs; list them with npdl runs {path}, "
                 f"compare them with npdl compare {path}")
    return [path.name, status, f"{steps:,}", "", f"{wall:.0f} s"]


def _best_from_metrics(run) -> dict | None:
    evals = [e for e in _metrics(run) if e.get("event") == "eval" and e.get("split") == "val"]
    if not evals:
        return None
    key = "accuracy" if "accuracy" in evals[-1] else "loss"
    values = [v for e in evals if (v := _number(e.get(key))) is not None and not math.isnan(v)]
    if not values:
        return None
    return {"metric": f"val.{key}", "value": (max if key == "accuracy" else min)(values)}


MAX_CONFIG_NODES = 100_000


def config_of(run) -> dict:
    """A run's config.yaml as a dict; a damaged one (or an alias bomb) is a ``RunError`` naming it."""
    from npdl.runs import RunError

    path = run.path / "config.yaml"
    try:
        data = yaml.safe_load(run.config_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError) as exc:
        raise RunError(f"{path}: not readable YAML ({str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected a mapping, got {'an empty file' if data is None else type(data).__name__}")
    stack, seen = [data], 0
    while stack:  # aliases may repeat one node many times over: count visits, not distinct nodes
        node = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES:
            raise RunError(f"{path}: more than {MAX_CONFIG_NODES:,} values once YAML aliases are expanded")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def flatten(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def metric_series(run) -> dict[str, list[tuple[int, float]]]:
    """'val.loss' -> [(step, value), ...] from metrics.jsonl (train events as 'train.loss')."""
    series: dict[str, list[tuple[int, float]]] = {}
    for e in _metrics(run):
        split = e.get("split") or e.get("event")
        step = e.get("step", 0)
        if not isinstance(step, int) or isinstance(step, bool) or not isinstance(split, str):
            continue  # not an event npdl wrote
        for k, v in e.items():
            if k in ("event", "split", "step", "epoch", "checkpoint") or not isinstance(v, (int, float)):
                continue
            series.setdefault(f"{split}.{k}", []).append((step, float(v)))
    return series
