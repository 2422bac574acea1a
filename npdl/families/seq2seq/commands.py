"""``npdl translate RUN "ein mann ..."``: decode sentences with a trained seq2seq run.

The run's own tokenizer(s) (``artifacts/``) and config rebuild the model; no dataset files are
read. Each input line gives one output line (an empty input line gives an empty output line).
A source longer than the model's ``max_len`` is truncated (its first max_len - 1 tokens and
<eos> are kept) and a note naming the line goes to stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from npdl.cli.app import UsageError, command, err_console, fail
from npdl.cli.train import RUNS_HELP, ROOT_HELP


@command()
def translate(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
              texts: list[str] = typer.Argument(..., help='Source sentences; "-" reads one per line from stdin.'),
              beam: int = typer.Option(None, "--beam", min=1, help="Beam size (1 = greedy; default: the run's "
                                                                   "eval.beam_size)."),
              length_penalty: float = typer.Option(None, "--length-penalty", min=0.0,
                                                   help="GNMT length penalty alpha (default: the run's)."),
              max_len: int = typer.Option(None, "--max-len", min=1, help="Most tokens to generate."),
              checkpoint_: str = typer.Option("best", "--checkpoint", help="best | last | step-N | a .npz path."),
              runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
              data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP)):
    """Translate sentences with a seq2seq run (greedy or beam search, KV-cached)."""
    from npdl import experiment

    def seq2seq_only(r, exp):
        if exp.data.task != "seq2seq":
            raise fail(f"run {r.name} trains a '{exp.data.task}' task; npdl translate needs a seq2seq run")

    r, exp, _, _ = experiment.from_run(run, runs_dir, checkpoint_, data_root, check=seq2seq_only)

    lines = [line.rstrip("\r\n") for line in sys.stdin] if texts == ["-"] else list(texts)
    sources, slots = [], []
    for i, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            ids, cut = exp.data.encode_source(text)
        except ValueError as exc:
            raise UsageError(f"input {i}: {exc}") from None
        if cut:
            err_console.print(f"note: input {i} is longer than the model's max_len ({exp.data.max_len} tokens "
                              f"with <eos>) and was truncated", markup=False)
        sources.append(ids)
        slots.append(i - 1)
    outputs = [""] * len(lines)
    if sources:
        beam_size = beam or exp.task.options.beam_size
        hyps = exp.task.decode_sources(sources, beam_size, length_penalty, max_len)
        for slot, h in zip(slots, hyps):
            outputs[slot] = exp.data.decode_target(h)
    for out in outputs:
        typer.echo(out)
