"""Schedules that decay (or hold) the LR: constant, power, exponential, step, piecewise,
polynomial, linear, cosine (with restarts), tanh, warmup-stable-decay. Each factory declares
its parameters' valid values once (:func:`lrtool.schedules.base.declared`); its docstring
holds the closed form, the defaults and the library it matches.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Literal

from lrtool.schedules.base import Schedule, check, declared


@declared()
def constant(lr: float) -> Schedule:
    """``lr`` at every step.

    >>> constant(0.1)(1000)
    0.1
    """
    return Schedule("constant", lambda t: lr)


@declared(c=">= 0")
def power(lr: float, s: float, c: float = 1.0) -> Schedule:
    """Power scheduling: ``lr / (1 + t/s)^c``.

    c = 1 equals Keras ``InverseTimeDecay(lr, decay_steps=s, decay_rate=1)``; c = 0.5 is the
    shape of Hugging Face ``inverse_sqrt``. The LR halves (c = 1) after s steps.

    >>> round(power(0.01, s=20)(20), 6)
    0.005
    """

    def value(t: int) -> float:
        try:
            return lr / (1.0 + t / s) ** c
        except OverflowError:  # (1 + t/s)^c past 1e308: the LR has decayed to nothing
            return 0.0

    return Schedule("power", value)


@declared(base="(0, 1]")
def exponential(lr: float, s: float, base: float = 0.1, staircase: bool = False) -> Schedule:
    """Exponential scheduling: ``lr * base^(t/s)`` (``floor(t/s)`` with ``staircase``).

    With base = 0.1 the LR drops tenfold every s steps. Equals Keras
    ``ExponentialDecay(lr, decay_steps=s, decay_rate=base, staircase)`` and torch
    ``ExponentialLR(gamma=base ** (1/s))``.

    >>> round(exponential(0.01, s=20)(20), 6)
    0.001
    """
    if staircase:
        return Schedule("exponential", lambda t: lr * base ** math.floor(t / s))
    return Schedule("exponential", lambda t: lr * base ** (t / s))


@declared(step_size=">= 1")
def step(lr: float, step_size: int, factor: float = 0.1) -> Schedule:
    """Step decay: ``lr * factor^floor(t / step_size)``. Equals torch ``StepLR(gamma=factor)``.

    >>> step(1.0, step_size=10, factor=0.5)(25)
    0.25
    """
    return Schedule("step", lambda t: lr * factor ** (t // step_size))


@declared(values="[0, 1e9]", boundaries=">= 0", milestones=">= 0")
def piecewise(
    lr: float | None = None,
    boundaries: Sequence[int] | None = None,
    values: Sequence[float] | None = None,
    milestones: Sequence[int] | None = None,
    factor: float = 0.1,
) -> Schedule:
    """Piecewise constant, in one of two forms.

    * ``boundaries`` + ``values`` (absolute LRs): ``values[i]`` where
      ``boundaries[i-1] < t <= boundaries[i]``; a boundary belongs to the piece on its left.
      Equals Keras ``PiecewiseConstantDecay``. Needs ``len(values) == len(boundaries) + 1``.
    * ``lr`` + ``milestones`` + ``factor`` (default 0.1): ``lr * factor^(#milestones <= t)``.
      Equals torch ``MultiStepLR(milestones, gamma=factor)``.

    >>> piecewise(boundaries=[10, 20], values=[1.0, 0.5, 0.1])(11)
    0.5
    >>> piecewise(lr=1.0, milestones=[10, 20], factor=0.5)(10)
    0.5
    """
    name = "piecewise"
    if values is not None or boundaries is not None:
        check(
            milestones is None and lr is None,
            name,
            "give either boundaries+values (absolute LRs) or lr+milestones, not both",
        )
        check(
            boundaries is not None and values is not None,
            name,
            "boundaries and values go together",
        )
        assert boundaries is not None and values is not None
        bounds, vals = list(boundaries), [float(v) for v in values]
        check(
            len(vals) == len(bounds) + 1,
            name,
            f"len(values) must be len(boundaries) + 1, got {len(vals)} values for "
            f"{len(bounds)} boundaries",
        )
        check(
            all(b < a for b, a in zip(bounds, bounds[1:], strict=False)),
            name,
            f"boundaries must be strictly increasing, got boundaries={bounds}",
        )
        return Schedule(name, lambda t: vals[bisect.bisect_left(bounds, t)])
    check(lr is not None, name, "needs lr and milestones, or boundaries and values")
    check(milestones is not None, name, "needs milestones (or boundaries and values)")
    assert lr is not None and milestones is not None
    marks = list(milestones)
    check(
        all(b <= a for b, a in zip(marks, marks[1:], strict=False)),
        name,
        f"milestones must be increasing, got milestones={marks}",
    )
    return Schedule(name, lambda t: lr * factor ** bisect.bisect_right(marks, t))


@declared(lb="< ub")
def tanh(
    lr: float, total_steps: int, lb: float = -7.0, ub: float = 3.0, min_lr: float = 0.0
) -> Schedule:
    """Hyperbolic-tangent decay (timm ``TanhLRScheduler``): ``min_lr + (lr - min_lr) *
    (1 - tanh(lb + (ub - lb) * t/T)) / 2``, flat near ``lr`` early, then a smooth drop.

    >>> round(tanh(1.0, total_steps=10)(0), 6)
    0.999999
    """
    name = "tanh"

    def lr_at(t: int) -> float:
        q = min(t, total_steps) / total_steps
        return min_lr + 0.5 * (lr - min_lr) * (1 - math.tanh(lb * (1.0 - q) + ub * q))

    return Schedule(name, lr_at, total_steps=total_steps)


@declared(boundaries=">= 1", scales="[0, 1]")
def piecewise_interpolate(
    lr: float,
    boundaries: Sequence[int],
    scales: Sequence[float] = (0.1, 0.1),
    interpolate: Literal["linear", "cosine"] = "linear",
) -> Schedule:
    """optax ``piecewise_interpolate_schedule``: the LR at step 0 is ``lr``, at
    ``boundaries[i]`` it is ``lr * scales[0] * ... * scales[i]``, interpolated linearly (or
    with a cosine) between them, and held after the last boundary.

    >>> [piecewise_interpolate(1.0, [10, 20], [0.5, 0.5])(t) for t in (0, 5, 10, 30)]
    [1.0, 0.75, 0.5, 0.25]
    """
    name = "piecewise_interpolate"
    bounds = [int(b) for b in boundaries]
    factors = [float(f) for f in scales]
    check(len(bounds) == len(factors) >= 1, name, "needs as many scales as boundaries (>= 1)")
    check(
        all(a < b for a, b in zip([0, *bounds], bounds, strict=False)),
        name,
        f"boundaries must increase from above 0, got {bounds}",
    )
    values = [lr]
    for f in factors:
        values.append(values[-1] * f)
    starts = [0, *bounds]

    def lr_at(t: int) -> float:
        if t >= starts[-1]:
            return values[-1]
        i = bisect.bisect_right(starts, t) - 1
        q = (t - starts[i]) / (starts[i + 1] - starts[i])
        a, b = values[i], values[i + 1]
        if interpolate == "cosine":
            return b + (a - b) / 2.0 * (math.cos(math.pi * q) + 1)
        return a + (b - a) * q

    return Schedule(name, lr_at)


@declared(num_cycles="> 0", min_lr_rate="[0, 1]")
def cosine(
    lr: float,
    total_steps: int,
    eta_min: float = 0.0,
    num_cycles: float = 0.5,
    min_lr_rate: float = 0.0,
) -> Schedule:
    """Cosine annealing: ``eta_min + (lr - eta_min) * (1 + cos(pi * t / T)) / 2`` for t <= T.

    Equals torch ``CosineAnnealingLR(T_max=T, eta_min)`` on 0..T; torch rises again after T,
    lrtool holds ``eta_min``. Also Keras ``CosineDecay`` with ``alpha = eta_min / lr``.

    Hugging Face's cosine: ``lr * (f * (1 - min_lr_rate) + min_lr_rate)`` with
    ``f = max(0, (1 + cos(2 pi num_cycles t/T)) / 2)``: ``num_cycles`` 0.5 (the default) is
    one half-wave down, 1.5 goes down, up and down again; equals
    ``get_cosine_schedule_with_warmup`` and ``get_cosine_with_min_lr_schedule_with_warmup``
    (with ``warmup_steps``).

    >>> cosine(1.0, total_steps=4)(2)
    0.5
    """
    name = "cosine"
    check(
        eta_min == 0 or (num_cycles == 0.5 and min_lr_rate == 0),
        name,
        "eta_min is torch's floor; with num_cycles or min_lr_rate (Hugging Face's) use min_lr_rate",
    )

    if num_cycles == 0.5 and min_lr_rate == 0:

        def lr_at(t: int) -> float:
            q = min(t, total_steps) / total_steps
            return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * q)) / 2

    else:

        def lr_at(t: int) -> float:
            q = min(t, total_steps) / total_steps
            factor = max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * q)))
            return lr * (factor * (1 - min_lr_rate) + min_lr_rate)

    return Schedule(name, lr_at, total_steps=total_steps)


@declared(T_0=">= 1", T_mult=">= 1", cycle_decay="(0, 1]")
def cosine_restarts(  # noqa: N803 (torch's names)
    lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0, cycle_decay: float = 1.0
) -> Schedule:
    """SGDR: cosine from ``lr`` to ``eta_min`` over periods of ``T_0``, ``T_0*T_mult``, ...

    Inside period i (from 0) of length T_i at position T_cur: ``eta_min + (lr * d^i -
    eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` with ``d = cycle_decay``. Equals torch
    ``CosineAnnealingWarmRestarts`` (d = 1); d < 1 lowers each restart's peak, as timm's
    ``cycle_decay`` and Keras ``CosineDecayRestarts(m_mul=d)`` do.

    >>> cosine_restarts(1.0, T_0=2, T_mult=2)(2)
    1.0
    """
    name = "cosine_restarts"

    def lr_at(t: int) -> float:
        if T_mult == 1:
            t_cur, t_i, cycle = t % T_0, T_0, t // T_0
        else:
            t_cur, t_i, cycle = t, T_0, 0
            while t_cur >= t_i:
                t_cur -= t_i
                t_i *= T_mult
                cycle += 1
        top = lr if cycle_decay == 1 else max(eta_min, lr * cycle_decay**cycle)
        return eta_min + (top - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    return Schedule(name, lr_at)


@declared(power=">= 0")
def polynomial(lr: float, total_steps: int, power: float = 1.0, end_lr: float = 0.0) -> Schedule:
    """Polynomial decay: ``(lr - end_lr) * (1 - min(t, T)/T)^power + end_lr``.

    Equals torch ``PolynomialLR(total_iters=T, power)`` (end_lr = 0), Keras ``PolynomialDecay``
    and optax ``polynomial_schedule``.

    >>> polynomial(1.0, total_steps=4, power=2.0)(1)
    0.5625
    """
    name = "polynomial"
    return Schedule(
        name,
        lambda t: (lr - end_lr) * (1 - min(t, total_steps) / total_steps) ** power + end_lr,
        total_steps=total_steps,
    )


@declared(start_factor="[0, 1]", end_factor="[0, 1]")
def linear(
    lr: float, total_steps: int, start_factor: float = 1.0, end_factor: float = 0.0
) -> Schedule:
    """Linear ramp: ``lr * (start_factor + (end_factor - start_factor) * min(t, T)/T)``.

    The default (1 -> 0) is a linear decay to zero, Hugging Face's ``linear``. With torch's
    defaults (start_factor=1/3, end_factor=1) it equals torch ``LinearLR(total_iters=T)``.

    >>> linear(1.0, total_steps=4)(1)
    0.75
    """
    name = "linear"
    return Schedule(
        name,
        lambda t: (
            lr * (start_factor + (end_factor - start_factor) * min(t, total_steps) / total_steps)
        ),
        total_steps=total_steps,
    )


@declared(decay_steps="[1, total_steps]")
def warmup_stable_decay(
    lr: float,
    total_steps: int,
    decay_steps: int | None = None,
    decay: Literal["cosine", "linear", "1-sqrt"] = "cosine",
    min_lr: float = 0.0,
) -> Schedule:
    """Warm-up (with ``warmup_steps``), a flat stretch at ``lr``, then a decay to ``min_lr``.

    Over the last D = ``decay_steps`` steps (default 10% of T) with progress q:
    cosine ``min_lr + (lr - min_lr) * (1 + cos(pi*q))/2``, linear ``... * (1 - q)``,
    ``1-sqrt`` ``... * (1 - sqrt(q))``. Equals Hugging Face ``warmup_stable_decay``.

    >>> warmup_stable_decay(1.0, total_steps=10, decay_steps=4)(8)
    0.5
    """
    name = "warmup_stable_decay"
    D = max(1, round(0.1 * total_steps)) if decay_steps is None else decay_steps
    kinds = ("cosine", "linear", "1-sqrt")
    check(decay in kinds, name, f"decay must be one of {', '.join(kinds)}, got {decay!r}")
    begin = total_steps - D

    def lr_at(t: int) -> float:
        if t < begin:
            return lr
        q = min(t - begin, D) / D
        if decay == "cosine":
            f = (1 + math.cos(math.pi * q)) / 2
        elif decay == "linear":
            f = 1 - q
        else:
            f = 1 - math.sqrt(q)
        return min_lr + (lr - min_lr) * f

    return Schedule(name, lr_at, total_steps=total_steps)
