"""``npdl bench``: throughput beside references measured in the same run."""
from __future__ import annotations

import typer
from rich.table import Table

from npdl.cli.app import command, console, fail

BENCHMARKS = ("ops", "mlp", "layers", "word2vec", "lstm", "transformer")  # transformer includes beam search


def _available(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(f"npdl.bench.{name}") is not None


@command(short_help="Benchmarks beside NumPy and PyTorch.")
def bench(names: list[str] = typer.Argument(None, help=f"Which benchmarks: {', '.join(BENCHMARKS)} (default all).",
                                            metavar="NAME")):
    """Measure npdl beside hand-written NumPy and PyTorch (when installed), same run."""
    chosen = names or [b for b in BENCHMARKS if _available(b)]
    for name in chosen:
        if name not in BENCHMARKS or not _available(name):
            raise fail(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    for name in chosen:
        from importlib import import_module

        rows = import_module(f"npdl.bench.{name}").run()
        table = Table(title=f"npdl bench {name}")
        for col in ("figure", "value", "unit", "note"):
            table.add_column(col, justify="right" if col == "value" else "left")
        for row in rows:
            table.add_row(row.name, f"{row.value:,.2f}", row.unit, row.note)
        console.print(table)
