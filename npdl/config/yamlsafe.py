"""Reading untrusted YAML with bounded work: the one loader for config files and ``--set`` values.

``SafeLoader`` already runs no code; on top of it this module

* reads numbers in exponent form as numbers (``1e-3``, ``1E+5``, ``-2.5e-4``), as YAML 1.2
  does: YAML 1.1's float pattern needs a dot, so ``lr: 1e-3`` used to be a string;
* bounds the work before anything walks the tree: at most ``MAX_BYTES`` of text, nesting
  ``MAX_DEPTH`` deep, and ``MAX_NODES`` nodes *after alias expansion*, counted on the composed
  node graph where an alias is a shared node (a 300-byte "billion laughs" is refused after a
  few hundred steps, not after expanding 10**9 strings); recursive aliases are refused;
* requires every mapping key to be a string (``1: a`` and ``? [x]`` are refused) and reports a
  duplicate key with the line of its first occurrence;
* records ``file:line`` for every dotted path, for error messages.

Every failure is a :class:`~npdl.config.errors.ConfigError` naming the file and line.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from npdl.config.errors import ConfigError, Problem, join

MAX_BYTES = 1 << 20     # 1 MiB: the shipped configs are under 4 KiB
MAX_DEPTH = 40          # nesting levels, after alias expansion
MAX_NODES = 20_000      # scalars + lists + mappings, after alias expansion (the largest shipped config: ~150)
MAX_KEY = 200           # characters in a key (paths repeat it in every message and location)

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_FLOAT = "tag:yaml.org,2002:float"
_INT = "tag:yaml.org,2002:int"


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 exponent floats and limits on nesting and size while composing."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent, index):
        # composing is recursive: refuse deep nesting before Python's recursion limit does
        self._depth += 1
        self._composed += 1
        if self._depth > MAX_DEPTH or self._composed > MAX_NODES:
            what = f"nested deeper than {MAX_DEPTH} levels" if self._depth > MAX_DEPTH else \
                f"more than {MAX_NODES:,} values"
            raise yaml.composer.ComposerError(None, None, f"too large a config: {what}",
                                              self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1's float resolver without its "a dot is required" quirk (PyYAML issue #173)
Loader.yaml_implicit_resolvers = {first: [r for r in rs if r[0] != _FLOAT]
                                  for first, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Loader.add_implicit_resolver(_FLOAT, re.compile(r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def read_text(path, name: str) -> str:
    """The text of a config file: at most ``MAX_BYTES``, UTF-8, not binary.

    Raises:
        ConfigError: missing, a directory, unreadable, too large, not UTF-8 text.
    """
    why = not_a_file(path)
    if why == "does not exist":
        raise ConfigError(f"{name}: config file not found")
    if why:  # a FIFO or a device would block or never end
        raise ConfigError(f"{name}: {why}" if why.startswith("cannot") else f"{name}: {why}, not a config file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{name}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the config: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{name}: too large for a config (over {MAX_BYTES // 1024} KiB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          "save the config as UTF-8") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise ConfigError(f"{name}:{line}: binary data (a NUL byte), not a YAML text file")
    return text


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be a config file, or None when it is a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:  # a symlink loop, a name too long, no permission
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a directory"
    return None if stat.S_ISREG(mode) else "is not a regular file"


def parse(text: str, name: str, lines: bool = True) -> tuple[object, dict[str, str]]:
    """YAML text -> (plain data, {dotted path: 'name:line'}), within the limits above.

    ``name`` is how messages refer to the text ('configs/x.yaml' or '--set model.hidden');
    ``lines=False`` leaves line numbers out (a one-line ``--set`` value).

    Raises:
        ConfigError: invalid YAML, limits exceeded, a recursive alias, a key that is not a
            string, a duplicate key.
    """
    at = (lambda line: f"{name}:{line}") if lines else (lambda line: name)
    try:
        loader = Loader(text)  # the reader refuses control characters here already
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_message(exc, name, at)) from None
    loader.npdl_where = at
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_message(exc, name, loader.npdl_where)) from None
        except RecursionError:  # belt and braces: MAX_DEPTH keeps composing far from the limit
            raise ConfigError(f"{name}: too large a config: nested too deeply") from None
        if node is None:
            return None, {}
        _check_expansion(node, loader.npdl_where)
        locations: dict[str, str] = {}
        problems: list[Problem] = []
        _locate(node, "", loader.npdl_where, locations, problems)
        if problems:
            raise ConfigError(problems)
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_message(exc, name, loader.npdl_where)) from None
        except ValueError as exc:  # int('9' * 5000): Python refuses to parse integers over 4300 digits
            raise ConfigError(f"{name}: a number too long to read ({str(exc)[:80]})") from None
        return data, locations
    finally:
        loader.dispose()


def _yaml_message(exc: yaml.YAMLError, name: str, at) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = at(mark.line + 1) if mark is not None else name
    if isinstance(exc, yaml.reader.ReaderError):
        return f"{where}: not a YAML text (unacceptable character #x{exc.character:04x})"
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: invalid YAML: {problem}"


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root, at) -> None:
    """Refuse a node graph whose tree (aliases expanded) exceeds the limits, or that has a cycle.

    Sizes and heights are memoised per node, so the work is linear in the *composed* graph
    however many times aliases repeat it; recursion depth stays under ``MAX_DEPTH + 1``.
    """
    memo: dict[int, tuple[int, int] | None] = {}

    def refuse(node, what: str):
        raise ConfigError(f"{at(node.start_mark.line + 1)}: too large a config: {what} "
                          "(are aliases (*name) repeating a large value?)")

    def walk(node, level: int) -> tuple[int, int]:
        if level > MAX_DEPTH:
            refuse(node, f"nested deeper than {MAX_DEPTH} levels")
        key = id(node)
        if key in memo:
            got = memo[key]
            if got is None:
                raise ConfigError(f"{at(node.start_mark.line + 1)}: an alias refers to a value that "
                                  "contains it (a recursive alias)")
            if level - 1 + got[1] > MAX_DEPTH:
                refuse(node, f"nested deeper than {MAX_DEPTH} levels")
            return got
        memo[key] = None
        size, height = 1, 1
        for child in _children(node):
            s, h = walk(child, level + 1)
            size, height = size + s, max(height, h + 1)
            if size > MAX_NODES:
                refuse(node, f"more than {MAX_NODES:,} values once aliases are expanded")
        memo[key] = (size, height)
        return size, height

    walk(root, 1)


def _locate(node, path: str, at, out: dict[str, str], problems: list[Problem]) -> None:
    """Record ``at(line)`` ('file:line') for every dotted path under ``node``; check mapping keys."""
    out[path] = at(node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode) and node.tag == _INT and len(node.value) > 100:
        # no config integer is that long, and Python refuses to parse one of over 4300 digits
        problems.append(Problem(path, f"a number {len(node.value):,} characters long", out[path]))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _locate(item, join(path, i), at, out, problems)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[str, int] = {}
    merged = []
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == _MERGE:
            merged.append(value_node)
            continue
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
            shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a list or mapping"
            kind = "a list or mapping" if not isinstance(key_node, yaml.ScalarNode) else \
                key_node.tag.rsplit(":", 1)[-1]
            problems.append(Problem(path, f"keys must be names (strings), got {str(shown)[:40]!r} ({kind}); "
                                          "quote it if it is meant as a name", at(line)))
            continue
        key = key_node.value
        if len(key) > MAX_KEY or not key:
            problems.append(Problem(path, f"a key must be a name of 1 to {MAX_KEY} characters, got one of "
                                          f"{len(key)}", at(line)))
            continue
        sub = join(path, key)
        if key in first:
            problems.append(Problem(sub, f"duplicate key: first set at {at(first[key])}, set again here",
                                    at(line)))
            continue
        first[key] = line
        _locate(value_node, sub, at, out, problems)
        out[sub] = at(line)
    # `<<: *base` merge keys: merged entries fill in what the mapping does not set itself
    for value_node in merged:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                continue  # the constructor reports it
            for key_node, sub_node in source.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR and key_node.value not in first:
                    sub = join(path, key_node.value)
                    if sub not in out:
                        _locate(sub_node, sub, at, out, [])
                        out[sub] = at(key_node.start_mark.line + 1)
