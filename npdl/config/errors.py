"""``ConfigError``: every problem of a config at once, each as ``file:line: path: message``.

A ``Problem`` is one thing wrong: where (a dotted config path such as ``model.hidden.0``, and
once located the ``file:line`` it was written at) and what. ``ConfigError`` is the one
exception the CLI reports for configs (exit 2, no traceback).
"""
from __future__ import annotations

import dataclasses

from npdl.schema import did_you_mean  # noqa: F401  (re-exported: the config layer's did-you-mean)

MAX_PROBLEMS = 50  # a hostile config can have a million problems; nobody reads past a screenful


@dataclasses.dataclass
class Problem:
    """One thing wrong with a config: ``path`` (dotted, '' for the whole file), ``message``,
    and ``where`` ('file:line' or '--set') once located."""

    path: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        head = ": ".join(p for p in (self.where, self.path) if p)
        return f"{head}: {self.message}" if head else self.message


class ConfigError(ValueError):
    """A user error in a config (or a ``--set``); ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_PROBLEMS} more problems")
        super().__init__("\n".join(lines))


def join(path: str, key) -> str:
    """'model' + 'hidden' -> 'model.hidden' ('' + 'model' -> 'model')."""
    return f"{path}.{key}" if path else str(key)
