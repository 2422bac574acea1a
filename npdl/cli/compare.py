"""``npdl compare``: runs as rows, config keys and metrics as columns (like ``dvc exp show``).

A metric's cell is its best value over the run (min for losses and perplexity, max otherwise;
``train.*`` its last value). A sweep folder is shown one row per grid point, with mean ± std
(sample std, ddof=1) and n over its seeds (``npdl.cli.sweep_table``). The rows, columns and
writers live in ``npdl.cli.run_table``.
"""
from __future__ import annotations

from pathlib import Path

import typer

from npdl.cli.app import command, console, fail
from npdl.cli.columns import duration, format_column, is_number
from npdl.cli.run_table import (FORMATS, changed, pick_metrics, run_info, short_names, sort_rows, write_csv,
                                write_json, write_text)


# ---- what the arguments name -----------------------------------------------------------------
def open_targets(specs: list[str], runs_dir: Path) -> list:
    """Each argument as a Run or a Sweep (a folder or a unique name prefix under ``runs_dir``)."""
    from npdl.runs import Run, RunError, resolve
    from npdl.sweeps import SweepError, is_sweep, resolve_sweep

    out = []
    for spec in specs:
        if _is_dir(spec):
            out.append(resolve_sweep(spec) if is_sweep(Path(spec)) else Run.open(spec))
            continue
        sweep = resolve_sweep(spec, runs_dir)
        try:
            run = resolve(spec, runs_dir)
        except RunError:
            if sweep is None:
                raise
            run = None
        if sweep is not None and run is not None and sweep.name != spec and run.name != spec:
            raise SweepError(f"'{spec}' matches the sweep {sweep.name} and the run {run.name}; give more of the name")
        out.append(sweep if sweep is not None and (run is None or sweep.name == spec) else run)
    return out


def _is_dir(spec: str) -> bool:
    try:
        return Path(spec).is_dir()
    except (OSError, ValueError):  # too long, NUL: not a folder, maybe not a name either
        return False


@command(short_help="Runs side by side: config keys and metrics as columns; sweeps as mean ± std.")
def compare(runs: list[str] = typer.Argument(..., help="Run or sweep folders, or name prefixes under --runs-dir.",
                                             metavar="RUN|SWEEP..."),
            only_changed: bool = typer.Option(False, "--only-changed",
                                              help="Drop config keys (and metrics not named by --metrics) that are the same in every row."),
            metrics: list[str] = typer.Option(None, "--metrics", metavar="NAMES",
                                              help="Metric columns, comma-separated, globs allowed: val.accuracy,test.*"),
            sort: str = typer.Option(None, "--sort", help="Order rows by this metric, best first (e.g. val.accuracy)."),
            fmt: str = typer.Option("table", "--format", help="table | md | csv | json"),
            per_run: bool = typer.Option(False, "--per-run", help="A sweep's members one row each, not mean ± std."),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder that holds the runs.")):
    """Runs as rows; config keys, status, wall time and best metrics as columns (like dvc exp show).
    A sweep folder shows one row per grid point: mean ± std and n over its seeds."""
    from npdl.sweeps import Sweep

    if fmt not in FORMATS:
        raise fail(f"--format must be table, md, csv or json, got {fmt!r}")
    targets = open_targets(runs, runs_dir)
    if all(isinstance(t, Sweep) for t in targets) and not per_run:
        from npdl.cli.sweep_table import show_groups

        return show_groups(targets, only_changed, metrics, sort, fmt)
    opened = []
    for t in targets:
        opened += t.runs() if isinstance(t, Sweep) else [t]
    if not opened:
        raise fail("no runs to compare (the sweep has not started any member yet)")
    infos = [run_info(r) for r in opened]
    cols = pick_metrics(infos, metrics)
    keys = sorted(set().union(*(i.config for i in infos)))
    if "name" in keys and all(i.name.startswith(str(i.config.get("name"))) for i in infos):
        keys.remove("name")  # the run column says it already
    if only_changed:
        keys = [k for k in keys if changed([i.config.get(k) for i in infos])]
        cols = cols if metrics else [m for m in cols if changed([i.value(m) for i in infos])]
    if sort:
        infos = sort_rows(infos, sort, lambda i: i.value(sort), {m for i in infos for m in i.metrics})
    header = ["run", "status", "steps", "wall"] + keys + cols
    cells = [[i.name, i.status, i.steps, i.wall] + [i.config.get(k) for k in keys] + [i.value(m) for m in cols]
             for i in infos]
    if fmt == "json":
        write_json({i.name: {"status": i.status, "steps": i.steps, "wall_seconds": i.wall,
                             "config": {k: i.config.get(k) for k in keys},
                             "metrics": {m: i.metrics.get(m) for m in cols}} for i in infos})
    elif fmt == "csv":
        write_csv(["run", "status", "steps", "wall_seconds"] + keys + cols, cells)
    else:
        columns = list(zip(*cells))
        shown = [short_names(list(columns[0])) if fmt == "table" else list(columns[0]), list(columns[1]),
                 format_column(list(columns[2])), [duration(w) for w in columns[3]]]
        shown += [format_column(list(c), exact=True) for c in columns[4:4 + len(keys)]]
        shown += [format_column(list(c)) for c in columns[4 + len(keys):]]
        right = {i for i, col in enumerate(columns) if i == 3 or (i >= 2 and any(is_number(v) for v in col))}
        write_text(fmt, header, [list(r) for r in zip(*shown)], right)
        if fmt == "table" and cols:
            console.print("metrics: best value (min for loss/perplexity, else max); train.*: last value",
                          style="dim", soft_wrap=True)
