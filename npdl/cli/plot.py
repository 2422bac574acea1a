"""``npdl plot``: learning curves of runs or sweeps, as a PNG (matplotlib) or in the terminal.

Several metrics share one figure: metrics of one kind (``train.loss`` and ``val.loss``) share
axes, each other kind gets its own panel below. A run is labelled by the config keys in which
it differs from the others (``optimizer.lr=0.001, seed=1``), never by its time stamp unless
nothing else tells two runs apart. A sweep is drawn one curve per grid point: the mean over
its seeds, with the min-max band of the seeds shaded in the PNG.
"""
from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import typer

from npdl.cli.app import command, console, fail
from npdl.cli.arguments import output_file
from npdl.cli.chart import Series, render
from npdl.cli.compare import open_targets
from npdl.cli.run_table import changed, short_names
from npdl.cli.runs import config_of, flatten, metric_series

# the dependency by name: "npdl" on the public package index is another project
PLOT_HINT = ('writing a PNG needs matplotlib: pip install matplotlib (in a checkout of npdl: pip install -e ".[plot]"); '
             "or omit -o for a chart in the terminal")
STYLES = ["-", "--", ":", "-."]


@dataclasses.dataclass
class Curve:
    """One line of the figure: a run's metric, or a grid point's mean over seeds (with its band)."""

    label: str
    metric: str
    points: list[tuple[float, float]]
    band: list[tuple[float, float, float]] | None = None   # (step, min, max) over the seeds


def _labels(configs: list[dict], names: list[str]) -> list[str]:
    """'optimizer.lr=0.001, seed=1': the keys that differ (the name only when nothing else does)."""
    keys = [k for k in sorted(set().union(*configs)) if k != "name" and changed([c.get(k) for c in configs])]
    labels = [", ".join(f"{k}={c.get(k)}" for k in keys) for c in configs] if keys else short_names(names)
    if len(set(labels)) < len(labels):  # same config twice: the names tell them apart
        labels = [f"{lab} ({n})" if lab else n for lab, n in zip(labels, short_names(names))]
    return labels


def _mean_curve(runs_series: list[dict], metric: str) -> tuple[list, list]:
    """The mean over runs at every step any run logged, and the (step, min, max) band."""
    by_step: dict[float, list[float]] = {}
    for s in runs_series:
        for step, v in s.get(metric, []):
            by_step.setdefault(step, []).append(v)
    steps = sorted(by_step)
    return ([(x, statistics.fmean(by_step[x])) for x in steps],
            [(x, min(by_step[x]), max(by_step[x])) for x in steps])


def _curves(targets: list, metrics: list[str]) -> list[Curve]:
    from npdl.cli.sweep_table import groups_of
    from npdl.sweeps import Sweep

    if all(isinstance(t, Sweep) for t in targets):
        groups = [g for t in targets for g in groups_of(t) if g.infos]
        multi = len(targets) > 1
        out = []
        for g in groups:
            series = [metric_series(i.run) for i in g.infos]
            label = (f"{g.sweep}: " if multi else "") + f"{g.label} (n={len(g.infos)})"
            for m in metrics:
                mean, band = _mean_curve(series, m)
                out.append(Curve(label, m, mean, band if len(g.infos) > 1 else None))
        return out
    runs = []
    for t in targets:
        runs += t.runs() if isinstance(t, Sweep) else [t]
    labels = _labels([flatten(config_of(r)) for r in runs], [r.name for r in runs])
    series = [metric_series(r) for r in runs]
    return [Curve(lab, m, s.get(m, [])) for lab, s in zip(labels, series) for m in metrics]


def _panels(metrics: list[str]) -> list[list[str]]:
    """Metrics grouped by kind (the part after the split: loss, accuracy), in the order given."""
    kinds: dict[str, list[str]] = {}
    for m in metrics:
        kinds.setdefault(m.split(".", 1)[-1], []).append(m)
    return list(kinds.values())


@command(short_help="Learning curves of runs or sweeps: a PNG, or a chart in the terminal.")
def plot(runs: list[str] = typer.Argument(..., help="Run or sweep folders, or name prefixes under --runs-dir.",
                                          metavar="RUN|SWEEP..."),
         metric: list[str] = typer.Option(None, "--metric", help="e.g. val.loss; repeat it or give a comma list "
                                          "(default: val.loss)."),
         title: str = typer.Option(None, "--title", help="The figure's title (default: the metrics)."),
         output: Path = typer.Option(None, "-o", "--output", help="Write a PNG (needs matplotlib)."),
         runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder that holds the runs.")):
    """Learning curves: a PNG with matplotlib (-o), otherwise a chart in the terminal. Several
    metrics in one figure; a sweep as the mean over its seeds with their spread shaded."""
    metrics = list(dict.fromkeys(m.strip() for spec in (metric or ["val.loss"]) for m in spec.split(",") if m.strip()))
    if not metrics:
        raise fail("--metric: give a metric name, e.g. val.loss")
    if output is not None:
        output_file(output, "-o")
    curves = _curves(open_targets(runs, runs_dir), metrics)
    if not curves:
        raise fail("nothing to plot (the sweep has not started any member yet)")
    for m in metrics:
        if not any(c.points for c in curves if c.metric == m):
            raise fail(f"no '{m}' in these runs (have: {', '.join(_have(runs, runs_dir))})")
    title = title if title is not None else ", ".join(metrics)
    if output is not None:
        _png(curves, metrics, title, output)
        console.print(f"wrote {output}", soft_wrap=True)
        return
    for panel in _panels(metrics):
        chosen = [c for c in curves if c.metric in panel]
        labelled = [Series(c.label if len(metrics) == 1 else f"{c.metric}  {c.label}", c.points) for c in chosen]
        name = title if len(_panels(metrics)) == 1 else f"{title}: {', '.join(panel)}"
        width = max(24, min(100, console.width - 16))
        console.print(render(labelled, name, width=width, braille=_can_print_braille()))


def _have(specs, runs_dir) -> list[str]:
    from npdl.sweeps import Sweep

    names = set()
    for t in open_targets(specs, runs_dir):
        for r in (t.runs() if isinstance(t, Sweep) else [t]):
            names |= set(metric_series(r))
    return sorted(names)


def _can_print_braille() -> bool:
    try:
        "\u2800┤".encode(console.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _png(curves: list[Curve], metrics: list[str], title: str, output: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise fail(PLOT_HINT) from None
    panels = _panels(metrics)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.6 * len(panels)), sharex=True, squeeze=False)
    labels = list(dict.fromkeys(c.label for c in curves))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel in zip(axes[:, 0], panels):
        for c in (c for c in curves if c.metric in panel and c.points):
            colour = colours[labels.index(c.label) % len(colours)]
            style = STYLES[panel.index(c.metric) % len(STYLES)]
            xs, ys = [p[0] for p in c.points], [p[1] for p in c.points]
            ax.plot(xs, ys, style, color=colour, marker="." if len(xs) < 50 else None,
                    label=c.label if len(panel) == 1 else f"{c.metric}: {c.label}")
            if c.band:
                ax.fill_between([b[0] for b in c.band], [b[1] for b in c.band], [b[2] for b in c.band],
                                color=colour, alpha=0.2, linewidth=0)
        ax.set_ylabel(", ".join(panel))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(title)
    if any(c.band for c in curves):
        fig.text(0.99, 0.005, "lines: mean over seeds; shaded: min to max", ha="right", va="bottom", fontsize=7)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
