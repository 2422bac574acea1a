"""``npdl predict RUN --pair Q1 Q2``: class probabilities from a trained text classifier.

The run's saved tokenizer (``artifacts/tokenizer.json``) encodes the input, so the ids are
exactly those the model was trained on; the dataset itself is not needed. For QQP runs it
prints the duplicate probability. A pair longer than the model's ``max_len`` is truncated
(longer question first, markers kept) with a printed note; an empty question is an error.
"""
from __future__ import annotations

from pathlib import Path

import typer

from npdl.cli.app import UsageError, command, console, stage, warn
from npdl.cli.arguments import DEVICE_HELP, check_checkpoint, use_device
from npdl.cli.train import CKPT_HELP, CKPT_METAVAR, RUNS_HELP


@command(short_help="Classify a text or a question pair.")
def predict(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
            texts: list[str] = typer.Argument(None, help="A text to classify (single-text models).", metavar="TEXT"),
            pair: tuple[str, str] | None = typer.Option(None, "--pair", help="Two questions: --pair \"Q1\" \"Q2\".",
                                                        metavar="Q1 Q2"),
            checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
            device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the run's own.",
                                       metavar="DEVICE")):
    """Classify a question pair (duplicate probability) or a text with a trained classifier run."""
    use_device(device)
    import numpy as np

    from npdl import experiment

    given = [t for t in pair if t is not None] if pair else []  # click may hand over (None, None)
    if given and texts:
        raise UsageError("give either --pair Q1 Q2 or a single text, not both")
    inputs = given or list(texts or [])
    if not inputs:
        raise UsageError("nothing to classify: give --pair \"Q1\" \"Q2\" (or a text for single-text models)")

    def classifier_only(r, exp):
        if not hasattr(exp.task, "probabilities") or not hasattr(exp.data, "encode_texts"):
            raise UsageError(f"run {r.name} is not a text classifier (task {exp.data.task}); npdl predict needs one")

    # sizes from the saved tokenizer: no dataset needed
    check_checkpoint(checkpoint_)
    with stage(f"loading run {run}"):
        r, exp, _, _ = experiment.from_run(run, runs_dir, checkpoint_, check=classifier_only)
    batch, truncated = exp.data.encode_texts(inputs)
    if truncated:
        warn(f"note: the input is longer than the model's max_len ({exp.data.max_len} tokens); "
             "it was truncated (longer question first)")
    probs = exp.task.probabilities(batch)[0]
    names = list(getattr(exp.data, "class_names", ())) or [str(i) for i in range(len(probs))]
    label = names[int(np.argmax(probs))]
    if getattr(exp.data, "pairs", False) and len(probs) == 2:
        console.print(f"duplicate probability: {probs[1]:.4f}  ({label})")
    else:
        for name, p in zip(names, probs):
            console.print(f"{name}: {p:.4f}")
        console.print(f"prediction: {label}")
