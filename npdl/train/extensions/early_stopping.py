"""Early stopping as an extension: on each evaluation, stop after ``patience`` evaluations
without an improvement of ``metric`` larger than ``min_delta``."""
from __future__ import annotations

from npdl.train.callbacks import EarlyStopping, lookup
from npdl.train.extensions.base import Extension, PRIORITY_WRITER


class EarlyStop(Extension):
    """Asks the trainer to stop (``trainer.stop``): the rest of this round is skipped, then the
    ``end`` moment runs (the final ``last`` checkpoint, the test evaluation)."""

    name = "early_stopping"
    priority = PRIORITY_WRITER
    trigger = "eval"

    def __init__(self, metric: str, mode: str = "max", patience: int = 3, min_delta: float = 0.0):
        self.rule = EarlyStopping(metric, mode, patience, min_delta)

    def __call__(self, trainer) -> None:
        value = lookup(trainer.observation, self.rule.metric)
        if value is not None and self.rule.should_stop(value):
            trainer.emit("on_message", f"early stopping: {self.rule.metric} has not improved for "
                                       f"{self.rule.patience} evaluations")
            trainer.stop()

    def state_dict(self) -> dict:
        return self.rule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        best, bad = state.get("best"), state.get("bad_evals", 0)
        if isinstance(bad, bool) or not isinstance(bad, int) or bad < 0 or not (
                best is None or (isinstance(best, (int, float)) and not isinstance(best, bool))):
            raise ValueError(f"expected {{best: number, bad_evals: integer >= 0}}, got {state!r:.80}")
        self.rule.load_state_dict(state)
