"""``npdl train``, ``resume``, ``check`` and ``eval``."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from npdl.cli.app import command, console, err_console, fail, stage, warn
from npdl.cli import launch
from npdl.cli.arguments import DEVICE_HELP, check_checkpoint, on_device, regular_file
from npdl.cli.progress import ProgressReporter, fmt_epochs, fmt_metrics

SET_HELP = "Override a config value: --set optimizer.lr=3e-4 (value parsed as YAML). Repeatable."
RUNS_HELP = "Folder that holds the runs."
ROOT_HELP = "Dataset folder (default: $NPDL_DATA or ./datasets)."
CKPT_HELP = "best | last | step-N | a .npz path."
CKPT_METAVAR = "best|last|step-N|PATH"
SET_METAVAR = "KEY=VALUE"


def _load(config: Path, sets: list[str], name: str | None = None):
    from npdl import config as cfgmod

    regular_file(config, "config")  # a FIFO or device would block or never end
    cfg = cfgmod.load(config, sets or [])
    if name:
        cfg.data["name"] = name
    return cfg


def _summary_table(run_name: str, summary: dict, epochs: float | None = None) -> Table:
    table = Table(title=f"run {run_name}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    best = summary.get("best") or {}
    table.add_row("steps", f"{summary['steps']:,}")
    table.add_row("epochs", fmt_epochs(summary["epochs"] if epochs is None else epochs))
    table.add_row("wall time", f"{summary['wall_seconds']:.1f} s")
    if best.get("value") is not None:
        table.add_row(f"best {best['metric']} ({best['mode']})", f"{best['value']:.4f} @ step {best['step']}")
    for k, v in (summary.get("test") or {}).items():
        table.add_row(f"test.{k}", f"{v:.4f}" if isinstance(v, float) else str(v))
    return table


def _kept_checkpoint(run) -> str:
    """What survives in the run folder, for the NaN message (never 'kept' in an empty folder)."""
    from npdl.train import checkpoint

    last = run.checkpoint_path("last")
    step = checkpoint.read_step(last) if last.is_file() else None
    if step is None:
        return "no checkpoint was written yet (the first non-finite value came before the first checkpoint)"
    return f"the last good checkpoint (step {step}) is kept: {last}"


def _fit(exp, run, resumed_state=None, source=None, comm=None) -> None:
    import os
    import socket

    from npdl import api
    from npdl.runs import DiskFullError
    from npdl.train.distributed import LOCAL
    from npdl.train.trainer import NonFiniteError, TrainingInterrupted

    comm = comm or LOCAL
    reporter = ProgressReporter(console, exp.total_steps, unit=getattr(exp.data, "unit", "items"))
    trainer = exp.trainer(run, callbacks=[reporter] if comm.root else [], dist=comm)
    hosts = comm.hosts() if comm.mpi is not None else None  # collective: every rank
    if resumed_state is not None:
        trainer.restore(resumed_state, source=source)  # raises before anything in the run changes
        dropped = run.truncate_metrics(trainer.step, trainer.logged_after_checkpoint)
        run.update_manifest(status="running", resumed=True, pid=os.getpid(), host=socket.gethostname())
        console.print(f"resuming {run.name} at step {trainer.step} (epoch {trainer.epoch}, batch {trainer.batch_in_epoch})"
                      + (f"; {dropped} events logged after that step removed" if dropped else ""))
    run.update_manifest(world_size=comm.size, **({"hosts": hosts} if hosts else {}))
    try:
        with stage(f"training {run.name}"):
            summary = api.fit(trainer, run)  # keeps the run's status true however it stops
    except TrainingInterrupted as exc:
        reporter.stop()
        warn(f"{exc}; checkpoint written. Continue with: npdl resume {run.path}")
        raise typer.Exit(130 if exc.signum == signal.SIGINT else 128 + exc.signum) from None
    except NonFiniteError as exc:
        reporter.stop()
        raise fail(f"{exc}\nstopped; {_kept_checkpoint(run)}", code=1) from None
    except DiskFullError as exc:
        reporter.stop()
        raise fail(str(exc)) from None
    except BaseException:
        reporter.stop()
        raise
    console.print(_summary_table(run.name, summary, _epochs_done(exp, trainer)))
    console.print(f"run folder: {run.path}", soft_wrap=True)
    loggers = exp.settings.loggers or ()
    if "csv" in loggers:
        console.print(f"metrics table: {run.path / 'metrics.csv'}", soft_wrap=True)
    if "tensorboard" in loggers:
        console.print(f"TensorBoard: tensorboard --logdir {run.path / 'tensorboard'}", soft_wrap=True)


def _epochs_done(exp, trainer) -> float:
    """Epochs trained, with the fraction of an epoch that max_steps cut short (0.4, not 0)."""
    try:
        batches = len(exp.data.loader("train"))
    except Exception:  # noqa: BLE001 - the summary falls back to whole epochs
        return float(trainer.epoch)
    return trainer.epoch + (trainer.batch_in_epoch / batches if batches else 0.0)


@command(short_help="Train a model from a YAML config.")
def train(config: Path = typer.Argument(None, help="YAML experiment config."),
          set_: list[str] = typer.Option(None, "--set", help=SET_HELP, metavar=SET_METAVAR),
          name: str = typer.Option(None, "--name", help="Run name (default: the config's name)."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
          resume: str = typer.Option(None, "--resume", help="Continue this run instead of starting one.",
                                     metavar="RUN"),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP),
          procs: int = typer.Option(1, "--procs", min=1, help=launch.PROCS_HELP, metavar="N"),
          device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Recorded in the run's config.",
                                     metavar="DEVICE")):
    """Train the model a YAML config describes; everything lands in runs/<name>-<time>/."""
    if resume:
        if config is not None or set_ or name:
            raise fail("--resume continues a run exactly as it was configured: give no CONFIG, --set or --name")
        with on_device(device):
            return _resume(resume, runs_dir, data_root, procs, device)
    if config is None:
        raise fail("give a CONFIG file to train (or --resume RUN)")
    if device:   # the same as --set device=...: the run's config records where it trained
        set_ = [*(set_ or []), f"device={device}"]
    if _relaunch(procs):
        args = ["train", str(config), *[a for v in set_ or [] for a in ("--set", v)], "--runs-dir", str(runs_dir)]
        args += (["--name", name] if name else []) + (["--data-root", str(data_root)] if data_root else [])
        launch.spawn(procs, args)
    comm = launch.rank_world()
    with launch.guard(comm):
        _train(config, set_, name, runs_dir, data_root, comm)


def _relaunch(procs: int) -> bool:
    """``--procs N`` from a plain process: start N ranks (under mpiexec already: we are one)."""
    from npdl.train.distributed import launched_by_mpi

    return procs > 1 and not launched_by_mpi()


def _train(config: Path, set_, name, runs_dir: Path, data_root, comm) -> None:
    from npdl import api
    from npdl.runs import check_name

    if name is not None:
        check_name(name, runs_dir)
    cfg = _load(config, set_, name)
    with stage(f"building the model and data of {config}"):
        exp = api.build(cfg, runs_dir, data_root)   # validates and reads data before a run folder exists
    if not comm.root:  # only rank 0 writes the run folder
        from npdl.train.sharding import ShadowRun

        _warn(exp)
        return _fit(exp, ShadowRun(launch.announce(comm, None)), comm=comm)
    with api.started(exp, runs_dir, argv=["npdl"] + sys.argv[1:]) as run:  # resolved config, manifest, lock
        if comm.mpi is not None:
            launch.announce(comm, run.path)
        _warn(exp)
        ranks = f" on {comm.size} processes" if comm.size > 1 else ""
        console.print(f"run {run.name}: {exp.model.num_parameters():,} parameters, {exp.total_steps:,} steps{ranks}")
        _fit(exp, run, comm=comm)


def _warn(exp) -> None:
    for text in exp.warnings:
        err_console.print(f"warning: {text}", markup=False, soft_wrap=True)


def _open_run(spec: str, runs_dir: Path):
    from npdl import config as cfgmod
    from npdl.runs import resolve

    run = resolve(spec, runs_dir)
    cfg = cfgmod.load(run.path / "config.yaml")
    return run, cfg


def _resume(spec: str, runs_dir: Path, data_root: Path | None, procs: int = 1, device: str | None = None) -> None:
    if _relaunch(procs):   # every rank gets the options this process got, --device included
        launch.spawn(procs, ["resume", str(spec), "--runs-dir", str(runs_dir)]
                     + (["--data-root", str(data_root)] if data_root else [])
                     + (["--device", device] if device else []))
    comm = launch.rank_world()
    with launch.guard(comm):
        _resume_rank(spec, runs_dir, data_root, comm)


def _resume_rank(spec: str, runs_dir: Path, data_root: Path | None, comm) -> None:
    from npdl import experiment
    from npdl.train import checkpoint

    run, cfg = _open_run(spec, runs_dir)
    if not comm.root:  # every rank reads the run folder; only rank 0 writes it
        from npdl.train.sharding import ShadowRun

        launch.announce(comm, None)
        exp = experiment.build(cfg, data_root, run_dir=run.artifacts)
        last = run.checkpoint_path("last")
        state = checkpoint.load(last, model=exp.model, optimizer=exp.optimizer, require=("model", "optim", "meta"))
        return _fit(exp, ShadowRun(run.path), resumed_state=state, source=last, comm=comm)
    if comm.mpi is not None:
        launch.announce(comm, run.path)
    with run.lock():  # one writer: a second resume of a run still training stops here, naming it
        status = run.manifest().get("status")
        if status == "completed":
            raise fail(f"run {run.name} already completed ({run.manifest().get('steps')} steps); nothing to resume")
        last = run.checkpoint_path("last")
        if not last.is_file():
            raise fail(f"run {run.name} has no checkpoint to resume from ({last} is missing)")
        with stage(f"building the model and data of run {run.name}"):
            exp = experiment.build(cfg, data_root, run_dir=run.artifacts)
        _warn(exp)
        state = checkpoint.load(last, model=exp.model, optimizer=exp.optimizer, require=("model", "optim", "meta"))
        _fit(exp, run, resumed_state=state, source=last, comm=comm)


@command(short_help="Continue an interrupted run.")
def resume(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
           runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
           data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP),
           procs: int = typer.Option(1, "--procs", min=1, help=launch.PROCS_HELP, metavar="N"),
           device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the run's own.",
                                      metavar="DEVICE")):
    """Continue an interrupted run from its last checkpoint, with nothing but its folder (on any
    number of processes or device: checkpoints do not depend on them)."""
    with on_device(device):
        _resume(run, runs_dir, data_root, procs, device)


@command(short_help="Validate configs, show model summaries.")
def check(configs: list[Path] = typer.Argument(..., help="One or more YAML configs.", metavar="CONFIG"),
          set_: list[str] = typer.Option(None, "--set", help=SET_HELP, metavar=SET_METAVAR),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP)):
    """Validate configs without training and print each model's summary from a dry forward pass."""
    import npdl
    from npdl import experiment
    from npdl.nn.trace import trace

    for path in configs:
        cfg = _load(path, set_)
        with stage(f"building the model and data of {path}"):
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
        console.print(Text.assemble(("ok", "green"), f" {path}{note}"), soft_wrap=True)


@command("eval", short_help="Evaluate a run's checkpoint on a split.")
def eval_(run: str = typer.Argument(..., help="Run folder (or unique name prefix under --runs-dir)."),
          checkpoint_: str = typer.Option("best", "--checkpoint", help=CKPT_HELP, metavar=CKPT_METAVAR),
          split: str = typer.Option("test", "--split", help="Which split to evaluate."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP),
          task_: str = typer.Option(None, "--task", help="A task-specific evaluation (e.g. analogy)."),
          device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the run's own.",
                                     metavar="DEVICE")):
    """Evaluate a run's checkpoint on a split; prints a table and writes it into the run."""
    from npdl import api

    check_checkpoint(checkpoint_)
    with stage(f"evaluating run {run}"), on_device(device):
        try:
            result = api.evaluate_run(run, checkpoint_, split, task_, runs_dir, data_root)
        except api.EvaluationError as exc:
            raise fail(str(exc)) from None
    r, path, metrics = result.run, result.checkpoint, result.metrics
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
    console.print(f"written to {result.written}", soft_wrap=True)
