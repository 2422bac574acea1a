"""``npdl bench``: throughput beside references measured in the same run."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from npdl.cli.app import app

BENCHMARKS = ("ops",)


@app.command()
def bench(names: list[str] = typer.Argument(None, help=f"Which benchmarks: {', '.join(BENCHMARKS)} (default all).")):
    """Measure npdl beside hand-written NumPy and PyTorch (when installed), same run."""
    console = Console()
    chosen = names or list(BENCHMARKS)
    for name in chosen:
        if name not in BENCHMARKS:
            console.print(f"[red]error:[/] unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
            raise typer.Exit(2)
    for name in chosen:
        from importlib import import_module

        rows = import_module(f"npdl.bench.{name}").run()
        table = Table(title=f"npdl bench {name}")
        for col in ("figure", "value", "unit", "note"):
            table.add_column(col, justify="right" if col == "value" else "left")
        for row in rows:
            table.add_row(row.name, f"{row.value:,.2f}", row.unit, row.note)
        console.print(table)
