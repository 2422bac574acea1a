"""The training loop: a train step plus extensions (Chainer's ``Trainer.run``).

    while not finished:   next micro-batches -> Updater.update (forward, backward, reduce, clip,
                          optimizer) -> every extension whose trigger fires at "step"
    after each epoch:     every extension whose trigger fires at "epoch"
    at the end:           every extension whose trigger fires at "end"

Evaluation, checkpoints, logs, early stopping, the NaN guard, health records, the schedule and
progress are extensions (``train/extensions/``); ``standard`` builds the ones the settings ask
for, ``extend`` adds more. The trainer knows no YAML and prints nothing: progress goes to
``callbacks`` (the CLI draws bars from them), results go to the run directory.

A run is reproducible from its directory alone (DESIGN principle 6): checkpoints carry the
weights, optimizer state, schedule step, RNG state, the task's carried state, the data
position (epoch, batch) and every extension's state, and the data order is a pure function of
(seed, epoch). So a run killed and resumed ends bit-identical to one never interrupted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import time

import numpy as np

from npdl.atomic import atomic_write
from npdl.nn.module import evaluating
from npdl.runs import Run, is_disk_full
from npdl.train import checkpoint, distributed, interrupts, resume
from npdl.train.callbacks import Best
from npdl.train.extensions import make_trigger, standard
from npdl.train.extensions.base import PRIORITY_DEFAULT
from npdl.train.interrupts import TrainingInterrupted
from npdl.train.settings import EarlyStoppingSettings, TrainSettings
from npdl.train.updater import NonFinite, NonFiniteError, StepResult, Updater

__all__ = ["EarlyStoppingSettings", "NonFiniteError", "Trainer", "TrainingInterrupted", "TrainSettings"]


class Trainer:
    """Runs optimizer steps of ``task`` until ``settings`` say stop, dispatching extensions."""

    def __init__(self, model, task, data, optimizer, scheduler, settings: TrainSettings, run: Run | None = None,
                 seed: int = 0, callbacks=(), dist=None):
        self.model, self.task, self.data = model, task, data
        self.dist = dist if dist is not None else distributed.LOCAL  # one process: every hook a no-op
        self.data = self.dist.attach(model, data, seed)  # data-parallel: bcast weights, rank RNG, train rows
        self.optimizer, self.scheduler, self.settings = optimizer, scheduler, settings
        self.run, self.seed = run, seed
        self.monitor = self.qualified(settings.monitor or task.monitor[0])
        self.step = self.epoch = self.batch_in_epoch = 0
        self.history: list[dict] = []       # every event logged by this process
        self.moment = ""                    # what the extensions are being called for (extensions/base.py)
        self.observation: dict = {}         # this round's results, e.g. {"val": {"accuracy": ...}}
        self.last_step: StepResult | None = None
        self.nonfinite_info: NonFinite | None = None
        self.last_saved_position: tuple | None = None   # (step, epoch, batch) that 'last' holds
        self.updater = Updater(self)
        self.extensions: list = []
        self._triggers: dict[str, object] = {}
        self._pending_states: dict[str, dict] = {}     # restored before the extension was added
        self._stop_requested = self._stopping = False
        self._signal = signal.SIGINT
        self._wall, self._clock = 0.0, None
        for ext, trigger in standard(self, callbacks):
            self.extend(ext, trigger)

    def qualified(self, metric: str) -> str:
        """'accuracy' -> 'val.accuracy' (metrics without a split name the periodic eval split)."""
        return metric if "." in metric else f"{self.settings.eval_split}.{metric}"

    # ---- extensions ----------------------------------------------------------------------
    def extend(self, extension, trigger=None, name: str | None = None, priority: int | None = None) -> None:
        """Add ``extension``, run when ``trigger`` fires (default: the extension's own ``trigger``).

        Extensions run by ``priority`` (default: the extension's own, else ``PRIORITY_DEFAULT``),
        higher first, then in the order they were added: the schedule, logs and evaluation first
        (``PRIORITY_WRITER``), yours next, checkpoints last (``PRIORITY_READER``), so a
        checkpoint holds what every extension did in that round. Its state is kept in
        checkpoints under ``name`` (default: its class's ``name``; made unique with a suffix)."""
        base = name or getattr(extension, "default_name", None) or type(extension).__name__
        name, i = base, 1
        while name in self._triggers:
            name, i = f"{base}_{i}", i + 1
        extension.name = name
        extension.priority = getattr(extension, "priority", PRIORITY_DEFAULT) if priority is None else priority
        self._triggers[name] = make_trigger(trigger if trigger is not None else getattr(extension, "trigger", None))
        at = next((i for i, e in enumerate(self.extensions) if e.priority < extension.priority), len(self.extensions))
        self.extensions.insert(at, extension)
        if name in self._pending_states:
            resume.load_extension(extension, self._pending_states.pop(name))

    def get_extension(self, name: str):
        """The extension registered under ``name`` (KeyError when none is)."""
        for ext in self.extensions:
            if ext.name == name:
                return ext
        raise KeyError(name)

    def _round(self, moment: str) -> None:
        """Call every extension whose trigger fires at ``moment``, in order; a ``stop()`` (early
        stopping) ends the round. Then a pending stop signal fires ``signal`` and interrupts
        (unless training is ending anyway)."""
        self.observation = {}
        self.fire(moment)
        if self.dist.should_stop(self._stop_requested) and not self._stopping and moment in ("step", "epoch"):
            self.fire("signal")
            self._stop_clock()
            raise TrainingInterrupted(f"interrupted ({interrupts.STOP_SIGNALS.get(self._signal, 'signal')}) at step "
                                      f"{self.step}", self._signal)

    def fire(self, moment: str) -> None:
        """Run the extensions whose trigger fires at ``moment`` (a round, or an event such as
        ``eval`` inside one); the moment of the caller is restored afterwards."""
        outer, self.moment = self.moment, moment
        try:
            for ext in self.extensions:
                if self._stopping and moment in ("step", "epoch"):
                    break
                if self._triggers[ext.name].fires(self):
                    ext(self)
        finally:
            self.moment = outer

    def stop(self) -> None:
        """Ask the loop to end after this round (the ``end`` moment still runs)."""
        self._stopping = True

    def emit(self, hook: str, *args) -> None:
        """Tell the display callbacks (``extensions/progress.py``) something, e.g. ``on_message``."""
        for ext in self.extensions:
            notify = getattr(ext, "notify", None)
            if notify is not None:
                notify(self, hook, *args)

    def log(self, event: dict) -> None:
        """Record ``event`` in ``history`` and hand it to every logger (metrics.jsonl, CSV, ...)."""
        self.history.append(event)
        for ext in self.extensions:
            write = getattr(ext, "write", None)
            if write is not None:
                write(self, event)

    def nonfinite(self, info: NonFinite) -> None:
        """A step met a non-finite value: fire ``nan`` (the NaN guard stops with a diagnosis);
        the step is never applied, so stop here even without a guard."""
        self.nonfinite_info = info
        self.fire("nan")
        raise NonFiniteError(f"non-finite value at step {self.step + 1}: {info.what}")

    def evaluate(self, split: str) -> dict[str, float]:
        self.emit("on_eval_start", split)  # progress displays show the pause (and leave it out of items/s)
        try:
            with evaluating(self.model):
                return self.dist.evaluate(self.task, split)  # data-parallel: sharded, reduced as sums
        finally:
            self.emit("on_eval_end", split)

    @property
    def best(self) -> Best:
        """The best-checkpoint tracker (metric, mode, value, step)."""
        try:
            return self.get_extension("best_checkpoint").best
        except KeyError:
            return Best(self.monitor, self.settings.mode or self.task.monitor[1])

    @property
    def position(self) -> tuple[int, int, int]:
        return self.step, self.epoch, self.batch_in_epoch

    # ---- checkpoints ---------------------------------------------------------------------
    @property
    def wall(self) -> float:
        """Seconds spent in the training loop, over every process that trained this run."""
        return self._wall + (time.perf_counter() - self._clock if self._clock is not None else 0.0)

    def _stop_clock(self) -> None:
        self._wall, self._clock = self.wall, None

    def state(self) -> dict:
        """Everything a checkpoint holds (``train/resume.py``)."""
        return resume.state(self)

    def save(self, *names: str, keep_last: int | None = None) -> None:
        """Checkpoint the current state as each of ``names`` ('last', 'best', 'step-N'):
        serialised once, the other names get copies of the same bytes. Of the step-N files the
        newest ``keep_last`` (default ``settings.keep_last``) are kept."""
        if self.run is None:
            return
        first = checkpoint.save(self.run.checkpoint_path(names[0]), **self.state())
        for which in names[1:]:
            atomic_write(self.run.checkpoint_path(which), first.read_bytes())
        if "last" in names:
            self.last_saved_position = self.position
        if any(which.startswith("step-") for which in names):
            keep = self.settings.keep_last if keep_last is None else keep_last
            steps = sorted(self.run.checkpoints.glob("step-*.npz"))
            for old in steps[: max(len(steps) - keep, 0)]:
                old.unlink(missing_ok=True)

    def restore(self, state: dict, weights_only: bool = False, source=None) -> None:
        """Load a checkpoint's parts (``checkpoint.load`` output, its meta already validated there);
        the model and optimizer checks are strict, and each extension gets its state back.

        Raises:
            StateDictError, OptimizerStateError: listing every mismatch.
            checkpoint.CheckpointError: a part this run cannot use, naming ``source`` and the part.
        """
        resume.restore(self, state, weights_only, source)

    def restore_wall(self, seconds: float) -> None:
        self._wall, self._clock = seconds, None

    def load_extension_state(self, name: str, state, where: str = "") -> None:
        """Give extension ``name`` its checkpointed state (kept for later if it is not added yet)."""
        try:
            ext = self.get_extension(name)
        except KeyError:
            self._pending_states[name] = state
            return
        resume.load_extension(ext, state, where)

    def logged_after_checkpoint(self, event: dict) -> bool:
        """Whether a metrics event was logged after the restored checkpoint was written (so the
        resumed run logs it again): a later step, the final test evaluation, or the evaluation
        at the checkpoint's own step when the checkpoint was written before it."""
        return resume.logged_after_checkpoint(self, event)

    # ---- the loop ------------------------------------------------------------------------
    def _finished(self) -> bool:
        s = self.settings
        if self._stopping or (s.max_steps is not None and self.step >= s.max_steps):
            return True
        return s.epochs is not None and self.epoch >= s.epochs

    def _on_signal(self, signum, frame) -> None:
        if self._stop_requested:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self._stop_requested = True
        self._signal = signum
        self.emit("on_message", f"{interrupts.signal_name(signum)}: finishing this step and writing a checkpoint "
                                "(Ctrl-C again to abort)")

    def fit(self) -> dict:
        """Train to the end (or until stopped); returns the summary. Raises ``NonFiniteError`` or
        ``TrainingInterrupted`` after writing what can be kept."""
        if self.settings.epochs is None and self.settings.max_steps is None:
            raise ValueError("train: set epochs or max_steps")
        self.model.train()
        try:
            # overflow shows up as a non-finite loss or gradient, which the NaN guard reports
            # with the step and the tensor; NumPy's own warnings would only add noise
            with interrupts.stop_signals(self._on_signal), self._extensions_open(), \
                    np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self._clock = time.perf_counter()
                self._loop()
                self._stop_clock()
                self._round("end")
                return self._summary()
        except OSError as exc:
            if self.run is not None and is_disk_full(exc):
                saved = self.last_saved_position[0] if self.last_saved_position else None
                raise interrupts.disk_full(self.run, saved, exc) from None
            raise
        finally:
            self._stop_clock()

    @contextlib.contextmanager
    def _extensions_open(self):
        """``initialize`` every extension, and ``finalize`` each however training ends; when training
        failed, a finalize error is not raised (the first error is the one to see)."""
        for ext in self.extensions:
            if hasattr(ext, "initialize"):
                ext.initialize(self)
        try:
            yield
        except BaseException:
            self._finalize(failing=True)
            raise
        self._finalize(failing=False)

    def _finalize(self, failing: bool) -> None:
        for ext in [e for e in self.extensions if hasattr(e, "finalize")]:
            try:
                ext.finalize(self)
            except Exception:
                if not failing:
                    raise

    def _loop(self) -> None:
        while not self._finished():
            if not self._train_epoch():  # stopped inside the epoch (max_steps, early stopping)
                return
            self.epoch += 1
            self.batch_in_epoch = 0
            self._round("epoch")

    def _train_epoch(self) -> bool:
        """Steps until the epoch's batches run out (True) or training should stop (False)."""
        loader = self.data.loader("train")
        self.task.start_epoch(self.epoch, resumed=self.batch_in_epoch > 0)
        batches = iter(loader.batches(self.epoch, start=self.batch_in_epoch, seed=self.seed))
        n_batches = len(loader)
        while True:
            result = self.updater.update(batches, n_batches)
            if result is None:
                return True
            self.last_step = result
            self._round("step")
            if self._finished():
                return False

    def _summary(self) -> dict:
        events = self.history if self.run is None else self.run.metrics()  # a resumed run's history is on disk
        split = self.settings.eval_split
        last_eval = next((e for e in reversed(events) if e.get("event") == "eval" and e.get("split") == split), None)
        summary = {"steps": self.step, "epochs": self.epoch, "wall_seconds": round(self._wall, 2),
                   "best": dataclasses.asdict(self.best), "test": self.observation.get("test"),
                   "last_eval": {k: v for k, v in (last_eval or {}).items() if k not in ("event",)}}
        if self.run is not None:
            self.run.write_summary(summary)
            self.run.set_status("completed", steps=self.step)
        self.emit("on_train_end", summary)
        return summary
