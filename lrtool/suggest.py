"""Suggestion rules: pure functions ``(lrs, losses) -> lr or None`` over a range-test curve.

``losses`` are the raw per-step losses; each rule smooths them the way it is defined to. A rule
returns ``None`` rather than a number when the curve cannot support one. The registry keeps
lrtool's own rules and faithful versions of the peers' rules for comparison:

* ``lrtool``: lrtool's recommendation for a constant LR, anchored on the minimum of a
  zero-phase (centred) smoothing in log-LR space (see :func:`lrtool_constant`);
* ``lrtool_onecycle``: the recommended peak of a 1cycle schedule;
* ``steepest``: steepest descent of the centred smoothing, measured in log-LR space;
* ``minimum_div10``: fastai's "minimum": the LR at the minimum of the EMA curve, divided by 10;
* ``valley``: fastai's valley (default since fastai 2.4);
* ``fastai_steep``: fastai's steep rule;
* ``torch_lr_finder``: torch-lr-finder's ``np.gradient`` over the index;
* ``lightning``: Lightning's steepest gradient against linear LR (since 2.5.3).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Rule = Callable[[Sequence[float], Sequence[float]], "float | None"]

MIN_POINTS = 8  # fewer finite points than this cannot support a suggestion


# --------------------------------------------------------------------------------------------
# Curve helpers (pure)
# --------------------------------------------------------------------------------------------


class DebiasedEma:
    """The debiased exponential moving average, one value at a time (the one EMA of lrtool:
    the range test's divergence monitor, the smoothed training loss of ``train``, and
    :func:`debiased_ema`).

    ``avg_n = beta * avg_{n-1} + (1 - beta) * x_n`` with ``avg_0 = 0``, reported as
    ``avg_n / (1 - beta^n)``; beta = 0 returns each value unchanged.

    >>> ema = DebiasedEma(0.5)
    >>> ema.update(1.0), round(ema.update(2.0), 4)
    (1.0, 1.6667)
    """

    __slots__ = ("beta", "avg", "count")

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.avg = 0.0
        self.count = 0

    def update(self, value: float) -> float:
        beta = self.beta
        self.count += 1
        self.avg = beta * self.avg + (1 - beta) * value
        return self.avg / (1 - beta**self.count)


def debiased_ema(values: Sequence[float], beta: float) -> list[float]:
    """Debiased exponential moving average of a whole series, as fastai and Lightning smooth
    a range test (:class:`DebiasedEma` over ``values``). A non-finite value makes every later
    value non-finite.

    >>> [round(v, 4) for v in debiased_ema([1.0, 2.0], 0.5)]
    [1.0, 1.6667]
    """
    ema = DebiasedEma(beta)
    return [ema.update(x) for x in values]


def finite_prefix(
    lrs: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to (not including) the first non-finite loss or non-positive LR."""
    x = np.asarray(lrs, dtype=float)
    y = np.asarray(losses, dtype=float)
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    bad = ~(np.isfinite(y) & np.isfinite(x) & (x > 0))
    if bad.any():
        cut = int(np.argmax(bad))
        x, y = x[:cut], y[:cut]
    return x, y


def centred_smooth(log_lrs: np.ndarray, losses: np.ndarray, width: float) -> np.ndarray:
    """Gaussian kernel smoothing in log-LR space (zero phase: no lag, unlike an EMA).

    Each point becomes the weighted mean of the curve with weights
    ``exp(-((x_j - x_i) / width)^2 / 2)``, so the minimum stays where it is.
    """
    n = len(log_lrs)
    steps = np.diff(log_lrs)
    if n > 2 and np.ptp(steps) <= 1e-9 * abs(steps.mean()):
        # An exp sweep is a uniform grid in log-LR: the same sum as a convolution, cut where
        # the weights fall below e^-32 (they no longer change a float64 sum).
        radius = int(np.ceil(8 * width / steps.mean()))
        if 2 * radius + 1 <= n:
            taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) * steps.mean() / width) ** 2)
            return np.convolve(losses, taps, "same") / np.convolve(np.ones(n), taps, "same")
    if n > DENSE_LIMIT:
        return _binned_smooth(log_lrs, losses, width)
    d = (log_lrs[None, :] - log_lrs[:, None]) / width
    w = np.exp(-0.5 * d * d)
    return (w @ losses) / w.sum(axis=1)


DENSE_LIMIT = 2000  # above this many points the n x n kernel gives way to a binned one


def _binned_smooth(log_lrs: np.ndarray, losses: np.ndarray, width: float) -> np.ndarray:
    """The same Gaussian smoothing for long sweeps, in O(n): average the points into 1,000
    equal bins in log-LR, smooth the bin means (weighted by counts), interpolate back."""
    edges = np.linspace(log_lrs[0], log_lrs[-1], 1001)
    centres = (edges[:-1] + edges[1:]) / 2
    index = np.clip(np.searchsorted(edges, log_lrs, side="right") - 1, 0, 999)
    counts = np.bincount(index, minlength=1000).astype(float)
    sums = np.bincount(index, weights=losses, minlength=1000)
    step = edges[1] - edges[0]
    half = int(np.ceil(4 * width / step)) if step > 0 else 0
    kernel = np.exp(-0.5 * ((np.arange(-half, half + 1) * step) / width) ** 2)
    weight = np.convolve(counts, kernel, mode="same")
    smooth = np.convolve(sums, kernel, mode="same") / np.maximum(weight, 1e-300)
    return np.interp(log_lrs, centres, smooth)


@dataclass(frozen=True)
class CurveFeatures:
    """What lrtool's rules read off a curve (all LRs in log10).

    ``smooth`` is the lag-free curve (a centred Gaussian in log-LR space) the rules read and
    the plot draws; ``i_min`` its minimum, ``i_steepest`` its steepest descent before the
    minimum, and the last point is where the sweep stopped (divergence or ``end_lr``).
    ``significance`` is the drop from the start to the minimum in units of the standard error
    of a smoothed point (estimated from the scatter of the raw losses around the curve).
    """

    log_lrs: np.ndarray
    smooth: np.ndarray
    i_min: int
    i_steepest: int
    relative_drop: float
    significance: float = math.inf
    i_half: int = 0  # where the curve has first fallen through half of its drop
    i_rise: int = -1  # where it has climbed back up by half of its drop after the minimum

    @property
    def log_half(self) -> float:
        return float(self.log_lrs[self.i_half])

    @property
    def log_min(self) -> float:
        return float(self.log_lrs[self.i_min])

    @property
    def log_steepest(self) -> float:
        return float(self.log_lrs[self.i_steepest])

    @property
    def log_stop(self) -> float:
        return float(self.log_lrs[-1])

    @property
    def log_rise(self) -> float:
        return float(self.log_lrs[self.i_rise])


SMOOTHING_WIDTH = 0.0125  # 1/80 of the swept decades (never narrower than 1.5 ladder steps)
# A drop of fewer standard errors is noise: with the shipped smoothing width, a 100-step sweep
# of pure Gaussian noise exceeds 5 in about 1 in 200, of Student-t(3) noise in about 1 in 25
# (tests/test_suggest_curves.py::test_pure_noise_rarely_passes_the_noise_bound).
MIN_SIGNIFICANCE = 5.0
MIN_RELATIVE_DROP = 0.01  # a drop smaller than 1% of the starting loss is a flat curve


def curve_features(
    lrs: Sequence[float], losses: Sequence[float], width: float = SMOOTHING_WIDTH
) -> CurveFeatures | str:
    """Smooth the finite part of the curve and find its minimum and steepest descent.

    Returns a reason string instead when the curve cannot support a suggestion: too short,
    never decreasing, flat, or a drop that the noise of the raw losses explains. Several rules
    read the same curve, so the last few answers are cached (by value).
    """
    return _curve_features(tuple(map(float, lrs)), tuple(map(float, losses)), float(width))


@functools.lru_cache(maxsize=16)
def _curve_features(
    lrs: tuple[float, ...], losses: tuple[float, ...], width_fraction: float
) -> CurveFeatures | str:
    x, y = finite_prefix(lrs, losses)
    if len(x) < MIN_POINTS:
        return f"too few finite points ({len(x)}; need at least {MIN_POINTS})"
    log_x = np.log10(x)
    span = float(log_x[-1] - log_x[0])
    if span <= 0:
        return "the LRs do not increase"
    width = _kernel_width(log_x, width_fraction)
    y = capped(y)
    smooth = centred_smooth(log_x, y, width)
    skip = max(1, len(x) // 20)  # the first points reflect start-up noise, not the LR
    i_min = int(np.argmin(smooth[skip:])) + skip
    start_level = float(np.median(smooth[: max(2, skip + 1)]))
    drop = start_level - float(smooth[i_min])
    scale = max(abs(start_level), 1e-12)
    relative_drop = drop / scale
    if i_min <= skip or relative_drop <= 0:
        return "the loss never decreased (start lower, or check the data and the model)"
    risen = smooth[i_min:] >= smooth[i_min] + 0.5 * drop
    i_rise = i_min + int(np.argmax(risen)) if risen.any() else len(smooth) - 1
    # Judged on the curve up to two kernel widths past where it shot back up: beyond that the
    # rise would only leak backwards into the minimum.
    end = int(np.searchsorted(log_x, log_x[i_rise] + 2 * width, side="right"))
    significance = _significance(log_x, y, width, skip, i_min, max(end, i_min + 1))
    # "Flat" is relative to the loss's zero, which only a loss that stays positive has; a
    # shifted loss (loss - 100, a log-likelihood) is judged by its noise alone.
    if relative_drop < MIN_RELATIVE_DROP and float(np.min(smooth)) > 0:
        return f"the curve is flat (the loss fell by only {relative_drop:.2%})"
    if significance < MIN_SIGNIFICANCE:
        return (
            f"the curve is noise: its drop ({relative_drop:.1%}) is {significance:.1f} standard "
            f"errors, below {MIN_SIGNIFICANCE:g} (sweep higher LRs or more steps)"
        )
    slope = np.gradient(smooth[: i_min + 1], log_x[: i_min + 1])
    i_steepest = int(np.argmin(slope))
    i_half = int(np.argmax(smooth[: i_min + 1] <= start_level - 0.5 * drop))
    return CurveFeatures(
        log_x, smooth, i_min, i_steepest, relative_drop, significance, i_half, i_rise
    )


def _kernel_width(log_x: np.ndarray, fraction: float) -> float:
    """``fraction`` of the swept decades, but never narrower than 1.5 ladder steps."""
    steps = np.diff(log_x)
    span = float(log_x[-1] - log_x[0])
    return max(span * fraction, 1.5 * float(np.median(steps)) if len(steps) else 0.0)


def capped(losses: np.ndarray) -> np.ndarray:
    """The losses with the exploding tail capped at three times the starting level (the median
    of the first tenth), so that a 1e6 at divergence does not leak back into the smoothed curve
    and move its minimum; the rise stays visible."""
    level = float(np.median(losses[: max(2, len(losses) // 10)]))
    return np.minimum(losses, level + 2 * abs(level))


def _significance(
    log_x: np.ndarray, y: np.ndarray, width: float, skip: int, i_min: int, end: int
) -> float:
    """The drop from the start to the minimum in standard errors of a smoothed point, on the
    curve's first ``end`` points (before it shot back up).

    sigma is the scatter of the raw losses around the curve, from their median absolute
    deviation (so the wild steps of a high-LR stretch do not inflate it). The drop is measured
    on the curve re-smoothed with the raw losses clipped to 3 sigma of it, so a few outliers
    of heavy-tailed noise cannot dig a dip. The standard error of the difference of two
    smoothed points is ``sqrt(2) * sigma * sqrt(sum w^2) / sum w``.
    """
    log_x, y = log_x[:end], y[:end]
    smooth = centred_smooth(log_x, y, width)
    residual = y - smooth
    sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    if sigma <= 0:
        return math.inf
    clipped = centred_smooth(log_x, np.clip(y, smooth - 3 * sigma, smooth + 3 * sigma), width)
    drop = float(np.median(clipped[: max(2, skip + 1)])) - float(clipped[i_min])
    centre = log_x[len(log_x) // 2]
    w = np.exp(-0.5 * ((log_x - centre) / width) ** 2)
    error = math.sqrt(2) * sigma * math.sqrt(float((w * w).sum())) / float(w.sum())
    return drop / error


def lagfree_curve(
    lrs: Sequence[float], losses: Sequence[float], width: float = SMOOTHING_WIDTH
) -> list[float]:
    """The centred smoothing the rules read, one value per point (NaN from the first
    non-finite loss on, and everywhere for fewer than two points or non-increasing LRs)."""
    x, y = finite_prefix(lrs, losses)
    out = [math.nan] * len(lrs)
    if len(x) < 2 or not x[-1] > x[0]:
        return out
    log_x = np.log10(x)
    if np.any(np.diff(log_x) <= 0):
        return out
    out[: len(x)] = centred_smooth(log_x, capped(y), _kernel_width(log_x, width)).tolist()
    return out


REFINE_BELOW_DROP = (
    1.01  # a first sweep whose loss fell by less than this is refined (1.01: always)
)


def refinement_reason(lrs: Sequence[float], losses: Sequence[float]) -> str | None:
    """Why a second, denser sweep is needed (``None`` when the curve can be read as it is).

    A sweep over many decades gives only a few steps to the decades that matter; a model that
    needs more steps to start learning shows a shallow curve, or none. Refine when the
    smoothed loss fell by less than :data:`REFINE_BELOW_DROP` of its start (above 1: always,
    as the suggestion suite chose), or the curve cannot support a suggestion.
    """
    f = curve_features(lrs, losses)
    if isinstance(f, str):
        return f
    if f.relative_drop < REFINE_BELOW_DROP:
        if REFINE_BELOW_DROP > 1:
            return (
                "the denser second sweep below where the first stopped is always read (it "
                "reads the LR better on the suggestion suite)"
            )
        return f"the loss fell by only {f.relative_drop:.0%} over the sweep"
    return None


# --------------------------------------------------------------------------------------------
# lrtool's rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorRule:
    """``log10 lr = w_min*log10(lr_min) + w_steep*log10(lr_steepest) + w_half*log10(lr_half)
    + w_rise*log10(lr_rise) - offset`` with ``w_rise = 1 - w_min - w_steep - w_half``, on the
    lag-free curve.

    ``lr_min`` is where the smoothed loss is lowest, ``lr_steepest`` where it falls fastest,
    ``lr_half`` where it has first fallen through half of its drop, ``lr_rise`` where it has
    climbed back up by half of its drop after the minimum ("the loss shoots back up"; the
    last point of the sweep when it never does). The result never lies below the sweep or
    above where it stopped.
    """

    w_min: float
    w_steep: float
    offset: float
    w_half: float = 0.0

    def __call__(self, lrs: Sequence[float], losses: Sequence[float]) -> float | None:
        f = curve_features(lrs, losses)
        if isinstance(f, str):
            return None
        return self.read(f, float(lrs[0]))

    def log_anchor(self, f: CurveFeatures) -> float:
        """The weighted mean of the four points, in log10 LR (before the offset)."""
        w_rise = 1.0 - self.w_min - self.w_steep - self.w_half
        return (
            self.w_min * f.log_min
            + self.w_steep * f.log_steepest
            + self.w_half * f.log_half
            + w_rise * f.log_rise
        )

    def read(self, f: CurveFeatures, first_lr: float) -> float:
        log_lr = min(self.log_anchor(f) - self.offset, f.log_stop)
        return max(float(10**log_lr), first_lr)


OPTIMIZER_GROUPS = ("adaptive", "sgd")  # per-parameter step sizes (Adam, RMSprop...) | SGD

# Chosen by leave-one-family-out cross-validation on the 66-task suite, one rule fitted on both
# kinds of curve (the training loss, and 4 fixed validation batches) so that it reads either
# (benchmarks/suggestion_quality.py prints them; docs/suggestion-quality.md); the test
# tests/test_suggestion_quality.py checks that they are that fit.
CONSTANT_RULES: dict[str, AnchorRule] = {
    "adaptive": AnchorRule(w_min=0.75, w_steep=0.0, offset=1.05, w_half=0.0),
    "sgd": AnchorRule(w_min=0.0, w_steep=0.0, offset=0.45, w_half=0.25),
}
ONECYCLE_RULES: dict[str, AnchorRule] = {
    "adaptive": AnchorRule(w_min=0.75, w_steep=0.0, offset=0.2, w_half=0.25),
    "sgd": AnchorRule(w_min=0.0, w_steep=0.0, offset=0.2, w_half=0.25),
}


def lrtool_constant(
    lrs: Sequence[float], losses: Sequence[float], group: str = "sgd"
) -> float | None:
    """lrtool's constant LR: :data:`CONSTANT_RULES` ``[group]`` on the lag-free curve.

    ``group`` is ``"adaptive"`` for optimizers with per-parameter step sizes (Adam, AdamW,
    RMSprop, Adagrad, ...) and ``"sgd"`` for SGD with or without momentum. The curve is
    smoothed without lag (a centred Gaussian in log-LR space), so its points mark where the
    loss falls and where it shoots back up; a constant LR must stay clearly below that edge.
    ``None`` for a curve that is too short, flat, noise or never decreases.
    """
    return CONSTANT_RULES[group](lrs, losses)


def lrtool_onecycle(
    lrs: Sequence[float], losses: Sequence[float], group: str = "sgd"
) -> float | None:
    """lrtool's 1cycle peak: :data:`ONECYCLE_RULES` ``[group]`` on the lag-free curve.

    1cycle warms up to its peak, spends only a short time there and anneals far below it, so
    its peak may sit closer to the edge where the loss shoots back up than a constant LR
    (Smith & Topin, 2018).
    """
    return ONECYCLE_RULES[group](lrs, losses)


def steepest(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """Steepest descent in log-LR space of the centred smoothing, before its minimum."""
    f = curve_features(lrs, losses)
    return None if isinstance(f, str) else float(10 ** f.log_lrs[f.i_steepest])


# --------------------------------------------------------------------------------------------
# The peers' rules, written from their documented behaviour
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _ema98(losses: tuple[float, ...]) -> list[float]:
    """The debiased EMA with beta 0.98 that fastai and Lightning record (cached: 4 rules)."""
    return debiased_ema(losses, 0.98)


def _fastai_curve(lrs: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """fastai's trimming: EMA (beta 0.98), drop the first tenth and the last 5, cut at a NaN.
    fastai drops ``num_it // 10`` (of the iterations asked for); here the tenth is of the
    points recorded, the same for a sweep that ran to its end."""
    smoothed = _ema98(tuple(map(float, losses)))
    n = len(smoothed)
    x = np.asarray(lrs[n // 10 : n - 5], dtype=float)
    y = np.asarray(smoothed[n // 10 : n - 5], dtype=float)
    return finite_prefix(x, y)


def minimum_div10(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """fastai ``minimum``: the LR at the minimum of the EMA curve, divided by 10."""
    x, y = _fastai_curve(lrs, losses)
    if len(x) < 2:
        return None
    return float(x[int(np.argmin(y))] / 10)


def fastai_steep(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """fastai ``steep``: the most negative ``d loss / d ln lr`` on the EMA curve."""
    x, y = _fastai_curve(lrs, losses)
    if len(x) < 2:
        return None
    g = np.diff(y) / np.diff(np.log(x))
    return float(x[int(np.argmin(g))])


def slide(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """fastai ``slide``: from the end of the EMA curve, slide a pair of points ``lr_diff=15``
    apart toward the start while their loss gradients (``np.gradient``, per point) differ by
    more than ``thresh=0.005``; the LR of the left point where they stop differing."""
    x, y = _fastai_curve(lrs, losses)
    lr_diff, thresh = 15, 0.005
    if len(y) <= lr_diff:
        return None
    grad = np.gradient(y)
    r_idx, l_idx = -1, -1 - lr_diff
    local_min_lr = x[l_idx]
    while l_idx >= -len(y) and abs(grad[r_idx] - grad[l_idx]) > thresh:
        local_min_lr = x[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr)


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """fastai ``valley``: about the middle of the longest decreasing stretch of the EMA curve.

    ``lds[i]`` is the length of the longest strictly decreasing subsequence ending at i; with
    ``end`` the first index of the largest, ``start = end - lds[end]`` and the pick is
    ``start + L//3 + L//6`` for ``L = end - start``.
    """
    x, y = _fastai_curve(lrs, losses)
    n = len(y)
    if n < 2:
        return None
    # lds[i] by patience sorting (O(n log n)): a strictly decreasing run in y is a strictly
    # increasing one in -y; bisect_left gives each element's longest run ending at it. Equal to
    # fastai's O(n^2) double loop.
    lds = np.ones(n, dtype=int)
    tails: list[float] = []
    for i, value in enumerate(-y):
        pos = bisect.bisect_left(tails, value)
        if pos == len(tails):
            tails.append(value)
        else:
            tails[pos] = value
        lds[i] = pos + 1
    end = int(np.argmax(lds))
    start = end - lds[end]
    span = end - start
    idx = max(0, start + span // 3 + span // 6)
    return float(x[idx])


def torch_lr_finder(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """torch-lr-finder: ``argmin(np.gradient(smoothed))`` over the index, after trimming.

    Its smoothing gives weight 0.05 to each new loss (no debiasing); it skips 10 points at the
    start and 5 at the end and needs 17 points.
    """
    smoothed: list[float] = []
    for i, value in enumerate(losses):
        smoothed.append(value if i == 0 else 0.05 * value + 0.95 * smoothed[-1])
    if len(smoothed) < 17:
        return None
    x = np.asarray(lrs[10:-5], dtype=float)
    y = np.asarray(smoothed[10:-5], dtype=float)
    x, y = finite_prefix(x, y)
    if len(y) < 2:
        return None
    return float(x[int(np.argmin(np.gradient(y)))])


def lightning(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """Lightning ``suggestion()``: steepest ``d loss / d lr`` in linear LR, skipping 10 and 1.

    Lightning records the EMA-smoothed loss (beta 0.98, debiased).
    """
    smoothed = np.asarray(_ema98(tuple(map(float, losses))), dtype=float)
    x = np.asarray(lrs, dtype=float)[10:-1]
    y = smoothed[10:-1]
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(y) < 2 or len(np.unique(x)) < len(x):
        return None
    return float(x[int(np.argmin(np.gradient(y, x)))])


@dataclass(frozen=True)
class RuleInfo:
    name: str
    fn: Rule
    note: str
    peer: bool = False
    grouped: bool = False  # fn takes the optimizer group as a third argument


RULES: dict[str, RuleInfo] = {
    r.name: r
    for r in [
        RuleInfo(
            "lrtool", lrtool_constant, "constant LR, read off the lag-free curve", grouped=True
        ),
        RuleInfo(
            "lrtool_onecycle", lrtool_onecycle, "1cycle peak, read off the same curve", grouped=True
        ),
        RuleInfo("steepest", steepest, "steepest descent in log-LR space"),
        RuleInfo("minimum_div10", minimum_div10, "fastai minimum / 10", peer=True),
        RuleInfo("valley", valley, "fastai valley (its default)", peer=True),
        RuleInfo("slide", slide, "fastai slide", peer=True),
        RuleInfo("fastai_steep", fastai_steep, "fastai steep", peer=True),
        RuleInfo("torch_lr_finder", torch_lr_finder, "torch-lr-finder steepest", peer=True),
        RuleInfo("lightning", lightning, "Lightning steepest (linear LR)", peer=True),
    ]
}


def run_rules(
    lrs: Sequence[float], losses: Sequence[float], group: str = "sgd"
) -> dict[str, float | None]:
    """Every registered rule on one curve; a rule that cannot answer gives ``None``."""
    return {
        name: info.fn(lrs, losses, group) if info.grouped else info.fn(lrs, losses)  # type: ignore[call-arg]
        for name, info in RULES.items()
    }


# --------------------------------------------------------------------------------------------
# The recommendation
# --------------------------------------------------------------------------------------------


@dataclass
class Recommendation:
    """What ``lrtool find`` recommends, why, and how sure it is."""

    lr: float | None
    onecycle_max_lr: float | None
    rule: str
    reason: str
    confidence: str  # high | medium | low | none
    spread_decades: float | None = None
    warnings: list[str] = field(default_factory=list)


AGREEMENT_RULES = ("lrtool", "steepest", "minimum_div10", "valley")


def recommend(
    lrs: Sequence[float],
    losses: Sequence[float],
    suggestions: dict[str, float | None] | None = None,
    repeat_lrs: Sequence[float] | None = None,
    group: str = "sgd",
) -> Recommendation:
    """Choose ``lr`` and ``onecycle_max_lr`` and say how confident the choice is.

    Confidence comes from agreement: the spread, in decades, between lrtool's rule and the
    steepest, minimum/10 and valley rules (and between repeated sweeps when given):
    high within 0.5 decade, medium within 1, low beyond.
    """
    found = suggestions if suggestions is not None else run_rules(lrs, losses, group)
    features = curve_features(lrs, losses)
    if isinstance(features, str):
        return Recommendation(
            None, None, "none", "", "none", warnings=[f"no suggestion: {features}"]
        )
    lr, peak = found.get("lrtool"), found.get("lrtool_onecycle")
    picks = [found[n] for n in AGREEMENT_RULES if found.get(n)]
    logs = [math.log10(v) for v in picks if v and v > 0]
    spread = max(logs) - min(logs) if len(logs) >= 2 else None
    if repeat_lrs:
        rep = [math.log10(v) for v in repeat_lrs if v and v > 0]
        if len(rep) >= 2:
            spread = max(spread or 0.0, max(rep) - min(rep))
    if spread is None:
        confidence = "low"
    elif spread <= 0.5:
        confidence = "high"
    elif spread <= 1.0:
        confidence = "medium"
    else:
        confidence = "low"
    reason = (
        f"the lag-free loss has fallen half-way at {10**features.log_half:.3g}, is lowest at "
        f"{10**features.log_min:.3g} and climbs back up at {10**features.log_rise:.3g}; "
        f"the constant LR and the 1cycle peak are read from these ({group} rules, "
        f"docs/range-test.md)"
    )
    warnings = []
    if features.i_min >= len(features.log_lrs) - 2:
        warnings.append(
            "the loss was still falling at the end of the sweep: raise find.end_lr "
            "(the suggestion may be too low)"
        )
    if lr is not None and lr <= lrs[0] * (1 + 1e-9):
        warnings.append(
            "the suggestion is the first LR of the sweep: lower find.start_lr to see below it"
        )
    if confidence == "low":
        warnings.append(
            "the rules disagree by more than a decade: run more sweeps (repeats=3; lrtool find --repeats 3) or more steps"
        )
    return Recommendation(lr, peak, "lrtool", reason, confidence, spread, warnings)
