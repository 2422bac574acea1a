"""Progress display for training: a bar with loss, throughput and ETA, plus one line per eval."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def fmt_metrics(metrics: dict) -> str:
    """'loss 0.0312  accuracy 0.9912' with sensible precision."""
    parts = []
    for k, v in metrics.items():
        if isinstance(v, float):
            parts.append(f"{k} {v:.4f}" if abs(v) < 1000 else f"{k} {v:,.1f}")
        elif isinstance(v, int):
            parts.append(f"{k} {v}")
    return "  ".join(parts)


class ProgressReporter:
    """Trainer callback drawing a rich progress bar on ``console`` (plain lines when not a terminal)."""

    def __init__(self, console: Console, total_steps: int, unit: str = "items"):
        self.console, self.total, self.unit = console, total_steps, unit
        self.progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=console, transient=False, disable=not console.is_terminal)
        self.task_id = None
        self._items, self._t0 = 0, time.perf_counter()
        self._ema = None
        self._last_line = 0.0

    def on_train_start(self, trainer) -> None:
        self.progress.start()
        self.task_id = self.progress.add_task("train", total=self.total, completed=trainer.step, info="")
        self._t0 = time.perf_counter()

    def on_step(self, trainer, loss: float, n_items: int) -> None:
        self._ema = loss if self._ema is None else 0.98 * self._ema + 0.02 * loss
        self._items += n_items
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        info = f"loss {self._ema:.4f}  {self._items / elapsed:,.0f} {self.unit}/s  lr {trainer.optimizer.param_groups[0]['lr']:.3g}"
        self.progress.update(self.task_id, completed=trainer.step, info=info)
        if not self.console.is_terminal and time.perf_counter() - self._last_line > 10:
            self._last_line = time.perf_counter()
            self.console.print(f"step {trainer.step}/{self.total}  {info}")

    def on_eval(self, trainer, split: str, metrics: dict) -> None:
        self.progress.console.print(f"step {trainer.step:>7}  epoch {trainer.epoch:>3}  {split:<5} {fmt_metrics(metrics)}")

    def on_message(self, trainer, text: str) -> None:
        self.progress.console.print(f"[yellow]{text}[/]")

    def on_train_end(self, trainer, summary: dict) -> None:
        self.stop()

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.stop()
