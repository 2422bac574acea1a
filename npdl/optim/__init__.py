"""Optimizers, gradient clipping and learning-rate schedules.

Optimizers own their state, keyed by parameter name; schedules are pure functions of the step
(DESIGN.md #4). Importing this package registers the ``optimizer`` and ``schedule`` names.

    opt = npdl.optim.AdamW(model.named_parameters(), lr=3e-4, weight_decay=0.1, no_decay_1d=True)
    sched = npdl.optim.LRScheduler(opt, npdl.optim.Cosine(total_steps=10_000, warmup_steps=500))
    for batch in data:
        loss = ...; opt.zero_grad(); loss.backward()
        npdl.optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step()
"""
from npdl.optim.clip import clip_grad_norm_, clip_grad_value_, grad_norm
from npdl.optim.groups import param_groups
from npdl.optim.optimizer import Optimizer, OptimizerStateError
from npdl.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from npdl.optim.schedules import (Constant, Cosine, Exponential, InverseSqrt, LinearSchedule, LRScheduler, MultiStep,
                                  Noam, ReduceOnPlateau, Schedule, StepDecay)

__all__ = [
    "Optimizer", "OptimizerStateError", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "param_groups",
    "clip_grad_norm_", "clip_grad_value_", "grad_norm", "Schedule", "LRScheduler", "Constant", "StepDecay", "MultiStep",
    "Exponential", "Cosine", "LinearSchedule", "Noam", "InverseSqrt", "ReduceOnPlateau",
]
