"""``npdl compare SWEEP``: one row per grid point, each metric as mean ± std and n over the seeds.

The std is the sample standard deviation (ddof=1: the seeds are a sample of all seeds); with one
seed there is none, and the cell shows the mean alone. Members that have not started count as
``pending`` in the status column and in no mean.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter

from npdl.cli.app import console, fail
from npdl.cli.columns import column_format, duration, format_column, is_number
from npdl.cli.run_table import changed, pick_metrics, run_info, sort_rows, write_csv, write_json, write_text


@dataclasses.dataclass
class Group:
    """The members of one grid point (all seeds) and what they add up to."""

    sweep: str
    point: dict                  # grid key -> value as in the members' configs (as written if none ran)
    infos: list                  # RunInfo of each member that has a run folder
    pending: int

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.point.items()) or self.sweep

    def stats(self, metric: str) -> dict | None:
        values = [v for i in self.infos if (v := i.value(metric)) is not None and math.isfinite(v)]
        if not values:
            return None
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
                "min": min(values), "max": max(values), "n": len(values)}

    def status(self) -> str:
        counts = Counter(i.status for i in self.infos)
        if self.pending:
            counts["pending"] += self.pending
        return ", ".join(f"{n} {s}" for s, n in counts.most_common())

    def wall(self) -> float | None:
        walls = [i.wall for i in self.infos if i.wall is not None]
        return statistics.fmean(walls) if walls else None


def groups_of(sweep) -> list[Group]:
    """The sweep's grid points in grid order, each with the runs of its seeds."""
    keys = sweep.grid_keys
    out: dict[tuple, Group] = {}
    for member in sweep.members():
        point = tuple(member.point[k] for k in keys)
        group = out.setdefault(point, Group(sweep.name, dict(zip(keys, point)), [], 0))
        run = sweep.run_of(member.name)
        if run is None:
            group.pending += 1
            continue
        info = run_info(run)
        group.infos.append(info)
        if len(group.infos) == 1:  # the values the config holds (0.001), not as written (1e-3)
            group.point = {k: info.config.get(k, v) for k, v in group.point.items()}
    return list(out.values())


def show_groups(sweeps: list, only_changed: bool, metrics: list[str] | None, sort: str | None, fmt: str) -> None:
    groups = [g for s in sweeps for g in groups_of(s)]
    infos = [i for g in groups for i in g.infos]
    if not infos:
        raise fail(f"no member of {', '.join(s.name for s in sweeps)} has started yet: run the sweep first "
                   "(npdl sweep --resume SWEEP)")
    cols = pick_metrics(infos, metrics)
    keys = list(dict.fromkeys(k for s in sweeps for k in s.grid_keys))
    if only_changed:
        keys = [k for k in keys if changed([g.point.get(k) for g in groups])]
        cols = cols if metrics else [m for m in cols if changed([(g.stats(m) or {}).get("mean") for g in groups])]
    if sort:
        known = {m for i in infos for m in i.metrics}
        groups = sort_rows(groups, sort, lambda g: (g.stats(sort) or {}).get("mean"), known)
    lead = ["sweep"] if len(sweeps) > 1 else []
    first = [([g.sweep] if lead else []) + [g.point.get(k) for k in keys] for g in groups]
    if fmt == "json":
        write_json({(f"{g.sweep}: {g.label}" if lead else g.label): {
            "sweep": g.sweep, "config": {k: g.point.get(k) for k in keys}, "n": len(g.infos),
            "status": dict(Counter(i.status for i in g.infos), **({"pending": g.pending} if g.pending else {})),
            "wall_seconds": g.wall(), "runs": [i.name for i in g.infos],
            "metrics": {m: g.stats(m) for m in cols}} for g in groups})
        return
    if fmt == "csv":
        header = lead + keys + ["n", "status", "wall_seconds"] + [f"{m} {x}" for m in cols for x in ("mean", "std")]
        rows = [f + [len(g.infos), g.status(), g.wall()]
                + [(g.stats(m) or {}).get(x) for m in cols for x in ("mean", "std")] for f, g in zip(first, groups)]
        write_csv(header, rows)
        return
    shown = [format_column(list(c), exact=True) for c in zip(*first)] if first and first[0] else []
    shown += [[str(len(g.infos)) for g in groups], [g.status() for g in groups], [duration(g.wall()) for g in groups]]
    shown += [mean_std_column([g.stats(m) for g in groups]) for m in cols]
    header = lead + keys + ["n", "status", "wall"] + cols
    right = {i for i, h in enumerate(header) if h in ("n", "wall") or h in cols
             or (h in keys and any(is_number(g.point.get(h)) for g in groups))}
    write_text(fmt, header, [list(r) for r in zip(*shown)], right)
    if fmt == "table":
        console.print("mean ± sample std over the n runs of a row of each run's best value (min for "
                      "loss/perplexity, else max; train.*: last)", style="dim",
                      soft_wrap=True)


def mean_std_column(stats: list[dict | None]) -> list[str]:
    """'0.9734 ± 0.0012' for each row, means and stds with the decimals of the column's means."""
    fmt = column_format([s["mean"] for s in stats if s])
    out = []
    for s in stats:
        if s is None:
            out.append("")
        elif s["std"] is None:
            out.append(fmt(s["mean"]))
        else:
            out.append(f"{fmt(s['mean'])} ± {fmt(s['std'])}")
    return out
