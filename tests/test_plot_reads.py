"""The range-test pictures show what the rule reads: the lag-free curve, the raw points and the
suggestions, with the lowest raw loss in view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrtool.finder import RangeTestResult, attach_suggestions
from lrtool.report import loss_window, range_test_plot
from lrtool.suggest import debiased_ema, lagfree_curve


def _result() -> RangeTestResult:
    rng = np.random.default_rng(0)
    lrs = np.logspace(-5, 1, 80).tolist()
    x = np.log10(lrs)
    losses = (2.3 - 1.8 / (1 + np.exp(-(x + 2) * 3)) + 0.05 * rng.standard_normal(80)).tolist()
    losses[-3:] = [8.0, 40.0, 1e6]  # the loss shoots up
    r = RangeTestResult(lrs, losses, debiased_ema(losses, 0.95), "diverged", 80, 1e-5, 10.0, "exp")
    attach_suggestions(r)
    return r


def test_loss_window_keeps_the_raw_minimum_and_clips_the_explosion():
    r = _result()
    low, top = loss_window(r.losses, r.lagfree)
    assert low <= min(r.losses)
    assert top < 100  # the 1e6 point does not flatten the curve
    curve = [v for v in r.lagfree if math.isfinite(v)]
    assert top > min(curve)


def test_terminal_plot_draws_the_lag_free_curve_and_the_raw_points():
    r = _result()
    text = range_test_plot(r.lrs, r.losses, r.lagfree, {"lr": r.lr, "1cycle": r.onecycle_max_lr})
    assert "lag-free curve" in text and "loss (raw)" in text
    assert "lr" in text and "1cycle" in text


def test_png_draws_what_the_rule_reads():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lrtool.png import _range_test

    r = _result()
    fig = plt.figure()
    try:
        _range_test(fig, r)
        ax = fig.axes[0]
        lines = {line.get_label(): line for line in ax.get_lines()}
        curve = next(v for k, v in lines.items() if k.startswith("lag-free"))
        drawn = np.asarray(curve.get_ydata(), dtype=float)
        assert np.allclose(drawn, lagfree_curve(r.lrs, r.losses), equal_nan=True)
        assert any(k.startswith("lr ") for k in lines)  # the suggestion is marked
        assert ax.get_ylim()[0] <= min(r.losses)
    finally:
        plt.close(fig)


def test_csv_rows_name_the_monitor_and_the_curve_apart():
    r = _result()
    row = r.rows()[10]
    assert row["smoothed_loss"] == pytest.approx(debiased_ema(r.losses, 0.95)[10])
    assert row["lagfree_loss"] == pytest.approx(lagfree_curve(r.lrs, r.losses)[10])
