"""Learning-rate schedules at chosen steps, and LRScheduler's step convention and state."""
from __future__ import annotations

import math

import numpy as np
import pytest

import npdl.optim as O
from npdl.nn.module import Parameter
from npdl.registry import SCHEDULES
from npdl.schema import ArgumentError
from npdl.config import check_spec


def test_constant_and_warmup():
    assert [O.Constant()(s) for s in (0, 1, 10**6)] == [1.0, 1.0, 1.0]
    assert [O.Constant(warmup_steps=4)(s) for s in (1, 2, 4, 5)] == [0.25, 0.5, 1.0, 1.0]


def test_step_multistep_exponential_count_finished_updates():
    s = O.StepDecay(step_size=3, gamma=0.5)
    assert [s(k) for k in range(1, 9)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    m = O.MultiStep(milestones=[2, 5], gamma=0.1)
    assert [m(k) for k in (1, 2, 3, 5, 6, 100)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    e = O.Exponential(gamma=0.9)
    assert [e(k) for k in (0, 1, 2, 5)] == pytest.approx([1, 1, 0.9, 0.9 ** 4])


def test_cosine_warmup_midpoint_floor():
    c = O.Cosine(total_steps=110, warmup_steps=10, min_factor=0.1)
    assert c(0) == 0.0 and c(5) == 0.5 and c(10) == 1.0
    assert c(60) == pytest.approx(0.55)                                   # midpoint: (1 + min) / 2
    assert c(35) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert c(110) == pytest.approx(0.1) and c(500) == pytest.approx(0.1)
    assert O.Cosine(total_steps=100)(1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 100)))


def test_linear_warmup_and_word2vec_floor():
    lin = O.LinearSchedule(total_steps=110, warmup_steps=10)
    assert lin(5) == 0.5 and lin(10) == 1.0
    assert lin(60) == pytest.approx(1 - (1 - 1e-4) * 0.5)
    assert lin(110) == pytest.approx(1e-4) and lin(10**6) == pytest.approx(1e-4)


def test_noam_peaks_at_warmup():
    n = O.Noam(d_model=512, warmup_steps=4000)
    peak = 512 ** -0.5 * 4000 ** -0.5
    assert n(4000) == pytest.approx(peak)
    assert n(3999) < n(4000) and n(4001) < n(4000)
    assert n(1) == pytest.approx(512 ** -0.5 * 4000 ** -1.5)              # counted from 1
    assert n(16000) == pytest.approx(512 ** -0.5 * 16000 ** -0.5)
    assert n(0) == 0.0
    assert O.Noam(d_model=512, warmup_steps=4000, factor=2.0)(4000) == pytest.approx(2 * peak)


def test_inverse_sqrt_is_one_at_end_of_warmup():
    s = O.InverseSqrt(warmup_steps=100)
    assert [s(50), s(100), s(400)] == pytest.approx([0.5, 1.0, 0.5])


def test_bad_arguments():
    with pytest.raises(ValueError):
        O.Cosine(total_steps=100)(-1)
    with pytest.raises(ValueError):
        O.Constant()(1.5)
    with pytest.raises(ArgumentError, match="warmup_steps: must be below total_steps"):
        O.Cosine(total_steps=10, warmup_steps=10)
    with pytest.raises(ArgumentError, match="increasing"):
        O.MultiStep(milestones=[5, 2])
    with pytest.raises(ValueError, match="factor"):
        O.ReduceOnPlateau(factor=1.0)


def test_registry_builds_with_trainer_supplied_total_steps():
    c = SCHEDULES.build({"type": "cosine", "warmup_steps": 10}, total_steps=100)
    assert c.total_steps == 100 and c(10) == 1.0
    own = SCHEDULES.build({"type": "linear", "total_steps": 50}, total_steps=100)
    assert own.total_steps == 50
    assert check_spec(SCHEDULES, {"type": "cosine"}, "schedule", provided=["total_steps"]) == []
    assert set(SCHEDULES.names()) >= {"constant", "step", "multistep", "exponential", "cosine", "linear", "noam",
                                      "inverse_sqrt", "reduce_on_plateau"}


def test_reduce_on_plateau_patience_and_cooldown():
    r = O.ReduceOnPlateau(patience=2, factor=0.5, cooldown=2, min_factor=0.2)
    seq = [r.observe(v) for v in (1.0, 0.9, 0.95, 0.95)]   # improve, improve, bad 1, bad 2
    assert seq == [1.0, 1.0, 1.0, 1.0]
    assert r.observe(0.95) == 0.5 and r(123) == 0.5          # bad 3 > patience: reduce
    assert [r.observe(0.99) for _ in range(2)] == [0.5, 0.5]  # cooldown: ignored
    assert [r.observe(0.99) for _ in range(2)] == [0.5, 0.5]  # bad 1, 2
    assert r.observe(0.99) == 0.25                            # bad 3
    for _ in range(10):
        r.observe(0.99)
    assert r(1) == 0.2                                        # floor
    assert O.ReduceOnPlateau(patience=0).observe(float("nan")) == pytest.approx(0.1)  # NaN never improves


def test_reduce_on_plateau_mode_max_and_threshold():
    r = O.ReduceOnPlateau(mode="max", patience=0, threshold=0.1)
    assert r.observe(1.0) == 1.0
    assert r.observe(1.05) == pytest.approx(0.1)             # < 10% better counts as no improvement
    r = O.ReduceOnPlateau(mode="max", patience=0, threshold=0.1, threshold_mode="abs")
    r.observe(1.0)
    assert r.observe(1.11) == 1.0 and r.observe(1.2) == pytest.approx(0.1)


def make_opt():
    return O.SGD([{"params": [("a", Parameter(np.ones(2)))]}, {"params": [("b", Parameter(np.ones(3)))], "lr": 0.01}],
                 lr=0.1)


def test_scheduler_first_update_uses_schedule_of_one():
    opt = make_opt()
    sched = O.LRScheduler(opt, O.Cosine(total_steps=10, warmup_steps=4))
    used = []
    for k in range(1, 11):
        used.append(opt.param_groups[0]["lr"])              # the lr update k runs with
        opt.step()
        sched.step()
    assert used == pytest.approx([0.1 * O.Cosine(total_steps=10, warmup_steps=4)(k) for k in range(1, 11)])
    assert used[3] == pytest.approx(0.1) and used[-1] == pytest.approx(0.0, abs=1e-12)
    assert sched.get_last_lr() == [0.0, 0.0] and sched.last_step == 10
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.01]


def test_scheduler_state_round_trip():
    opt, sched = make_opt(), None
    sched = O.LRScheduler(opt, O.Noam(d_model=16, warmup_steps=5))
    for _ in range(7):
        sched.step()
    sd = sched.state_dict()
    assert sd == {"step": 7, "schedule": {}}
    opt2 = make_opt()
    sched2 = O.LRScheduler(opt2, O.Noam(d_model=16, warmup_steps=5))
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert sched2.get_last_lr()[1] == pytest.approx(0.01 * O.Noam(d_model=16, warmup_steps=5)(8))
    with pytest.raises(ValueError):
        sched2.load_state_dict({"step": -1, "schedule": {}})


def test_scheduler_with_plateau_observe_and_state():
    opt = make_opt()
    sched = O.LRScheduler(opt, O.ReduceOnPlateau(patience=0, factor=0.5))
    sched.observe(1.0)
    sched.observe(2.0)
    assert sched.get_last_lr() == pytest.approx([0.05, 0.005])   # applied at once, not at the next step()
    sd = sched.state_dict()
    sched2 = O.LRScheduler(make_opt(), O.ReduceOnPlateau(patience=0, factor=0.5))
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == pytest.approx([0.05, 0.005])
    assert sched2.schedule.state_dict() == sd["schedule"] and sd["schedule"]["best"] == 1.0
    with pytest.raises(TypeError):
        O.LRScheduler(make_opt(), O.Constant()).observe(1.0)


def test_scheduler_survives_optimizer_reload():
    opt = make_opt()
    sched = O.LRScheduler(opt, O.Exponential(gamma=0.5))
    sched.step()
    sched.step()
    opt2 = make_opt()
    opt2.load_state_dict(opt.state_dict())                   # lr AND initial_lr come back
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([0.025, 0.0025])
    sched2 = O.LRScheduler(opt2, O.Exponential(gamma=0.5))
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == pytest.approx([0.025, 0.0025])
