"""``npdl export RUN --format safetensors``: a run's weights for the PyTorch world.

``--format word2vec`` (the default) writes a word2vec run's vectors instead
(``npdl.families.word2vec.commands.export_vectors``); ``--format safetensors`` works for every
model family. Names and layouts are PyTorch's
(``npdl.nn.pytorch_names``), so ``torch_module.load_state_dict(safetensors.torch.load_file(f))``
with ``strict=True`` loads them into the equivalent torch module (README: "Weights for PyTorch").
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

from npdl.cli.app import command, console, fail
from npdl.cli.train import CKPT_METAVAR, RUNS_HELP

FORMATS = ("word2vec", "safetensors")
CKPT_HELP = "best | last | step-N | a .npz path (default: best, else last)."


@command(short_help="Write word vectors or any run's weights (safetensors).")
def export(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
           format_: str = typer.Option("word2vec", "--format",
                                       help="word2vec (word vectors) | safetensors (any run's weights for PyTorch).",
                                       metavar="|".join(FORMATS)),
           binary: bool = typer.Option(False, "--binary", help="word2vec's binary format instead of text."),
           output: Path = typer.Option(None, "-o", "--output", help="File to write (default: in the run folder)."),
           runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
           checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR)):
    """Write a word2vec run's vectors (word2vec text/binary format), or any run's weights as .safetensors."""
    from npdl.cli.arguments import check_checkpoint, output_file

    if format_ not in FORMATS:
        raise fail(f"--format: unknown export format {format_!r} (formats: {', '.join(FORMATS)})")
    check_checkpoint(checkpoint_)
    if format_ == "word2vec":
        from npdl.families.word2vec.commands import export_vectors

        export_vectors(run, binary, output, runs_dir, checkpoint_)
        return
    if binary:
        raise fail("--binary is for --format word2vec")
    if output is not None:
        output_file(output, "-o")
    export_safetensors(run, output, runs_dir, checkpoint_)


def export_safetensors(run: str, output: Path | None, runs_dir: Path, checkpoint_: str) -> Path:
    """Write the run's checkpoint as ``.safetensors`` (default: ``weights-<checkpoint>.safetensors``
    in the run folder); returns the file written.

    Metadata (all strings, as the format wants): ``format`` = ``pt`` (what torch loaders expect),
    ``npdl_version``, ``model_type``, ``config`` (the run's resolved config as JSON),
    ``checkpoint`` and ``step``.
    """
    import npdl
    from npdl import experiment
    from npdl.nn.pytorch_names import to_torch
    from npdl.train import weights

    weights.require_safetensors()  # before any work: say how to install it
    r, exp, path, state = experiment.from_run(run, runs_dir, checkpoint_)
    cfg = exp.cfg.data
    metadata = {"format": "pt", "npdl_version": npdl.__version__, "model_type": str(cfg["model"]["type"]),
                "config": json.dumps(cfg, default=str), "checkpoint": path.name,
                "step": str(state.get("meta", {}).get("step", ""))}
    out = output or r.path / f"weights-{path.stem}.safetensors"
    weights.save_safetensors(exp.model, out, metadata)
    tensors = to_torch(exp.model)
    n = sum(a.size for a in tensors.values())
    console.print(f"wrote {len(tensors)} tensors ({n:,} values) of {r.name} ({path.name}) to {out}", soft_wrap=True)
    return out
