"""Progress displays, one look for training and downloads (rich bars; plain lines when not a terminal).

Training: a bar with the epoch, loss, throughput, lr and ETA; while an evaluation runs the bar
says so (``eval val``), and the throughput leaves evaluation pauses out. Downloads: one bar
per file with bytes, speed and ETA. Both print text literally (no rich markup in user text).
"""
from __future__ import annotations

import contextlib
import time

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn, TransferSpeedColumn)
from rich.text import Text


def fmt_metrics(metrics: dict) -> str:
    """'loss 0.0312  accuracy 0.9912' with sensible precision."""
    parts = []
    for k, v in metrics.items():
        if isinstance(v, float):
            parts.append(f"{k} {v:.4f}" if abs(v) < 1000 else f"{k} {v:,.1f}")
        elif isinstance(v, int):
            parts.append(f"{k} {v}")
    return "  ".join(parts)


def fmt_epochs(epochs: float) -> str:
    """2 -> '2', 0.4 -> '0.4', 1.256 -> '1.26': a run stopped by max_steps inside an epoch shows it."""
    return f"{epochs:.2f}".rstrip("0").rstrip(".") if epochs != int(epochs) else str(int(epochs))


def _label() -> TextColumn:
    return TextColumn("{task.description}", style="bold", markup=False)


class ProgressReporter:
    """Trainer callback drawing a rich progress bar on ``console`` (plain lines when not a terminal)."""

    def __init__(self, console: Console, total_steps: int, unit: str = "items"):
        self.console, self.total, self.unit = console, total_steps, unit
        self.progress = Progress(_label(), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}", markup=False), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=console, transient=False,
                                 disable=not console.is_terminal)
        self.task_id = None
        self._items, self._t0 = 0, time.perf_counter()
        self._paused = 0.0          # seconds spent in evaluations since _t0: not training time
        self._eval_started = None
        self._ema = None
        self._last_line = 0.0

    def on_train_start(self, trainer) -> None:
        self.progress.start()
        self.task_id = self.progress.add_task("train", total=self.total, completed=trainer.step, info="")
        self._t0 = time.perf_counter()

    def _epoch_text(self, trainer) -> str:
        epochs = getattr(trainer.settings, "epochs", None)
        return f"epoch {trainer.epoch + 1}" + (f"/{epochs}" if epochs else "")

    def items_per_second(self) -> float:
        """Items trained per second of training, evaluation pauses excluded."""
        busy = time.perf_counter() - self._t0 - self._paused
        return self._items / max(busy, 1e-9)

    def on_step(self, trainer, loss: float, n_items: int) -> None:
        self._ema = loss if self._ema is None else 0.98 * self._ema + 0.02 * loss
        self._items += n_items
        info = (f"{self._epoch_text(trainer)}  loss {self._ema:.4f}  {self.items_per_second():,.0f} {self.unit}/s  "
                f"lr {trainer.optimizer.param_groups[0]['lr']:.3g}")
        self.progress.update(self.task_id, completed=trainer.step, info=info)
        if not self.console.is_terminal and time.perf_counter() - self._last_line > 10:
            self._last_line = time.perf_counter()
            self.console.print(f"step {trainer.step}/{self.total}  {info}", soft_wrap=True)

    def on_eval_start(self, trainer, split: str) -> None:
        self._eval_started = time.perf_counter()
        if self.task_id is not None:
            self.progress.update(self.task_id, description=f"eval {split}")
            self.progress.refresh()

    def on_eval_end(self, trainer, split: str) -> None:
        if self._eval_started is not None:
            self._paused += time.perf_counter() - self._eval_started
            self._eval_started = None
        if self.task_id is not None:
            self.progress.update(self.task_id, description="train")

    def on_eval(self, trainer, split: str, metrics: dict) -> None:
        self.progress.console.print(f"step {trainer.step:>7}  epoch {trainer.epoch:>3}  {split:<5} {fmt_metrics(metrics)}",
                                    soft_wrap=True)

    def on_message(self, trainer, text: str) -> None:
        self.progress.console.print(Text(text, style="yellow"), soft_wrap=True)

    def on_train_end(self, trainer, summary: dict) -> None:
        self.stop()

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.stop()


class TransferBars:
    """``npdl.data.download``'s progress hook: one bar per file transfer (bytes, speed, ETA), on
    stderr by default, drawn only on a terminal."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False, markup=False)

    @contextlib.contextmanager
    def file(self, label: str, total: int | None, initial: int = 0):
        """Context for one transfer; yields ``advance(n_bytes)``."""
        progress = Progress(_label(), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                            console=self.console, transient=True, disable=not self.console.is_terminal)
        with progress:
            task = progress.add_task(label, total=total, completed=initial)
            yield lambda n: progress.advance(task, n)
