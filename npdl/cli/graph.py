"""``npdl graph``: the autograd graph of one training step, as Graphviz DOT, SVG or PNG."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import typer

from npdl.atomic import atomic_write
from npdl.cli.app import command, console, fail
from npdl.cli.arguments import output_file

FORMATS = {".dot": None, ".gv": None, ".svg": "svg", ".png": "png"}
NO_DOT = ("writing {name} needs the Graphviz `dot` program, which is not on PATH. Install Graphviz "
          "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz), "
          "or write the DOT text with -o {stem}.dot and render it elsewhere")


def _experiment(source: str, runs_dir: Path, data_root: Path | None):
    """Build what ``npdl train`` builds from a config file, or from a run's folder (its config,
    tokenizers and, when saved, its last weights). Without the dataset on disk the step runs on
    the dataset's example batch, as ``npdl check`` does."""
    from npdl import config as cfgmod
    from npdl import experiment
    from npdl.runs import resolve
    from npdl.train import checkpoint

    path = Path(source)
    run = None
    if path.is_file():
        cfg = cfgmod.load(path)
    else:
        run = resolve(source, runs_dir)
        cfg = cfgmod.load(run.path / "config.yaml")
    exp = experiment.build(cfg, data_root, prepare="auto", run_dir=run.artifacts if run else None)
    have_data = exp.data.prepared   # "auto": read only when nothing needs downloading (as npdl check)
    if run is not None and run.checkpoint_path("last").is_file():
        exp.model.load_state_dict(checkpoint.load(run.checkpoint_path("last"))["model"])
    if have_data:
        batch = next(iter(exp.data.loader("train").batches(0, seed=exp.seed)))
    else:
        batch = exp.data.example_batch()
    return exp, batch, (run.name if run else str(path))


@command()
def graph(source: str = typer.Argument(..., help="A YAML config, or a run folder (or unique run-name prefix)."),
          output: Path = typer.Option(None, "-o", "--output",
                                      help="FILE.dot (DOT text), FILE.svg or FILE.png (need Graphviz's `dot`). "
                                           "Default: DOT text on stdout."),
          depth: str = typer.Option("op", "--depth", help="op: every op | module: one node per module."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder that holds the runs."),
          data_root: Path = typer.Option(None, "--data-root", help="Dataset folder (default: $NPDL_DATA or ./datasets).")):
    """Draw the autograd graph of one training step: ops clustered by module, shapes on the edges."""
    from npdl.nn.graph import record
    from npdl.nn.graph_dot import DEPTHS, to_dot

    if depth not in DEPTHS:
        raise fail(f"--depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    fmt = None
    if output is not None:
        suffix = output.suffix.lower()
        if suffix not in FORMATS:
            raise fail(f"-o {output}: unknown format '{suffix or '(none)'}' (use .dot, .svg or .png)")
        fmt = FORMATS[suffix]
        output_file(output, "-o")  # like every -o: the folder must exist; no folder, FIFO or device
        if fmt and shutil.which("dot") is None:  # before building anything: the answer is known now
            raise fail(NO_DOT.format(name=output.name, stem=output.stem))
    exp, batch, title = _experiment(source, runs_dir, data_root)
    exp.model.train()
    g = record(exp.model, lambda: exp.task.train_step(batch)[0], {"(loss)": exp.loss_fn})
    n_params = sum(n.size for n in g.nodes if n.kind == "param")
    text = to_dot(g, depth, title=f"{title}: one training step, {len(g.ops())} ops, {n_params:,} parameters")
    if output is None:
        typer.echo(text, nl=False)
        return
    if fmt is None:
        atomic_write(output, text)
    else:
        _render(text, fmt, output)
    console.print(f"{len(g.ops())} ops, {len(g.params())} parameters -> {output}")


def _render(text: str, fmt: str, output: Path) -> None:
    """Run ``dot -T<fmt>``; its output replaces ``output`` only when it succeeded."""
    try:
        done = subprocess.run(["dot", f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise fail(f"Graphviz `dot` took over 10 minutes on this graph; write -o {output.stem}.dot and try "
                   "--depth module", code=1) from None
    if done.returncode != 0:
        raise fail(f"Graphviz `dot` failed (exit {done.returncode}): {done.stderr.decode(errors='replace').strip()}",
                   code=1)
    atomic_write(output, done.stdout)
