"""``npdl list``: registered names and their arguments, and the ``train:`` / ``eval:`` keys.

Each entry is a block (its name and summary, then one line per argument: type, default,
description) that wraps at spaces to the terminal's width. Types put spaces between
alternatives (``'relu' | 'gelu'``), so a narrow terminal wraps between choices and never
cuts one off with "...".
"""
from __future__ import annotations

import dataclasses
import inspect
import typing

import typer
from rich.table import Table
from rich.text import Text

from npdl.cli.app import command, console, fail

SETTINGS = ("train", "eval")


def _arg_line(name: str, ann, default, doc: str, required: bool = False) -> Text:
    from npdl.config.argdocs import type_text

    text = Text()
    text.append(name, style="bold")
    text.append(f": {type_text(ann)}")
    text.append(" (required)" if required else f" = {default!r}", style="cyan" if not required else "yellow")
    if doc:
        text.append(f"  {doc}", style="dim")
    return text


def _print(text: Text, indent: int = 0) -> None:
    """``text`` wrapped at spaces to the console's width, every line ``indent`` spaces in (a word
    longer than a line is folded onto the next, never cut)."""
    if not indent:
        console.print(text, overflow="fold")
        return
    grid = Table.grid()
    grid.add_column(width=indent, no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(" " * indent, text)
    console.print(grid)


def _list_registry(kind: str) -> None:
    from npdl.config.argdocs import argument_docs, summary
    from npdl.registry import ALL

    reg = ALL[kind]
    _print(Text(kind, style="bold underline"))
    for name in reg.names():
        _print(Text.assemble((name, "bold green"), f"  {_doc(summary(reg.get(name)))}"), 2)
        params = reg.parameters(name)
        docs = argument_docs(reg.get(name), params)
        for arg, p in params.items():
            empty = p.default is inspect.Parameter.empty
            _print(_arg_line(arg, p.annotation, None if empty else p.default, _doc(docs.get(arg, "")),
                             required=empty), 4)


def _list_dataclass(title: str, cls, indent: int = 0) -> None:
    from npdl.config.argdocs import field_comments, settings_class, summary

    _print(Text.assemble((title, "bold underline"), f"  {_doc(summary(cls))}"), indent)
    hints = typing.get_type_hints(cls, include_extras=True)
    comments = field_comments(cls)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default if f.default is not dataclasses.MISSING else f.default_factory()
        _print(_arg_line(f.name, hints[f.name], default, comments.get(f.name, ""), required), indent + 4)
        nested = settings_class(hints[f.name])
        if nested is not None:
            _list_dataclass(f"{title}.{f.name}", nested, indent + 4)


def _doc(text: str) -> str:
    return text.replace("``", "`")


def _list_settings(kind: str) -> None:
    from npdl.registry import TASKS
    from npdl.train.trainer import TrainSettings

    if kind == "train":
        _list_dataclass("train", TrainSettings)
        return
    for name in TASKS.names():  # each task has its own eval: options (most have none)
        options = TASKS.get(name).eval_options
        if dataclasses.fields(options):
            _list_dataclass(f"eval (task {name})", options)
        else:
            _print(Text.assemble((f"eval (task {name})", "bold underline"), "  no options"))


@command("list")
def list_(kind: str = typer.Argument(None, help="layers | models | losses | optimizers | schedules | datasets "
                                                "| train | eval")):
    """Names a config's `type:` may use, with their arguments; the train: and eval: keys."""
    from npdl import experiment  # noqa: F401  (registers everything)
    from npdl.registry import ALL

    kinds = [kind] if kind else [*ALL, *SETTINGS]
    for k in kinds:
        if k in ALL:
            _list_registry(k)
        elif k in SETTINGS:
            _list_settings(k)
        else:
            raise fail(f"unknown kind '{k}' (choose from {', '.join([*ALL, *SETTINGS])})")
