"""``npdl list``: registered names and their arguments."""
from __future__ import annotations

import typer
from rich.table import Table

from npdl.cli.app import command, console, fail


@command("list")
def list_(kind: str = typer.Argument(None, help="layers | models | losses | optimizers | schedules | datasets")):
    """Names a config's `type:` may use, with their arguments."""
    from npdl import experiment  # noqa: F401  (registers everything)
    from npdl.registry import ALL, listing

    kinds = [kind] if kind else list(ALL)
    for k in kinds:
        if k not in ALL:
            raise fail(f"unknown kind '{k}' (choose from {', '.join(ALL)})")
        table = Table(title=k)
        table.add_column("name")
        table.add_column("arguments")
        table.add_column("description")
        for name, sig, doc in listing(k):
            args = sig[len(name) + 1:-1]
            table.add_row(name, args, doc)
        console.print(table)
