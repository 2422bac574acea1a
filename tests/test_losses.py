"""Every registered loss module, gradient-checked as a module (float64 central differences).

``F.cross_entropy`` and friends are checked as ops elsewhere; here each ``loss: {type: ...}``
a config can name is built through the registry with its options (ignore_index, label
smoothing, every reduction) and checked against its prediction and, where it is a float,
its target. The guard fails when a loss is registered without a case here.
"""
from __future__ import annotations

import numpy as np
import pytest

import npdl
import npdl.nn  # noqa: F401  (registers the losses)
from npdl.registry import LOSSES

REDUCTIONS = ("mean", "sum", "none")


def floats(*shape, seed=0, scale=1.0, grad=True):
    x = scale * np.random.default_rng(seed).standard_normal(shape)
    return npdl.tensor(x, dtype=np.float64, requires_grad=grad)


def class_targets():
    """(2, 3) class ids of 4 classes with an ignored position (class 2 is the ignore_index below)."""
    return np.array([[0, 3, 2], [1, 2, 3]])


def cross_entropy_cases():
    for reduction in REDUCTIONS:
        yield {"reduction": reduction}, lambda: (floats(2, 3, 4), class_targets())
        yield ({"reduction": reduction, "ignore_index": 2, "label_smoothing": 0.1},
               lambda: (floats(2, 3, 4, seed=2), class_targets()))


def nll_cases():
    for reduction in REDUCTIONS:
        for options in ({}, {"ignore_index": 2}):
            # log-probabilities: the loss is linear in them, any float input checks it
            yield {"reduction": reduction, **options}, lambda: (floats(2, 3, 4, seed=3), class_targets())


def bce_cases():
    for reduction in REDUCTIONS:
        # large logits too (the stable formulation), soft targets in [0, 1] (constants: the fused
        # op, like its use in training, differentiates the logits only)
        yield {"reduction": reduction}, lambda: (floats(3, 4, seed=4, scale=6.0),
                                                 np.random.default_rng(5).random((3, 4)))


def regression_cases():
    for reduction in REDUCTIONS:
        yield {"reduction": reduction}, lambda: (floats(3, 4, seed=6), floats(3, 4, seed=7))


CASES = {"cross_entropy": cross_entropy_cases, "nll": nll_cases, "bce_with_logits": bce_cases,
         "mse": regression_cases, "l1": regression_cases}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_loss_module(name):
    n = 0
    for options, make in CASES[name]():
        loss = LOSSES.build({"type": name, **options})
        prediction, target = make()
        out = loss(prediction, target)
        assert out.shape == (() if options["reduction"] != "none" else prediction.shape[:out.ndim])
        assert npdl.gradcheck(lambda *args: loss(prediction, target), prediction, target)
        n += 1
    assert n >= len(REDUCTIONS)


def test_every_registered_loss_has_a_case():
    assert set(CASES) == set(LOSSES.names()), f"losses without a gradcheck: {set(LOSSES.names()) - set(CASES)}"
