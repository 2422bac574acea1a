"""Checking a config, once, before anything is built: every problem at once, each located.

``validate(cfg)`` checks the sections, every ``type:`` spec against its registry entry's
signature (unknown names and arguments with a "did you mean", types and ranges through
``npdl.schema``: numbers finite, integers in 64 bits), the ``train:``/``eval:`` dataclasses,
schedule arguments the user wrote, and a lower bound of the model's parameter memory.

What can only be checked against built objects (the dataset's splits, the task's metric
names) is in ``npdl.config.crosscheck``.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import typing

from npdl import schema
from npdl.config.errors import Problem, did_you_mean, join
from npdl.config.files import SECTIONS, Config
from npdl.core.backend import DeviceError, parse_device
from npdl.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULES, TASKS, Registry
from npdl.train.trainer import TrainSettings

PARAM_BYTES = 4  # float32


def check_spec(registry: Registry, spec, path: str, provided: typing.Iterable[str] = ()) -> list[Problem]:
    """Every problem with ``spec`` as a call of its ``type``; builds nothing.

    ``provided`` names arguments the code supplies (e.g. vocab_size from the data), which
    count as present. Entries with ``spec_lists = {arg: registry}`` get each spec of those
    list arguments checked too (e.g. a sequential model's layers).
    """
    if not isinstance(spec, dict):
        return [Problem(path, f"expected a mapping with a 'type' key, got {schema.show(spec)}")]
    if "type" not in spec:
        return [Problem(path, f"missing 'type' (one of: {', '.join(registry.names())})")]
    name = spec["type"]
    if name not in registry:
        return [Problem(join(path, "type"), registry.unknown(name))]
    params = registry.parameters(name)
    problems = []
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in params:
            problems.append(Problem(join(path, key), f"unknown argument for {registry.kind} '{name}'"
                                    f"{did_you_mean(key, params)} (accepted: {', '.join(params) or 'none'})"))
            continue
        ann = params[key].annotation
        if ann is not inspect.Parameter.empty:
            msg = schema.check(value, ann)
            if msg:
                problems.append(Problem(join(path, key), msg))
    present = set(spec) | set(provided) | set(registry.hidden)
    problems += [Problem(join(path, p), f"missing required argument of {registry.kind} '{name}'")
                 for p, param in params.items() if param.default is inspect.Parameter.empty and p not in present]
    for arg, inner in getattr(registry.get(name), "spec_lists", {}).items():
        items = spec.get(arg)
        if isinstance(items, list) and not items:
            problems.append(Problem(join(path, arg), f"expected at least one {inner.kind}"))
        elif isinstance(items, list):
            for i, item in enumerate(items):
                problems += check_spec(inner, item, join(path, f"{arg}.{i}"))
    return problems


def check_dataclass(cls, value, path: str) -> list[Problem]:
    """Problems with ``value`` as the fields of dataclass ``cls`` (unknown keys, wrong types)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Problem(path, f"expected a mapping, got {schema.show(value)}")]
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems = []
    for key, v in value.items():
        if key not in fields:
            problems.append(Problem(join(path, key), f"unknown key{did_you_mean(key, fields)} "
                                                     f"(accepted: {', '.join(fields) or 'none'})"))
            continue
        nested = dataclass_in(hints[key])
        if nested is not None and isinstance(v, dict):
            problems += check_dataclass(nested, v, join(path, key))
            problems += [Problem(join(path, f"{key}.{f.name}"), "missing required key")
                         for f in dataclasses.fields(nested) if f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING and f.name not in v]
            continue
        msg = schema.check(v, hints[key])
        if msg:
            problems.append(Problem(join(path, key), msg))
    return problems


def dataclass_in(ann):
    """The dataclass in ``ann`` (``X`` or ``X | None``), or None."""
    for a in (ann, *typing.get_args(ann)):
        if dataclasses.is_dataclass(a):
            return a
    return None


def validate(cfg: Config) -> None:
    """Raise one ``ConfigError`` listing every problem in ``cfg`` (each with file:line)."""
    d = cfg.data
    problems: list[Problem] = []
    for key in d:
        if key not in SECTIONS:
            problems.append(Problem(str(key), f"unknown section{did_you_mean(key, SECTIONS)} "
                                              f"(sections: {', '.join(SECTIONS)})"))
    if not isinstance(d.get("name", ""), str) or not d.get("name"):
        problems.append(Problem("name", f"expected a non-empty string, got {schema.show(d.get('name'))}"))
    if "seed" in d and schema.check(d["seed"], schema.NonNegativeInt):
        problems.append(Problem("seed", schema.check(d["seed"], schema.NonNegativeInt)))
    if "device" in d:   # the name only: whether CuPy and a GPU are there is checked when the run starts
        try:
            parse_device(d["device"])
        except DeviceError as exc:
            problems.append(Problem("device", str(exc)))
    problems += [Problem(s, "missing section") for s in ("data", "model", "optimizer") if s not in d]
    data_cls = None
    if "data" in d:
        problems += check_spec(DATASETS, d["data"], "data")
        if isinstance(d["data"], dict) and d["data"].get("type") in DATASETS:
            data_cls = DATASETS.get(d["data"]["type"])
    if "model" in d:
        spec = _without_init(d["model"])
        problems += check_spec(MODELS, spec, "model", provided=getattr(data_cls, "provides", ()))
        problems += _parameter_memory(spec)
        problems += _init_from(d["model"])
    if d.get("loss") is not None:
        problems += check_spec(LOSSES, d["loss"], "loss")
    if "optimizer" in d:
        problems += check_spec(OPTIMIZERS, d["optimizer"], "optimizer")
        problems += _group_overrides(d["optimizer"])
    if d.get("schedule") is not None:
        problems += check_spec(SCHEDULES, d["schedule"], "schedule", provided={"total_steps"})
        problems += _warmup_within_total(d["schedule"])
    problems += check_dataclass(TrainSettings, d.get("train"), "train")
    train = d.get("train")
    if train is None or (isinstance(train, dict) and "epochs" not in train and "max_steps" not in train):
        problems.append(Problem("train", "set train.epochs or train.max_steps"))
    if data_cls is not None and data_cls.task in TASKS:
        problems += check_dataclass(TASKS.get(data_cls.task).eval_options, d.get("eval"), "eval")
    elif d.get("eval") is not None and not isinstance(d.get("eval"), dict):
        problems.append(Problem("eval", f"expected a mapping, got {schema.show(d.get('eval'))}"))
    if problems:
        raise cfg.error(problems)


def _group_overrides(spec) -> list[Problem]:
    """``optimizer.groups[i]`` values against the optimizer's own hyperparameter rules."""
    if not isinstance(spec, dict) or spec.get("type") not in OPTIMIZERS or not isinstance(spec.get("groups"), list):
        return []
    params = OPTIMIZERS.parameters(spec["type"])
    problems = []
    for i, group in enumerate(spec["groups"]):
        for key, value in (group.items() if isinstance(group, dict) else ()):
            if key in params and key not in ("groups", "no_decay", "no_decay_1d"):
                msg = schema.check(value, params[key].annotation)
                if msg:
                    problems.append(Problem(f"optimizer.groups.{i}.{key}", msg))
    return problems


def _warmup_within_total(spec) -> list[Problem]:
    """A schedule given both ``total_steps`` and ``warmup_steps`` needs room for the decay."""
    if not isinstance(spec, dict):
        return []
    total, warmup = spec.get("total_steps"), spec.get("warmup_steps", 0)
    if schema.check(total, schema.PositiveInt) or schema.check(warmup, schema.NonNegativeInt):
        return []  # not both set, or already reported
    if warmup >= total:
        return [Problem("schedule.warmup_steps", f"must be below schedule.total_steps ({total}) to leave room "
                                                 f"for the decay, got {warmup}")]
    return []


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _parameter_memory(spec) -> list[Problem]:
    """Refuse a size no machine here can hold, before anything is allocated.

    Every integer argument of a model (a width, a vocabulary, a count of layers) makes at
    least that many float32 parameters, and a list of sizes (``hidden: [a, b]``) at least a
    weight per neighbouring pair (a * b), so the largest of these is a lower bound of the
    model's memory; a model whose bound exceeds physical memory cannot be built. (Allocations that
    the bound misses fail in NumPy and are reported by the build as a config error too.)
    """
    memory = memory_bytes()
    if memory is None:
        return []
    largest, where = 0, ""
    stack = [(spec, "model")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            stack += [(v, join(path, k)) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, join(path, i)) for i, v in enumerate(value)]
            sizes = [v for v in value if isinstance(v, int) and not isinstance(v, bool) and 0 < v < schema.INT_LIMIT]
            if len(sizes) == len(value) > 1:  # a list of sizes (hidden widths, channels): a weight joins each pair
                pairs = sum(a * b for a, b in zip(sizes, sizes[1:]))
                if pairs > largest:
                    largest, where = pairs, path
        elif isinstance(value, int) and not isinstance(value, bool) and largest < value < schema.INT_LIMIT:
            largest, where = value, path
    if largest * PARAM_BYTES > memory:
        return [Problem(where, f"too large: the model would need at least "
                               f"{_bytes(largest * PARAM_BYTES)} of parameters (float32), more than this "
                               f"machine's {_bytes(memory)} of memory")]
    return []


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def _without_init(model_spec):
    """The model spec as its registry entry takes it (``init_from`` is no constructor argument)."""
    from npdl.train.weights import without_init

    return without_init(model_spec)


def _init_from(model_spec) -> list[Problem]:
    """Problems with ``model.init_from`` (a .safetensors/.npz file or a run; read when building)."""
    from npdl.train.weights import parse_init_from

    if not isinstance(model_spec, dict) or "init_from" not in model_spec:
        return []
    try:
        parse_init_from(model_spec["init_from"])
    except ValueError as exc:
        return [Problem("model.init_from", str(exc))]
    return []
