"""Schedules against torch's own schedulers (value by value), closed forms and Keras values."""

from __future__ import annotations

import math

import pytest
import torch

from lrtool.errors import LrtoolError
from lrtool.schedules import SCHEDULES, build_schedule, sample_steps
from lrtool.schedules.torch_adapter import LrtoolScheduler
from tests.conftest import torch_values


def close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-12)


S = torch.optim.lr_scheduler


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("T", [10, 37, 100])
def test_onecycle_equals_torch(anneal, three_phase, T):
    ours = build_schedule(
        "onecycle",
        {
            "max_lr": 0.7,
            "total_steps": T,
            "anneal": anneal,
            "three_phase": three_phase,
            "pct_start": 0.25,
        },
    )
    lrs, moms = torch_values(
        lambda o: S.OneCycleLR(
            o,
            max_lr=0.7,
            total_steps=T,
            anneal_strategy=anneal,
            three_phase=three_phase,
            pct_start=0.25,
        ),
        T,
        momentum=True,
    )
    close([ours(t) for t in range(T)], lrs)
    close([ours.momentum(t) for t in range(T)], moms)


def test_onecycle_holds_final_value_after_T_where_torch_overshoots():
    ours = build_schedule("onecycle", {"max_lr": 1.0, "total_steps": 10, "anneal": "linear"})
    assert ours(9) == pytest.approx(4e-6)
    assert ours(10) == ours(9) and ours(10_000) == ours(9)  # torch gives -0.1428 at t=10


def test_onecycle_reference_values():
    ours = build_schedule("onecycle", {"max_lr": 1.0, "total_steps": 10})
    ref = [
        0.04,
        0.52,
        1.0,
        0.95048463,
        0.81174565,
        0.61126202,
        0.38874198,
        0.18825835,
        0.04951937,
        4e-06,
    ]
    assert [round(ours(t), 8) for t in range(10)] == pytest.approx(ref, abs=1e-8)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_equals_torch(mode):
    ours = build_schedule(
        "cyclic",
        {
            "lr": 0.1,
            "max_lr": 1.0,
            "step_size_up": 3,
            "step_size_down": 5,
            "mode": mode,
            "gamma": 0.97,
        },
    )
    lrs, moms = torch_values(
        lambda o: S.CyclicLR(o, 0.1, 1.0, step_size_up=3, step_size_down=5, mode=mode, gamma=0.97),
        40,
        momentum=True,
    )
    close([ours(t) for t in range(40)], lrs)
    close([ours.momentum(t) for t in range(40)], moms)


@pytest.mark.parametrize(
    ("name", "params", "make"),
    [
        (
            "cosine",
            {"lr": 1.0, "total_steps": 20, "eta_min": 0.01},
            lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=0.01),
        ),
        (
            "cosine_restarts",
            {"lr": 1.0, "T_0": 3, "T_mult": 2, "eta_min": 0.05},
            lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.05),
        ),
        (
            "cosine_restarts",
            {"lr": 1.0, "T_0": 4},
            lambda o: S.CosineAnnealingWarmRestarts(o, T_0=4),
        ),
        (
            "exponential",
            {"lr": 1.0, "s": 10, "base": 0.1},
            lambda o: S.ExponentialLR(o, gamma=0.1 ** (1 / 10)),
        ),
        (
            "step",
            {"lr": 1.0, "step_size": 7, "factor": 0.5},
            lambda o: S.StepLR(o, step_size=7, gamma=0.5),
        ),
        (
            "piecewise",
            {"lr": 1.0, "milestones": [5, 5, 12], "factor": 0.3},
            lambda o: S.MultiStepLR(o, milestones=[5, 5, 12], gamma=0.3),
        ),
        (
            "polynomial",
            {"lr": 1.0, "total_steps": 15, "power": 2.0},
            lambda o: S.PolynomialLR(o, total_iters=15, power=2.0),
        ),
        (
            "linear",
            {"lr": 1.0, "total_steps": 12, "start_factor": 1 / 3, "end_factor": 1.0},
            lambda o: S.LinearLR(o, start_factor=1 / 3, end_factor=1.0, total_iters=12),
        ),
    ],
)
def test_equals_torch(name, params, make):
    ours = build_schedule(name, params)
    T = params.get("total_steps", 30)
    close([ours(t) for t in range(T)], torch_values(make, T))


def test_adapter_drives_adam_beta1_and_groups():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 0.1}])
    sched = LrtoolScheduler(opt, build_schedule("onecycle", {"max_lr": 1.0, "total_steps": 10}))
    sched.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.85)


def test_adapter_leaves_plain_sgd_without_momentum():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    LrtoolScheduler(opt, build_schedule("onecycle", {"max_lr": 1.0, "total_steps": 10}))
    assert opt.param_groups[0]["momentum"] == 0


def test_power_and_exponential_closed_forms_and_keras_values():
    power = build_schedule("power", {"lr": 0.01, "s": 20, "c": 1})
    assert [power(t) for t in (20, 40, 60)] == pytest.approx([0.005, 0.0033333, 0.0025], rel=1e-4)
    half = build_schedule("power", {"lr": 2.0, "s": 5, "c": 0.5})
    assert half(15) == pytest.approx(2.0 / math.sqrt(1 + 15 / 5))
    inv = build_schedule("power", {"lr": 1.0, "s": 10})  # Keras InverseTimeDecay(10, 1.0)
    assert [inv(t) for t in (5, 10, 20, 30)] == pytest.approx([0.6667, 0.5, 0.3333, 0.25], rel=1e-3)
    exp = build_schedule("exponential", {"lr": 1.0, "s": 10})  # Keras ExponentialDecay(10, 0.1)
    assert [exp(t) for t in (5, 10, 30)] == pytest.approx([0.31622776, 0.1, 0.001])
    stair = build_schedule("exponential", {"lr": 1.0, "s": 10, "staircase": True})
    assert stair(5) == 1.0 and stair(10) == pytest.approx(0.1)


def test_piecewise_keras_semantics():
    pw = build_schedule("piecewise", {"boundaries": [10, 20], "values": [1, 0.5, 0.1]})
    assert [pw(t) for t in (0, 10, 11, 20, 21)] == [1, 1, 0.5, 0.5, 0.1]


def test_warmup_prefix_and_wsd_match_hf():
    wsd = build_schedule(
        "warmup_stable_decay", {"lr": 1.0, "total_steps": 10, "decay_steps": 4, "warmup_steps": 2}
    )
    ref = [0, 0.5, 1, 1, 1, 1, 1, 0.85355339, 0.5, 0.14644661, 0]
    assert [wsd(t) for t in range(11)] == pytest.approx(ref, abs=1e-8)
    cos = build_schedule(
        "cosine", {"lr": 1.0, "total_steps": 15, "warmup_steps": 5, "eta_min": 0.1}
    )
    assert [cos(t) for t in (1, 5, 10, 15)] == pytest.approx([0.2, 1.0, 0.55, 0.1])  # optax


def test_every_schedule_builds_from_lr_and_total_steps_only():
    for name, spec in SCHEDULES.items():
        sched = build_schedule(name, {spec.lr_param: 0.1, "total_steps": 100})
        values = [sched(t) for t in range(100)]
        assert all(math.isfinite(v) and v >= 0 for v in values), name


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("onecycle", {"max_lr": 1, "total_steps": 10, "pct_start": 1.5}, "pct_start"),
        ("piecewise", {"boundaries": [10, 5], "values": [1, 2, 3]}, "strictly increasing"),
        ("piecewise", {"boundaries": [10], "values": [1, 2, 3]}, "len(values)"),
        ("plateau", {"lr": 1, "factor": 1.0}, "factor"),
        ("constant", {"lr": -1}, "lr"),
        (
            "onecycle",
            {"max_lr": 1, "total_steps": 10, "pct_strat": 0.2},
            "did you mean 'pct_start'",
        ),
        ("onecylce", {}, "did you mean 'onecycle'"),
        ("cosine", {"lr": 1, "total_steps": 0}, "total_steps"),
    ],
)
def test_bad_parameters_name_the_parameter(name, params, fragment):
    with pytest.raises(LrtoolError) as err:
        build_schedule(name, params)
    assert fragment in str(err.value)
    assert err.value.exit_code == 2


def test_sample_steps_keeps_ends_and_bounds_count():
    steps = sample_steps(1_000_000, 400)
    assert steps[0] == 0 and steps[-1] == 999_999 and len(steps) <= 400
    assert sample_steps(5, 400) == [0, 1, 2, 3, 4]
