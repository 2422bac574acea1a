"""``npdl init``'s library half: a complete, commented config to start from, for any model.

Which dataset, when the user names none? The registries say which datasets *can* feed a
model: a dataset ``provides`` model arguments (``vocab_size``, ``num_classes``...), and a
model's required arguments must all be provided (``fitting_datasets``). Among those, the best
fit uses most of what the dataset provides, then needs no download, then needs no file of
the user's. Where the signatures alone cannot tell (a CNN reads images, not 2-D points; the
word2vec models read any corpus), ``USUAL`` names the family's usual dataset -- always one of
the fitting ones (a test checks), so the table can narrow the choice but never contradict it.

Arguments with no default that nothing provides get a value that runs (``STARTERS``), with a
comment saying that ``npdl init`` chose it; the data's values are shown as comments, since
written down they would stop following the data.
"""
from __future__ import annotations

import inspect

from npdl.config.complete import complete, render
from npdl.config.errors import ConfigError
from npdl.registry import DATASETS, MODELS, OPTIMIZERS, TASKS

# the family's usual dataset, where the registries leave a tie (or pick data the model cannot read)
USUAL = {
    "cnn": "mnist",                          # images; spirals also provides num_classes but is 2-D points
    "sequential": "spirals",                 # STARTERS' layers classify vectors
    "skipgram": "text8_prefix", "cbow": "text8_prefix",   # the word2vec benchmark's corpus
    "rnn_lm": "ptb",                         # Zaremba et al. 2014
    "transformer_seq2seq": "reverse",        # built in; Multi30k for translation
    "transformer_classifier": "qqp_sample",  # the smallest QQP
}

# values for arguments without a default that no dataset provides (or that the entry needs anyway)
STARTERS = {
    ("model", "mlp"): {"hidden": [64, 64]},
    ("model", "sequential"): {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 64},
                                         {"type": "relu"}, {"type": "linear", "out_features": "num_classes"}]},
    ("data", "text_file"): {"path": "corpus.txt"},
    ("data", "qqp_csv"): {"path": "train.csv"},
    ("optimizer", "sgd"): {"lr": 0.1},
}

# the optimizer a task usually trains with (others: Adam with its defaults)
OPTIMIZER = {"word2vec": {"type": "sgd", "lr": 0.025}}   # word2vec.c's starting alpha (Mikolov et al. 2013)
EPOCHS = {"word2vec": 5}                                  # word2vec.c's -iter
DEFAULT_EPOCHS = 10


def required(registry, name: str) -> list[str]:
    """Arguments of entry ``name`` without a default (the ones a config must set or the data provide)."""
    return [k for k, p in registry.parameters(name).items() if p.default is inspect.Parameter.empty]


def fitting_datasets(model: str) -> list[str]:
    """Datasets that provide every required argument of ``model`` (or for which ``STARTERS`` has a
    value), best fit first: most provided arguments used, fewest unused, built in (no download),
    no required arguments of their own, then by name."""
    params = MODELS.parameters(model)
    needed = set(required(MODELS, model)) - set(STARTERS.get(("model", model), {}))
    ranked = []
    for name in DATASETS.names():
        cls = DATASETS.get(name)
        provides = set(getattr(cls, "provides", ()))
        if not needed <= provides:
            continue
        used = len(provides & set(params))
        own = [k for k in required(DATASETS, name) if k not in STARTERS.get(("data", name), {})]
        if own:
            continue
        ranked.append((-used, len(provides - set(params)), cls.source is not None, bool(required(DATASETS, name)),
                       name))
    return [r[-1] for r in sorted(ranked)]


def usual_dataset(model: str) -> str:
    """The dataset ``npdl init MODEL`` uses when given none."""
    fitting = fitting_datasets(model)
    if not fitting:
        raise ConfigError(f"no registered dataset provides what model '{model}' needs "
                          f"({', '.join(required(MODELS, model))})")
    return USUAL[model] if USUAL.get(model) in fitting else fitting[0]


def _fill(value, info: dict):
    """Starter values may name a provided size ('num_classes'): replaced by the data's value."""
    if isinstance(value, list):
        return [_fill(v, info) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, info) for k, v in value.items()}
    return info.get(value, value) if isinstance(value, str) else value


def starter(model: str, dataset: str | None = None) -> str:
    """The text of ``npdl init MODEL [--data DATASET]``: a complete, commented config.

    Raises:
        ConfigError: an unknown model or dataset, or a dataset that lacks what the model needs.
    """
    if model not in MODELS:
        raise ConfigError(f"model: {MODELS.unknown(model)}")
    if dataset is None:
        dataset = usual_dataset(model)
    elif dataset not in DATASETS:
        raise ConfigError(f"--data: {DATASETS.unknown(dataset)}")
    cls = DATASETS.get(dataset)
    missing = [k for k in required(MODELS, model) if k not in getattr(cls, "provides", ())
               and k not in STARTERS.get(("model", model), {})]
    if missing:
        raise ConfigError(f"model '{model}' needs {', '.join(missing)}, which dataset '{dataset}' does not provide; "
                          f"datasets that do: {', '.join(fitting_datasets(model)) or 'none'}")
    notes = {}
    data_spec = {"type": dataset, **STARTERS.get(("data", dataset), {})}
    data = DATASETS.build(data_spec)      # nothing is read: sizes are the dataset's declared ones
    info = dict(data.info())
    task = TASKS.get(cls.task)
    model_spec = {"type": model, **_fill(STARTERS.get(("model", model), {}), info)}
    optimizer = dict(OPTIMIZER.get(task.name, {"type": "adam"}))
    optimizer.update({k: v for k, v in STARTERS.get(("optimizer", optimizer["type"]), {}).items() if k not in optimizer})
    chosen = "chosen by npdl init (no default)"
    for section, registry, spec in (("data", DATASETS, data_spec), ("model", MODELS, model_spec),
                                    ("optimizer", OPTIMIZERS, optimizer)):
        for key in set(spec) & set(required(registry, spec["type"])):
            notes[f"{section}.{key}"] = chosen
    for key in STARTERS.get(("model", model), {}):
        notes.setdefault(f"model.{key}", "chosen by npdl init")
    notes["train.epochs"] = "chosen by npdl init (set train.epochs or train.max_steps)"
    cfg = {"name": f"{model}_{dataset}", "seed": 0, "data": data_spec, "model": model_spec,
           "loss": task.default_loss, "optimizer": optimizer, "schedule": task.default_schedule,
           "train": {"epochs": EPOCHS.get(task.name, DEFAULT_EPOCHS)}, "eval": {}}
    header = (f"A complete npdl config: model '{model}' on dataset '{dataset}' ({task.name} task), written by "
              f"`npdl init {model}{'' if dataset == usual_dataset(model) else f' --data {dataset}'}`.\n"
              "Every argument is shown with its default; edit what you need, then: npdl check FILE; npdl train FILE")
    if cls.source is not None:
        header += f"\nThe data: npdl download {cls.source}"
    provided = {k: v for k, v in info.items() if k in MODELS.parameters(model)}
    return render(complete(cfg, provided=info, splits=tuple(data.splits())), header, provided, notes)
