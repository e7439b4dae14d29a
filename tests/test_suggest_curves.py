"""lrtool's rules on synthetic curves: flat, noise-only, cliff, saturating and NaN tail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrtool.suggest import (
    CONSTANT_RULES,
    ONECYCLE_RULES,
    AnchorRule,
    curve_features,
    lagfree_curve,
    lrtool_constant,
    lrtool_onecycle,
    recommend,
)

LRS = np.logspace(-7, 1, 100)


def valley_curve(seed: int, noise: float = 0.03, edge: float = -1.0) -> np.ndarray:
    """A loss that falls from 2.3 around 1e-3, bottoms out and shoots up past 10**edge."""
    rng = np.random.default_rng(seed)
    x = np.log10(LRS)
    fall = 1.8 / (1 + np.exp(-(x + 3) * 2.5))
    rise = np.exp(np.clip((x - edge) * 3, -50, 50)) * 0.2
    return 2.3 - fall + rise + noise * rng.standard_normal(len(x))


@pytest.mark.parametrize("seed", range(20))
def test_noise_only_sweep_gives_no_number(seed):
    """The issue's case: a sweep at LRs too small to train (1e-9..1e-6) is pure batch noise."""
    rng = np.random.default_rng(seed)
    lrs = np.logspace(-9, -6, 100)
    losses = 2.3 + 0.08 * rng.standard_normal(100)
    found = curve_features(lrs, losses)
    assert isinstance(found, str)
    assert lrtool_constant(lrs, losses) is None and lrtool_onecycle(lrs, losses) is None
    rec = recommend(lrs, losses)
    assert rec.lr is None and rec.confidence == "none"


def test_flat_curve_gives_no_number():
    losses = np.full(100, 0.7)
    losses[::2] += 1e-4  # a deterministic wiggle far below 1%
    assert "flat" in curve_features(LRS, losses)
    assert lrtool_constant(LRS, losses) is None


def test_rising_curve_gives_no_number():
    losses = np.linspace(1.0, 3.0, 100)
    assert "never decreased" in curve_features(LRS, losses)


@pytest.mark.parametrize("seed", range(5))
def test_cliff_suggestions_lie_below_the_cliff_and_above_the_start(seed):
    """Loss falls, then jumps to NaN at 0.1: both suggestions lie in the part that trained."""
    losses = valley_curve(seed)
    losses[LRS > 0.1] = math.nan
    lr, peak = lrtool_constant(LRS, losses), lrtool_onecycle(LRS, losses)
    assert lr is not None and peak is not None
    assert LRS[0] <= lr <= 0.1 and LRS[0] <= peak <= 0.1
    f = curve_features(LRS, losses)
    assert not isinstance(f, str) and 10**f.log_stop < 0.1  # the NaN tail is not read


def test_nan_tail_reads_like_the_same_curve_cut_there():
    losses = valley_curve(3)
    cut = int(np.argmax(LRS > 0.3))
    tail = losses.copy()
    tail[cut:] = math.nan
    assert lrtool_constant(LRS, tail) == lrtool_constant(LRS[:cut], losses[:cut])
    assert math.isnan(lagfree_curve(LRS, tail)[cut])
    assert all(math.isfinite(v) for v in lagfree_curve(LRS, tail)[:cut])


def test_saturating_curve_that_never_rises_stays_inside_the_sweep():
    """Loss falls and levels off up to end_lr: the suggestion lies at or below end_lr and the
    recommendation warns that the sweep never saw the loss shoot up."""
    x = np.log10(LRS)
    losses = 2.3 - 1.8 / (1 + np.exp(-(x + 4) * 2.5))
    lr = lrtool_constant(LRS, losses)
    assert lr is not None and LRS[0] <= lr <= LRS[-1]
    rec = recommend(LRS, losses)
    assert any("still falling" in w or "end_lr" in w for w in rec.warnings)


def test_suggestions_move_with_the_edge():
    """The same curve with its edge a decade higher gives LRs about a decade higher."""
    low = lrtool_constant(LRS, valley_curve(0, noise=0.0, edge=-2.0))
    high = lrtool_constant(LRS, valley_curve(0, noise=0.0, edge=-1.0))
    assert low is not None and high is not None and high > low


def test_anchor_rule_is_the_documented_formula():
    losses = valley_curve(1)
    f = curve_features(LRS, losses)
    assert not isinstance(f, str)
    rule = AnchorRule(w_min=0.5, w_steep=0.25, offset=0.4, w_half=0.125)
    expected = (
        0.5 * f.log_min + 0.25 * f.log_steepest + 0.125 * f.log_half + 0.125 * f.log_rise - 0.4
    )
    assert rule(LRS, losses) == pytest.approx(10 ** min(expected, f.log_stop))
    assert f.log_half <= f.log_min <= f.log_rise <= f.log_stop
    for shipped in [*CONSTANT_RULES.values(), *ONECYCLE_RULES.values()]:
        assert 0 <= shipped.w_min + shipped.w_steep + shipped.w_half <= 1


def test_lagfree_curve_has_no_lag_on_a_symmetric_dip():
    """A dip symmetric in log LR keeps its minimum where it is (an EMA would move it right)."""
    x = np.log10(LRS)
    losses = 1 + (x + 3) ** 2 / 10
    curve = lagfree_curve(LRS, losses)
    assert abs(x[int(np.nanargmin(curve))] + 3) <= 0.1


@pytest.mark.parametrize(("noise", "at_most"), [("gauss", 0.01), ("t3", 0.06)])
def test_pure_noise_rarely_passes_the_noise_bound(noise, at_most):
    """docs/range-test.md: pure Gaussian noise passes the bound in about 1 sweep in 200,
    Student-t(3) noise in about 1 in 25 (1,500 sweeps each, fixed seed)."""
    rng = np.random.default_rng(7)
    lrs = np.logspace(-9, -6, 100)
    passed = 0
    for _ in range(1500):
        e = rng.standard_normal(100) if noise == "gauss" else rng.standard_t(3, 100)
        passed += not isinstance(curve_features(lrs, 2.3 + 0.05 * e), str)
    assert passed / 1500 <= at_most


def test_an_exploding_tail_does_not_move_the_curve_it_is_read_from():
    """docs/range-test.md: the tail is capped at three times the starting loss, so a 1e6 at
    divergence reads like a 7 there."""
    losses = valley_curve(2, noise=0.0)
    huge, mild = losses.copy(), losses.copy()
    huge[-1], mild[-1] = 1e6, 3 * 2.3
    assert lagfree_curve(LRS, huge) == pytest.approx(lagfree_curve(LRS, mild))
    assert lrtool_constant(LRS, huge) == pytest.approx(lrtool_constant(LRS, mild))
