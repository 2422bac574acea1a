"""Experiment configs: YAML with line numbers, ``base:`` inheritance, ``--set`` overrides.

A config is plain data validated before anything runs (DESIGN principle 5). ``load``
resolves inheritance and overrides and remembers where every key came from (file and
line); ``validate`` (in ``npdl.experiment``) then reports every problem at once as::

    configs/x.yaml:12: model.type: unknown model 'mpl' — did you mean 'mlp'?

Loading uses ``yaml.safe_load``-equivalent construction only: a config never runs code.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import yaml

from npdl.registry import ConfigError, Problem

SECTIONS = ("name", "seed", "data", "model", "loss", "optimizer", "schedule", "train", "eval")


@dataclasses.dataclass
class Config:
    """A resolved config: ``data`` (nested dicts/lists) and where each dotted path was set."""

    data: dict
    source: str
    locations: dict[str, str] = dataclasses.field(default_factory=dict)

    def where(self, path: str) -> str:
        """'file:line' of the longest known prefix of ``path`` (for a missing key: its parent)."""
        parts = path.split(".") if path else []
        while parts:
            loc = self.locations.get(".".join(parts))
            if loc:
                return loc
            parts.pop()
        return self.locations.get("", self.source)

    def error(self, problems: list[Problem]) -> ConfigError:
        """A ConfigError whose lines are prefixed with the file and line of each problem."""
        located = [Problem(f"{self.where(p.path)}: {p.path}" if p.path else self.where(""), p.message)
                   for p in problems]
        return ConfigError(located)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=None, width=100)


def _locate(node, path: str, file: str, out: dict[str, str], problems: list[Problem]) -> None:
    """Record 'file:line' for every dotted path under a composed YAML node."""
    out[path] = f"{file}:{node.start_mark.line + 1}"
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            if key in seen:
                problems.append(Problem(sub, f"duplicate key (also set above in the same mapping) at "
                                             f"{file}:{key_node.start_mark.line + 1}"))
            seen.add(key)
            _locate(value_node, sub, file, out, problems)
            out[sub] = f"{file}:{key_node.start_mark.line + 1}"
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _locate(item, f"{path}.{i}" if path else str(i), file, out, problems)


def _read(path: Path) -> tuple[dict, dict[str, str]]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        # parse once: the node tree gives line numbers, SafeLoader's constructor the plain data
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if node is None else yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data, node = {}, None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a config must be a mapping of sections ({', '.join(SECTIONS)})")
    locations: dict[str, str] = {}
    problems: list[Problem] = []
    if node is not None:
        _locate(node, "", str(path), locations, problems)
    if problems:
        raise ConfigError([Problem(f"{locations.get(p.path, path)}: {p.path}", p.message) for p in problems])
    return data, locations


def deep_merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``: mappings merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_with_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    path = path.resolve() if path.is_absolute() else path
    if path.resolve() in [p.resolve() for p in chain]:
        cycle = " -> ".join(str(p) for p in chain + (path,))
        raise ConfigError(f"{path}: `base:` inheritance forms a cycle: {cycle}")
    data, locations = _read(path)
    base = data.pop("base", None)
    if base is None:
        return data, locations
    bases = base if isinstance(base, list) else [base]
    merged: dict = {}
    merged_loc: dict[str, str] = {}
    for b in bases:
        if not isinstance(b, str):
            raise ConfigError(f"{locations.get('base', path)}: base: expected a file name, got {b!r}")
        bpath = (path.parent / b) if not Path(b).is_absolute() else Path(b)
        bdata, bloc = _load_with_bases(bpath, chain + (path,))
        merged = deep_merge(merged, bdata)
        merged_loc.update(bloc)
    locations.pop("base", None)
    merged_loc.update(locations)
    return deep_merge(merged, data), merged_loc


def parse_override(text: str) -> tuple[str, object]:
    """'optimizer.lr=3e-4' -> ('optimizer.lr', 0.0003); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.lr=3e-4")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: the key must be a dotted path like train.epochs")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not valid YAML: keep the text as a string; validation will judge it
    # YAML 1.1 reads '3e-4' (no dot) as a string; a user typing it means a number
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            pass
    return key, value


def set_path(data: dict, key: str, value) -> None:
    """Set ``a.b.c`` in nested dicts (lists indexed by number), creating mappings as needed."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: '{part}' is not an index of the list at {'.'.join(parts[:i])}")
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"--set {key}: '{last}' is not an index of the list")
        node[int(last)] = value
    else:
        node[last] = value


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read ``path`` with its ``base:`` chain, apply ``--set`` overrides; no validation yet.

    Raises:
        ConfigError: missing file, invalid YAML, duplicate keys, inheritance cycle, bad --set.
    """
    path = Path(path)
    data, locations = _load_with_bases(path, ())
    for text in overrides:
        key, value = parse_override(text)
        set_path(data, key, value)
        locations[key] = "--set"
    data.setdefault("name", path.stem)
    locations.setdefault("", str(path))
    return Config(data=data, source=str(path), locations=locations)


def from_dict(data: dict, source: str = "<dict>") -> Config:
    """A Config built in code (tests, resume from a run's stored config)."""
    return Config(data=copy.deepcopy(data), source=source, locations={"": source})
