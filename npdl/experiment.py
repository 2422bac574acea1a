"""From a validated config to the objects a run needs: the one place that knows both the
config format and the registries (the Trainer knows neither; the CLI only prints).

``validate(cfg)`` reports every problem at once, before anything is built. ``build(cfg)``
then creates data, model, task, loss, optimizer and schedule.
"""
from __future__ import annotations

import dataclasses
import typing

import npdl
import npdl.models  # noqa: F401  (registers model families)
import npdl.nn  # noqa: F401  (registers layers and losses)
import npdl.optim  # noqa: F401  (registers optimizers and schedules)
from npdl import schema
from npdl.config import SECTIONS, Config
from npdl.data import datasets as _datasets  # noqa: F401  (registers datasets)
from npdl.nn.module import evaluating
from npdl.optim.schedules import LRScheduler
from npdl.registry import (DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULES, ConfigError, Problem, did_you_mean,
                           import_optional)
from npdl.train.tasks import TASKS
from npdl.train.trainer import Trainer, TrainSettings
from npdl.train import weights


# Modules that register model families, datasets and tasks. Each is imported if it exists,
# so a family can be developed in its own files without touching this one.
FAMILY_MODULES = (
    "npdl.families.word2vec.data", "npdl.families.word2vec.model", "npdl.families.word2vec.task",
    "npdl.families.language_model.data", "npdl.families.language_model.alternating",
    "npdl.families.language_model.rnn", "npdl.families.language_model.transformer",
    "npdl.families.language_model.task",
    "npdl.families.qa.data", "npdl.families.qa.model", "npdl.families.qa.task",
    "npdl.families.text_classification.data", "npdl.families.text_classification.model",
    "npdl.families.text_classification.task",
    "npdl.families.seq2seq.data", "npdl.families.seq2seq.model", "npdl.families.seq2seq.task",
)


import_optional(FAMILY_MODULES)


def check_dataclass(cls, value, path: str) -> list[Problem]:
    """Problems with ``value`` as the fields of dataclass ``cls`` (unknown keys, wrong types)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Problem(path, f"expected a mapping, got {value!r}")]
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems = []
    for key, v in value.items():
        if key not in fields:
            problems.append(Problem(f"{path}.{key}", f"unknown key{did_you_mean(key, fields)} "
                                                     f"(accepted: {', '.join(fields)})"))
            continue
        ann = hints[key]
        nested = _dataclass_in(ann)
        if nested is not None and isinstance(v, dict):
            problems += check_dataclass(nested, v, f"{path}.{key}")
            missing = [f.name for f in dataclasses.fields(nested) if f.default is dataclasses.MISSING
                       and f.default_factory is dataclasses.MISSING and f.name not in v]
            problems += [Problem(f"{path}.{key}.{m}", "missing required key") for m in missing]
            continue
        msg = schema.check(v, ann)
        if msg:
            problems.append(Problem(f"{path}.{key}", msg))
    return problems


def _dataclass_in(ann):
    for a in (ann, *typing.get_args(ann)):
        if dataclasses.is_dataclass(a):
            return a
    return None


def make_dataclass(cls, value: dict | None):
    """Instantiate a (validated) settings dataclass, nested ones included."""
    value = dict(value or {})
    hints = typing.get_type_hints(cls, include_extras=True)
    for key, v in list(value.items()):
        nested = _dataclass_in(hints[key])
        if nested is not None and isinstance(v, dict):
            value[key] = make_dataclass(nested, v)
        else:
            value[key] = schema.coerce(v, hints[key])
    return cls(**value)


def validate(cfg: Config) -> None:
    """Raise one ``ConfigError`` listing every problem in ``cfg`` (with file:line)."""
    d = cfg.data
    problems: list[Problem] = []
    for key in d:
        if key not in SECTIONS:
            problems.append(Problem(key, f"unknown section{did_you_mean(key, SECTIONS)} (sections: {', '.join(SECTIONS)})"))
    if not isinstance(d.get("name", ""), str) or not d.get("name"):
        problems.append(Problem("name", f"expected a non-empty string, got {d.get('name')!r}"))
    if "seed" in d and schema.check(d["seed"], schema.NonNegativeInt):
        problems.append(Problem("seed", schema.check(d["seed"], schema.NonNegativeInt)))
    for section in ("data", "model", "optimizer"):
        if section not in d:
            problems.append(Problem(section, "missing section"))
    data_cls = None
    if isinstance(d.get("data"), dict):
        problems += DATASETS.validate(d["data"], "data")
        if d["data"].get("type") in DATASETS:
            data_cls = DATASETS.get(d["data"]["type"])
    if "model" in d:
        problems += MODELS.validate(weights.without_init(d["model"]), "model",
                                    provided=getattr(data_cls, "provides", ()))
        problems += weights.init_problems(d["model"], "model")
    if "loss" in d:
        problems += LOSSES.validate(d["loss"], "loss")
    if "optimizer" in d:
        problems += OPTIMIZERS.validate(d["optimizer"], "optimizer")
    if "schedule" in d:
        problems += SCHEDULES.validate(d["schedule"], "schedule", provided={"total_steps"})
    problems += check_dataclass(TrainSettings, d.get("train"), "train")
    train = d.get("train") or {}
    if isinstance(train, dict) and "epochs" not in train and "max_steps" not in train:
        problems.append(Problem("train", "set train.epochs or train.max_steps"))
    if data_cls is not None:
        task = TASKS[data_cls.task]
        problems += check_dataclass(task.eval_options, d.get("eval"), "eval")
    elif d.get("eval") is not None and not isinstance(d.get("eval"), dict):
        problems.append(Problem("eval", f"expected a mapping, got {d.get('eval')!r}"))
    if problems:
        raise cfg.error(problems)


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

    def trainer(self, run=None, callbacks=()) -> Trainer:
        return Trainer(self.model, self.task, self.data, self.optimizer, self.scheduler, self.settings, run=run,
                       seed=self.seed, callbacks=callbacks)


def _build(cfg: Config, registry, section: str, spec: dict, **deps):
    """Build one section; constructor errors (cross-checks against the data) become config errors."""
    try:
        return registry.build(spec, section, **deps)
    except ConfigError as exc:
        raise cfg.error(exc.problems) from None
    except (ValueError, TypeError) as exc:
        raise cfg.error([Problem(section, str(exc))]) from None


def build(cfg: Config, root=None, prepare: bool = True, run_dir=None) -> Experiment:
    """Validate, then build everything. ``prepare=False`` skips reading the data (``npdl check``
    before a download): the model is then sized from the dataset's declared shapes.
    ``run_dir``: restore data artifacts (tokenizers) saved by an earlier run."""
    validate(cfg)
    d = cfg.data
    seed = int(d.get("seed", 0))
    npdl.manual_seed(seed)
    data = _build(cfg, DATASETS, "data", d["data"])
    if run_dir is not None:
        data.load_artifacts(run_dir)
    if prepare:
        data.prepare(root)
    model = _build(cfg, MODELS, "model", weights.without_init(d["model"]), **data.info())
    task_cls = TASKS[data.task]
    loss_spec = d.get("loss") or task_cls.default_loss
    loss_fn = _build(cfg, LOSSES, "loss", loss_spec) if loss_spec else None
    eval_opts = make_dataclass(task_cls.eval_options, d.get("eval"))
    task = task_cls(model, data, loss_fn, eval_opts)
    try:
        _materialize(model, task, data)
    except (ValueError, TypeError) as exc:  # e.g. a conv2d layer given 2-D data: the config is at fault
        raise cfg.error([Problem("model", f"does not fit the data: {exc}")]) from None
    if run_dir is None:  # a new model starts from saved weights; eval and resume load the run's own
        try:
            weights.init_from_spec(model, d["model"])
        except weights.WeightsError as exc:
            raise cfg.error([Problem("model.init_from", str(exc))]) from None
    settings = make_dataclass(TrainSettings, d.get("train"))
    # without the data (npdl check before a download) the epoch length is unknown; a generous
    # placeholder keeps schedules with warmup constructible, and nothing trains on it
    steps_per_epoch = -(-len(data.loader("train")) // settings.grad_accum) if prepare else 10_000
    total = settings.max_steps or (settings.epochs or 1) * steps_per_epoch
    if settings.max_steps and settings.epochs:
        total = min(settings.max_steps, settings.epochs * steps_per_epoch)
    optimizer = _build(cfg, OPTIMIZERS, "optimizer", d["optimizer"], params=list(model.named_parameters()))
    schedule = _build(cfg, SCHEDULES, "schedule", d.get("schedule") or task_cls.default_schedule, total_steps=total)
    return Experiment(cfg, data, model, task, loss_fn, optimizer, LRScheduler(optimizer, schedule), settings,
                      seed, total)


def from_run(spec, runs_dir="runs", checkpoint: str = "best", root=None, prepare: bool = False, check=None):
    """A run's experiment with a checkpoint's weights loaded, model in eval mode.

    ``spec``: a run folder or a unique run-name prefix under ``runs_dir``. ``checkpoint``: best |
    last | step-N | a path ("best" falls back to "last" when a run has no best yet).
    ``prepare=False`` reads no dataset: sizes and vocabularies come from the run's artifacts.
    ``check(run, exp)`` may raise before any weights are read.
    Returns ``(run, experiment, checkpoint path, checkpoint state)``.
    """
    from npdl import config as cfgmod
    from npdl.runs import resolve
    from npdl.train import checkpoint as ckpt

    run = resolve(spec, runs_dir)
    exp = build(cfgmod.load(run.path / "config.yaml"), root, prepare=prepare, run_dir=run.artifacts)
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
