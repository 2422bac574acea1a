"""The NaN guard: when a step meets a non-finite loss or gradient (the ``nan`` moment; the step
is not applied), name the step and the first non-finite tensor, mark the run ``stopped_nan``
and stop with ``NonFiniteError``. The last good checkpoint is kept as it is."""
from __future__ import annotations

import numpy as np

from npdl.core.backend import get_array_module
from npdl.train.extensions.base import Extension, PRIORITY_WRITER
from npdl.train.updater import NonFiniteError


class NaNGuard(Extension):
    name = "nan_guard"
    priority = PRIORITY_WRITER
    trigger = "nan"

    def __call__(self, trainer) -> None:
        bad = trainer.nonfinite_info
        where = ""
        bad_param = next((n for n, p in trainer.model.named_parameters() if not get_array_module(p.data).isfinite(p.data).all()), None)
        if bad_param:
            where = f"; first non-finite parameter: {bad_param}"
        elif bad.batch is not None:
            where = self._first_nonfinite_output(trainer, bad.batch)
        msg = (f"non-finite value at step {trainer.step + 1} (epoch {trainer.epoch}, batch {trainer.batch_in_epoch}): "
               f"{bad.what}{where}")
        if trainer.run is not None:
            trainer.run.set_status("stopped_nan", error=msg, steps=trainer.step)
        raise NonFiniteError(msg)

    @staticmethod
    def _first_nonfinite_output(trainer, batch) -> str:
        """Run the batch again, traced, and name the first module whose output is not finite."""
        import npdl
        from npdl.nn.trace import first_nonfinite, trace

        with npdl.no_grad(), trace(trainer.model) as records:
            try:
                trainer.task.dry_run(batch)
            except Exception:  # noqa: BLE001 - diagnosis only
                pass
        rec = first_nonfinite(records)
        return f"; first non-finite output: {rec.name} ({rec.kind})" if rec is not None else ""
