"""Registries: the closed sets of names a config's ``type:`` may use.

One ``Registry`` per kind (layer, model, loss, optimizer, schedule, dataset, metric), filled
by decorators next to the code they name::

    @LAYERS.register("linear")
    class Linear(Module): ...

``validate(spec, path)`` checks a ``{"type": ..., **kwargs}`` mapping against the entry's
signature without building anything and returns every problem found; ``build`` validates,
then calls the entry. Unknown names and arguments come with a "did you mean".
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing

from npdl import schema


@dataclasses.dataclass
class Problem:
    """One thing wrong with a config: where (dotted path), what, and a suggestion."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(ValueError):
    """A user error in a spec or config; carries every problem found (``problems``)."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def did_you_mean(word: str, choices) -> str:
    """' — did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


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
        return name in self._entries

    def get(self, name: str):
        """The entry called ``name``; ``ConfigError`` with a suggestion when there is none."""
        if name not in self._entries:
            raise ConfigError(self.unknown(name))
        return self._entries[name]

    def unknown(self, name) -> str:
        hint = did_you_mean(name, self._entries)
        return f"unknown {self.kind} '{name}'{hint} (known: {', '.join(self.names())})"

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

    def validate(self, spec, path: str = "", provided: typing.Iterable[str] = (),
                 skip_check: typing.Iterable[str] = ()) -> list[Problem]:
        """Every problem with ``spec`` as a call of its ``type``; builds nothing.

        ``provided`` names arguments the caller will supply (e.g. vocab_size from the data),
        so they count as present. ``skip_check`` names arguments whose values are validated
        elsewhere (nested specs).
        """
        if not isinstance(spec, dict):
            return [Problem(path, f"expected a mapping with a 'type' key, got {spec!r}")]
        if "type" not in spec:
            return [Problem(path, f"missing 'type' (one of: {', '.join(self.names())})")]
        name = spec["type"]
        if name not in self._entries:
            return [Problem(join(path, "type"), self.unknown(name))]
        params = self.parameters(name)
        problems = []
        for key, value in spec.items():
            if key == "type":
                continue
            if key not in params:
                hint = did_you_mean(key, params)
                problems.append(Problem(join(path, key), f"unknown argument for {self.kind} '{name}'{hint} "
                                                          f"(accepted: {', '.join(params) or 'none'})"))
                continue
            ann = params[key].annotation
            if key not in skip_check and ann is not inspect.Parameter.empty:
                msg = schema.check(value, ann)
                if msg:
                    problems.append(Problem(join(path, key), msg))
        provided = set(provided) | set(self.hidden)
        for pname, p in params.items():
            if p.default is inspect.Parameter.empty and pname not in spec and pname not in provided:
                problems.append(Problem(join(path, pname), f"missing required argument of {self.kind} '{name}'"))
        nested = getattr(self._entries[name], "validate_spec", None)
        if nested is not None:  # entries holding specs of their own (e.g. a layer list) check them
            problems.extend(nested(spec, path))
        return problems

    def build(self, spec: dict, path: str = "", **deps):
        """Validate ``spec`` and call its entry with the spec's kwargs plus accepted ``deps``.

        ``deps`` (e.g. ``vocab_size=10000``) are passed only to entries whose signature names
        them and only when the spec does not set them itself.
        """
        known = isinstance(spec, dict) and spec.get("type") in self
        params = self.parameters(spec["type"]) if known else {}
        everything = self.parameters(spec["type"], include_hidden=True) if known else {}
        accepted = {k: v for k, v in deps.items() if k in everything and k not in spec}
        problems = self.validate(spec, path, provided=accepted)
        if problems:
            raise ConfigError(problems)
        kwargs = {k: schema.coerce(v, params[k].annotation) for k, v in spec.items() if k != "type"}
        return self._entries[spec["type"]](**kwargs, **accepted)


LAYERS = Registry("layer")
MODELS = Registry("model")
LOSSES = Registry("loss", "losses")
OPTIMIZERS = Registry("optimizer", hidden=("rng", "params"))
SCHEDULES = Registry("schedule")
DATASETS = Registry("dataset")
METRICS = Registry("metric")

ALL = {r.plural: r for r in (LAYERS, MODELS, LOSSES, OPTIMIZERS, SCHEDULES, DATASETS, METRICS)}


def import_optional(modules) -> None:
    """Import each module that exists; a module missing *itself* is skipped, any other error raised.

    Model families, datasets and commands each live in their own modules; the lists of them
    (``npdl.experiment.FAMILY_MODULES``, ``npdl.cli.OPTIONAL_COMMANDS``) go through here.
    """
    import importlib

    for mod in modules:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def listing(kind: str) -> list[tuple[str, str, str]]:
    """(name, signature, one-line doc) for every entry of ``kind`` ('layers', 'models', ...)."""
    reg = ALL[kind]
    return [(n, reg.signature(n), reg.summary(n)) for n in reg.names()]
