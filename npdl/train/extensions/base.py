"""Extensions and triggers: what runs around the train step (Chainer's ``training.Extension``).

The loop (``train/trainer.py``) is: next batch -> train step -> every extension whose trigger
fires. An extension is a small object; every hook is optional:

* ``__call__(trainer)``: its trigger fired (``trainer.moment`` says at which moment, for an
  extension with several triggers);
* ``initialize(trainer)`` / ``finalize(trainer)``: when ``fit`` starts / ends (also on an error);
* ``step_scope(trainer)``: a context manager (or None) entered around the forward and backward
  passes of the coming step (``trainer.step + 1``), e.g. to watch activations;
* ``after_backward(trainer)``: the step's gradients are complete (reduced across workers), not
  yet clipped;
* ``state_dict()`` / ``load_state_dict(state)``: JSON-able state kept in checkpoints under
  ``meta.extensions.<name>``, so a resumed run continues exactly.

Moments: ``"step"`` after every optimizer step, ``"epoch"`` after the last step of an epoch
(``trainer.epoch`` already counts it), ``"end"`` once training ends normally, and events:
``"eval"`` (an evaluation just finished; its metrics are in ``trainer.observation``), ``"nan"``
(a non-finite loss or gradient: the step is not applied) and ``"signal"`` (Ctrl-C, SIGTERM,
SIGHUP: training stops after this). A trigger spec is ``(N, "step")``, ``(N, "epoch")``, a
moment name (``"end"``, ``"eval"``, ``"nan"``, ``"signal"``), a list of specs (any fires), or
an object with ``fires(trainer) -> bool``.
"""
from __future__ import annotations

import contextlib

# the order extensions run in (Chainer's priorities): higher first, then in the order added
PRIORITY_WRITER = 300    # the schedule, NaN guard, health, train log, progress, evaluation
PRIORITY_DEFAULT = 200   # extensions added by users
PRIORITY_READER = 100    # checkpoints and the final test: they see what the others did

_UNITS = {"step": "step", "steps": "step", "epoch": "epoch", "epochs": "epoch"}
MOMENTS = ("step", "epoch", "end", "eval", "nan", "signal")


class IntervalTrigger:
    """Fires after every ``period``-th step (unit ``step``) or epoch (unit ``epoch``)."""

    def __init__(self, period: int, unit: str = "step"):
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"trigger period: expected a positive integer, got {period!r}")
        if unit not in _UNITS:
            raise ValueError(f"trigger unit: expected 'step' or 'epoch', got {unit!r}")
        self.period, self.unit = period, _UNITS[unit]

    def fires(self, trainer) -> bool:
        if trainer.moment != self.unit:
            return False
        count = trainer.step if self.unit == "step" else trainer.epoch
        return count % self.period == 0

    def __repr__(self) -> str:
        return f"({self.period}, {self.unit!r})"


class EventTrigger:
    """Fires at one named moment: ``end``, ``eval``, ``nan``, ``signal`` (or ``step``/``epoch``: each)."""

    def __init__(self, moment: str):
        self.moment = moment

    def fires(self, trainer) -> bool:
        return trainer.moment == self.moment

    def __repr__(self) -> str:
        return repr(self.moment)


class AnyTrigger:
    """Fires when any of ``triggers`` does."""

    def __init__(self, *triggers):
        self.triggers = [make_trigger(t) for t in triggers]

    def fires(self, trainer) -> bool:
        return any(t.fires(trainer) for t in self.triggers)

    def __repr__(self) -> str:
        return "[" + ", ".join(map(repr, self.triggers)) + "]"


class Never:
    """Fires at no moment (loggers: they see events through ``write``, not a trigger)."""

    def fires(self, trainer) -> bool:
        return False

    def __repr__(self) -> str:
        return "never"


def make_trigger(spec):
    """A trigger from a spec: ``(100, "step")``, ``(1, "epoch")``, ``"end"``, a list of specs, a trigger."""
    if spec is None:
        return Never()
    if hasattr(spec, "fires"):
        return spec
    if isinstance(spec, str):
        return EventTrigger(spec)
    if isinstance(spec, tuple) and len(spec) == 2:
        return IntervalTrigger(*spec)
    if isinstance(spec, list):
        return AnyTrigger(*spec)
    raise ValueError(f"trigger: expected (N, 'step'), (N, 'epoch'), a moment name ({', '.join(MOMENTS)}) "
                     f"or a list of these, got {spec!r}")


class Extension:
    """Base class of extensions: override the hooks you need (see the module docstring).

    ``name`` keys the extension's state in checkpoints (unique per trainer); ``trigger`` is the
    default trigger spec, replaced by ``trainer.extend(ext, trigger=...)``; ``priority`` orders extensions (higher first).
    """

    name: str = ""
    trigger = (1, "step")
    priority = PRIORITY_DEFAULT

    def __call__(self, trainer) -> None:
        pass

    def initialize(self, trainer) -> None:
        pass

    def finalize(self, trainer) -> None:
        pass

    def step_scope(self, trainer) -> contextlib.AbstractContextManager | None:
        return None

    def after_backward(self, trainer) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @property
    def default_name(self) -> str:
        return self.name or type(self).__name__


class Logger(Extension):
    """An extension that receives every event the trainer logs (``trainer.log``) through
    ``write(trainer, event)``; it needs no trigger."""

    trigger = None
    priority = PRIORITY_WRITER

    def write(self, trainer, event: dict) -> None:
        raise NotImplementedError
