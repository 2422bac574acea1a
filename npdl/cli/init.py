"""``npdl init MODEL``: a complete, commented config to start from (see ``npdl.config.starter``)."""
from __future__ import annotations

from pathlib import Path

import typer

from npdl.atomic import atomic_write
from npdl.cli.app import command, console, err_console
from npdl.cli.arguments import output_file


@command(short_help="Write a complete config for a model, every argument commented.")
def init(model: str = typer.Argument(..., help="A registered model (npdl list models)."),
         data: str = typer.Option(None, "--data", help="The dataset (default: the model's usual one).",
                                  metavar="DATASET"),
         output: Path = typer.Option(None, "-o", "--output", help="Write to FILE instead of stdout.",
                                     metavar="FILE"),
         force: bool = typer.Option(False, "--force", help="Replace FILE when it exists.")):
    """Write a complete config for MODEL: every section and every argument with its default and
    a comment; `npdl check` accepts it as written and `npdl train` runs it."""
    from npdl import experiment  # noqa: F401  (registers every model and dataset)
    from npdl.cli.app import UsageError
    from npdl.config.starter import starter

    text = starter(model, data)
    if data is not None:  # a pairing the registries allow may still not build (mlp's hidden on text8)
        _check_pairing(text, model, data)
    if output is None:
        console.out(text, end="", highlight=False)
        return
    output_file(output, "-o")
    if output.exists() and not force:
        raise UsageError(f"{output} exists; choose another name or add --force to replace it")
    atomic_write(output, text)
    err_console.print(f"wrote {output}: npdl check {output}; npdl train {output}", soft_wrap=True)


def _check_pairing(text: str, model: str, data: str) -> None:
    """Refuse ``--data`` when the written config would not pass ``npdl check`` (the promise of init)."""
    import yaml

    from npdl import config as cfgmod
    from npdl import experiment

    try:
        experiment.build(cfgmod.from_dict(yaml.safe_load(text), "npdl init"), None, prepare=False)
    except cfgmod.ConfigError as exc:
        problems = "; ".join(" ".join(str(p).split()) for p in getattr(exc, "problems", None) or [exc])
        raise cfgmod.ConfigError(f"--data {data}: model '{model}' cannot train on it ({problems})") from None
