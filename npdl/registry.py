"""Registries: the closed sets of names a config's ``type:`` may use, and nothing else.

One ``Registry`` per kind (layer, model, loss, optimizer, schedule, dataset; tasks and
tokenizers, which configs name indirectly), filled by decorators next to the code they name::

    @LAYERS.register("linear")
    class Linear(Module): ...

A registry maps names to classes and describes their signatures for listings. Checking a
config against those signatures is ``npdl.config``'s job; ``build`` here only binds and calls.
"""
from __future__ import annotations

import inspect
import typing

from npdl import schema
from npdl.schema import ArgumentError, did_you_mean


class Registry:
    """Names of one kind mapped to classes or factory functions."""

    def __init__(self, kind: str, plural: str | None = None, hidden: tuple[str, ...] = ("rng",)):
        self.kind = kind
        self.plural = plural or kind + "s"
        # arguments code supplies and configs may not set (e.g. an optimizer's params)
        self.hidden = hidden
        self._entries: dict[str, typing.Callable] = {}

    def register(self, name: str):
        """Decorator: ``@REG.register("name")`` adds the class or function under ``name``."""

        def deco(obj):
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._entries

    def get(self, name: str):
        """The entry called ``name``.

        Raises:
            ArgumentError: no such entry (the message suggests the closest name).
        """
        if name not in self:
            raise ArgumentError([("type", self.unknown(name))])
        return self._entries[name]

    def unknown(self, name) -> str:
        if not isinstance(name, str):
            return f"expected the name of a {self.kind} (one of: {', '.join(self.names())}), got {schema.show(name)}"
        hint = did_you_mean(name, self._entries)
        return f"unknown {self.kind} '{name[:100]}'{hint} (known: {', '.join(self.names())})"

    def parameters(self, name: str, include_hidden: bool = False) -> dict[str, inspect.Parameter]:
        """The keyword parameters a config may set for entry ``name`` (all of them with ``include_hidden``)."""
        obj = self.get(name)
        target = obj.__init__ if inspect.isclass(obj) else obj
        sig = inspect.signature(target)
        hints = typing.get_type_hints(target, include_extras=True)
        params = {}
        for p in sig.parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name in self.hidden and not include_hidden:
                continue
            params[p.name] = p.replace(annotation=hints.get(p.name, p.annotation))
        return params

    def signature(self, name: str) -> str:
        """``name(arg: type = default, ...)`` for listings."""
        parts = []
        for p in self.parameters(name).values():
            text = p.name
            if p.annotation is not inspect.Parameter.empty:
                text += f": {schema.short(p.annotation)}"
            if p.default is not inspect.Parameter.empty:
                text += f" = {p.default!r}"
            parts.append(text)
        return f"{name}({', '.join(parts)})"

    def summary(self, name: str) -> str:
        doc = inspect.getdoc(self.get(name)) or ""
        return doc.splitlines()[0] if doc else ""

    def build(self, spec: dict, **deps):
        """Call the entry ``spec["type"]`` with the spec's other keys plus the accepted ``deps``.

        ``deps`` (e.g. ``vocab_size=10000``) are passed only to entries whose signature names
        them and only when the spec does not set them itself. Nothing is checked here beyond
        the name: ``npdl.config`` validated the spec; Python callers get the constructor's own
        ``TypeError``/``ValueError``.
        """
        if not isinstance(spec, dict):
            raise ArgumentError(f"expected a mapping with a 'type' key, got {type(spec).__name__}")
        name = spec.get("type")
        entry = self.get(name)
        everything = self.parameters(name, include_hidden=True)
        accepted = {k: v for k, v in deps.items() if k in everything and k not in spec}
        params = self.parameters(name)
        kwargs = {k: schema.coerce(v, params[k].annotation) if k in params else v
                  for k, v in spec.items() if k != "type"}
        return entry(**kwargs, **accepted)


LAYERS = Registry("layer")
MODELS = Registry("model")
LOSSES = Registry("loss", "losses")
OPTIMIZERS = Registry("optimizer", hidden=("rng", "params"))
SCHEDULES = Registry("schedule")
DATASETS = Registry("dataset")
TASKS = Registry("task")            # filled by npdl.train.tasks and the family task modules
TOKENIZERS = Registry("tokenizer")  # filled by npdl.data.tokenizers

# the kinds a config's `type:` names (what `npdl list` shows)
ALL = {r.plural: r for r in (LAYERS, MODELS, LOSSES, OPTIMIZERS, SCHEDULES, DATASETS)}


def listing(kind: str) -> list[tuple[str, str, str]]:
    """(name, signature, one-line doc) for every entry of ``kind`` ('layers', 'models', ...)."""
    reg = ALL[kind]
    return [(n, reg.signature(n), reg.summary(n)) for n in reg.names()]
