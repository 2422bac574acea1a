"""The training loop. It knows no YAML and prints nothing: progress goes to ``callbacks``
(the CLI draws bars from them), results go to the run directory.

A run is reproducible from its directory alone (DESIGN principle 6): checkpoints carry the
weights, optimizer state, schedule step, RNG state, the task's carried state and the data
position (epoch, batch), and the data order is a pure function of (seed, epoch). So a run
killed and resumed ends bit-identical to one never interrupted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
from typing import Literal

import numpy as np

from npdl.atomic import atomic_write
from npdl.core import random as _random
from npdl.nn.module import evaluating
from npdl.optim.clip import clip_grad_norm_, clip_grad_value_, grad_norm
from npdl.optim.optimizer import OptimizerStateError
from npdl.runs import DiskFullError, Run, is_disk_full
from npdl.schema import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, did_you_mean
from npdl.train import checkpoint, distributed, health  # [distributed]
from npdl.train.callbacks import Best, EarlyStopping, lookup


@dataclasses.dataclass
class EarlyStoppingSettings:
    """``train.early_stopping``: stop after ``patience`` evals without improving ``metric``."""

    metric: str
    mode: Literal["min", "max"] = "max"
    patience: PositiveInt = 3
    min_delta: NonNegativeFloat = 0.0


@dataclasses.dataclass
class TrainSettings:
    """The ``train:`` section of a config."""

    epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = None
    grad_clip: PositiveFloat | None = None        # global L2 norm
    grad_clip_value: PositiveFloat | None = None  # elementwise
    grad_accum: PositiveInt = 1                   # micro-batches per optimizer step
    eval_every: PositiveInt | None = None         # optimizer steps; None = end of each epoch
    log_every: PositiveInt = 50
    checkpoint_every: PositiveInt | None = None   # optimizer steps; 'last' is also saved every epoch
    keep_last: NonNegativeInt = 2                 # step-N checkpoints kept
    monitor: str | None = None                    # e.g. val.accuracy (default: the task's)
    mode: Literal["min", "max"] | None = None
    early_stopping: EarlyStoppingSettings | None = None
    test_at_end: bool = True                      # evaluate the best checkpoint on 'test' at the end
    eval_split: str = "val"                       # the split periodic evaluation uses
    health_every: PositiveInt | None = None       # optimizer steps between health records (train/health.py)


class NonFiniteError(RuntimeError):
    """Training produced NaN/inf; the message names the step and the first non-finite tensor."""


class TrainingInterrupted(RuntimeError):
    """Ctrl-C, SIGTERM or SIGHUP: a final checkpoint was written; ``npdl resume`` continues the run."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


# signals that mean "stop, please": each finishes the step and writes a final checkpoint
_STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    _STOP_SIGNALS[signal.SIGHUP] = "SIGHUP"
_RESTORE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


class Trainer:
    """Runs optimizer steps of ``task`` until ``settings`` say stop, evaluating and checkpointing."""

    def __init__(self, model, task, data, optimizer, scheduler, settings: TrainSettings, run: Run | None = None,
                 seed: int = 0, callbacks=(), dist=None):
        self.model, self.task, self.data = model, task, data
        self.dist = dist if dist is not None else distributed.LOCAL  # [distributed] world of 1 = no-op hooks
        self.data = self.dist.attach(model, data, seed)  # [distributed] bcast weights, rank RNG, train rows
        self.optimizer, self.scheduler, self.settings = optimizer, scheduler, settings
        self.run, self.seed, self.callbacks = run, seed, list(callbacks)
        self.best = Best(self._qualified(settings.monitor or task.monitor[0]), settings.mode or task.monitor[1])
        es = settings.early_stopping
        self.early = EarlyStopping(self._qualified(es.metric), es.mode, es.patience, es.min_delta) if es else None
        self.step = self.epoch = self.batch_in_epoch = 0
        self.history: list[dict] = []
        self._stop_requested = False
        self._signal = signal.SIGINT
        self._wall = 0.0
        self._last_saved = -1
        self._params: list | None = None  # filled at the first optimizer step
        self._last_eval = -1

    def _qualified(self, metric: str) -> str:
        """'accuracy' -> 'val.accuracy' (metrics without a split name the periodic eval split)."""
        return metric if "." in metric else f"{self.settings.eval_split}.{metric}"

    # ---- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        return dict(
            model=dict(self.model.state_dict()), optim=self.optimizer.state_dict(),
            sched=self.scheduler.state_dict() if self.scheduler else {},
            task=self.dist.gather_task_state(self.task.state_dict()),  # [distributed] all ranks' rows
            meta={"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                  "rng": _random.get_rng_state(), "seed": self.seed, "wall": self._wall,
                  "best": dataclasses.asdict(self.best), "last_eval": self._last_eval,
                  "early": self.early.state_dict() if self.early else None,
                  **self.dist.checkpoint_meta()})  # [distributed] world_size, every rank's RNG

    def save(self, *names: str) -> None:
        """Checkpoint the current state as each of ``names`` ('last', 'best', 'step-N'):
        serialised once, the other names get copies of the same bytes."""
        if self.run is None:
            return
        first = checkpoint.save(self.run.checkpoint_path(names[0]), **self.state())
        for which in names[1:]:
            atomic_write(self.run.checkpoint_path(which), first.read_bytes())
        if "last" in names:
            self._last_saved = self.step
        if any(which.startswith("step-") for which in names):
            steps = sorted(self.run.checkpoints.glob("step-*.npz"))
            for old in steps[: max(len(steps) - self.settings.keep_last, 0)]:
                old.unlink(missing_ok=True)

    def restore(self, state: dict, weights_only: bool = False, source=None) -> None:
        """Load a checkpoint's parts (``checkpoint.load`` output, its meta already validated there);
        the model and optimizer checks are strict.

        Raises:
            StateDictError, OptimizerStateError: listing every mismatch.
            checkpoint.CheckpointError: a part this run cannot use, naming ``source`` and the part.
        """
        self.model.load_state_dict(state["model"])
        if weights_only:
            return
        where = f"{source}: " if source is not None else ""
        if "optim" not in state or "meta" not in state:
            raise checkpoint.CheckpointError(f"{where}no {'optim' if 'optim' not in state else 'meta'} part: "
                                             "holds weights only, cannot continue training from it")
        try:
            self.optimizer.load_state_dict(state["optim"])
        except OptimizerStateError as exc:
            raise checkpoint.CheckpointError(f"{where}optim: {exc}") from None
        part = "sched"
        try:
            if self.scheduler and state.get("sched"):
                self.scheduler.load_state_dict(state["sched"])
            part = "task"
            self.task.load_state_dict(self.dist.scatter_task_state(state.get("task") or {}))  # [distributed]
            part = "meta.rng"
            meta = state["meta"]
            _random.set_rng_state(meta["rng"])
            self.dist.restore_meta(meta)  # [distributed] this rank's RNG
            part = "meta.early"
            if self.early and meta.get("early"):
                self.early.load_state_dict(meta["early"])
        except _RESTORE_ERRORS as exc:
            raise checkpoint.CheckpointError(f"{where}{part}: does not fit this run ({type(exc).__name__}: "
                                             f"{str(exc)[:200]})") from None
        self.step, self.epoch, self.batch_in_epoch = meta["step"], meta["epoch"], meta["batch_in_epoch"]
        self._wall = float(meta.get("wall", 0.0))
        if meta.get("best") is not None:
            self.best = Best(**meta["best"])
        self._last_saved = self.step  # 'last' holds exactly this state
        last_eval = meta.get("last_eval")
        if isinstance(last_eval, int) and not isinstance(last_eval, bool):
            self._last_eval = last_eval
        elif self.run is not None and any(self._is_periodic_eval(e) for e in self.run.metrics()):
            self._last_eval = self.step  # a checkpoint from before 'last_eval' was saved: assume it was

    def _is_periodic_eval(self, event: dict) -> bool:
        return (event.get("event") == "eval" and event.get("split") == self.settings.eval_split
                and event.get("step") == self.step)

    def logged_after_checkpoint(self, event: dict) -> bool:
        """Whether a metrics event was logged after the restored checkpoint was written (so the
        resumed run logs it again): a later step, the final test evaluation, or the evaluation
        at the checkpoint's own step when the checkpoint was written before it."""
        step = event.get("step")
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            return False
        if step != self.step:
            return step > self.step
        return event.get("event") == "eval" and (
            event.get("split") == "test" or (self._is_periodic_eval(event) and self._last_eval != self.step))

    # ---- events ------------------------------------------------------------------------
    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _log(self, event: dict) -> None:
        self.history.append(event)
        if self.run is not None:
            self.run.log(event)

    def evaluate(self, split: str) -> dict[str, float]:
        self._emit("on_eval_start", split)  # progress displays show the pause (and leave it out of items/s)
        try:
            with evaluating(self.model):
                return self.dist.evaluate(self.task, split)  # [distributed] sharded, reduced as sums
        finally:
            self._emit("on_eval_end", split)

    # ---- the loop ------------------------------------------------------------------------
    def _finished(self) -> bool:
        s = self.settings
        if s.max_steps is not None and self.step >= s.max_steps:
            return True
        return s.epochs is not None and self.epoch >= s.epochs

    def _on_sigint(self, signum, frame) -> None:
        if self._stop_requested:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self._stop_requested = True
        self._signal = signum
        name = _STOP_SIGNALS.get(signum, f"signal {signum}")
        self._emit("on_message", f"{name}: finishing this step and writing a checkpoint (Ctrl-C again to abort)")

    def _disk_full(self, exc: OSError) -> DiskFullError:
        """What a user needs after ENOSPC: the file, the checkpoint that survived, what to do."""
        last = self.run.checkpoint_path("last")
        step = None
        if last.is_file():
            step = self._last_saved if self._last_saved >= 0 else checkpoint.read_step(last)
        kept = (f"the last checkpoint that survived is step {step}: {last}; free some space, then continue "
                f"with: npdl resume {self.run.path}" if step is not None else
                "no checkpoint was written yet; free some space, then start the run again with npdl train")
        return DiskFullError(f"disk full: could not write {exc.filename or 'a run file'} "
                             f"({exc.strerror or exc}); {kept}")

    def fit(self) -> dict:
        """Train to the end (or until stopped); returns the summary. Raises ``NonFiniteError`` or
        ``TrainingInterrupted`` after writing what can be kept."""
        if self.settings.epochs is None and self.settings.max_steps is None:
            raise ValueError("train: set epochs or max_steps")
        previous = {}
        try:  # SIGTERM (kill, timeout, a batch scheduler) and SIGHUP (a closed terminal) act as Ctrl-C
            for signum in _STOP_SIGNALS:
                previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_sigint)
        except ValueError:  # not the main thread (e.g. tests): signal handling stays default
            previous = {}
        self.model.train()
        self._emit("on_train_start")
        try:
            # overflow shows up as a non-finite loss or gradient, which the NaN guard reports
            # with the step and the tensor; NumPy's own warnings would only add noise
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self._loop()
            return self._finish()
        except OSError as exc:
            if self.run is not None and is_disk_full(exc):
                raise self._disk_full(exc) from None
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _loop(self) -> None:
        s = self.settings
        accum = s.grad_accum
        started = time.perf_counter()
        window_items, window_start = 0, time.perf_counter()
        while not self._finished():
            loader = self.data.loader("train")
            self.task.start_epoch(self.epoch, resumed=self.batch_in_epoch > 0)
            micro = 0
            for batch in loader.batches(self.epoch, start=self.batch_in_epoch, seed=self.seed):
                check = s.health_every and (self.step + 1) % s.health_every == 0  # this step records health
                with health.capture(self.model) if check else contextlib.nullcontext() as acts:
                    loss, n_items = self.task.train_step(batch)
                loss, value, n_items = self.dist.combine_loss(loss, n_items)  # [distributed] global value
                if not math.isfinite(value):
                    self._nonfinite(f"loss = {value}", batch)
                (loss * (1.0 / accum) if accum > 1 else loss).backward()
                self.batch_in_epoch += 1
                micro += 1
                window_items += n_items
                if micro < accum and self.batch_in_epoch < len(loader):
                    continue
                micro = 0
                probe = health.Probe(self.model, acts) if check else None  # grad norms, weights before
                lr = self._optimizer_step()
                if probe is not None:
                    self._log({"event": "health", "step": self.step, "epoch": self.epoch, **probe.finish(lr)})
                if self.step % s.log_every == 0 or self.step == 1:
                    now = time.perf_counter()
                    event = {"event": "train", "step": self.step, "epoch": self.epoch, "loss": value, "lr": lr,
                             "throughput": window_items / max(now - window_start, 1e-9)}
                    self._log(event)
                    window_items, window_start = 0, now
                self._emit("on_step", value, n_items)
                if s.eval_every and self.step % s.eval_every == 0 and self._eval_and_track():
                    self._wall_update(started)
                    return
                if s.checkpoint_every and self.step % s.checkpoint_every == 0:
                    self._wall_update(started)
                    started = time.perf_counter()
                    self.save(f"step-{self.step}", "last")
                if self.dist.should_stop(self._stop_requested):  # [distributed] agreed by all ranks
                    self._wall_update(started)
                    self.save("last")
                    raise TrainingInterrupted(f"interrupted ({_STOP_SIGNALS.get(self._signal, 'signal')}) at step "
                                              f"{self.step}", self._signal)
                if s.max_steps is not None and self.step >= s.max_steps:
                    break
            else:
                self.epoch += 1
                self.batch_in_epoch = 0
                if not s.eval_every and self._eval_and_track():
                    self._wall_update(started)
                    return
                self._wall_update(started)
                started = time.perf_counter()
                self.save("last")
                continue
            break
        self._wall_update(started)
        if self._last_eval != self.step:  # stopped by max_steps mid-epoch: evaluate the final weights too
            self._eval_and_track()
        if self._last_saved != self.step:  # ... and keep them as 'last'
            self.save("last")

    def _wall_update(self, started: float) -> None:
        self._wall += time.perf_counter() - started

    def _optimizer_step(self) -> float:
        """Clip, check, update, advance the schedule; returns the lr this step used."""
        s = self.settings
        if self._params is None:  # the parameters are fixed once the model is built
            self._params = list(self.model.parameters())
        params = self._params
        self.dist.reduce_gradients(params)  # [distributed] sum over ranks (losses were scaled by n_r / n)
        if s.grad_clip_value:
            clip_grad_value_(params, s.grad_clip_value)
        # the norm is checked every step, clipping or not: a non-finite gradient must never
        # reach the weights (the next checkpoint would then save them as the 'last good' one)
        norm = clip_grad_norm_(params, s.grad_clip) if s.grad_clip else grad_norm(params)
        if not math.isfinite(norm):
            bad = next((n for n, p in self.model.named_parameters()
                        if p.grad is not None and not _finite_grad(p.grad)), "?")
            self._nonfinite(f"gradient norm = {norm}; first non-finite gradient: {bad}", None)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step += 1
        if self.scheduler is not None:
            self.scheduler.step()
        return lr

    def _eval_and_track(self) -> bool:
        """Evaluate, log, keep the best checkpoint; True when early stopping says stop."""
        split = self.settings.eval_split
        if split not in self.data.splits():
            return False
        metrics = self.evaluate(split)
        self._last_eval = self.step
        self._log({"event": "eval", "split": split, "step": self.step, "epoch": self.epoch, **metrics})
        self._emit("on_eval", split, metrics)
        self._check_metric_names({split: metrics})
        value = lookup({split: metrics}, self.best.metric)
        if value is not None and hasattr(getattr(self.scheduler, "schedule", None), "observe"):
            self.scheduler.observe(value)  # reduce_on_plateau: applies a reduction right away
        if self.best.update(value, self.step):
            self.save("best")
        if self.early is not None:
            v = lookup({split: metrics}, self.early.metric)
            if v is not None and self.early.should_stop(v):
                self._emit("on_message", f"early stopping: {self.early.metric} has not improved for "
                                         f"{self.early.patience} evaluations")
                self.save("last")
                return True
        return False

    def _check_metric_names(self, metrics: dict) -> None:
        """A monitored metric the evaluation does not produce is an error, not a silent no-op.

        (Configs are checked against ``Task.metric_names`` before training; this catches Python
        callers and tasks that do not declare their metrics.)"""
        wanted = [("train.monitor", self.best.metric)]
        if self.early is not None:
            wanted.append(("train.early_stopping.metric", self.early.metric))
        for key, name in wanted:
            if lookup(metrics, name) is None:
                have = ", ".join(f"{s}.{k}" for s, m in metrics.items() for k in m)
                raise ValueError(f"{key}: '{name}' is not a metric of this run's evaluation "
                                  f"(available: {have}){did_you_mean(name, have.split(', '))}")

    def _nonfinite(self, what: str, batch) -> None:
        """Stop: name the step and the first non-finite tensor; keep the last good checkpoint."""
        where = ""
        bad_param = next((n for n, p in self.model.named_parameters() if not np.isfinite(p.data).all()), None)
        if bad_param:
            where = f"; first non-finite parameter: {bad_param}"
        elif batch is not None:
            from npdl.nn.trace import first_nonfinite, trace
            import npdl

            with npdl.no_grad(), trace(self.model) as records:
                try:
                    self.task.dry_run(batch)
                except Exception:  # noqa: BLE001 - diagnosis only
                    pass
            rec = first_nonfinite(records)
            if rec is not None:
                where = f"; first non-finite output: {rec.name} ({rec.kind})"
        msg = f"non-finite value at step {self.step + 1} (epoch {self.epoch}, batch {self.batch_in_epoch}): {what}{where}"
        if self.run is not None:
            self.run.set_status("stopped_nan", error=msg, steps=self.step)
        raise NonFiniteError(msg)

    def _finish(self) -> dict:
        test = None
        if self.settings.test_at_end and "test" in self.data.splits():
            best_path = self.run.checkpoint_path("best") if self.run else None
            if best_path is not None and best_path.is_file():
                current = self.model.state_dict()
                current = {k: v.copy() for k, v in current.items()}
                self.model.load_state_dict(checkpoint.load(best_path, model=self.model)["model"])
                test = self.evaluate("test")
                self.model.load_state_dict(current)
            else:
                test = self.evaluate("test")
            self._log({"event": "eval", "split": "test", "step": self.step, "epoch": self.epoch, **test})
            self._emit("on_eval", "test", test)
        events = self.history if self.run is None else self.run.metrics()  # a resumed run's history is on disk
        last_eval = next((e for e in reversed(events) if e.get("event") == "eval"
                          and e.get("split") == self.settings.eval_split), None)
        summary = {"steps": self.step, "epochs": self.epoch, "wall_seconds": round(self._wall, 2),
                   "best": dataclasses.asdict(self.best), "test": test,
                   "last_eval": {k: v for k, v in (last_eval or {}).items() if k not in ("event",)}}
        if self.run is not None:
            self.run.write_summary(summary)
            self.run.set_status("completed", steps=self.step)
        self._emit("on_train_end", summary)
        return summary


def _finite_grad(g) -> bool:
    values = g.values if hasattr(g, "values") and not isinstance(g, np.ndarray) else g
    return bool(np.isfinite(values).all())
