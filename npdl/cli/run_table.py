"""Rows of runs for ``npdl compare`` (and the sweep table): what a run shows, which metric columns,
and the writers: csv/json/md straight to stdout (never through rich, so no terminal width can wrap
or cut a row), a compact rich table on the console.

A metric's cell is its best value over the run (min for losses and perplexity, max otherwise;
``train.*`` its last value: the minimum of noisy batch losses says little).
"""
from __future__ import annotations

import csv
import dataclasses
import fnmatch
import json
import math
import sys

from rich import box
from rich.cells import cell_len
from rich.table import Table

from npdl.cli.app import console, err_console, fail
from npdl.cli.columns import is_number, raw
from npdl.cli.runs import config_of, flatten, metric_series

FORMATS = ("table", "md", "csv", "json")
GAP = 2  # spaces between the columns of a table


def mode_of(metric: str) -> str:
    return "min" if metric.endswith(("loss", "perplexity")) else "max"


@dataclasses.dataclass
class RunInfo:
    """What compare shows of one run."""

    run: object
    name: str
    status: str
    steps: int | None
    wall: float | None
    config: dict                # flattened: {'optimizer.lr': 0.001, ...}
    metrics: dict               # {'val.accuracy': {'best', 'best_step', 'last', 'mode'}}

    def value(self, metric: str):
        """The cell of a metric column: best, or last for train.*."""
        m = self.metrics.get(metric)
        if m is None:
            return None
        return m["last"] if metric.startswith("train.") else m["best"]


def run_info(run) -> RunInfo:
    from npdl.runs import RunError

    status, _ = run.status()
    try:
        summary, manifest = run.summary(), run.manifest()
    except RunError:
        summary, manifest = {}, {}
    metrics = {}
    for name, pts in metric_series(run).items():
        pts = [p for p in pts if math.isfinite(p[1])] or pts
        mode = mode_of(name)
        best = (min if mode == "min" else max)(pts, key=lambda p: p[1])
        metrics[name] = {"best": best[1], "best_step": best[0], "last": pts[-1][1], "mode": mode}
    steps = next((v for v in (summary.get("steps"), manifest.get("steps"))
                  if isinstance(v, int) and not isinstance(v, bool)), None)
    wall = summary.get("wall_seconds")
    return RunInfo(run, run.name, status, steps, float(wall) if is_number(wall) else None,
                   flatten(config_of(run)), metrics)


def default_metrics(infos) -> list[str]:
    names = {m for i in infos for m in i.metrics}
    return sorted(m for m in names if not m.startswith("train.") or m == "train.loss")


def pick_metrics(infos, patterns: list[str] | None) -> list[str]:
    """The metric columns: every eval metric and train.loss, or those ``--metrics`` names (globs allowed)."""
    if not patterns:
        return default_metrics(infos)
    have = sorted({m for i in infos for m in i.metrics})
    out = []
    for pattern in (p.strip() for spec in patterns for p in spec.split(",")):
        if not pattern:
            continue
        found = [m for m in have if fnmatch.fnmatchcase(m, pattern)]
        if not found:
            raise fail(f"--metrics {pattern}: no such metric in these runs (have: {', '.join(have) or 'none'})")
        out += [m for m in found if m not in out]
    return out


def short_names(names: list[str]) -> list[str]:
    """Run names without their time stamp where that leaves them unique, else with the time only."""
    import re

    stamp = re.compile(r"-(\d{8})-(\d{6})((?:-\d+)?)$")
    for drop in (lambda m: "", lambda m: f"-{m.group(2)}{m.group(3)}"):
        short = [stamp.sub(drop, n) for n in names]
        if len(set(short)) == len(short):
            return short
    return names


def changed(values: list) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1


def sort_rows(rows: list, metric: str, value, known: set) -> list:
    """``rows`` ordered by ``value(row)``, best first; rows without it last."""
    if metric not in known:
        raise fail(f"--sort {metric}: no such metric (have: {', '.join(sorted(known)) or 'none'})")
    sign = 1 if mode_of(metric) == "min" else -1
    return sorted(rows, key=lambda r: (value(r) is None, sign * value(r) if value(r) is not None else 0))


# ---- output ----------------------------------------------------------------------------------
def write_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str, allow_nan=True) + "\n")
    sys.stdout.flush()


def write_csv(header: list[str], rows: list[list]) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([raw(v) for v in row])
    sys.stdout.flush()


def _md(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def write_text(fmt: str, header: list[str], rows: list[list[str]], right: set[int]) -> None:
    """A Markdown table to stdout, or a compact rich table (one line per row) on the console."""
    if fmt == "md":
        lines = ["| " + " | ".join(_md(h) for h in header) + " |",
                 "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return
    def widths_of(heads):
        return [max([cell_len(line) for line in h.split("\n")] + [cell_len(r[i]) for r in rows])
                for i, h in enumerate(heads)]

    widths = widths_of(header)
    if sum(widths) + GAP * (len(widths) - 1) > console.width:  # too wide: headers take two lines
        header = [_fold(h) for h in header]
        widths = widths_of(header)
    for block in _blocks(widths, console.width):
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                      header_style="bold")
        for i in block:
            table.add_column(header[i], justify="right" if i in right else "left", no_wrap=True, overflow="ellipsis")
        for row in rows:
            table.add_row(*(row[i] for i in block))
        console.print(table)
    if len(_blocks(widths, console.width)) > 1:
        err_console.print(f"the table is wider than the terminal ({console.width} columns), so it is shown in parts; "
                          "--only-changed or --metrics show fewer columns, --format csv|md|json all in one",
                          style="dim", soft_wrap=True)


def _fold(head: str) -> str:
    """'optimizer.lr' -> 'optimizer.\nlr': split at the dot that leaves the shortest longer part."""
    cuts = [i + 1 for i, ch in enumerate(head) if ch == "." and 0 < i < len(head) - 1]
    if not cuts:
        return head
    at = min(cuts, key=lambda i: max(i, len(head) - i))
    return head[:at] + "\n" + head[at:]


def _blocks(widths: list[int], width: int) -> list[list[int]]:
    """Columns packed into tables that fit ``width``, each repeating the first column (the run), so
    that no cell is cut and no column dropped however narrow the terminal (as pandas prints)."""
    blocks, current, used = [], [0], widths[0]
    for i in range(1, len(widths)):
        if used + GAP + widths[i] > width and len(current) > 1:
            blocks.append(current)
            current, used = [0], widths[0]
        current.append(i)
        used += GAP + widths[i]
    return blocks + [current]
