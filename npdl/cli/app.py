"""Typer application: one sub-module per command group registers its commands here."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="npdl: deep learning from the ground up in NumPy.")

STATE = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors.")) -> None:
    """npdl: deep learning from the ground up in NumPy."""
    STATE["debug"] = debug


def main() -> None:
    """Console-script entry point."""
    from npdl.cli import bench  # noqa: F401  (registers commands)

    app()
