"""Suggestion rules on hand-made curves, and properties on any curve (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtool.finder import lr_ladder
from lrtool.suggest import RULES, recommend, run_rules, valley


def bowl(n=100, minimum=1e-2, noise=0.0, seed=0):
    """Loss flat at 2, falling to 0.2 around `minimum`, then shooting up."""
    lrs = lr_ladder(1e-6, 10, n)
    rng = np.random.default_rng(seed)
    x = np.log10(lrs)
    m = math.log10(minimum)
    loss = 2 - 1.8 / (1 + np.exp(-(x - (m - 1)) * 4)) + np.where(x > m, (x - m) ** 2 * 8, 0)
    return lrs, list(loss + noise * rng.standard_normal(n))


def test_lrtool_rule_lands_below_the_minimum():
    lrs, losses = bowl()
    true_min = lrs[int(np.argmin(losses))]
    rec = recommend(lrs, losses)
    assert true_min / 10 < rec.lr < true_min / 2
    assert rec.lr < rec.onecycle_max_lr < true_min
    assert rec.confidence in ("high", "medium", "low")  # agreement with the peers, see docs


def test_noise_moves_lrtool_less_than_torch_lr_finder():
    clean = run_rules(*bowl())
    shifts = {"lrtool": [], "torch_lr_finder": []}
    for seed in range(8):
        noisy = run_rules(*bowl(noise=0.15, seed=seed))
        for rule in shifts:
            if noisy[rule] and clean[rule]:
                shifts[rule].append(abs(math.log10(noisy[rule] / clean[rule])))
    assert max(shifts["lrtool"]) < 0.5
    assert np.median(shifts["lrtool"]) <= np.median(shifts["torch_lr_finder"])


def test_flat_curve_gives_a_warning_not_a_number():
    lrs = lr_ladder(1e-6, 1, 60)
    rec = recommend(lrs, [1.0] * 60)
    assert rec.lr is None and rec.onecycle_max_lr is None
    assert "no suggestion" in rec.warnings[0]


def test_too_short_and_diverged_at_once():
    assert recommend([1e-3, 1e-2], [1.0, 0.5]).lr is None
    lrs = lr_ladder(1e-6, 1, 40)
    rising = [1 + i * 0.1 for i in range(40)]
    assert recommend(lrs, rising).lr is None


def test_nan_tail_is_ignored():
    lrs, losses = bowl()
    cut = [*losses[:90], *([float("nan")] * 10)]
    assert recommend(lrs, cut).lr == recommend(lrs[:90], losses[:90]).lr


def test_valley_picks_inside_the_descent():
    lrs, losses = bowl()
    v = valley(lrs, losses)
    assert 1e-4 < v < 1e-1


curves = st.lists(
    st.one_of(st.floats(-10, 1e4, allow_nan=False), st.just(float("nan")), st.just(float("inf"))),
    min_size=0,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(losses=curves)
def test_every_rule_is_inside_the_range_or_none(losses):
    lrs = lr_ladder(1e-6, 10, max(2, len(losses)))[: len(losses)]
    for name, value in run_rules(lrs, losses).items():
        if value is not None:
            assert math.isfinite(value), name
            assert lrs[0] / 10.0001 <= value <= lrs[-1] * 1.0001, (name, value)
    rec = recommend(lrs, losses)
    assert rec.lr is None or (math.isfinite(rec.lr) and lrs[0] <= rec.lr <= lrs[-1])


def test_registry_names():
    assert {"lrtool", "steepest", "minimum_div10", "valley"} <= set(RULES)
