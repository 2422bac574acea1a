"""Learning-rate schedules: pure functions of the step (DESIGN.md #4), and the scheduler that applies them.

A schedule is an object ``schedule(step) -> float``: a MULTIPLIER of each group's base lr,
``lr = initial_lr * schedule(step)``, so it can be unit-tested at chosen steps (nanoGPT's
``get_lr``) and the same schedule serves groups with different base lrs.

Step convention: ``step`` is the 1-based number of the optimizer update the lr is used for.
The first update uses ``schedule(1)``; after ``k`` updates the next one uses ``schedule(k + 1)``.
Hence a linear warmup of ``w`` steps gives ``1/w, 2/w, ..., 1`` (no wasted zero-lr update) and
reaches the base lr exactly at update ``w``; decays that count finished updates (step, multistep,
exponential) use ``step - 1`` so the first update runs at the base lr, as in PyTorch; cosine and
linear reach their floor at update ``total_steps``. ``schedule(0)`` (before any update) is defined
but never used by ``LRScheduler``.

``total_steps`` is supplied by the trainer when a config omits it; ``warmup_steps`` is an
ordinary argument. ``reduce_on_plateau`` is the one stateful schedule: the trainer calls
``observe(metric)`` after each evaluation (``LRScheduler.observe`` does that and re-applies the lr).
"""
from __future__ import annotations

import math
from typing import Literal

from npdl.registry import SCHEDULES
from npdl.schema import ArgumentError
from npdl.schema import NonNegativeInt, PositiveFloat, PositiveInt, Probability


def _check_step(step) -> int:
    ok = hasattr(step, "__index__") and not isinstance(step, bool) and step >= 0  # ints and np.integer
    if not ok:
        raise ValueError(f"schedule: step must be a non-negative integer, got {step!r}")
    return int(step)


def _need(cond: bool, arg: str, msg: str) -> None:
    """Raise ``ArgumentError`` (a ValueError) naming the argument ``arg`` unless ``cond``."""
    if not cond:
        raise ArgumentError([(arg, msg)])


class Schedule:
    """Base class: ``__call__(step) -> multiplier``; stateless unless it overrides the state methods."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, sd: dict) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _Warmup(Schedule):
    """Shared linear warmup: ``step / warmup_steps`` for ``step < warmup_steps`` (Goyal et al. 2017)."""

    warmup_steps = 0

    def __call__(self, step: int) -> float:
        step = _check_step(step)
        if step < self.warmup_steps:
            return step / self.warmup_steps
        return float(self.after(step))

    def after(self, step: int) -> float:
        raise NotImplementedError

    def _progress(self, step: int) -> float:
        """Share of the decay span (warmup_steps .. total_steps) behind ``step``, at most 1."""
        return min((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 1.0)


def _decay_span(total_steps: int, warmup_steps: int) -> None:
    _need(total_steps > warmup_steps, "warmup_steps",
          f"must be below total_steps ({total_steps}) to leave room for the decay, got {warmup_steps}")


@SCHEDULES.register("constant")
class Constant(_Warmup):
    """1 (after an optional linear warmup)."""

    def __init__(self, warmup_steps: NonNegativeInt = 0):
        self.warmup_steps = warmup_steps

    def after(self, step):
        return 1.0


@SCHEDULES.register("step")
class StepDecay(Schedule):
    """gamma ** floor((step - 1) / step_size): divide by 1/gamma every ``step_size`` updates."""

    def __init__(self, step_size: PositiveInt, gamma: PositiveFloat = 0.1):
        self.step_size, self.gamma = step_size, gamma

    def __call__(self, step):
        return float(self.gamma ** (max(_check_step(step) - 1, 0) // self.step_size))


@SCHEDULES.register("multistep")
class MultiStep(Schedule):
    """gamma ** (number of milestones m < step): update m + 1 is the first at the lower lr."""

    def __init__(self, milestones: list[PositiveInt], gamma: PositiveFloat = 0.1):
        _need(list(milestones) == sorted(set(milestones)), "milestones",
              f"must be strictly increasing, got {list(milestones)}")
        self.milestones, self.gamma = list(milestones), gamma

    def __call__(self, step):
        step = _check_step(step)
        return float(self.gamma ** sum(1 for m in self.milestones if m < step))


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """gamma ** (step - 1): multiplied by gamma after every update."""

    def __init__(self, gamma: PositiveFloat):
        self.gamma = gamma

    def __call__(self, step):
        return float(self.gamma ** max(_check_step(step) - 1, 0))


@SCHEDULES.register("cosine")
class Cosine(_Warmup):
    """Linear warmup, then a half cosine from 1 at ``warmup_steps`` to ``min_factor`` at ``total_steps``.

    p = (step - warmup) / (total - warmup);  f = min + (1 - min) * (1 + cos(pi * p)) / 2, and
    ``min_factor`` after ``total_steps``. Loshchilov & Hutter 2017 (SGDR) eq. 5 without restarts;
    warmup and floor as in nanoGPT's ``get_lr``. The midpoint gives (1 + min) / 2.
    """

    def __init__(self, total_steps: PositiveInt, warmup_steps: NonNegativeInt = 0, min_factor: Probability = 0.0):
        _decay_span(total_steps, warmup_steps)
        self.total_steps, self.warmup_steps, self.min_factor = total_steps, warmup_steps, min_factor

    def after(self, step):
        p = self._progress(step)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * p))


@SCHEDULES.register("linear")
class LinearSchedule(_Warmup):
    """Linear warmup, then a straight line from 1 at ``warmup_steps`` to ``min_factor`` at ``total_steps``.

    f = 1 - (1 - min) * (step - warmup) / (total - warmup), ``min_factor`` afterwards. This is
    word2vec's linearly decaying alpha (Mikolov et al. 2013, word2vec.c), whose floor is
    ``starting_alpha * 0.0001`` -- the default ``min_factor``. (word2vec.c decays towards 0 and
    clamps at the floor; interpolating to it instead differs by at most 1e-4 of the base lr.)
    """

    def __init__(self, total_steps: PositiveInt, warmup_steps: NonNegativeInt = 0, min_factor: Probability = 1e-4):
        _decay_span(total_steps, warmup_steps)
        self.total_steps, self.warmup_steps, self.min_factor = total_steps, warmup_steps, min_factor

    def after(self, step):
        return 1.0 - (1.0 - self.min_factor) * self._progress(step)


@SCHEDULES.register("noam")
class Noam(Schedule):
    """factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) (Vaswani et al. 2017, eq. 3).

    Step counts from 1 (the first update), so the peak, factor / sqrt(d_model * warmup), is at
    update ``warmup_steps``; step 0 gives 0 (the formula's limit). It is an absolute lr in the
    paper: set the optimizer's lr to 1.0 (with Adam betas (0.9, 0.98), eps 1e-9) to reproduce it.
    """

    def __init__(self, d_model: PositiveInt, warmup_steps: PositiveInt = 4000, factor: PositiveFloat = 1.0):
        self.d_model, self.warmup_steps, self.factor = d_model, warmup_steps, factor

    def __call__(self, step):
        step = _check_step(step)
        if step == 0:
            return 0.0
        return self.factor * self.d_model ** -0.5 * min(step ** -0.5, step * self.warmup_steps ** -1.5)


@SCHEDULES.register("inverse_sqrt")
class InverseSqrt(_Warmup):
    """Linear warmup to 1 at ``warmup_steps``, then sqrt(warmup_steps / step) (fairseq's inverse_sqrt)."""

    def __init__(self, warmup_steps: PositiveInt):
        self.warmup_steps = warmup_steps

    def after(self, step):
        return math.sqrt(self.warmup_steps / step)


@SCHEDULES.register("reduce_on_plateau")
class ReduceOnPlateau(Schedule):
    """Multiply the lr by ``factor`` when the observed metric stops improving (Keras/PyTorch's rule).

    ``observe(value)`` after each evaluation: an improvement is ``value < best * (1 - threshold)``
    (mode min, threshold_mode rel), ``value < best - threshold`` (abs), mirrored for mode max.
    After more than ``patience`` observations without one, the multiplier becomes
    ``max(multiplier * factor, min_factor)`` and ``cooldown`` observations are ignored (they
    count as neither good nor bad). Non-finite values never improve. ``__call__(step)`` returns
    the current multiplier, whatever the step.
    """

    def __init__(self, mode: Literal["min", "max"] = "min", factor: Probability = 0.1, patience: NonNegativeInt = 10,
                 threshold: float = 1e-4, threshold_mode: Literal["rel", "abs"] = "rel",
                 cooldown: NonNegativeInt = 0, min_factor: Probability = 0.0):
        _need(factor < 1.0, "factor", f"must be below 1 to reduce the lr, got {factor}")
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.min_factor = threshold_mode, cooldown, min_factor
        self._state = {"multiplier": 1.0, "best": None, "num_bad": 0, "cooldown_left": 0}

    def __call__(self, step):
        _check_step(step)
        return self._state["multiplier"]

    def _improves(self, v: float, best: float | None) -> bool:
        if not math.isfinite(v):
            return False
        if best is None:
            return True
        sign = 1.0 if self.mode == "min" else -1.0
        if self.threshold_mode == "rel":
            return sign * v < sign * best * (1.0 - sign * self.threshold)
        return sign * v < sign * best - self.threshold

    def observe(self, value) -> float:
        """Record one evaluation of the metric; returns the (possibly reduced) multiplier."""
        s, v = self._state, float(value)
        if self._improves(v, s["best"]):
            s["best"], s["num_bad"] = v, 0
        else:
            s["num_bad"] += 1
        if s["cooldown_left"] > 0:
            s["cooldown_left"] -= 1
            s["num_bad"] = 0
        if s["num_bad"] > self.patience:
            s["multiplier"] = max(s["multiplier"] * self.factor, self.min_factor)
            s["cooldown_left"], s["num_bad"] = self.cooldown, 0
        return s["multiplier"]

    def state_dict(self) -> dict:
        return dict(self._state)

    def load_state_dict(self, sd: dict) -> None:
        """Raises: ValueError listing missing or unknown keys (nothing changed)."""
        want = set(self._state)
        if not isinstance(sd, dict) or set(sd) != want:
            got = sorted(sd) if isinstance(sd, dict) else type(sd).__name__
            raise ValueError(f"reduce_on_plateau state must have keys {sorted(want)}, got {got}")
        self._state = {"multiplier": float(sd["multiplier"]), "num_bad": int(sd["num_bad"]),
                       "cooldown_left": int(sd["cooldown_left"]),
                       "best": None if sd["best"] is None else float(sd["best"])}


class LRScheduler:
    """Sets every group's ``lr = initial_lr * schedule(step)`` as training advances.

    Call ``step()`` once per optimizer update, AFTER ``optimizer.step()`` (PyTorch's order).
    Construction applies ``schedule(1)``, so update ``k`` (1-based) runs with ``schedule(k)``;
    ``last_step`` counts the updates done. ``schedule`` is any callable step -> multiplier.
    """

    def __init__(self, optimizer, schedule):
        self.optimizer, self.schedule = optimizer, schedule
        self.last_step = 0
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self._apply()

    def _apply(self) -> None:
        f = float(self.schedule(self.last_step + 1))
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f

    def step(self) -> None:
        """One optimizer update finished: set the lr for the next one."""
        self.last_step += 1
        self._apply()

    def observe(self, value) -> None:
        """Pass an evaluation metric to a stateful schedule (reduce_on_plateau) and re-apply the lr.

        Raises:
            TypeError: the schedule does not observe metrics.
        """
        if not hasattr(self.schedule, "observe"):
            raise TypeError(f"{type(self.schedule).__name__} does not observe metrics; only reduce_on_plateau does")
        self.schedule.observe(value)
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The lr of each group, i.e. what the next update will use."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """``{"step": updates done, "schedule": the schedule's own state ({} if stateless)}``."""
        sched = self.schedule.state_dict() if hasattr(self.schedule, "state_dict") else {}
        return {"step": self.last_step, "schedule": sched}

    def load_state_dict(self, sd: dict) -> None:
        """Restore the step count and schedule state, then re-apply the lr.

        Raises:
            ValueError: ``sd`` lacks ``step``/``schedule`` or has a negative step (nothing changed).
        """
        if not isinstance(sd, dict) or set(sd) != {"step", "schedule"}:
            raise ValueError(f"scheduler state must be {{'step': int, 'schedule': {{...}}}}, got {sd!r:.80}")
        step = sd["step"]
        if isinstance(step, bool) or not hasattr(step, "__index__") or step < 0:
            raise ValueError(f"scheduler state: 'step' must be a non-negative integer, got {step!r}")
        if hasattr(self.schedule, "load_state_dict"):
            self.schedule.load_state_dict(sd["schedule"])
        self.last_step = int(step)
        self._apply()
