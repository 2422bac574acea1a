"""``npdl download`` and ``npdl datasets``."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from npdl.cli.app import command, console, err_console, fail, stage
from npdl.cli.progress import TransferBars


@command(short_help="Fetch and verify datasets.")
def download(names: list[str] = typer.Argument(..., help="Dataset names (see `npdl datasets`).", metavar="NAME"),
             mirror: str = typer.Option(None, "--mirror", help="Local folder or URL with the same file names "
                                                                 "(default: $NPDL_MIRROR).", metavar="DIR|URL"),
             force: bool = typer.Option(False, "--force", help="Download again even if present and valid."),
             verify: bool = typer.Option(False, "--verify", help="Only check the files already on disk."),
             root: Path = typer.Option(None, "--data-root", help="Dataset folder (default: $NPDL_DATA or ./datasets).",
                                       metavar="DATA_ROOT")):
    """Fetch datasets from their official URLs (or a mirror), verifying checksums."""
    from npdl.data import download as dl
    from npdl.data.sources import get_source

    for name in names:
        get_source(name)  # unknown names fail before anything is fetched
    bad = False
    for name in names:
        if verify:
            problems = dl.verify(name, root)
            if problems:
                bad = True
                console.print(Text(f"{name}: {len(problems)} problem(s)", style="red"), soft_wrap=True)
                for p in problems:
                    console.print(f"  {p}", soft_wrap=True)
            else:
                console.print(Text.assemble((f"{name}: all files present and verified", "green"),
                                            f" ({dl.dataset_dir(name, root)})"), soft_wrap=True)
            continue
        with stage(f"downloading {name}"):
            path = dl.download(name, root, mirror=mirror, force=force, progress=TransferBars(err_console))
        console.print(Text.assemble((name, "green"), f": ready in {path}"), soft_wrap=True)
    if bad:
        raise fail("some datasets failed verification; run `npdl download NAME --force` to fetch them again")


@command()
def datasets(root: Path = typer.Option(None, "--data-root", help="Dataset folder (default: $NPDL_DATA or ./datasets).",
                                       metavar="DATA_ROOT")):
    """List the datasets npdl can download, and which are on disk."""
    from npdl.data import download as dl
    from npdl.data.sources import SOURCES

    table = Table(title=f"datasets (in {dl.data_root(root)})")
    for col in ("name", "on disk", "files", "description"):
        table.add_column(col)
    for name, src in sorted(SOURCES.items()):
        have = dl.is_downloaded(name, root)
        note = " (mirror only)" if getattr(src, "mirror_only", False) else ""
        table.add_row(name, "yes" if have else "no", str(len([f for f in src.files if not f.optional])),
                      src.description + note)
    console.print(table)
