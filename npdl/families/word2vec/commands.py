"""``npdl neighbors``, ``npdl analogy`` and the word2vec format of ``npdl export``: querying a word2vec run.

They need only the run folder (its config, vocabulary artifact and checkpoint), not the corpus.
"""
from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from npdl.cli.app import command, console, fail, stage
from npdl.cli.arguments import check_checkpoint, output_file
from npdl.cli.train import CKPT_METAVAR, RUNS_HELP

CKPT_HELP = "best | last | step-N | a .npz path (default: best, else last)."
MAX_K = 10_000  # more answers than anyone reads; also bounds the table


def _load_task(run: str, runs_dir: Path, checkpoint_: str):
    """The run's word2vec task with the checkpoint's weights loaded; ``(run, task, checkpoint path)``."""
    from npdl import experiment

    def word2vec_only(r, exp):
        if exp.data.task != "word2vec":
            raise fail(f"run {r.name} trains a '{exp.data.task}' task; these commands need a word2vec run")

    check_checkpoint(checkpoint_)
    with stage(f"loading run {run}"):
        r, exp, path, _ = experiment.from_run(run, runs_dir, checkpoint_, check=word2vec_only)
    return r, exp.task, path


def _print(title: str, rows: list[tuple[str, float]]) -> None:
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("word")
    table.add_column("cosine", justify="right")
    for i, (word, sim) in enumerate(rows, 1):
        table.add_row(str(i), word, f"{sim:.4f}")
    console.print(table)


@command(short_help="Nearest words of a word2vec run.")
def neighbors(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
              word: str = typer.Argument(..., help="The query word."),
              k: int = typer.Option(10, "-k", "--k", min=1, max=MAX_K, help="How many neighbours."),
              runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
              checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR)):
    """The k nearest words to WORD by cosine similarity of the word vectors."""
    r, task, _ = _load_task(run, runs_dir, checkpoint_)
    _print(f"{r.name}: nearest to '{word}'", task.neighbors(word, k))


@command(short_help="Word analogies: A is to B as C is to ?")
def analogy(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
            a: str = typer.Argument(..., help="A, in: A is to B as C is to ?"),
            b: str = typer.Argument(..., help="B"),
            c: str = typer.Argument(..., help="C"),
            k: int = typer.Option(5, "-k", "--k", min=1, max=MAX_K, help="How many answers."),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
            checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR)):
    """A is to B as C is to ?: the best answers by 3CosAdd (e.g. man king woman -> queen)."""
    r, task, _ = _load_task(run, runs_dir, checkpoint_)
    _print(f"{r.name}: {a} : {b} :: {c} : ?", task.analogy(a, b, c, k))


def export_vectors(run: str, binary: bool, output: Path | None, runs_dir: Path, checkpoint_: str) -> None:
    """``npdl export RUN --format word2vec``: the word vectors in word2vec's text or binary format
    (gensim's ``KeyedVectors.load_word2vec_format`` reads them). The command is npdl/cli/export.py."""
    if output is not None:
        output_file(output, "-o")
    r, task, path = _load_task(run, runs_dir, checkpoint_)
    out = output or r.path / f"vectors-{path.stem}.{'bin' if binary else 'txt'}"
    task.export(out, binary=binary)
    console.print(f"wrote {len(task.words):,} vectors of {task.model.dim} dimensions to {out}", soft_wrap=True)
