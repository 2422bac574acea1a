"""``npdl bench``: throughput beside references measured in the same run."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from npdl.cli.app import command, fail

# name -> the modules whose ``run()`` rows make its table; a family's benchmark lives in its folder
BENCHMARKS = {
    "ops": ("npdl.bench.ops",),
    "mlp": ("npdl.bench.mlp",),
    "layers": ("npdl.bench.layers",),
    "word2vec": ("npdl.families.word2vec.bench",),
    "lstm": ("npdl.families.language_model.bench",),
    "transformer": ("npdl.families.text_classification.bench", "npdl.families.seq2seq.bench"),  # + beam search
}


def _available(name: str) -> bool:
    from importlib.util import find_spec

    return all(find_spec(module) is not None for module in BENCHMARKS[name])


@command()
def bench(names: list[str] = typer.Argument(None, help=f"Which benchmarks: {', '.join(BENCHMARKS)} (default all).")):
    """Measure npdl beside hand-written NumPy and PyTorch (when installed), same run."""
    console = Console()
    chosen = names or [b for b in BENCHMARKS if _available(b)]
    for name in chosen:
        if name not in BENCHMARKS or not _available(name):
            raise fail(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    for name in chosen:
        from importlib import import_module

        rows = [row for module in BENCHMARKS[name] for row in import_module(module).run()]
        table = Table(title=f"npdl bench {name}")
        for col in ("figure", "value", "unit", "note"):
            table.add_column(col, justify="right" if col == "value" else "left")
        for row in rows:
            table.add_row(row.name, f"{row.value:,.2f}", row.unit, row.note)
        console.print(table)
