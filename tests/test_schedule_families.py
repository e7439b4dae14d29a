"""The families issue 19 added, against their library's values where it is installed
(transformers, torch) and against the library's formula written out here where it is not
(timm, optax)."""

from __future__ import annotations

import math

import pytest
import torch

from lrtool import build_schedule
from tests.conftest import torch_values


@pytest.mark.parametrize(
    ("num_cycles", "min_lr_rate", "warmup"),
    [(0.5, 0.0, 0), (1.5, 0.0, 10), (0.5, 0.1, 10), (2.0, 0.2, 0)],
)
def test_cosine_num_cycles_and_min_lr_rate_equal_hugging_face(num_cycles, min_lr_rate, warmup):
    transformers = pytest.importorskip("transformers")
    total = 100
    if min_lr_rate:
        make = lambda opt: transformers.get_cosine_with_min_lr_schedule_with_warmup(  # noqa: E731
            opt, warmup, total, num_cycles=num_cycles, min_lr_rate=min_lr_rate
        )
    else:
        make = lambda opt: transformers.get_cosine_schedule_with_warmup(  # noqa: E731
            opt, warmup, total, num_cycles=num_cycles
        )
    expected = torch_values(make, total)
    ours = build_schedule(
        "cosine",
        {"lr": 1.0, "total_steps": total, "num_cycles": num_cycles, "min_lr_rate": min_lr_rate,
         "warmup_steps": warmup},
    )  # fmt: skip
    assert [ours(t) for t in range(total)] == pytest.approx(expected, abs=1e-12)


def test_cosine_restarts_with_cycle_decay():
    plain = build_schedule("cosine_restarts", {"lr": 1.0, "T_0": 10, "T_mult": 2})
    torch_lrs = torch_values(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2), 70
    )
    assert [plain(t) for t in range(70)] == pytest.approx(torch_lrs, abs=1e-12)
    decayed = build_schedule(
        "cosine_restarts", {"lr": 1.0, "T_0": 10, "T_mult": 2, "cycle_decay": 0.5, "eta_min": 0.01}
    )
    # timm/Keras: restart i starts at lr * decay^i (cycles of 10, 20, 40 steps)
    assert [decayed(t) for t in (0, 10, 30)] == pytest.approx([1.0, 0.5, 0.25])
    t, start, length = 17, 10, 20  # inside the second cycle
    expected = 0.01 + (0.5 - 0.01) * (1 + math.cos(math.pi * (t - start) / length)) / 2
    assert decayed(t) == pytest.approx(expected)


def test_tanh_is_timms_formula():
    sched = build_schedule("tanh", {"lr": 0.5, "total_steps": 200, "min_lr": 0.01})
    for t in (0, 50, 150, 199, 200, 300):
        tr = min(t, 200) / 200
        timm = 0.01 + 0.5 * (0.5 - 0.01) * (1 - math.tanh(-7.0 * (1.0 - tr) + 3.0 * tr))
        assert sched(t) == pytest.approx(timm, rel=1e-12)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_piecewise_interpolate_is_optaxs_formula(kind):
    import numpy as np

    boundaries, scales = [10, 30, 60], [0.5, 0.2, 0.5]
    sched = build_schedule(
        "piecewise_interpolate",
        {"lr": 2.0, "boundaries": boundaries, "scales": scales, "interpolate": kind},
    )
    # optax.piecewise_interpolate_schedule, written out
    bounds = np.array([0, *boundaries])
    values = np.cumprod([2.0, *scales])
    for count in (0, 5, 10, 11, 29, 45, 59, 60, 100):
        indicator = (bounds[:-1] <= count) & (count < bounds[1:])
        pct = (count - bounds[:-1]) / (bounds[1:] - bounds[:-1])
        a, b = values[:-1], values[1:]
        interp = (
            a + (b - a) * pct if kind == "linear" else b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1)
        )
        expected = indicator.dot(interp) + (bounds[-1] <= count) * values[-1]
        assert sched(count) == pytest.approx(float(expected), rel=1e-12)


def test_geron_is_its_documented_three_linear_phases():
    sched = build_schedule("geron", {"max_lr": 1.0, "total_steps": 100})
    ends = [0.45 * 100 - 1, 0.9 * 100 - 1, 99]
    points = [(0, 0.1), (ends[0], 1.0), (ends[1], 0.1), (ends[2], 0.1 / 1000)]
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        for t in range(math.ceil(t0), math.floor(t1) + 1):
            expected = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
            assert sched(t) == pytest.approx(expected, rel=1e-9), t
    assert sched.momentum(10) is None  # no momentum cycling


def test_onecycle_pct_final_gives_an_independent_final_phase():
    sched = build_schedule(
        "onecycle", {"max_lr": 1.0, "total_steps": 100, "pct_final": 0.8, "anneal": "linear"}
    )
    assert sched(29) == pytest.approx(1.0) and sched(79) == pytest.approx(1 / 25)
    assert sched(99) == pytest.approx(1 / 25 / 1e4)


def test_fastais_slide_rule_is_in_the_table_and_follows_fastai():
    """fastai's ``slide`` (fastai/callback/schedule.py), transcribed, on the curve fastai reads
    (debiased EMA 0.98, the first tenth and the last 5 points dropped)."""
    import numpy as np

    from lrtool.finder import lr_ladder
    from lrtool.suggest import RULES, debiased_ema, slide

    assert RULES["slide"].peer and RULES["slide"].fn is slide
    lrs = lr_ladder(1e-6, 10, 120)
    losses = [
        2.3 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + max(0.0, math.log10(lr) + 1) ** 2
        for lr in lrs
    ]
    n = len(losses)
    smoothed = debiased_ema(losses, 0.98)
    x, y = np.asarray(lrs[n // 10 : n - 5]), np.asarray(smoothed[n // 10 : n - 5])
    grad = np.gradient(y)
    r_idx, l_idx = -1, -16
    expected = x[l_idx]
    while l_idx >= -len(y) and abs(grad[r_idx] - grad[l_idx]) > 0.005:
        expected = x[l_idx]
        r_idx -= 1
        l_idx -= 1
    assert slide(lrs, losses) == pytest.approx(float(expected))
    assert 1e-6 <= slide(lrs, losses) <= 10
    assert slide(lrs[:15], losses[:15]) is None  # too short for its 15-point window
