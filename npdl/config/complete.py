"""Complete configs: every section and every argument written out, with a comment for each.

Two users: ``npdl init`` (a config to start from) and every run's ``config.yaml`` (the config
the run was built with, defaults included, so the run can be reproduced after a default
changes). Both are ``render(complete(cfg, ...))``.

``complete`` adds what the build would have taken implicitly, and nothing that would change
what is built:

* each ``type:`` entry's arguments with their defaults (a sequential model's layers too);
  the task's default loss and schedule when the config has none;
* every ``train:`` setting and the task's ``eval:`` options;
* *not* the arguments the data provides (``vocab_size``, ``max_len``...) nor the schedule's
  ``total_steps``: written down they would stop following the data and the run's length
  (a later ``--set train.epochs=20`` would keep the old schedule); they appear as comments;
* *not* ``train.eval_split`` on a dataset without that split (explicit, it would be checked).

``render`` writes YAML with one comment per key, from the code's own docstrings and field
comments (``npdl.config.argdocs``); ``npdl.config.load`` reads it back like any config.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import typing

import yaml

from npdl.config import argdocs
from npdl.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULES, TASKS, Registry
from npdl.train.trainer import TrainSettings

SPECS: dict[str, Registry] = {"data": DATASETS, "model": MODELS, "loss": LOSSES, "optimizer": OPTIMIZERS,
                              "schedule": SCHEDULES}
ORDER = ("name", "seed", "device", "data", "model", "loss", "optimizer", "schedule", "train", "eval")
COMMENT_COLUMN = 40  # comments start here (or after a longer line)
SEED_DOC = "seeds the initial weights, dropout and the order of the data"
DEVICE_DOC = "where the tensors live: cpu, cuda, cuda:N or emulated (resume/eval --device overrides)"
NAME_DOC = "the run folder is runs/<name>-<time>/"


def task_of(cfg: dict):
    """The task class of ``cfg``'s dataset (None when the data type is unknown)."""
    data = cfg.get("data")
    name = data.get("type") if isinstance(data, dict) else None
    if name not in DATASETS or DATASETS.get(name).task not in TASKS:
        return None
    return TASKS.get(DATASETS.get(name).task)


def _plain(value):
    """Tuples (defaults such as Adam's betas) as lists, recursively: what YAML writes and reads."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def complete_spec(registry: Registry, spec: dict, skip=()) -> dict:
    """``spec`` with every argument of its entry that it leaves out, at its default; arguments in
    ``skip`` (data-provided) and required ones stay as they are."""
    name = spec.get("type")
    if name not in registry:
        return copy.deepcopy(spec)
    out = {"type": name}
    params = registry.parameters(name)
    for key, param in params.items():
        if key in spec:
            out[key] = copy.deepcopy(spec[key])
        elif key not in skip and param.default is not inspect.Parameter.empty:
            out[key] = _plain(param.default)
    out.update({k: copy.deepcopy(v) for k, v in spec.items() if k not in out})  # e.g. model.init_from
    for arg, inner in getattr(registry.get(name), "spec_lists", {}).items():
        if isinstance(out.get(arg), list):
            out[arg] = [complete_spec(inner, s) if isinstance(s, dict) else s for s in out[arg]]
    return out


def complete_dataclass(cls, value: dict | None) -> dict:
    """Every field of settings dataclass ``cls``: the given values, the defaults for the rest."""
    value = value or {}
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            v = value[f.name]
            nested = argdocs.settings_class(hints[f.name])
            out[f.name] = complete_dataclass(nested, v) if nested is not None and isinstance(v, dict) else v
        elif f.default is not dataclasses.MISSING:
            out[f.name] = _plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = _plain(f.default_factory())
    return out


def complete(cfg: dict, provided=(), splits=None) -> dict:
    """``cfg`` (a validated config's data) with every default written out (see the module doc).

    ``provided``: the names the dataset supplies to the model (``data.info()``); ``splits``:
    the dataset's splits (None: unknown, ``train.eval_split`` is then written only if given).
    """
    task = task_of(cfg)
    out = {"name": cfg.get("name"), "seed": cfg.get("seed", 0)}
    if "device" in cfg:   # only when given: without it a run goes where its command runs (the cpu)
        out["device"] = cfg["device"]
    for section, registry in SPECS.items():
        spec = cfg.get(section)
        if spec is None and task is not None:
            spec = {"loss": task.default_loss, "schedule": task.default_schedule}.get(section)
        if isinstance(spec, dict):
            skip = set(provided) if section == "model" else {"total_steps"} if section == "schedule" else set()
            out[section] = complete_spec(registry, spec, skip)
        else:
            out[section] = copy.deepcopy(spec)
    train = complete_dataclass(TrainSettings, cfg.get("train"))
    given = cfg.get("train") or {}
    if "eval_split" not in given and (splits is None or train["eval_split"] not in splits):
        del train["eval_split"]  # left to the trainer: it evaluates only when the split exists
    out["train"] = train
    options = task.eval_options if task is not None else None
    out["eval"] = complete_dataclass(options, cfg.get("eval")) if options is not None else cfg.get("eval")
    return out


# ---- rendering -----------------------------------------------------------------------------
def value_text(value) -> str:
    """One YAML value on one line (flow style), as ``npdl.config.load`` reads it back."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=2 ** 31, sort_keys=False).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text


def _doc(text: str) -> str:
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _line(indent: int, key: str, value, comment: str = "", out: list | None = None, commented=False):
    text = f"{'  ' * indent}{'# ' if commented else ''}{key}:" + (f" {value_text(value)}" if value is not ... else "")
    out.append((text, comment))


def _spec_lines(section: str, registry: Registry, spec: dict, out: list, provided_values: dict,
                notes: dict) -> None:
    name = spec.get("type")
    out.append((f"{section}:", _doc(argdocs.summary(registry.get(name))) if name in registry else ""))
    params = registry.parameters(name) if name in registry else {}
    docs = argdocs.argument_docs(registry.get(name), params) if name in registry else {}
    names = registry.names()
    _line(1, "type", name, f"one of: {', '.join(names)}" if len(names) <= 10 else
          f"`npdl list {registry.plural}` shows the others", out)
    for key, value in spec.items():
        if key == "type":
            continue
        param = params.get(key)
        if param is None:
            comment = ("start from saved weights: a .safetensors/.npz file or a run" if key == "init_from" else "")
        else:
            comment = _join(argdocs.type_text(param.annotation), _doc(docs.get(key, "")))
        comment = _join(notes.get(f"{section}.{key}", ""), comment)
        _line(1, key, value, comment, out)
    for key, param in params.items():
        if key in spec:
            continue
        if section == "model" and key in provided_values:
            _line(1, key, provided_values[key], f"provided by the data ({provided_values[key]!r} "
                                                 "here); uncomment to override", out, commented=True)
        elif section == "schedule" and key == "total_steps":
            _line(1, key, ..., "set from the run's length (train.epochs or train.max_steps)", out, commented=True)
    if section == "model" and "init_from" not in spec:
        out.append(("  # init_from: FILE.safetensors", "start from saved weights (a .safetensors/.npz file or a "
                                                     "run); strict unless {path: ..., strict: false}"))


def _join(*parts: str) -> str:
    return " — ".join(p for p in parts if p)


def _dataclass_lines(cls, value: dict, indent: int, out: list, notes: dict, path: str) -> None:
    hints = typing.get_type_hints(cls, include_extras=True)
    comments = argdocs.field_comments(cls)
    for f in dataclasses.fields(cls):
        comment = _join(notes.get(f"{path}.{f.name}", ""), argdocs.type_text(hints[f.name]),
                        _doc(comments.get(f.name, "")))
        nested = argdocs.settings_class(hints[f.name])
        if f.name not in value:
            if f.default is not dataclasses.MISSING:
                _line(indent, f.name, f.default, comment, out, commented=True)
            continue
        v = value[f.name]
        if nested is not None and isinstance(v, dict):
            out.append((f"{'  ' * indent}{f.name}:", _join(comment, argdocs.summary(nested))))
            _dataclass_lines(nested, v, indent + 1, out, notes, f"{path}.{f.name}")
            continue
        _line(indent, f.name, v, comment, out)
        if nested is not None and v is None:  # show what the mapping would hold
            for g in dataclasses.fields(nested):
                example = "val.accuracy" if g.name == "metric" else g.default
                _line(indent + 1, g.name, example, "", out, commented=True)


def render(cfg: dict, header: str = "", provided_values: dict | None = None, notes: dict | None = None) -> str:
    """A complete config (``complete``'s output) as commented YAML.

    ``provided_values``: what the data supplies to the model (shown as commented lines);
    ``notes``: extra words for ``{dotted.path: text}`` (e.g. values ``npdl init`` chose).
    """
    provided_values, notes = provided_values or {}, notes or {}
    out: list[tuple[str, str]] = []
    task = task_of(cfg)
    for section in ORDER:
        value = cfg.get(section)
        if section == "name":
            _line(0, "name", value, _join(notes.get("name", ""), NAME_DOC), out)
        elif section == "seed":
            _line(0, "seed", value, SEED_DOC, out)
        elif section == "device":
            if value is not None:
                _line(0, "device", value, DEVICE_DOC, out)
        elif section in SPECS and isinstance(value, dict):
            _spec_lines(section, SPECS[section], value, out, provided_values, notes)
        elif section in SPECS:
            why = notes.get(section) or ("the task computes its own loss" if section == "loss" else "")
            _line(0, section, value, why, out)
        elif section == "train":
            out.append(("train:", "how long and how to train (`npdl list train`)"))
            _dataclass_lines(TrainSettings, value or {}, 1, out, notes, "train")
        elif section == "eval":
            options = task.eval_options if task is not None else None
            fields = dataclasses.fields(options) if options is not None else ()
            if not fields:
                _line(0, "eval", value or {}, f"the {task.name if task else ''} task's evaluation has no options", out)
            else:
                out.append(("eval:", f"the {task.name} evaluation (`npdl list eval`)"))
                _dataclass_lines(options, value or {}, 1, out, notes, "eval")
    lines = [f"# {h}" if h else "#" for h in header.splitlines()] if header else []
    for text, comment in out:
        if comment:
            pad = max(COMMENT_COLUMN - len(text), 2)
            text = f"{text}{' ' * pad}# {comment}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def resolved(cfg: dict, data, source: str = "") -> str:
    """A run's ``config.yaml``: ``cfg`` completed against the built dataset ``data`` and rendered."""
    info = dict(data.info())
    full = complete(cfg, provided=info, splits=tuple(data.splits()))
    header = (f"The resolved config of this run{f' (from {source})' if source else ''}: every argument with the "
              "value it was\nbuilt with, defaults included. `npdl resume` and `npdl eval` read it; "
              "`npdl train` accepts it.")
    return render(full, header, provided_values=info)
