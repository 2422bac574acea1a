"""The Python API: train and evaluate from a dict, a file or a Config, with callbacks::

    import npdl
    run = npdl.fit("configs/quickstart.yaml", **{"train.epochs": 5})   # or overrides={...}
    run.evaluate("test")      # {'loss': ..., 'accuracy': ...} of the best checkpoint
    run.metrics()             # the events of metrics.jsonl
    run.path                  # runs/quickstart-<time>/

It is the CLI's own path with the printing left out: ``npdl train`` calls ``build``,
``started`` and ``fit`` below, ``npdl eval`` calls ``evaluate_run``. So a Python run goes
through the same validation (a ``ConfigError`` listing every problem, located) and writes
the same run folder as ``npdl train`` (the resolved config, artifacts, manifest, metrics,
checkpoints, summary). Nothing here prints.

Callbacks are objects with any of the trainer's hooks (``on_train_start(trainer)``,
``on_step(trainer, loss, items)``, ``on_eval_start(trainer, split)``, ``on_eval(trainer, split,
metrics)``, ``on_eval_end(trainer, split)``, ``on_message(trainer, text)``,
``on_train_end(trainer, summary)``), or plain functions, called with one event dict
(``{"event": "step", "step": 12, "epoch": 0, "loss": 0.41, "items": 64}``; the events are
``train_start step eval_start eval eval_end message train_end``).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import json
import os
from pathlib import Path

from npdl import config as cfgmod
from npdl.config import Config, ConfigError, Problem


# ---- configs --------------------------------------------------------------------------------
def load_config(cfg, overrides=None, **dotted) -> Config:
    """A Config from a dict, a path or a Config, with overrides applied (nothing validated yet).

    ``overrides``: a mapping ``{"optimizer.lr": 3e-4}`` (Python values) or a list of ``--set``
    strings (``"optimizer.lr=3e-4"``, parsed as YAML); ``dotted`` keyword arguments are more
    overrides (``**{"train.max_steps": 50}``, or ``seed=1``).

    Raises:
        ConfigError: an unreadable file, a bad override.
    """
    strings = [o for o in overrides] if isinstance(overrides, (list, tuple)) else []
    values = dict(overrides) if isinstance(overrides, dict) else {}
    if overrides is not None and not isinstance(overrides, (list, tuple, dict)):
        raise ConfigError(f"overrides: expected a mapping of dotted keys or a list of KEY=VALUE strings, "
                          f"got {type(overrides).__name__}")
    values.update(dotted)
    if isinstance(cfg, Config):
        out = Config(copy.deepcopy(cfg.data), cfg.source, dict(cfg.locations))
        for text in strings:
            key, value = cfgmod.parse_override(text)
            values.setdefault(key, value)
    elif isinstance(cfg, (str, os.PathLike)):
        out = cfgmod.load(Path(cfg), strings)
    elif isinstance(cfg, dict):
        out = cfgmod.from_dict(cfg)
        for text in strings:
            key, value = cfgmod.parse_override(text)
            values.setdefault(key, value)
    else:
        raise ConfigError(f"expected a config as a dict, a file path or a Config, got {type(cfg).__name__}")
    for key, value in values.items():
        cfgmod.set_path(out.data, key, copy.deepcopy(value))
        for k in [k for k in out.locations if k == key or k.startswith(key + ".")]:
            del out.locations[k]
        out.locations[key] = "overrides"
    return out


# ---- training, as npdl train does it ----------------------------------------------------------
def build(cfg: Config, runs_dir="runs", data_root=None):
    """Validate ``cfg`` and build its experiment (data read); the run's name is checked first.

    Raises:
        ConfigError: every problem of the config; DataError: data not downloaded or damaged;
        RunError: a name that cannot be a run folder under ``runs_dir``.
    """
    from npdl import experiment
    from npdl.runs import check_name

    name = cfg.data.get("name")
    if isinstance(name, str):  # a missing or non-text name is one of the config's problems
        check_name(name, runs_dir)  # before any work
    return experiment.build(cfg, data_root)


def write_run_files(run, exp, argv=None) -> None:
    """The files a run starts with: the resolved config (defaults included), the data's artifacts
    (tokenizers) and the manifest.

    Raises:
        DiskFullError: the disk filled up (the message says what to do).
    """
    from npdl.config.complete import resolved
    from npdl.runs import DiskFullError, is_disk_full

    try:
        run.write_config(resolved(exp.cfg.data, exp.data, exp.cfg.source))
        exp.data.save_artifacts(run.artifacts)
        run.start_manifest(exp.seed, exp.data.checksums(), argv=argv)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(f"disk full: could not write {exc.filename or run.path} ({exc.strerror}); "
                            f"no checkpoint was written yet; free some space, then start again "
                            f"(the incomplete folder {run.path} can be deleted)") from None


@contextlib.contextmanager
def started(exp, runs_dir="runs", argv=None):
    """A new run folder for ``exp``, locked (one writer) and holding its first files; yields the Run."""
    from npdl.runs import Run

    run = Run.create(runs_dir, exp.cfg.data["name"])
    with run.lock():
        write_run_files(run, exp, argv)
        yield run


def _set_status(run, status: str, **extra) -> None:
    """Best effort: on a full disk the manifest may not be writable either, and the error that
    brought us here is the one to report."""
    from npdl.runs import RunError

    try:
        run.set_status(status, **extra)
    except (OSError, RunError):
        pass


def fit(trainer, run) -> dict:
    """``trainer.fit()`` with the run's status kept true when it stops early; returns the summary.

    Raises what the trainer raises (``TrainingInterrupted``, ``NonFiniteError``, ``DiskFullError``,
    ...), after recording it in the manifest.
    """
    from npdl.runs import DiskFullError
    from npdl.train.trainer import NonFiniteError, TrainingInterrupted

    try:
        return trainer.fit()
    except TrainingInterrupted:
        _set_status(run, "interrupted", steps=trainer.step)
        raise
    except NonFiniteError:
        raise  # the trainer recorded 'stopped_nan' with the step and the tensor
    except DiskFullError as exc:
        _set_status(run, "failed", error=str(exc), steps=trainer.step)
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            _set_status(run, "interrupted", steps=trainer.step)
        else:
            _set_status(run, "failed", error=f"{type(exc).__name__}: {exc}", steps=trainer.step)
        raise


class _EventFunction:
    """A plain function as a trainer callback: each hook becomes one event dict."""

    def __init__(self, fn):
        self.fn = fn

    def _call(self, trainer, event: str, **fields) -> None:
        self.fn({"event": event, "step": trainer.step, "epoch": trainer.epoch, **fields})

    def on_train_start(self, trainer):
        self._call(trainer, "train_start")

    def on_step(self, trainer, loss, items):
        self._call(trainer, "step", loss=loss, items=items)

    def on_eval_start(self, trainer, split):
        self._call(trainer, "eval_start", split=split)

    def on_eval(self, trainer, split, metrics):
        self._call(trainer, "eval", split=split, metrics=dict(metrics))

    def on_eval_end(self, trainer, split):
        self._call(trainer, "eval_end", split=split)

    def on_message(self, trainer, text):
        self._call(trainer, "message", text=text)

    def on_train_end(self, trainer, summary):
        self._call(trainer, "train_end", summary=summary)


_HOOKS = ("on_train_start", "on_step", "on_eval_start", "on_eval", "on_eval_end", "on_message", "on_train_end")


def _callbacks(callbacks) -> list:
    if callbacks is None:
        return []
    if callable(callbacks) or any(hasattr(callbacks, h) for h in _HOOKS):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        if any(hasattr(cb, h) for h in _HOOKS):
            out.append(cb)
        elif callable(cb):
            out.append(_EventFunction(cb))
        else:
            raise TypeError(f"callbacks: expected functions or objects with on_step/on_eval/... methods, "
                            f"got {type(cb).__name__}")
    return out


def train(cfg, overrides=None, *, callbacks=(), runs_dir="runs", data_root=None, **dotted) -> "Run":
    """Train like ``npdl train``: validate, build, write the run folder, train; returns the Run.

    ``cfg``: a dict, a YAML path or a Config; ``overrides`` / ``dotted``: see ``load_config``
    (``name="x"`` names the run, like ``--name``). ``callbacks``: see the module doc.

    Raises:
        ConfigError: every problem of the config, each located (file:line, or 'overrides').
        DataError, RunError, NonFiniteError, TrainingInterrupted: as ``npdl train`` reports them.
    """
    hooks = _callbacks(callbacks)
    config = load_config(cfg, overrides, **dotted)
    exp = build(config, runs_dir, data_root)
    with started(exp, runs_dir, argv=["npdl.fit", config.source]) as run:
        summary = fit(exp.trainer(run, callbacks=hooks), run)
    return Run(run.path, summary=summary, data_root=data_root)


# ---- evaluation, as npdl eval does it ---------------------------------------------------------
class EvaluationError(ValueError):
    """An evaluation the run cannot do (a split its dataset lacks, a task without that evaluation)."""


@dataclasses.dataclass
class Evaluation:
    """What ``evaluate_run`` measured and where it wrote it."""

    run: object          # npdl.runs.Run
    checkpoint: Path     # the checkpoint evaluated
    step: int            # its training step
    metrics: dict
    written: Path        # eval-<split>-<checkpoint>.json in the run folder


def evaluate_run(spec, checkpoint: str = "best", split: str = "test", task: str | None = None, runs_dir="runs",
                 data_root=None) -> Evaluation:
    """Evaluate a run's checkpoint on ``split`` (or with a task-specific evaluation such as
    ``analogy``); writes ``RUN/eval-<split>-<checkpoint>.json`` and an ``eval_cli`` event.

    Raises:
        EvaluationError: a task without that evaluation, a split the dataset lacks; RunError,
        CheckpointError, DataError as ``npdl eval`` reports them.
    """
    from npdl import experiment
    from npdl.atomic import atomic_write
    from npdl.nn.module import evaluating

    run, exp, path, state = experiment.from_run(spec, runs_dir, checkpoint, data_root, prepare=True)
    evaluate = exp.task.evaluate
    if task:
        evaluate = getattr(exp.task, f"evaluate_{task}", None)
        if evaluate is None:
            raise EvaluationError(f"this run's task ({exp.data.task}) has no '{task}' evaluation")
    # task evaluations that work on a split (beam search) get the split; others have their own data
    takes_split = "split" in inspect.signature(evaluate).parameters
    if takes_split and split not in exp.data.splits():
        raise EvaluationError(f"split '{split}' not in this dataset (splits: {', '.join(exp.data.splits())})")
    with evaluating(exp.model):
        metrics = evaluate(split) if takes_split else evaluate()
    out = run.path / f"eval-{task or split}-{path.stem}.json"
    atomic_write(out, json.dumps({"checkpoint": str(path), "split": split, "task": task, "metrics": metrics},
                                 indent=2, default=float))
    step = state["meta"]["step"]
    run.log({"event": "eval_cli", "split": task or split, "checkpoint": path.name, "step": step,
             **{k: v for k, v in metrics.items() if not isinstance(v, dict)}})
    return Evaluation(run, path, step, metrics, out)


class Run:
    """A run folder, from Python: ``path``, ``name``, ``summary``, ``config``, ``metrics()``,
    ``evaluate(split)``. ``npdl.fit`` returns one; ``Run(path)`` opens any run."""

    def __init__(self, path, summary: dict | None = None, data_root=None):
        from npdl.runs import Run as Folder

        self._folder = Folder.open(path)
        self.path: Path = self._folder.path
        self.data_root = data_root
        self.summary: dict = summary if summary is not None else self._folder.summary()

    def __repr__(self) -> str:
        return f"npdl.Run({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self._folder.name

    @property
    def config(self) -> dict:
        """The resolved config the run was built with."""
        return cfgmod.load(self.path / "config.yaml").data

    def metrics(self, event: str | None = None) -> list[dict]:
        """The events of ``metrics.jsonl`` (only those of kind ``event``, e.g. 'eval', when given)."""
        events = self._folder.metrics()
        return [e for e in events if event is None or e.get("event") == event]

    def evaluate(self, split: str = "test", checkpoint: str = "best", task: str | None = None) -> dict:
        """Metrics of a checkpoint (default: the best) on ``split``, as ``npdl eval`` computes and
        records them."""
        return evaluate_run(self.path, checkpoint, split, task, data_root=self.data_root).metrics


__all__ = ["train", "Run", "load_config", "evaluate_run", "Evaluation", "EvaluationError", "ConfigError", "Problem"]
