"""What a checkpoint holds of a trainer, and how a run continues from one.

``state(trainer)``: the weights, optimizer and schedule state, the task's carried state, the RNG,
the data position (step, epoch, batch in epoch), the wall time, and every extension's state
under ``meta.extensions.<name>``. ``restore`` loads it back; checkpoints written before
extensions kept their own state (``meta.best``, ``meta.early``, ``meta.last_eval``) still load.
"""
from __future__ import annotations

from npdl.core import random as _random
from npdl.optim.optimizer import OptimizerStateError
from npdl.train import checkpoint
from npdl.train.extensions import Evaluate

_RESTORE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def state(trainer) -> dict:
    t = trainer
    return dict(
        model=dict(t.model.state_dict()), optim=t.optimizer.state_dict(),
        sched=t.scheduler.state_dict() if t.scheduler else {}, task=t.dist.gather_task_state(t.task.state_dict()),
        meta={"step": t.step, "epoch": t.epoch, "batch_in_epoch": t.batch_in_epoch,
              "rng": _random.get_rng_state(), "seed": t.seed, "wall": t.wall,
              "extensions": {e.name: e.state_dict() for e in t.extensions if hasattr(e, "state_dict")},
              **t.dist.checkpoint_meta()})  # data-parallel: world size, every rank's RNG


def restore(trainer, state: dict, weights_only: bool = False, source=None) -> None:
    """See ``Trainer.restore``."""
    t = trainer
    t.model.load_state_dict(state["model"])
    if weights_only:
        return
    where = f"{source}: " if source is not None else ""
    if "optim" not in state or "meta" not in state:
        raise checkpoint.CheckpointError(f"{where}no {'optim' if 'optim' not in state else 'meta'} part: "
                                         "holds weights only, cannot continue training from it")
    try:
        t.optimizer.load_state_dict(state["optim"])
    except OptimizerStateError as exc:
        raise checkpoint.CheckpointError(f"{where}optim: {exc}") from None
    part = "sched"
    try:
        if t.scheduler and state.get("sched"):
            t.scheduler.load_state_dict(state["sched"])
        part = "task"
        t.task.load_state_dict(t.dist.scatter_task_state(state.get("task") or {}))
        part = "meta.rng"
        meta = state["meta"]
        _random.set_rng_state(meta["rng"])
        t.dist.restore_meta(meta)  # data-parallel: this rank's RNG
    except _RESTORE_ERRORS as exc:
        raise checkpoint.CheckpointError(f"{where}{part}: does not fit this run ({type(exc).__name__}: "
                                         f"{str(exc)[:200]})") from None
    t.step, t.epoch, t.batch_in_epoch = meta["step"], meta["epoch"], meta["batch_in_epoch"]
    t.restore_wall(float(meta.get("wall", 0.0)))
    t.last_saved_position = t.position  # 'last' holds exactly this state
    states = meta["extensions"] if "extensions" in meta else _legacy_states(t, meta)
    for name, ext_state in states.items():
        t.load_extension_state(name, ext_state, where)


def load_extension(ext, state, where: str = "") -> None:
    """``ext.load_state_dict(state)``; a state that does not fit is a ``CheckpointError`` naming it."""
    try:
        if not isinstance(state, dict):
            raise TypeError(f"expected an object, got {type(state).__name__}")
        if hasattr(ext, "load_state_dict"):
            ext.load_state_dict(state)
    except _RESTORE_ERRORS as exc:
        raise checkpoint.CheckpointError(f"{where}meta.extensions.{ext.name}: does not fit this run "
                                         f"({type(exc).__name__}: {str(exc)[:200]})") from None


def _legacy_states(t, meta: dict) -> dict:
    """Extension states of a checkpoint written before extensions (meta.best, .early, .last_eval)."""
    states = {}
    if meta.get("best") is not None:
        states["best_checkpoint"] = meta["best"]
    if meta.get("early"):
        states["early_stopping"] = meta["early"]
    last_eval = meta.get("last_eval")
    if not isinstance(last_eval, int) or isinstance(last_eval, bool):  # older still: assume it was, if logged
        evaluate = evaluator(t)
        logged = evaluate is not None and t.run is not None and any(
            evaluate.is_periodic_eval(e, t.step) for e in t.run.metrics())
        last_eval = t.step if logged else -1
    states["evaluate"] = {"last_eval": last_eval}
    return states


def evaluator(t) -> Evaluate | None:
    return next((e for e in t.extensions if isinstance(e, Evaluate)), None)


def logged_after_checkpoint(t, event: dict) -> bool:
    """See ``Trainer.logged_after_checkpoint``."""
    step = event.get("step")
    if not isinstance(step, (int, float)) or isinstance(step, bool):
        return False
    if step != t.step:
        return step > t.step
    evaluate = evaluator(t)
    return event.get("event") == "eval" and (event.get("split") == "test" or (
        evaluate is not None and evaluate.is_periodic_eval(event, t.step) and evaluate.last_eval != t.step))
