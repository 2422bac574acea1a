"""Typer application and the error policy every command follows.

User errors (bad config, missing data, mismatched checkpoint, ...) print one short message
and exit with code 2; ``npdl --debug ...`` shows the traceback instead. Anything else is a
bug: a one-line message pointing at ``--debug``, exit code 1.
"""
from __future__ import annotations

import functools

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="npdl: deep learning from the ground up in NumPy.")

STATE = {"debug": False}
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors.")) -> None:
    """npdl: deep learning from the ground up in NumPy."""
    STATE["debug"] = debug


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the input is wrong', not 'npdl is broken'."""
    from npdl.data.sources import DataError
    from npdl.data.tokenizer_base import TokenizerError
    from npdl.data.vocab import VocabError
    from npdl.nn.attention import ContextTooLongError
    from npdl.nn.module import StateDictError
    from npdl.optim.optimizer import OptimizerStateError
    from npdl.registry import ConfigError
    from npdl.runs import RunError
    from npdl.train.checkpoint import CheckpointError

    return (ConfigError, DataError, RunError, CheckpointError, StateDictError, OptimizerStateError,
            TokenizerError, VocabError, ContextTooLongError, UsageError)


class UsageError(ValueError):
    """A command used wrongly in a way Typer cannot see (e.g. mutually exclusive options)."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and return the Exit to raise: ``raise fail("...")``."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def command(*args, **kwargs):
    """``@command()``: register a Typer command wrapped in the error policy."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            try:
                return fn(*a, **k)
            except typer.Exit:
                raise
            except KeyboardInterrupt:
                err_console.print("interrupted")
                raise typer.Exit(130) from None
            except user_errors() as exc:
                if STATE["debug"]:
                    raise
                raise fail(_escape(str(exc))) from None
            except Exception as exc:  # noqa: BLE001 - anything else is a bug: say so briefly
                if STATE["debug"]:
                    raise
                raise fail(f"internal error: {type(exc).__name__}: {_escape(str(exc))} "
                           "(run `npdl --debug ...` for the traceback)", code=1) from None

        return app.command(*args, **kwargs)(wrapper)

    return deco


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def main() -> None:
    """Console-script entry point (importing this module ran ``npdl/cli/__init__.py``, which registered
    every command)."""
    from npdl.runtime import keep_freed_memory

    keep_freed_memory()  # see npdl/runtime.py: fewer page faults per training step
    app(prog_name="npdl")

