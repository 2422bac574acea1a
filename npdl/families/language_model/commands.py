"""``npdl sample``: text from a trained language-model run (word or character level)."""
from __future__ import annotations

from pathlib import Path

import typer

from npdl.cli.app import command, console, fail, stage, warn
from npdl.cli.arguments import DEVICE_HELP, check_checkpoint, number_between, use_device
from npdl.cli.train import CKPT_HELP, CKPT_METAVAR, ROOT_HELP, RUNS_HELP

MAX_LENGTH = 100_000      # tokens per call: beyond this, write a loop (and a file) instead
MIN_TEMPERATURE = 1e-3    # below this, logits / T overflow: 0 (greedy) is what such a value means
MAX_SEED = 2**32 - 1


@command(short_help="Text from a language-model run.")
def sample(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
           prompt: str = typer.Option("", "--prompt", help="Text to continue (default: start a fresh sentence)."),
           length: int = typer.Option(100, "--length", min=0, max=MAX_LENGTH,
                                      help="How many tokens (words or characters) to draw."),
           temperature: float = typer.Option(1.0, "--temperature", callback=number_between(MIN_TEMPERATURE, 1000, True),
                                             help=f"Softmax temperature: 0 = greedy, else {MIN_TEMPERATURE} to 1000."),
           top_k: int = typer.Option(None, "--top-k", min=1, help="Draw only among the k most likely tokens."),
           seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED,
                                    help="Random seed: the same seed gives the same text."),
           checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR),
           runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
           data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP),
           device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the run's own.",
                                      metavar="DEVICE")):
    """Continue a prompt with a trained language model (reproducible with --seed)."""
    use_device(device)
    import numpy as np

    from npdl import experiment
    from npdl.families.language_model.sampling import sample as draw

    check_checkpoint(checkpoint_)  # (the numbers are checked by their options' ranges)

    def language_model_only(r, exp):
        data = exp.data
        if data.task != "language_model" or not hasattr(data, "encode_prompt"):
            raise fail(f"run {r.name} is not a language model (its task is '{data.task}'); npdl sample needs one")
        if getattr(data, "vocab", None) is None:
            raise fail(f"run {r.name} has no saved vocabulary in {r.artifacts}; it cannot be sampled from")

    # the vocabulary comes from the run's artifacts, so sampling needs no dataset on disk
    with stage(f"loading run {run}"):
        r, exp, _, _ = experiment.from_run(run, runs_dir, checkpoint_, data_root, check=language_model_only)
    data = exp.data
    ids, unknown = data.encode_prompt(prompt)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        warn(f"note: {len(unknown)} prompt token(s) not in the vocabulary, read as <unk>: {shown}")
    context = ids if len(ids) else np.array([data.start_id()], np.int64)
    with stage(f"sampling {length:,} tokens"):
        out = draw(exp.model, context, length, temperature, top_k, np.random.default_rng(seed))
    text = data.decode(out)
    joiner = "" if data.level == "char" or not prompt or text.startswith("\n") else " "
    console.print(prompt + joiner + text, markup=False, highlight=False, soft_wrap=True)
