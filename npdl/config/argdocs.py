"""One-line descriptions of arguments and settings, read from where the code already says them.

For a registry entry (a class or a function) an argument's line comes, in this order, from

1. the ``Args:`` section of its docstring (the class's or ``__init__``'s; Google style,
   ``name: text`` or ``a, b: text`` for a group), continuation lines joined;
2. the first sentence of the docstring that names the argument as ````name````;

and for a settings dataclass (``train:``, ``eval:``) from the comment after each field.
Nothing is invented: an argument the code does not describe gets its type alone
(``type_text``), which ``npdl init`` and ``npdl list`` print beside it.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import Annotated, Literal, Union

from npdl import schema

_ARG_LINE = re.compile(r"^(\s*)([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*(?:\([^)]*\))?:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Raises|Returns|Yields|Example|Examples|Note|Notes)"
                      r"(\s*\(.*\))?:\s*$")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _docstrings(obj) -> list[str]:
    docs = [inspect.getdoc(obj) or ""]
    init = getattr(obj, "__init__", None) if inspect.isclass(obj) else None
    if init is not None and init is not object.__init__ and init.__doc__:
        docs.append(inspect.getdoc(init) or "")
    return docs


def args_section(doc: str) -> dict[str, str]:
    """``{name: text}`` from a docstring's ``Args:`` section (a group line gives each name the text)."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    inside, indent, current = False, None, []
    for line in lines:
        header = _SECTION.match(line)
        if header:
            inside = header.group(1) in ("Args", "Arguments", "Parameters")
            indent, current = None, []
            continue
        if not inside:
            continue
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line)
        if match and (indent is None or depth <= indent):
            indent = depth
            names = [n.strip() for n in match.group(2).split(",")]
            current = names
            for n in names:
                out[n] = match.group(3).strip()
        elif current and indent is not None and depth > indent:
            for n in current:
                out[n] = _squash(f"{out[n]} {line}")
        elif indent is not None and depth <= indent:
            inside = False  # the section ended (an unindented paragraph)
    return {k: _squash(v) for k, v in out.items() if v}


def _sentence_naming(doc: str, name: str, limit: int = 140) -> str:
    """The first short sentence of ``doc`` that names ````name```` ('' if none): a sentence that
    describes several things at length says little about one argument, so longer ones are skipped."""
    for paragraph in re.split(r"\n\s*\n", doc):
        if _SECTION.match(paragraph.splitlines()[0] if paragraph.strip() else ""):
            continue  # an Args/Raises section: handled by args_section, or not about arguments
        for sentence in re.split(r"(?<=[.])\s+(?=[A-Z`*(])", _squash(paragraph)):
            if (f"``{name}``" in sentence or f"``{name}=" in sentence) and len(sentence) <= limit:
                return sentence.strip()
    return ""


def argument_docs(obj, names) -> dict[str, str]:
    """A one-line description of each argument in ``names`` of registry entry ``obj`` ('' when
    the code does not describe it)."""
    docs = _docstrings(obj)
    found: dict[str, str] = {}
    for doc in docs:
        for key, text in args_section(doc).items():
            found.setdefault(key, text)
    out = {}
    for name in names:
        text = found.get(name, "")
        if not text:
            text = next((s for s in (_sentence_naming(d, name) for d in docs) if s), "")
        out[name] = text
    return out


def field_comments(cls) -> dict[str, str]:
    """``{field: comment}`` from the ``# ...`` after each field of dataclass ``cls``'s source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for line in source.splitlines():
        match = re.match(r"^\s+(\w+)\s*:[^#]*#\s*(.+)$", line)
        if match and match.group(1) in names:
            out[match.group(1)] = match.group(2).strip()
    return out


def settings_class(ann):
    """The settings dataclass in ``ann`` (``X`` or ``X | None``), or None (a ``Range`` inside
    ``Annotated`` is a dataclass *instance*, not a section)."""
    for a in (ann, *typing.get_args(ann)):
        if isinstance(a, type) and dataclasses.is_dataclass(a):
            return a
    return None


def summary(obj) -> str:
    """The first line of ``obj``'s docstring."""
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0].strip() if doc else ""


def type_text(ann) -> str:
    """Compact type text with spaces between alternatives, so it wraps between choices and never
    inside one: ``'relu' | 'gelu'``, ``int>0 | null``, ``list[int>0]``."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is inspect.Parameter.empty:
        return "any"
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_text(a) for a in args)
    if isinstance(ann, type) and dataclasses.is_dataclass(ann):
        return "mapping"
    if origin is Annotated:
        base = args[0]
        if typing.get_origin(base) in (Literal, Union, types.UnionType):
            return type_text(base)
    return schema.short(ann)
