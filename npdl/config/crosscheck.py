"""What a config can only be checked against once its objects exist, and the one adjustment
the config layer makes: library errors turned into located config errors.

* ``located(cfg, section)``: a ``with`` block whose ``ArgumentError``/``ValueError``/
  ``TypeError``/``MemoryError`` (raised by library code for Python callers) becomes a
  ``ConfigError`` at the key and line the user wrote.
* ``check_splits``: an explicit ``train.eval_split`` must be a split of the dataset (a typo
  would otherwise turn evaluation off without a word).
* ``check_metrics``: ``train.monitor`` and ``train.early_stopping.metric`` must name metrics
  the task's evaluation returns, before the first step rather than at the first evaluation.
* ``fit_schedule``: a run shorter than its warmup gets a shorter warmup and a warning.
"""
from __future__ import annotations

import contextlib
import re

from npdl.config.errors import ConfigError, Problem, did_you_mean, join
from npdl.config.files import Config
from npdl.registry import SCHEDULES
from npdl.schema import ArgumentError


def _config_path(section: str, arg: str) -> str:
    """'groups[0].match' in section 'optimizer' -> 'optimizer.groups.0.match'."""
    return join(section, re.sub(r"\[(\d+)\]", r".\1", arg)) if arg else section


@contextlib.contextmanager
def located(cfg: Config, section: str, what: str = "", only_plain: bool = False):
    """Turn errors raised while building ``section`` into a located ``ConfigError``.

    ``what`` prefixes messages that do not name an argument (e.g. 'does not fit the data').
    ``only_plain``: leave subclasses of ValueError (a DataError, a TokenizerError: user errors
    with their own message) as they are.
    """
    prefix = f"{what}: " if what else ""
    try:
        yield
    except ConfigError:
        raise
    except ArgumentError as exc:
        raise cfg.error([Problem(_config_path(section, p), (prefix if not p else "") + m)
                         for p, m in exc.problems]) from None
    except MemoryError as exc:  # numpy's _ArrayMemoryError names the size it could not allocate
        raise cfg.error([Problem(section, f"too large to fit in memory ({exc})")]) from None
    except (ValueError, TypeError) as exc:
        if only_plain and type(exc) not in (ValueError, TypeError):
            raise
        raise cfg.error([Problem(section, prefix + str(exc))]) from None


def _user_set(cfg: Config, path: str) -> bool:
    node = cfg.data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is not None


def check_splits(cfg: Config, settings, data) -> None:
    """An explicit ``train.eval_split`` must name one of ``data.splits()``."""
    splits = tuple(data.splits())
    if _user_set(cfg, "train.eval_split") and settings.eval_split not in splits:
        raise cfg.error([Problem("train.eval_split", f"'{settings.eval_split}' is not a split of this dataset"
                                                     f"{did_you_mean(settings.eval_split, splits)} "
                                                     f"(splits: {', '.join(splits)})")])


def check_metrics(cfg: Config, settings, task, data) -> None:
    """``train.monitor`` and ``train.early_stopping.metric`` against what the task evaluates.

    Names without a split mean the periodic evaluation's split (``train.eval_split``).
    Tasks that do not declare their metrics (``metric_names() == ()``) are checked by the
    trainer at the first evaluation instead.
    """
    split = settings.eval_split
    names = tuple(task.metric_names())
    wanted = []
    if _user_set(cfg, "train.monitor"):
        wanted.append(("train.monitor", settings.monitor))
    if _user_set(cfg, "train.early_stopping.metric") and settings.early_stopping is not None:
        wanted.append(("train.early_stopping.metric", settings.early_stopping.metric))
    if not wanted:
        return
    problems = []
    if split not in data.splits():
        problems += [Problem(key, f"this run never evaluates (the dataset has no '{split}' split), so "
                                  f"'{name}' is never measured") for key, name in wanted]
        raise cfg.error(problems)
    if not names:
        return
    have = [f"{split}.{n}" for n in names]
    for key, name in wanted:
        full = name if "." in name else f"{split}.{name}"
        if full not in have:
            problems.append(Problem(key, f"'{name}' is not a metric of this run's evaluation"
                                         f"{did_you_mean(full, have)} (available: {', '.join(have)})"))
    if problems:
        raise cfg.error(problems)


def fit_schedule(cfg: Config, spec: dict, total_steps: int) -> tuple[dict, list[str]]:
    """``spec`` adjusted to a run of ``total_steps`` updates, and the warnings to show.

    A decaying schedule (one with ``total_steps``) whose warmup is not shorter than the run
    would have no room to decay; unless the user set ``total_steps`` themselves (then
    ``validate`` reported it), the warmup is cut to a tenth of the run and a warning names
    ``schedule.warmup_steps``.
    """
    name = spec.get("type")
    if name not in SCHEDULES or "total_steps" not in SCHEDULES.parameters(name) or "total_steps" in spec:
        return spec, []
    warmup = spec.get("warmup_steps", 0)
    if not isinstance(warmup, int) or warmup < total_steps:
        return spec, []
    fitted = total_steps // 10
    where = cfg.where("schedule.warmup_steps")
    warning = (f"{where}: schedule.warmup_steps: {warmup} is not shorter than this run ({total_steps} steps); "
               f"warming up for {fitted} step{'s' if fitted != 1 else ''} instead")
    return {**spec, "warmup_steps": fitted}, [warning]
