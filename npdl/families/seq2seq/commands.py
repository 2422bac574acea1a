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

from npdl.cli.app import UsageError, command, fail, stage, warn
from npdl.cli.arguments import DEVICE_HELP, check_checkpoint, number_between, use_device
from npdl.cli.train import CKPT_HELP, CKPT_METAVAR, ROOT_HELP, RUNS_HELP

MAX_BEAM = 256        # hypotheses kept per sentence; wider beams only cost memory
MAX_LEN = 10_000      # tokens generated per sentence


@command(short_help="Translate with a seq2seq run.")
def translate(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
              texts: list[str] = typer.Argument(..., help='Source sentences; "-" reads one per line from stdin.',
                                                metavar="TEXT"),
              beam: int = typer.Option(None, "--beam", min=1, max=MAX_BEAM,
                                       help="Beam size (1 = greedy; default: the run's eval.beam_size)."),
              length_penalty: float = typer.Option(None, "--length-penalty", callback=number_between(0.0, 10.0),
                                                   help="GNMT length penalty alpha, 0 to 10 (default: the run's)."),
              max_len: int = typer.Option(None, "--max-len", min=1, max=MAX_LEN, help="Most tokens to generate."),
              checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR),
              runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
              data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP),
              device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the run's own.",
                                         metavar="DEVICE")):
    """Translate sentences with a seq2seq run (greedy or beam search, KV-cached)."""
    use_device(device)
    from npdl import experiment

    def seq2seq_only(r, exp):
        if exp.data.task != "seq2seq":
            raise fail(f"run {r.name} trains a '{exp.data.task}' task; npdl translate needs a seq2seq run")

    check_checkpoint(checkpoint_)
    with stage(f"loading run {run}"):
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
            warn(f"note: input {i} is longer than the model's max_len ({exp.data.max_len} tokens "
                 f"with <eos>) and was truncated")
        sources.append(ids)
        slots.append(i - 1)
    outputs = [""] * len(lines)
    if sources:
        beam_size = beam or exp.task.options.beam_size
        with stage(f"decoding {len(sources)} sentence(s) with beam {beam_size}"):
            hyps = exp.task.decode_sources(sources, beam_size, length_penalty, max_len)
        for slot, h in zip(slots, hyps):
            outputs[slot] = exp.data.decode_target(h)
    for out in outputs:
        typer.echo(out)
