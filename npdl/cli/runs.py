"""``npdl runs``, ``compare`` and ``plot``: reading run folders."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import typer
import yaml
from rich.table import Table

from npdl.cli.app import command, console, err_console, fail, shorten
from npdl.cli.arguments import output_file

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


def _config_of(run) -> dict:
    """A run's config.yaml as a dict; a damaged one (or an alias bomb) is a ``RunError`` naming it."""
    from npdl.runs import RunError

    path = run.path / "config.yaml"
    try:
        data = yaml.safe_load(run.config_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError) as exc:
        raise RunError(f"{path}: not readable YAML ({str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected a mapping, got {type(data).__name__}")
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


def _flatten(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _metric_series(run) -> dict[str, list[tuple[int, float]]]:
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


@command()
def compare(runs: list[str] = typer.Argument(..., help="Run folders or name prefixes."),
            only_changed: bool = typer.Option(False, "--only-changed", help="Show only config keys that differ."),
            sort: str = typer.Option(None, "--sort", help="Order runs by this metric's best value (e.g. val.accuracy)."),
            fmt: str = typer.Option("table", "--format", help="table | md | csv | json"),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir")):
    """Config keys that differ and best / last / step-of-best per metric, side by side."""
    from npdl.runs import resolve

    if fmt not in ("table", "md", "csv", "json"):
        raise fail(f"--format must be table, md, csv or json, got {fmt!r}")
    opened = [resolve(r, runs_dir) for r in runs]
    configs = [_flatten(_config_of(r)) for r in opened]
    keys = sorted(set().union(*configs))
    if only_changed:
        keys = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
    rows: list[tuple[str, list]] = [(f"config.{k}", [c.get(k, "") for c in configs]) for k in keys]
    series = [_metric_series(r) for r in opened]
    metric_names = sorted({m for s in series for m in s if not m.startswith("train.") or m == "train.loss"})
    modes = {}
    for m in metric_names:
        mode = "min" if m.endswith(("loss", "perplexity")) else "max"
        modes[m] = mode
        best, last, at = [], [], []
        for s in series:
            pts = s.get(m, [])
            if not pts:
                best.append(""), last.append(""), at.append("")
                continue
            b = (min if mode == "min" else max)(pts, key=lambda p: p[1])
            best.append(round(b[1], 6)), last.append(round(pts[-1][1], 6)), at.append(b[0])
        rows += [(f"{m} best ({mode})", best), (f"{m} last", last), (f"{m} step of best", at)]
    order = list(range(len(opened)))
    if sort:
        best_row = dict(rows).get(f"{sort} best ({modes.get(sort, 'max')})")
        if best_row is None:
            raise fail(f"--sort {sort}: no such metric (have: {', '.join(metric_names)})")
        rev = modes.get(sort, "max") == "max"
        order.sort(key=lambda i: (best_row[i] == "", -best_row[i] if rev and best_row[i] != "" else best_row[i]))
    names = [opened[i].name for i in order]
    rows = [(k, [vals[i] for i in order]) for k, vals in rows]
    _emit(fmt, names, rows)


def _emit(fmt: str, names: list[str], rows: list[tuple[str, list]]) -> None:
    text = lambda v: json.dumps(v) if isinstance(v, (list, dict)) else str(v)  # noqa: E731
    if fmt == "json":
        console.print_json(json.dumps({"runs": names, "rows": {k: v for k, v in rows}}, default=str))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["key"] + names)
        for k, vals in rows:
            w.writerow([k] + [text(v) for v in vals])
        console.print(buf.getvalue(), end="", markup=False)
    elif fmt == "md":
        lines = ["| key | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += ["| " + k + " | " + " | ".join(text(v) for v in vals) + " |" for k, vals in rows]
        console.print("\n".join(lines), markup=False)
    else:
        table = Table()
        table.add_column("key")
        for n in names:
            table.add_column(n, justify="right")
        for k, vals in rows:
            table.add_row(k, *[text(v) for v in vals])
        console.print(table)


# the dependency by name: "npdl" on the public package index is another project
PLOT_HINT = ('writing a PNG needs matplotlib: pip install matplotlib (in a checkout of npdl: pip install -e ".[plot]"); '
             "or omit -o for a chart in the terminal")


@command()
def plot(runs: list[str] = typer.Argument(..., help="Run folders or name prefixes."),
         metric: str = typer.Option("val.loss", "--metric", help="e.g. val.loss, val.accuracy, train.loss"),
         output: Path = typer.Option(None, "-o", "--output", help="Write a PNG (needs matplotlib)."),
         runs_dir: Path = typer.Option(Path("runs"), "--runs-dir")):
    """Learning curves: a PNG with matplotlib (-o), otherwise a chart in the terminal."""
    from npdl.runs import resolve

    opened = [resolve(r, runs_dir) for r in runs]
    all_series = {r.name: _metric_series(r) for r in opened}
    curves = {name: s.get(metric, []) for name, s in all_series.items()}
    if not any(curves.values()):
        have = sorted({m for s in all_series.values() for m in s})
        raise fail(f"no '{metric}' in these runs (have: {', '.join(have)})")
    if output is not None:
        output_file(output, "-o")
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise fail(PLOT_HINT)
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, pts in curves.items():
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, marker="." if len(pts) < 50 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(output, dpi=120)
        console.print(f"wrote {output}")
        return
    console.print(terminal_chart(curves, metric), markup=False)


def terminal_chart(curves: dict[str, list[tuple[int, float]]], metric: str, width: int = 64, height: int = 16) -> str:
    """An ASCII line chart: one letter per run (a, b, c, ...), steps across, values up."""
    curves = {k: [p for p in c if math.isfinite(p[1])] for k, c in curves.items()}  # a NaN run plots its finite part
    pts = [p for c in curves.values() for p in c]
    if not pts:
        return f"{metric}: no finite values to plot"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 == y0:
        y1 = y0 + 1e-9
    grid = [[" "] * width for _ in range(height)]
    for mark, (_, c) in zip("abcdefghijklmnopqrstuvwxyz", curves.items()):
        for x, y in c:
            col = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (width - 1))
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            grid[row][col] = mark
    lines = [f"{metric}"]
    for i, row in enumerate(grid):
        label = y1 - (y1 - y0) * i / (height - 1)
        lines.append(f"{label:>10.4g} |" + "".join(row))
    lines.append(" " * 11 + "+" + "-" * width)
    lines.append(" " * 12 + f"step {x0}" + " " * max(width - 12 - len(str(x0)) - len(str(x1)), 1) + f"step {x1}")
    for mark, name in zip("abcdefghijklmnopqrstuvwxyz", curves):
        lines.append(f"  {mark} = {name}")
    return "\n".join(lines)
