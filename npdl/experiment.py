"""From a config to the objects a run needs: data, model, task, loss, optimizer, schedule.

Checking is ``npdl.config``'s job: ``build`` validates once (``config.validate``), then
builds each section inside ``config.located(...)``, so an error a constructor raises for a
Python caller (``ValueError``, ``TypeError``, ``MemoryError``) is reported at the config key
and line that caused it. The Trainer knows no configs; the CLI only prints.
"""
from __future__ import annotations

import dataclasses
import typing

import npdl
import npdl.models  # noqa: F401  (registers the general models: mlp, cnn, sequential)
import npdl.nn  # noqa: F401  (registers layers and losses)
import npdl.optim  # noqa: F401  (registers optimizers and schedules)
from npdl import config, schema
from npdl.config import Config
from npdl.core import backend
from npdl.data import datasets as _datasets  # noqa: F401  (registers the built-in datasets)
from npdl.nn.module import evaluating
from npdl.optim.schedules import LRScheduler
from npdl.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULES, TASKS
from npdl.train.trainer import Trainer, TrainSettings
from npdl.train import weights

# ---- model families: each registers its datasets, models and task when imported -------------
# (explicit imports: a misspelt module fails here instead of being skipped)
import npdl.families.word2vec.data  # noqa: E402,F401  word2vec
import npdl.families.word2vec.model  # noqa: E402,F401
import npdl.families.word2vec.task  # noqa: E402,F401
import npdl.families.language_model.data  # noqa: E402,F401  language models: recurrent and Transformer
import npdl.families.language_model.alternating  # noqa: E402,F401
import npdl.families.language_model.rnn  # noqa: E402,F401
import npdl.families.language_model.transformer  # noqa: E402,F401
import npdl.families.language_model.task  # noqa: E402,F401
import npdl.families.qa.data  # noqa: E402,F401  bAbI question answering
import npdl.families.qa.model  # noqa: E402,F401
import npdl.families.qa.task  # noqa: E402,F401
import npdl.families.text_classification.data  # noqa: E402,F401  Transformer classifiers (QQP)
import npdl.families.text_classification.model  # noqa: E402,F401
import npdl.families.text_classification.task  # noqa: E402,F401
import npdl.families.seq2seq.data  # noqa: E402,F401  Transformer seq2seq (Multi30k, synthetic)
import npdl.families.seq2seq.model  # noqa: E402,F401
import npdl.families.seq2seq.task  # noqa: E402,F401
# ---- end of model families ----------------------------------------------------------------


def validate(cfg: Config) -> None:
    """``npdl.config.validate`` (kept here for callers that build right after)."""
    config.validate(cfg)


def make_dataclass(cls, value: dict | None):
    """Instantiate a (validated) settings dataclass, nested ones included."""
    value = dict(value or {})
    hints = typing.get_type_hints(cls, include_extras=True)
    for key, v in list(value.items()):
        nested = config.dataclass_in(hints[key])
        if nested is not None and isinstance(v, dict):
            value[key] = make_dataclass(nested, v)
        else:
            value[key] = schema.coerce(v, hints[key])
    return cls(**value)


@dataclasses.dataclass
class Experiment:
    """Everything a run is made of, built from one config."""

    cfg: Config
    data: object
    model: object
    task: object
    loss_fn: object
    optimizer: object
    scheduler: LRScheduler
    settings: TrainSettings
    seed: int
    total_steps: int
    warnings: list[str] = dataclasses.field(default_factory=list)  # for the CLI to show (e.g. warmup cut)

    def trainer(self, run=None, callbacks=(), dist=None) -> Trainer:
        return Trainer(self.model, self.task, self.data, self.optimizer, self.scheduler, self.settings, run=run,
                       seed=self.seed, callbacks=callbacks, dist=dist)


def _use_device(cfg: Config) -> None:
    """Make the config's ``device:`` the default device, so the model, its batches and the
    optimizer's state live there; a device the caller chose (``with npdl.device(...)``, the
    CLI's ``--device`` on eval/resume/...) wins. Without ``device:`` the default stays as it is.

    Raises:
        ConfigError: CUDA asked for without CuPy or without a usable GPU (what is missing, located).
    """
    if "device" not in cfg.data or backend.in_device_scope():
        return
    try:
        backend.set_default_device(cfg.data["device"])
    except backend.DeviceError as exc:
        raise cfg.error([config.Problem("device", str(exc))]) from None


def build(cfg: Config, root=None, prepare: bool | str = True, run_dir=None) -> Experiment:
    """Validate, then build everything.

    ``prepare``: True reads the data; False skips it (the model is then sized from the
    dataset's declared shapes); "auto" reads it only when nothing needs downloading
    (``npdl check``). ``run_dir``: restore data artifacts (tokenizers) saved by an earlier run.

    Raises:
        ConfigError: every problem of the config, or the first a constructor found, located.
    """
    config.validate(cfg)
    d = cfg.data
    _use_device(cfg)
    seed = int(d.get("seed", 0))
    npdl.manual_seed(seed)
    with config.located(cfg, "data"):
        data = DATASETS.build(d["data"])
    if run_dir is not None:
        data.load_artifacts(run_dir)
    if prepare == "auto":
        from npdl.data import download

        prepare = data.source is None or download.is_downloaded(data.source, root)
    if prepare:
        # data errors of their own kind (DataError: not downloaded, corrupt) pass through as they are
        with config.located(cfg, "data", "while reading the data", only_plain=True):
            data.prepare(root)
    with config.located(cfg, "train"):  # e.g. train.loggers: tensorboard without its package
        settings = make_dataclass(TrainSettings, d.get("train"))
    config.check_splits(cfg, settings, data)
    with config.located(cfg, "model"):
        model = MODELS.build(weights.without_init(d["model"]), **data.info())
    task_cls = TASKS.get(data.task)
    loss_spec = d.get("loss") or task_cls.default_loss
    loss_fn = None
    if loss_spec:
        with config.located(cfg, "loss"):
            loss_fn = LOSSES.build(loss_spec)
    eval_opts = make_dataclass(task_cls.eval_options, d.get("eval"))
    with config.located(cfg, ""):
        task = task_cls(model, data, loss_fn, eval_opts)
    config.check_metrics(cfg, settings, task, data)
    with config.located(cfg, "model", "does not fit the data"):  # e.g. a conv2d layer given 2-D data
        _materialize(model, task, data)
    if run_dir is None:  # a new model starts from saved weights; eval and resume load the run's own
        try:
            weights.init_from_spec(model, d["model"])
        except weights.WeightsError as exc:
            raise cfg.error([config.Problem("model.init_from", str(exc))]) from None
    # without the data (npdl check before a download) the epoch length is unknown; a generous
    # placeholder keeps schedules with warmup constructible, and nothing trains on it
    steps_per_epoch = -(-len(data.loader("train")) // settings.grad_accum) if prepare else 10_000
    total = settings.max_steps or (settings.epochs or 1) * steps_per_epoch
    if settings.max_steps and settings.epochs:
        total = min(settings.max_steps, settings.epochs * steps_per_epoch)
    with config.located(cfg, "optimizer"):
        optimizer = OPTIMIZERS.build(d["optimizer"], params=list(model.named_parameters()))
    schedule_spec, warnings = config.fit_schedule(cfg, d.get("schedule") or task_cls.default_schedule, total)
    with config.located(cfg, "schedule"):
        schedule = SCHEDULES.build(schedule_spec, total_steps=total)
    return Experiment(cfg, data, model, task, loss_fn, optimizer, LRScheduler(optimizer, schedule), settings,
                      seed, total, warnings)


def from_run(spec, runs_dir="runs", checkpoint: str = "best", root=None, prepare: bool = False, check=None):
    """A run's experiment with a checkpoint's weights loaded, model in eval mode.

    ``spec``: a run folder or a unique run-name prefix under ``runs_dir``. ``checkpoint``: best |
    last | step-N | a path ("best" falls back to "last" when a run has no best yet).
    ``prepare=False`` reads no dataset: sizes and vocabularies come from the run's artifacts.
    ``check(run, exp)`` may raise before any weights are read.
    Returns ``(run, experiment, checkpoint path, checkpoint state)``.
    """
    from npdl.runs import resolve
    from npdl.train import checkpoint as ckpt

    run = resolve(spec, runs_dir)
    exp = build(config.load(run.path / "config.yaml"), root, prepare=prepare, run_dir=run.artifacts)
    if check is not None:
        check(run, exp)
    path = run.checkpoint_path(checkpoint)
    if checkpoint == "best" and not path.is_file():
        path = run.checkpoint_path("last")
    state = ckpt.load(path, model=exp.model)  # shapes checked against the model before reading
    exp.model.load_state_dict(state["model"])
    exp.model.eval()
    return run, exp, path, state


def _materialize(model, task, data) -> None:
    """One forward pass on an example batch, in eval mode, so lazily sized layers exist."""
    with evaluating(model), npdl.no_grad():
        task.dry_run(data.example_batch())
