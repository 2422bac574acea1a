"""Progress: hands the trainer's moments to display callbacks (the CLI's progress bar). ``train/``
prints nothing itself; whoever wants to show progress passes objects with any of

    on_train_start(trainer)            on_step(trainer, loss, n_items)
    on_eval_start(trainer, split)      on_eval_end(trainer, split)     on_eval(trainer, split, metrics)
    on_message(trainer, text)          on_train_end(trainer, summary)

(missing ones are skipped). ``on_step`` gets the step's mean loss and its item count.
"""
from __future__ import annotations

from npdl.train.extensions.base import Extension, PRIORITY_WRITER


class Progress(Extension):
    name = "progress"
    priority = PRIORITY_WRITER
    trigger = (1, "step")

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    def notify(self, trainer, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(trainer, *args)

    def initialize(self, trainer) -> None:
        self.notify(trainer, "on_train_start")

    def __call__(self, trainer) -> None:
        result = trainer.last_step
        self.notify(trainer, "on_step", result.loss, result.items)
