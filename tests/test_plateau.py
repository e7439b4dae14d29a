"""plateau against torch ReduceLROnPlateau on the same metric sequences."""

from __future__ import annotations

import random

import pytest
import torch

from lrtool.schedules import build_schedule


def torch_plateau(metrics, **kwargs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out


def ours(metrics, **kwargs):
    sched = build_schedule("plateau", {"lr": 1.0, **kwargs})
    return [sched.update(m) for m in metrics]


def test_reference_sequence_cuts_after_steps_5_and_10():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8] + [0.85] * 5
    got = ours(metrics, patience=2)
    cuts = [i + 1 for i in range(1, len(got)) if got[i] < got[i - 1]]  # 1-based step() calls
    assert cuts == [5, 10]
    assert got == pytest.approx(torch_plateau(metrics, patience=2))


def test_relative_threshold_edge():
    assert ours([1.0, 0.99995], patience=0) == pytest.approx([1.0, 0.1])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "kwargs",
    [
        {"patience": 1},
        {"patience": 2, "cooldown": 2, "min_lr": 0.005},
        {"patience": 0, "threshold": 0.05, "threshold_mode": "abs"},
        {"patience": 1, "mode": "max", "factor": 0.5},
    ],
)
def test_random_sequences_equal_torch(seed, kwargs):
    rng = random.Random(seed)
    metrics, level = [], 1.0
    for _ in range(60):
        level *= rng.choice([0.9, 1.0, 1.0, 1.05])
        metrics.append(level + rng.random() * 0.01)
    assert ours(metrics, **kwargs) == pytest.approx(torch_plateau(metrics, **kwargs), rel=1e-12)
