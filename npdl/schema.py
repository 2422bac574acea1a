"""Checking plain values (from YAML) against Python type annotations.

Signatures are the schema: a layer declared as ``def __init__(self, out_features: PositiveInt,
dropout: Probability = 0.0)`` documents, validates and builds from one place. ``check``
returns a human sentence describing what was expected, or None when the value fits.

Supported annotations: int, float (accepts ints), bool, str, None, Any, Optional/Union
(``X | Y``), Literal, list[X], tuple[X, ...], tuple[X, Y], dict[K, V], and
``Annotated[T, Constraint]`` with the constraints below.

Numbers must be finite (``.nan``, ``.inf`` and ``1e999`` are never "positive") and integers
must fit in 64 bits, so a checked value can go straight into NumPy.

Library code (optimizers, schedules, layers) raises :class:`ArgumentError`, an ordinary
``ValueError`` whose ``problems`` name the argument at fault; the config layer
(``npdl.config``) turns those into ``file:line: path: message``. This module knows no files.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Annotated, Any, Literal, Union


INT_LIMIT = 2 ** 63  # integers must fit NumPy's int64


class ArgumentError(ValueError):
    """Arguments that do not fit: ``problems`` lists ``(argument path, message)`` pairs.

    The path is relative to the call (``lr``, ``groups[0].match``); ``str()`` shows one
    ``path: message`` line per problem.
    """

    def __init__(self, problems: list[tuple[str, str]] | str):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = [(str(p), str(m)) for p, m in problems]
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in self.problems))


def did_you_mean(word, choices) -> str:
    """' — did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(str(word)[:200], [str(c) for c in choices], n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


@dataclasses.dataclass(frozen=True)
class Range:
    """Numeric bounds; ``lo_open``/``hi_open`` make a bound exclusive."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def ok(self, v) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True

    def words(self) -> str:
        if self.lo == 0 and self.lo_open and self.hi is None:
            return "positive"
        if self.lo == 0 and not self.lo_open and self.hi is None:
            return "non-negative"
        lo = "" if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo:g}"
        hi = "" if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "in range " + " and ".join(p for p in (lo, hi) if p)


PositiveInt = Annotated[int, Range(0, lo_open=True)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, lo_open=True)]
NonNegativeFloat = Annotated[float, Range(0)]
Probability = Annotated[float, Range(0, 1)]
UnitInterval = Annotated[float, Range(0, 1, hi_open=True)]  # e.g. dropout, label smoothing: [0, 1)

_ARTICLE = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
            "NoneType": "null", "list": "a list", "dict": "a mapping", "tuple": "a list"}


def describe(ann) -> str:
    """Words for what ``ann`` accepts, e.g. 'a positive integer' or 'one of 'relu', 'gelu''."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is Any or ann is typing.Any:
        return "any value"
    if origin is Annotated:
        base, *meta = args
        rng = next((m for m in meta if isinstance(m, Range)), None)
        if rng is None:
            return describe(base)
        noun = "integer" if base is int else "number"
        w = rng.words()
        return f"a {w} {noun}" if w in ("positive", "non-negative") else f"a {noun} {w}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        # "or null" adds nothing to an error message: null is the default, not the point
        named = [a for a in args if a is not type(None)] or list(args)
        return " or ".join(describe(a) for a in named)
    if origin in (list, tuple):
        inner = args[0] if args else Any
        return f"a list of {_plural(describe(inner))}" if inner is not Any else "a list"
    if origin is dict:
        return "a mapping"
    name = getattr(ann, "__name__", str(ann))
    return _ARTICLE.get(name, f"a {name}")


def _plural(words: str) -> str:
    for art in ("an ", "a "):
        if words.startswith(art):
            return words[len(art):] + "s"
    return words


def check(value, ann) -> str | None:
    """None if ``value`` fits ``ann``; otherwise 'expected <description>, got <value>'."""
    return None if _fits(value, ann) else f"expected {describe(ann)}, got {show(value)}"


def show(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 30:
        # repr of 10**5000 is slow, useless, and refused by Python beyond 4300 digits
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if not isinstance(value, (list, dict)) or _small(value) else f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _small(value, budget: int = 50) -> bool:
    """True when ``value`` (nested lists/dicts) has at most ``budget`` items: cheap to repr."""
    stack, seen = [value], 0
    while stack:
        v = stack.pop()
        seen += 1
        if seen > budget:
            return False
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


def _fits(value, ann) -> bool:
    if ann is Any or ann is typing.Any or ann is object:
        return True
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Annotated:
        base, *meta = args
        if not _fits(value, base):
            return False
        return all(m.ok(value) for m in meta if isinstance(m, Range))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if ann is None or ann is type(None):
        return value is None
    if ann is bool:
        return isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool) and -INT_LIMIT <= value < INT_LIMIT
    if ann is float:
        return is_finite_number(value)
    if ann is str:
        return isinstance(value, str)
    if origin is list or ann is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is tuple or ann is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return not args or all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    if origin is dict or ann is dict:
        if not isinstance(value, dict):
            return False
        if not args:
            return True
        return all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if isinstance(ann, type):
        return isinstance(value, ann)
    return True  # unknown annotation forms are not checked


def is_finite_number(value) -> bool:
    """An int or float (not a bool) that is finite as a float: no NaN, no inf, no 10**400."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return -INT_LIMIT <= value < INT_LIMIT
    return math.isfinite(value)


def coerce(value, ann):
    """Convert a checked YAML value to what the annotation means (lists -> tuples for tuple[...])."""
    origin = typing.get_origin(ann)
    if origin is Annotated:
        return coerce(value, typing.get_args(ann)[0])
    if (origin is tuple or ann is tuple) and isinstance(value, list):
        return tuple(value)
    if ann is float and isinstance(value, int):
        return float(value)
    return value


def short(ann) -> str:
    """Compact type text for listings: 'int>0', 'list[int>0]', 'float in [0, 1)', "'relu'|'gelu'"."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is Any or ann is typing.Any:
        return "any"
    if origin is Annotated:
        base, *meta = args
        rng = next((m for m in meta if isinstance(m, Range)), None)
        name = short(base)
        if rng is None:
            return name
        if rng.lo is not None and rng.hi is None:
            return f"{name}{'>' if rng.lo_open else '>='}{rng.lo:g}"
        lo = "(" if rng.lo_open else "["
        hi = ")" if rng.hi_open else "]"
        return f"{name} in {lo}{rng.lo:g}, {rng.hi:g}{hi}"
    if origin is Literal:
        return "|".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return "|".join(short(a) for a in args)
    if origin in (list, tuple):
        return f"list[{short(args[0])}]" if args else "list"
    if origin is dict:
        return "mapping"
    if ann is type(None) or ann is None:
        return "null"
    return getattr(ann, "__name__", str(ann))
