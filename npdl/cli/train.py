"""``npdl train``, ``resume``, ``check`` and ``eval``."""
from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from npdl.atomic import atomic_write
from npdl.cli.app import command, console, err_console, fail
from npdl.cli.progress import ProgressReporter, fmt_metrics

SET_HELP = "Override a config value: --set optimizer.lr=3e-4 (value parsed as YAML). Repeatable."
RUNS_HELP = "Folder that holds the runs."
ROOT_HELP = "Dataset folder (default: $NPDL_DATA or ./datasets)."


def _load(config: Path, sets: list[str], name: str | None = None):
    from npdl import config as cfgmod

    cfg = cfgmod.load(config, sets or [])
    if name:
        cfg.data["name"] = name
    return cfg


def _summary_table(run_name: str, summary: dict) -> Table:
    table = Table(title=f"run {run_name}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    best = summary.get("best") or {}
    table.add_row("steps", f"{summary['steps']:,}")
    table.add_row("epochs", str(summary["epochs"]))
    table.add_row("wall time", f"{summary['wall_seconds']:.1f} s")
    if best.get("value") is not None:
        table.add_row(f"best {best['metric']} ({best['mode']})", f"{best['value']:.4f} @ step {best['step']}")
    for k, v in (summary.get("test") or {}).items():
        table.add_row(f"test.{k}", f"{v:.4f}" if isinstance(v, float) else str(v))
    return table


def _fit(exp, run, resumed_state=None) -> None:
    from npdl.train.trainer import NonFiniteError, TrainingInterrupted

    reporter = ProgressReporter(console, exp.total_steps, unit=getattr(exp.data, "unit", "items"))
    trainer = exp.trainer(run, callbacks=[reporter])
    if resumed_state is not None:
        trainer.restore(resumed_state)
        run.truncate_metrics(trainer.step)
        console.print(f"resuming {run.name} at step {trainer.step} (epoch {trainer.epoch}, batch {trainer.batch_in_epoch})")
    try:
        summary = trainer.fit()
    except TrainingInterrupted as exc:
        reporter.stop()
        run.set_status("interrupted", steps=trainer.step)
        err_console.print(f"[yellow]{exc}[/]; checkpoint written. Continue with: npdl resume {run.path}", markup=True)
        raise typer.Exit(130) from None
    except NonFiniteError as exc:
        reporter.stop()
        raise fail(f"{exc}\nstopped; the last good checkpoint is kept in {run.checkpoints}", code=1) from None
    except BaseException as exc:
        reporter.stop()
        if isinstance(exc, KeyboardInterrupt):
            run.set_status("interrupted", steps=trainer.step)
        else:
            run.set_status("failed", error=f"{type(exc).__name__}: {exc}", steps=trainer.step)
        raise
    console.print(_summary_table(run.name, summary))
    console.print(f"run folder: {run.path}")


@command()
def train(config: Path = typer.Argument(None, help="YAML experiment config."),
          set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
          name: str = typer.Option(None, "--name", help="Run name (default: the config's name)."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
          resume: str = typer.Option(None, "--resume", help="Continue this run instead of starting one."),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP)):
    """Train the model a YAML config describes; everything lands in runs/<name>-<time>/."""
    if resume:
        if config is not None or set_ or name:
            raise fail("--resume continues a run exactly as it was configured: give no CONFIG, --set or --name")
        return _resume(resume, runs_dir, data_root)
    if config is None:
        raise fail("give a CONFIG file to train (or --resume RUN)")
    from npdl import experiment
    from npdl.runs import Run

    cfg = _load(config, set_, name)
    exp = experiment.build(cfg, data_root)          # validates and reads data before a run folder exists
    run = Run.create(runs_dir, cfg.data["name"])
    run.write_config(cfg.to_yaml())
    exp.data.save_artifacts(run.artifacts)
    run.start_manifest(exp.seed, exp.data.checksums(), argv=["npdl"] + sys.argv[1:])
    _warn(exp)
    console.print(f"run {run.name}: {exp.model.num_parameters():,} parameters, {exp.total_steps:,} steps")
    _fit(exp, run)


def _warn(exp) -> None:
    for text in exp.warnings:
        err_console.print(f"warning: {text}", markup=False, soft_wrap=True)


def _open_run(spec: str, runs_dir: Path):
    from npdl import config as cfgmod
    from npdl.runs import resolve

    run = resolve(spec, runs_dir)
    cfg = cfgmod.load(run.path / "config.yaml")
    return run, cfg


def _resume(spec: str, runs_dir: Path, data_root: Path | None) -> None:
    from npdl import experiment
    from npdl.train import checkpoint

    run, cfg = _open_run(spec, runs_dir)
    status = run.manifest().get("status")
    if status == "completed":
        raise fail(f"run {run.name} already completed ({run.manifest().get('steps')} steps); nothing to resume")
    last = run.checkpoint_path("last")
    if not last.is_file():
        raise fail(f"run {run.name} has no checkpoint to resume from ({last} is missing)")
    exp = experiment.build(cfg, data_root, run_dir=run.artifacts)
    _warn(exp)
    state = checkpoint.load(last)
    run.update_manifest(status="running", resumed=True)
    _fit(exp, run, resumed_state=state)


@command()
def resume(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
           runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
           data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP)):
    """Continue an interrupted run from its last checkpoint, with nothing but its folder."""
    _resume(run, runs_dir, data_root)


@command()
def check(configs: list[Path] = typer.Argument(..., help="One or more YAML configs."),
          set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP)):
    """Validate configs without training and print each model's summary from a dry forward pass."""
    import npdl
    from npdl import experiment
    from npdl.nn.trace import trace

    for path in configs:
        cfg = _load(path, set_)
        exp = experiment.build(cfg, data_root, prepare="auto")   # reads the data only if it is here
        _warn(exp)
        have_data, source = exp.data.prepared, exp.data.source
        model = exp.model
        model.eval()
        with npdl.no_grad(), trace(model, max_depth=2) as records:
            exp.task.dry_run(exp.data.example_batch())
        table = Table(title=f"{path}  ({type(model).__name__}, {model.num_parameters():,} parameters)")
        for col in ("layer", "type", "output shape", "parameters"):
            table.add_column(col, justify="right" if col == "parameters" else "left")
        seen = set()
        for r in records:
            if r.name in seen:
                continue
            seen.add(r.name)
            shapes = ", ".join(str(s) for s in r.shapes)
            table.add_row(r.name, r.kind, shapes, f"{r.params:,}" if r.params else "")
        console.print(table)
        note = "" if have_data else f" (dataset '{source}' not downloaded: shapes from its declared sizes)"
        console.print(f"[green]ok[/] {path}{note}")


@command("eval")
def eval_(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
          checkpoint_: str = typer.Option("best", "--checkpoint", help="best | last | step-N | a .npz path."),
          split: str = typer.Option("test", "--split", help="Which split to evaluate."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP),
          task_: str = typer.Option(None, "--task", help="A task-specific evaluation (e.g. analogy).")):
    """Evaluate a run's checkpoint on a split; prints a table and writes it into the run."""
    from npdl import experiment

    r, exp, path, state = experiment.from_run(run, runs_dir, checkpoint_, data_root, prepare=True)
    evaluate = exp.task.evaluate
    if task_:
        evaluate = getattr(exp.task, f"evaluate_{task_}", None)
        if evaluate is None:
            raise fail(f"this run's task ({exp.data.task}) has no '{task_}' evaluation")
    # task evaluations that work on a split (beam search) get --split; others have their own data
    if "split" in inspect.signature(evaluate).parameters:
        if split not in exp.data.splits():
            raise fail(f"split '{split}' not in this dataset (splits: {', '.join(exp.data.splits())})")
        metrics = evaluate(split)
    else:
        metrics = evaluate()
    table = Table(title=f"{r.name}: {task_ or split} ({path.name})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, dict):
            continue
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)
    for name, sub in metrics.items():
        if isinstance(sub, dict):
            console.print(f"{name}: {fmt_metrics(sub)}")
    out = r.path / f"eval-{task_ or split}-{path.stem}.json"
    atomic_write(out, json.dumps({"checkpoint": str(path), "split": split, "task": task_, "metrics": metrics},
                                 indent=2, default=float))
    r.log({"event": "eval_cli", "split": task_ or split, "checkpoint": path.name,
           "step": state["meta"]["step"], **{k: v for k, v in metrics.items() if not isinstance(v, dict)}})
    console.print(f"written to {out}")
