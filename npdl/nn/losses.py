"""Loss modules, registered for configs: ``loss: {type: cross_entropy, label_smoothing: 0.1}``.

Each is called as ``loss(prediction, target)`` and returns a scalar Tensor (or per-element
values with ``reduction='none'``).
"""
from __future__ import annotations

from typing import Literal

import npdl.functional as F
from npdl.nn.module import Module
from npdl.registry import LOSSES
from npdl.schema import UnitInterval

Reduction = Literal["mean", "sum", "none"]


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits (..., C) with integer targets (...)."""

    def __init__(self, ignore_index: int | None = None, label_smoothing: UnitInterval = 0.0,
                 reduction: Reduction = "mean"):
        super().__init__()
        self.ignore_index, self.label_smoothing, self.reduction = ignore_index, label_smoothing, reduction

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, self.ignore_index, self.label_smoothing, self.reduction)


@LOSSES.register("nll")
class NLLLoss(Module):
    """Negative log-likelihood on log-probabilities (..., C) with integer targets (...)."""

    def __init__(self, ignore_index: int | None = None, reduction: Reduction = "mean"):
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, log_probs, targets):
        return F.nll_loss(log_probs, targets, self.ignore_index, self.reduction)


@LOSSES.register("bce_with_logits")
class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on logits, stable for large |x|; targets in [0, 1]."""

    def __init__(self, reduction: Reduction = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets, self.reduction)


@LOSSES.register("mse")
class MSELoss(Module):
    """Mean squared error."""

    def __init__(self, reduction: Reduction = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x, y):
        return F.mse_loss(x, y, self.reduction)


@LOSSES.register("l1")
class L1Loss(Module):
    """Mean absolute error."""

    def __init__(self, reduction: Reduction = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x, y):
        return F.l1_loss(x, y, self.reduction)
