"""Config files: ``base:`` inheritance, ``--set`` overrides, and where every key came from.

``load`` resolves inheritance and overrides and remembers where every key was written (file
and line, or ``--set``), so ``npdl.config.validate`` can report::

    configs/x.yaml:12: model.type: unknown model 'mpl' — did you mean 'mlp'?

Reading goes through ``npdl.config.yamlsafe`` (bounded, no code runs, exponent floats).
"""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import yaml

from npdl import schema
from npdl.config import yamlsafe
from npdl.config.errors import ConfigError, Problem

SECTIONS = ("name", "seed", "device", "data", "model", "loss", "optimizer", "schedule", "train", "eval")
MAX_FILES = 32       # files read through `base:` (a base list of 10 files, each with 10 bases, ...)
MAX_SET_PARTS = 16   # dotted parts in a --set key


@dataclasses.dataclass
class Config:
    """A resolved config: ``data`` (nested dicts/lists) and where each dotted path was set."""

    data: dict
    source: str
    locations: dict[str, str] = dataclasses.field(default_factory=dict)

    def where(self, path: str) -> str:
        """'file:line' of the longest known prefix of ``path`` (for a missing key: its parent),
        or '--set'; 'file:line (and --set)' when a --set changed something inside it."""
        parts = path.split(".") if path else []
        loc = None
        while parts and loc is None:
            loc = self.locations.get(".".join(parts))
            parts.pop()
        loc = loc or self.locations.get("", self.source)
        inside = path + "."
        if loc != "--set" and path and any(k.startswith(inside) and v == "--set" for k, v in self.locations.items()):
            return f"{loc} (and --set)"
        return loc

    def error(self, problems: list[Problem]) -> ConfigError:
        """A ConfigError whose problems are located (file and line, or --set)."""
        return ConfigError([p if p.where else Problem(p.path, p.message, self.where(p.path)) for p in problems])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=None, width=100)


def _read(path: Path) -> tuple[dict, dict[str, str]]:
    name = str(path) if len(str(path)) <= 200 else "..." + str(path)[-200:]  # messages stay readable
    data, locations = yamlsafe.parse(yamlsafe.read_text(path, name), name)
    if data is None:
        raise ConfigError(f"{name}:1: the config is empty (it needs at least data, model and optimizer sections)")
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"the single value {schema.show(data)}"
        raise ConfigError(f"{name}:1: a config must be a mapping of sections ({', '.join(SECTIONS)}), got {got}")
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


def _load_with_bases(path: Path, chain: tuple[str, ...], budget: list[int]) -> tuple[dict, dict[str, str]]:
    # realpath never raises (a symlink loop stays unresolved and fails to open below)
    real = os.path.realpath(path)
    if real in chain:
        raise ConfigError(f"{path}: `base:` inheritance forms a cycle (the file includes itself)")
    budget[0] += 1
    if budget[0] > MAX_FILES:
        raise ConfigError(f"{path}: `base:` inheritance reads more than {MAX_FILES} files")
    data, locations = _read(path)
    base = data.pop("base", None)
    if base is None:
        return data, locations
    where = locations.pop("base", str(path))
    bases = base if isinstance(base, list) else [base]
    merged: dict = {}
    merged_loc: dict[str, str] = {}
    for b in bases:
        if not isinstance(b, str) or not b.strip():
            raise ConfigError([Problem("base", f"expected a config file name (or a list of them), got "
                                               f"{b!r:.60}", where)])
        bpath = path.parent / b
        why = yamlsafe.not_a_file(bpath)
        if why:  # said here, at the line that names the base
            raise ConfigError([Problem("base", f"{b[:200]!r}: {str(bpath)[:300]} {why}", where)])
        if os.path.realpath(bpath) in chain + (real,):
            raise ConfigError([Problem("base", f"{b[:200]!r} leads back to {bpath}: the `base:` files form "
                                               "a cycle", where)])
        bdata, bloc = _load_with_bases(bpath, chain + (real,), budget)
        merged = deep_merge(merged, bdata)
        merged_loc.update(bloc)
    merged_loc.update({k: v for k, v in locations.items() if not k.startswith("base.")})
    return deep_merge(merged, data), merged_loc


def parse_override(text: str) -> tuple[str, object]:
    """'optimizer.lr=3e-4' -> ('optimizer.lr', 0.0003); the value is parsed as YAML.

    Raises:
        ConfigError: no '=', an empty or over-long key, a value that is not valid YAML.
    """
    if "=" not in text:
        raise ConfigError(f"--set {text[:80]!r}: expected KEY=VALUE, e.g. --set optimizer.lr=3e-4")
    key, _, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not part.strip() for part in parts):
        raise ConfigError(f"--set {text[:80]!r}: the key must be a dotted path like train.epochs")
    if len(parts) > MAX_SET_PARTS or len(key) > 400:
        raise ConfigError(f"--set {key[:80]!r}...: a key path of at most {MAX_SET_PARTS} parts, please")
    value, _ = yamlsafe.parse(raw, f"--set {key}", lines=False) if raw.strip() else (None, {})
    return key, value


def set_path(data: dict, key: str, value) -> None:
    """Set ``a.b.c`` in nested dicts (lists indexed by number), creating mappings as needed.

    Raises:
        ConfigError: indexing a list by a non-number or past its end, or going into a scalar.
    """
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts):
        here = ".".join(parts[:i]) or "the config"
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: '{part[:40]}' is not an index of the list at {here} "
                                  f"(indices 0..{len(node) - 1})" if node else
                                  f"--set {key}: the list at {here} is empty")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(f"--set {key}: {here} is {node!r:.40}, not a mapping or a list, "
                              f"so it has no '{part[:40]}'")


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read ``path`` with its ``base:`` chain, apply ``--set`` overrides; no validation yet.

    Raises:
        ConfigError: an unreadable or invalid file, duplicate keys, an inheritance cycle, a bad --set.
    """
    path = Path(path)
    data, locations = _load_with_bases(path, (), [0])
    for text in overrides:
        key, value = parse_override(text)
        set_path(data, key, value)
        for k in [k for k in locations if k == key or k.startswith(key + ".")]:
            del locations[k]
        locations[key] = "--set"
    data.setdefault("name", path.stem)
    locations.setdefault("", str(path))
    return Config(data=data, source=str(path), locations=locations)


def from_dict(data: dict, source: str = "<dict>") -> Config:
    """A Config built in code (tests, the Python API)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a mapping of sections, got a {type(data).__name__}")
    return Config(data=copy.deepcopy(data), source=source, locations={"": source})
