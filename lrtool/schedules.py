"""Learning-rate schedules: pure functions of the step, and a registry that describes them.

Every schedule is built by a factory that validates its arguments once and returns a
:class:`Schedule`, a callable ``t -> lr`` (t = 0 is the first optimizer step) that may also
define ``momentum(t)``. This module never imports torch, so ``lrtool plot`` starts fast; the
torch side lives in :mod:`lrtool.torch_adapter`.

Parameter names are shared by every schedule, config files, ``--set`` and the Python API:
``lr`` is the base (starting) LR, ``max_lr`` the peak of ``onecycle`` and ``cyclic``,
``total_steps`` the length of the run, and the seed's letters ``s`` and ``c`` where it uses them.
Any schedule can be prefixed by a linear warm-up with ``warmup_steps`` (and
``warmup_start_lr``); ``total_steps`` then includes the warm-up, as in optax.
"""

from __future__ import annotations

import bisect
import collections.abc
import copyreg
import functools
import inspect
import itertools
import math
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from lrtool.errors import LrtoolError, closest, usage_error
from lrtool.plateau import PlateauSchedule, plateau
from lrtool.schedule_base import Schedule
from lrtool.schedule_base import check as _check
from lrtool.schedule_base import decay_factor as _decay_factor
from lrtool.schedule_base import non_negative as _non_negative
from lrtool.schedule_base import positive as _positive

# --------------------------------------------------------------------------------------------
# Factories. Each docstring holds the closed form, the defaults and the library it matches.
# --------------------------------------------------------------------------------------------


def constant(lr: float) -> Schedule:
    """``lr`` at every step.

    >>> constant(0.1)(1000)
    0.1
    """
    _non_negative("constant", "lr", lr)
    return Schedule("constant", lambda t: lr)


def power(lr: float, s: float, c: float = 1.0) -> Schedule:
    """Power scheduling: ``lr / (1 + t/s)^c``.

    c = 1 equals Keras ``InverseTimeDecay(lr, decay_steps=s, decay_rate=1)``; c = 0.5 is the
    shape of Hugging Face ``inverse_sqrt``. The LR halves (c = 1) after s steps.

    >>> round(power(0.01, s=20)(20), 6)
    0.005
    """
    _non_negative("power", "lr", lr)
    _positive("power", "s", s)
    _non_negative("power", "c", c)

    def value(t: int) -> float:
        try:
            return lr / (1.0 + t / s) ** c
        except OverflowError:  # (1 + t/s)^c past 1e308: the LR has decayed to nothing
            return 0.0

    return Schedule("power", value)


def exponential(lr: float, s: float, base: float = 0.1, staircase: bool = False) -> Schedule:
    """Exponential scheduling: ``lr * base^(t/s)`` (``floor(t/s)`` with ``staircase``).

    With base = 0.1 the LR drops tenfold every s steps. Equals Keras
    ``ExponentialDecay(lr, decay_steps=s, decay_rate=base, staircase)`` and torch
    ``ExponentialLR(gamma=base ** (1/s))``.

    >>> round(exponential(0.01, s=20)(20), 6)
    0.001
    """
    _non_negative("exponential", "lr", lr)
    _positive("exponential", "s", s)
    _positive("exponential", "base", base)
    if staircase:
        return Schedule("exponential", lambda t: lr * base ** math.floor(t / s))
    return Schedule("exponential", lambda t: lr * base ** (t / s))


def step(lr: float, step_size: int, factor: float = 0.1) -> Schedule:
    """Step decay: ``lr * factor^floor(t / step_size)``. Equals torch ``StepLR(gamma=factor)``.

    >>> step(1.0, step_size=10, factor=0.5)(25)
    0.25
    """
    _non_negative("step", "lr", lr)
    _check(step_size >= 1, "step", f"step_size must be >= 1, got step_size={step_size!r}")
    _decay_factor("step", "factor", factor)
    return Schedule("step", lambda t: lr * factor ** (t // step_size))


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
        _check(
            milestones is None and lr is None,
            name,
            "give either boundaries+values (absolute LRs) or lr+milestones, not both",
        )
        _check(
            boundaries is not None and values is not None,
            name,
            "boundaries and values go together",
        )
        assert boundaries is not None and values is not None
        bounds, vals = list(boundaries), [float(v) for v in values]
        _check(
            len(vals) == len(bounds) + 1,
            name,
            f"len(values) must be len(boundaries) + 1, got {len(vals)} values for "
            f"{len(bounds)} boundaries",
        )
        _check(
            all(b < a for b, a in zip(bounds, bounds[1:], strict=False)),
            name,
            f"boundaries must be strictly increasing, got boundaries={bounds}",
        )
        _check(all(v >= 0 for v in vals), name, f"values must be >= 0, got values={vals}")
        return Schedule(name, lambda t: vals[bisect.bisect_left(bounds, t)])
    _check(lr is not None, name, "needs lr and milestones, or boundaries and values")
    _check(milestones is not None, name, "needs milestones (or boundaries and values)")
    assert lr is not None and milestones is not None
    _non_negative(name, "lr", lr)
    marks = list(milestones)
    _check(
        all(b <= a for b, a in zip(marks, marks[1:], strict=False)),
        name,
        f"milestones must be increasing, got milestones={marks}",
    )
    _decay_factor(name, "factor", factor)
    return Schedule(name, lambda t: lr * factor ** bisect.bisect_right(marks, t))


def onecycle(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: Literal["cos", "linear"] = "cos",
    three_phase: bool = False,
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    pct_final: float | None = None,
) -> Schedule:
    """1cycle: warm up from ``max_lr/div_factor`` to ``max_lr``, then anneal far below the start.

    With ``pct_final`` (optax's ``linear_onecycle_schedule``/``cosine_onecycle_schedule``):
    three phases ending at ``p*T - 1`` (up to ``max_lr``), ``pct_final*T - 1`` (back down to
    the start) and ``T - 1`` (down to the final value): the last phase's length is its own.

    Phase ends (floats, T = total_steps, p = pct_start): two-phase ``p*T - 1`` and ``T - 1``;
    three-phase ``p*T - 1``, ``2*p*T - 2`` and ``T - 1``. Inside a phase running from a to b,
    with progress q: cos ``b + (a - b)/2 * (1 + cos(pi*q))``, linear ``a + (b - a)*q``. The last
    value is ``max_lr / (div_factor * final_div_factor)``. Momentum moves the other way, between
    ``max_momentum`` and ``base_momentum`` (beta1 for Adam-style optimizers).

    Equals torch ``OneCycleLR`` (both anneals, two and three phases, momentum) on steps
    0..T-1. Deliberate difference: at t >= T torch extrapolates (linear even goes negative at
    t = T) or raises; lrtool holds the final value. A phase of zero length (e.g. T = 2,
    pct_start = 0.5, where torch divides by zero) jumps to its end value.

    >>> [round(onecycle(1.0, total_steps=10)(t), 6) for t in (0, 2, 9)]
    [0.04, 1.0, 4e-06]
    """
    name = "onecycle"
    _positive(name, "max_lr", max_lr)
    _check(total_steps >= 2, name, f"total_steps must be >= 2, got total_steps={total_steps!r}")
    _check(0 < pct_start < 1, name, f"pct_start must be in (0, 1), got pct_start={pct_start!r}")
    _check(div_factor > 0, name, f"div_factor must be > 0, got div_factor={div_factor!r}")
    _positive(name, "final_div_factor", final_div_factor)
    _check(anneal in ("cos", "linear"), name, f"anneal must be cos or linear, got {anneal!r}")
    _check(
        0 <= base_momentum <= max_momentum < 1,
        name,
        "needs 0 <= base_momentum <= max_momentum < 1, got "
        f"base_momentum={base_momentum!r}, max_momentum={max_momentum!r}",
    )
    _check(
        pct_final is None or (pct_start < pct_final < 1 and not three_phase),
        name,
        f"pct_final must be in (pct_start, 1) and not used with three_phase, got {pct_final!r}",
    )
    initial = max_lr / div_factor
    final = initial / final_div_factor
    T = total_steps
    if pct_final is not None:
        phases = [
            (pct_start * T - 1, initial, max_lr, max_momentum, base_momentum),
            (pct_final * T - 1, max_lr, initial, base_momentum, max_momentum),
            (T - 1, initial, final, max_momentum, max_momentum),
        ]
    elif three_phase:
        phases = [
            (pct_start * T - 1, initial, max_lr, max_momentum, base_momentum),
            (2 * pct_start * T - 2, max_lr, initial, base_momentum, max_momentum),
            (T - 1, initial, final, max_momentum, max_momentum),
        ]
    else:
        phases = [
            (pct_start * T - 1, initial, max_lr, max_momentum, base_momentum),
            (T - 1, max_lr, final, base_momentum, max_momentum),
        ]
    interpolate = _anneal_cos if anneal == "cos" else _anneal_linear

    def at(t: int, lr_value: bool) -> float:
        t = min(t, T - 1)
        start = 0.0
        for i, (end, lr_a, lr_b, mom_a, mom_b) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                q = (t - start) / (end - start) if end > start else 1.0
                return interpolate(lr_a, lr_b, q) if lr_value else interpolate(mom_a, mom_b, q)
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    momentum_fn = (lambda t: at(t, False)) if cycle_momentum else None
    return Schedule(name, lambda t: at(t, True), momentum_fn, total_steps=T)


def geron(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.45,
    pct_final: float = 0.9,
    div_factor: float = 10.0,
    final_div_factor: float = 1000.0,
) -> Schedule:
    """Geron's 1cycle (Hands-On Machine Learning): linear from ``max_lr/div_factor`` up to
    ``max_lr`` over the first ``pct_start`` of the run, linear back down by ``pct_final``,
    then linear down by ``final_div_factor`` more over the last steps; no momentum cycling.
    It is :func:`onecycle` with ``anneal="linear"``, ``pct_final`` and
    ``cycle_momentum=False``.

    >>> [round(geron(1.0, total_steps=100)(t), 4) for t in (0, 44, 89, 99)]
    [0.1, 1.0, 0.1, 0.0001]
    """
    built = onecycle(
        max_lr, total_steps, pct_start, div_factor, final_div_factor, "linear",
        cycle_momentum=False, pct_final=pct_final,
    )  # fmt: skip
    built.name = "geron"
    return built


def tanh(
    lr: float, total_steps: int, lb: float = -7.0, ub: float = 3.0, min_lr: float = 0.0
) -> Schedule:
    """Hyperbolic-tangent decay (timm ``TanhLRScheduler``): ``min_lr + (lr - min_lr) *
    (1 - tanh(lb + (ub - lb) * t/T)) / 2``, flat near ``lr`` early, then a smooth drop.

    >>> round(tanh(1.0, total_steps=10)(0), 6)
    0.999999
    """
    name = "tanh"
    _non_negative(name, "lr", lr)
    _check(total_steps >= 1, name, f"total_steps must be >= 1, got {total_steps!r}")
    _check(lb < ub, name, f"lb must be below ub, got lb={lb!r}, ub={ub!r}")
    _check(0 <= min_lr <= lr, name, f"min_lr must be in [0, lr], got min_lr={min_lr!r}")

    def lr_at(t: int) -> float:
        q = min(t, total_steps) / total_steps
        return min_lr + 0.5 * (lr - min_lr) * (1 - math.tanh(lb * (1.0 - q) + ub * q))

    return Schedule(name, lr_at, total_steps=total_steps)


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
    _non_negative(name, "lr", lr)
    bounds = [int(b) for b in boundaries]
    factors = [float(f) for f in scales]
    _check(len(bounds) == len(factors) >= 1, name, "needs as many scales as boundaries (>= 1)")
    _check(
        all(a < b for a, b in zip([0, *bounds], bounds, strict=False)),
        name,
        f"boundaries must increase from above 0, got {bounds}",
    )
    _check(all(0 <= f <= 1 for f in factors), name, f"scales must be in [0, 1], got {factors}")
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


def _anneal_cos(start: float, end: float, q: float) -> float:
    # Written exactly as torch writes it, so values agree to the last bits.
    return end + (start - end) / 2.0 * (math.cos(math.pi * q) + 1)


def _anneal_linear(start: float, end: float, q: float) -> float:
    return (end - start) * q + start


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
    _non_negative(name, "lr", lr)
    _check(total_steps >= 1, name, f"total_steps must be >= 1, got {total_steps!r}")
    _check(0 <= eta_min <= lr, name, f"eta_min must be in [0, lr], got eta_min={eta_min!r}")
    _check(num_cycles > 0, name, f"num_cycles must be > 0, got num_cycles={num_cycles!r}")
    _check(0 <= min_lr_rate <= 1, name, f"min_lr_rate must be in [0, 1], got {min_lr_rate!r}")
    _check(
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
    _non_negative(name, "lr", lr)
    _check(T_0 >= 1, name, f"T_0 must be >= 1, got T_0={T_0!r}")
    _check(T_mult >= 1, name, f"T_mult must be an integer >= 1, got T_mult={T_mult!r}")
    _check(0 <= eta_min <= lr, name, f"eta_min must be in [0, lr], got eta_min={eta_min!r}")
    _check(0 < cycle_decay <= 1, name, f"cycle_decay must be in (0, 1], got {cycle_decay!r}")

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


def polynomial(lr: float, total_steps: int, power: float = 1.0, end_lr: float = 0.0) -> Schedule:
    """Polynomial decay: ``(lr - end_lr) * (1 - min(t, T)/T)^power + end_lr``.

    Equals torch ``PolynomialLR(total_iters=T, power)`` (end_lr = 0), Keras ``PolynomialDecay``
    and optax ``polynomial_schedule``.

    >>> polynomial(1.0, total_steps=4, power=2.0)(1)
    0.5625
    """
    name = "polynomial"
    _non_negative(name, "lr", lr)
    _check(total_steps >= 1, name, f"total_steps must be >= 1, got {total_steps!r}")
    _non_negative(name, "power", power)
    _check(0 <= end_lr <= lr, name, f"end_lr must be in [0, lr], got end_lr={end_lr!r}")
    return Schedule(
        name,
        lambda t: (lr - end_lr) * (1 - min(t, total_steps) / total_steps) ** power + end_lr,
        total_steps=total_steps,
    )


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
    _non_negative(name, "lr", lr)
    _check(total_steps >= 1, name, f"total_steps must be >= 1, got {total_steps!r}")
    _non_negative(name, "start_factor", start_factor)
    _non_negative(name, "end_factor", end_factor)
    return Schedule(
        name,
        lambda t: (
            lr * (start_factor + (end_factor - start_factor) * min(t, total_steps) / total_steps)
        ),
        total_steps=total_steps,
    )


def cyclic(
    lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    """Cyclical LR between ``lr`` and ``max_lr`` (Smith's CLR).

    With L = up + down, cycle c = floor(1 + t/L), x = 1 + t/L - c, r = up/L and
    s = x/r if x <= r else (x-1)/(r-1): ``lr + (max_lr - lr) * s * f``, where f = 1
    (triangular), 2^-(c-1) (triangular2) or gamma^t (exp_range). Momentum runs the other way:
    ``max_momentum - (max_momentum - base_momentum) * s * f``. Equals torch ``CyclicLR``.

    >>> cyclic(0.1, 1.0, step_size_up=2)(1)
    0.55
    """
    name = "cyclic"
    _non_negative(name, "lr", lr)
    _check(max_lr >= lr, name, f"max_lr must be >= lr, got lr={lr!r}, max_lr={max_lr!r}")
    _check(step_size_up >= 1, name, f"step_size_up must be >= 1, got {step_size_up!r}")
    down = step_size_up if step_size_down is None else step_size_down
    _check(down >= 1, name, f"step_size_down must be >= 1, got {step_size_down!r}")
    modes = ("triangular", "triangular2", "exp_range")
    _check(mode in modes, name, f"mode must be one of {', '.join(modes)}, got {mode!r}")
    _positive(name, "gamma", gamma)
    _check(
        0 <= base_momentum <= max_momentum < 1,
        name,
        "needs 0 <= base_momentum <= max_momentum < 1",
    )
    total = float(step_size_up + down)
    ratio = step_size_up / total

    def shape(t: int) -> float:
        cycle = math.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        if mode == "triangular":
            return scale
        if mode == "triangular2":
            return scale * 0.5 ** (cycle - 1)  # underflows to 0, where 2**n would overflow
        return scale * gamma**t

    def momentum_at(t: int) -> float:
        return max_momentum - (max_momentum - base_momentum) * shape(t)

    return Schedule(
        name,
        lambda t: lr + (max_lr - lr) * shape(t),
        momentum_at if cycle_momentum else None,
    )


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
    _non_negative(name, "lr", lr)
    _check(total_steps >= 1, name, f"total_steps must be >= 1, got {total_steps!r}")
    D = max(1, round(0.1 * total_steps)) if decay_steps is None else decay_steps
    _check(1 <= D <= total_steps, name, f"decay_steps must be in [1, total_steps], got {D!r}")
    kinds = ("cosine", "linear", "1-sqrt")
    _check(decay in kinds, name, f"decay must be one of {', '.join(kinds)}, got {decay!r}")
    _check(0 <= min_lr <= lr, name, f"min_lr must be in [0, lr], got min_lr={min_lr!r}")
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


def join(parts: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Built schedules one after another: ``parts[i]`` at step ``t - boundaries[i-1]`` for
    ``i = #(boundaries <= t)`` (``boundaries[-1]`` read as 0). Each part counts its own steps
    from 0, as in optax ``join_schedules`` and torch ``SequentialLR``. Momentum is cycled when
    every part cycles it.

    >>> join([constant(1.0), constant(0.5)], [10])(10)
    0.5
    """
    bounds = list(boundaries)
    pieces = list(parts)
    _check(len(pieces) == len(bounds) + 1, "sequential", "needs one boundary fewer than schedules")

    def where(t: int) -> tuple[Schedule, int]:
        i = bisect.bisect_right(bounds, t)
        return pieces[i], t - (bounds[i - 1] if i else 0)

    def lr_at(t: int) -> float:
        part, local = where(t)
        return part(local)

    def momentum_at(t: int) -> float:
        part, local = where(t)
        value = part.momentum(local)
        assert value is not None  # every part cycles momentum (checked below)
        return value

    cycles = all(part.has_momentum for part in pieces)
    return Schedule("sequential", lr_at, momentum_at if cycles else None)


def sequential(
    schedules: Sequence[dict[str, Any]],
    boundaries: Sequence[int] | None = None,
    lr: float | None = None,
    total_steps: int | None = None,
) -> Schedule:
    """Schedules one after another: part ``i`` runs at step ``t - boundaries[i-1]`` where
    ``boundaries[i-1] <= t < boundaries[i]``; each part counts its own steps from 0.

    Equals torch ``SequentialLR(schedulers, milestones=boundaries)`` and optax
    ``join_schedules(schedules, boundaries)``. Each part is a schedule written as in a config
    (``{name: cosine, eta_min: 0.001}``), with any of its parameters. A part that gives no LR
    takes ``lr``; a part that needs ``total_steps`` and does not give it runs the length of
    its segment (the last one: ``total_steps - boundaries[-1]``). Without ``boundaries``, the
    parts but the last give their lengths with ``total_steps`` (or ``epochs``). Plateau, which
    needs a validation metric, cannot be a part. On the command line, ``--set
    schedules.1.eta_min=0.001`` sets a parameter of the second part (counting from 0).
    Default (with a run length): a linear warm-up from lr/10 over 10% of T, then cosine.

    >>> s = sequential([{"name": "constant", "lr": 1.0}, {"name": "constant", "lr": 0.5}], [3])
    >>> [s(t) for t in (2, 3)]
    [1.0, 0.5]
    """
    name = "sequential"
    parts = [dict(part) for part in schedules]
    _check(len(parts) >= 1, name, "schedules must list at least one schedule")
    if boundaries is None:
        lengths = [part.get("total_steps") for part in parts[:-1]]
        _check(
            all(isinstance(n, int) and n >= 1 for n in lengths),
            name,
            "set boundaries (the step each part after the first starts at), or total_steps "
            "in every part but the last",
        )
        bounds = list(itertools.accumulate(int(n) for n in lengths))  # type: ignore[arg-type]
    else:
        bounds = list(boundaries)
    _check(
        len(bounds) == len(parts) - 1,
        name,
        f"needs one boundary fewer than schedules, got {len(bounds)} boundaries for "
        f"{len(parts)} schedules",
    )
    _check(
        all(b < a for b, a in zip(bounds, bounds[1:], strict=False)),
        name,
        f"boundaries must be strictly increasing, got boundaries={bounds}",
    )
    if total_steps is not None and bounds:
        _check(
            bounds[-1] < total_steps,
            name,
            f"the last boundary ({bounds[-1]}) must be below total_steps ({total_steps})",
        )
    starts = [0, *bounds]
    ends: list[int | None] = [*bounds, total_steps]
    built = []
    for i, part in enumerate(parts):
        kind = part.pop("name")
        spec = get_spec(kind)
        _check(
            not spec.stateful,
            name,
            f"part {i} ({kind}) needs a validation metric and cannot be a part",
        )
        if lr is not None and not spec.has_lr(part):
            part[spec.lr_param] = lr
        end = ends[i]
        if (
            "total_steps" in spec.param_names
            and part.get("total_steps") is None
            and end is not None
        ):
            part["total_steps"] = end - starts[i]
        try:
            built.append(build_schedule(kind, part))
        except LrtoolError as exc:
            detail = exc.message.removeprefix(f"schedule '{kind}': ")
            raise LrtoolError(
                f"schedule '{name}': part {i} ({kind}): {detail}", exc.exit_code
            ) from None
    return join(built, bounds)


def _default_parts(T: int | None, values: dict[str, Any]) -> list[dict[str, Any]] | None:
    """sequential's default: a linear warm-up from lr/10 over 10% of T, then cosine (a
    one-step run: the cosine alone)."""
    if T is None:
        return None
    T -= values.get("warmup_steps") or 0  # the parts run after any warm-up
    if T < 2:
        return [{"name": "cosine"}]
    return [
        {"name": "linear", "start_factor": 0.1, "end_factor": 1.0, "total_steps": max(1, T // 10)},
        {"name": "cosine"},
    ]


def with_warmup(schedule: Schedule, warmup_steps: int, warmup_start_lr: float = 0.0) -> Schedule:
    """Prefix ``schedule`` with a linear warm-up.

    For t < W: ``warmup_start_lr + (schedule(0) - warmup_start_lr) * t / W``; afterwards
    ``schedule(t - W)``. With the default start of 0 it equals Hugging Face's warm-up factor
    ``t / W``.

    >>> with_warmup(constant(1.0), warmup_steps=4)(1)
    0.25
    """
    _check(warmup_steps >= 0, schedule.name, f"warmup_steps must be >= 0, got {warmup_steps!r}")
    _non_negative(schedule.name, "warmup_start_lr", warmup_start_lr)
    if warmup_steps == 0:
        return schedule
    W = warmup_steps
    target = schedule(0)
    inner_lr, inner_mom = schedule.lr_fn, schedule.momentum_fn

    def lr_at(t: int) -> float:
        if t < W:
            return warmup_start_lr + (target - warmup_start_lr) * t / W
        return inner_lr(t - W)

    momentum_fn = None
    if inner_mom is not None:
        momentum_fn = lambda t: inner_mom(max(0, t - W))  # noqa: E731
    total = None if schedule.total_steps is None else schedule.total_steps + W
    return Schedule(schedule.name, lr_at, momentum_fn, total, schedule.params)


# --------------------------------------------------------------------------------------------
# Registry: names, parameters, defaults and a one-line formula for every schedule.
# --------------------------------------------------------------------------------------------

REQUIRED: Any = object()  # marks a parameter without a default


@dataclass(frozen=True)
class Param:
    """One schedule parameter, read off the factory's signature (name, kind, default,
    choices) plus the help text its declaration gives."""

    name: str
    kind: str  # float | int | bool | str | floats | ints | schedules
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def shown_default(self) -> str:
        if self.required:
            return "required"
        if self.default is None:
            return "-"
        return str(self.default)


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """``(kind, choices)`` of a factory parameter's type hint."""
    if get_origin(annotation) is Literal:
        return "str", tuple(get_args(annotation))
    if annotation is dict or get_origin(annotation) is dict:
        return "schedule", ()  # a part of sequential: {name: ..., parameters}
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _kind(inner[0])
    if get_origin(annotation) in (Sequence, list, tuple, collections.abc.Sequence):
        (item,) = get_args(annotation)[:1]
        return _kind(item)[0] + "s", ()
    names = {float: "float", int: "int", bool: "bool", str: "str"}
    if annotation not in names:
        raise TypeError(f"no parameter kind for the type hint {annotation!r}")
    return names[annotation], ()


Derive = Callable[[int | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule's declaration: its factory, and what the signature cannot say.

    Parameter names, kinds, defaults and choices (``Literal`` hints) come from the factory's
    signature; ``help`` gives each parameter's one-line help (a test checks that the two
    agree: every parameter has help, and every help names a parameter). ``derived`` fills an
    unset parameter from the run length T and the other values (``None``: cannot), so every
    schedule works with only an LR and a budget; a derived parameter shows ``-`` as its
    default. ``with_total_steps`` adds an optional ``total_steps`` for factories that do not
    take it (it is only used to derive defaults).
    """

    name: str
    factory: Callable[..., Schedule]
    help: dict[str, str]
    formula: str
    matches: str
    lr_param: str = "lr"  # what --lr sets
    derived: dict[str, Derive] = field(default_factory=dict)
    with_total_steps: bool = False
    stateful: bool = False  # fed a validation metric after each evaluation (plateau)
    doc: str = ""  # overrides the factory's docstring where the factory is shared
    # Parameters that give the LR instead of lr_param (piecewise's absolute values).
    lr_alternatives: tuple[str, ...] = ()
    # Valid values, checked by build_schedule and shown in the docs: "> 0", ">= 1", "(0, 1]",
    # "[0, lr]" (a bound may name another parameter; "@lr" is the schedule's LR parameter).
    ranges: dict[str, str] = field(default_factory=dict)

    def valid(self, name: str) -> str:
        """The declared range of a parameter ('' when any value of its kind is valid)."""
        text = self.ranges.get(name) or DEFAULT_RANGES.get(name, "")
        return text.replace("@lr", self.lr_param)

    @functools.cached_property
    def params(self) -> tuple[Param, ...]:
        hints = get_type_hints(self.factory)
        out = []
        for p in inspect.signature(self.factory).parameters.values():
            kind, choices = _kind(hints[p.name])
            if p.name in self.derived:
                default = None
            else:
                default = REQUIRED if p.default is inspect.Parameter.empty else p.default
            out.append(Param(p.name, kind, default, self.help.get(p.name, ""), choices))
        if self.with_total_steps:
            out.append(Param("total_steps", "int", None, self.help.get("total_steps", "")))
        return tuple(out)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params] + list(WARMUP_PARAMS) + [EPOCHS_PARAM.name]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        return EPOCHS_PARAM if name == EPOCHS_PARAM.name else WARMUP_PARAMS[name]

    @property
    def description(self) -> str:
        """The factory's docstring up to its doctest examples: closed form, semantics, defaults."""
        if self.doc:
            return self.doc
        text = inspect.cleandoc(self.factory.__doc__ or "")
        return text.split(">>>")[0].strip()

    @property
    def uses_total_steps(self) -> bool:
        return any(p.name == "total_steps" for p in self.params)

    def has_lr(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` already set this schedule's LR (its lr_param or an alternative;
        for sequential, every part its own)."""
        if any(params.get(k) is not None for k in (self.lr_param, *self.lr_alternatives)):
            return True
        for p in self.params:
            parts = params.get(p.name) if p.kind == "schedules" else None
            if isinstance(parts, list) and parts:
                return all(
                    isinstance(part, dict)
                    and part.get("name") in SCHEDULES
                    and SCHEDULES[part["name"]].has_lr(part)
                    for part in parts
                )
        return False

    @property
    def suggestion_key(self) -> str:
        """Which range-test suggestion sets the LR: the 1cycle peak for schedules whose LR
        parameter is a peak (``max_lr``), else the constant LR."""
        return "onecycle_max_lr" if self.lr_param == "max_lr" else "lr"

    def build(self, values: dict[str, Any]) -> Schedule:
        """Call the factory with ``values`` (validated, defaults derived); unset optional
        parameters take the factory's own defaults."""
        kwargs = {k: v for k, v in values.items() if v is not None}
        if self.with_total_steps:
            total = kwargs.pop("total_steps", None)
            built = self.factory(**kwargs)
            built.total_steps = total
            return built
        return self.factory(**kwargs)


# Ranges every schedule shares (its own declaration may narrow them).
DEFAULT_RANGES = {
    "lr": "[0, 1e9]",
    "max_lr": "(0, 1e9]",
    "total_steps": ">= 1",
    "warmup_steps": ">= 0",
    "warmup_start_lr": "[0, @lr]",
    "eta_min": "[0, lr]",
    "min_lr": "[0, lr]",
    "end_lr": "[0, lr]",
    "factor": "(0, 1]",
    "s": "> 0",
    "base_momentum": "[0, max_momentum]",
    "max_momentum": "[0, 1)",
}


def check_range(schedule: str, name: str, value: Any, text: str, values: dict[str, Any]) -> None:
    """Refuse ``value`` outside ``text`` (see :attr:`ScheduleSpec.ranges`), naming it."""
    if not text or value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_range(schedule, name, item, text, values)
        return
    low, high, low_open, high_open = _parse_range(text, values)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        shown = text
        for other in values:
            if other in text and values.get(other) is not None and other != name:
                shown = text.replace(other, f"{other}={values[other]:g}")
        raise usage_error(f"schedule '{schedule}': {name} must be in {shown}, got {value!r}")


def _parse_range(
    text: str, values: dict[str, Any]
) -> tuple[float | None, float | None, bool, bool]:
    """``(low, high, low open, high open)``; a bound naming an unset parameter is None."""

    def bound(token: str) -> float | None:
        token = token.strip()
        if token in values or token.isidentifier():
            found = values.get(token)
            return None if found is None else float(found)
        return float(token)

    text = text.strip()
    for op in (">=", "<=", ">", "<"):
        if text.startswith(op):
            edge = bound(text[len(op) :])
            if op.startswith(">"):
                return edge, None, op == ">", False
            return None, edge, False, op == "<"
    low_text, high_text = text[1:-1].split(",")
    return bound(low_text), bound(high_text), text[0] == "(", text[-1] == ")"


WARMUP_PARAMS = {
    "warmup_steps": Param("warmup_steps", "int", 0, "linear warm-up steps before the schedule"),
    "warmup_start_lr": Param("warmup_start_lr", "float", 0.0, "LR at the first warm-up step"),
}

# Any schedule's run length in epochs (in_steps turns it into total_steps).
EPOCHS_PARAM = Param(
    "epochs", "float", None, "run length in epochs: total_steps = epochs x steps_per_epoch"
)

# Parameters counted in optimizer steps: each also takes a length in epochs ("2ep", "2 epochs").
STEP_PARAMS = frozenset(
    {"total_steps", "s", "step_size", "boundaries", "milestones", "T_0", "warmup_steps",
     "decay_steps", "step_size_up", "step_size_down"}
)  # fmt: skip
_EPOCHS = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:ep|epochs?)\s*$", re.IGNORECASE
)

LR_HELP = "base (starting) LR"
T_HELP = "length of the run in optimizer steps"
T_OPT_HELP = "run length, used for the defaults marked '-'"


SCHEDULES: dict[str, ScheduleSpec] = {
    spec.name: spec
    for spec in [
        ScheduleSpec(
            "constant", constant, {"lr": LR_HELP, "total_steps": T_OPT_HELP}, "lr",
            "every library", with_total_steps=True,
        ),
        ScheduleSpec(
            "power",
            power,
            {"lr": LR_HELP, "s": "steps until lr/2^c (default T/10)", "c": "power",
             "total_steps": T_OPT_HELP},
            "lr / (1 + t/s)^c",
            "Keras InverseTimeDecay (c=1), HF inverse_sqrt (c=0.5)",
            derived={"s": lambda T, v: None if T is None else max(1.0, T / 10)},
            with_total_steps=True,
            ranges={"c": ">= 0"},
        ),
        ScheduleSpec(
            "exponential",
            exponential,
            {"lr": LR_HELP, "s": "steps per factor `base` (default T/2)",
             "base": "factor per s steps", "staircase": "floor(t/s)", "total_steps": T_OPT_HELP},
            "lr * base^(t/s)",
            "Keras ExponentialDecay, torch ExponentialLR(gamma=base^(1/s))",
            derived={"s": lambda T, v: None if T is None else max(1.0, T / 2)},
            with_total_steps=True,
            ranges={"base": "(0, 1]"},
        ),
        ScheduleSpec(
            "step",
            step,
            {"lr": LR_HELP, "step_size": "steps between cuts (default T/3)",
             "factor": "multiplier at each cut", "total_steps": T_OPT_HELP},
            "lr * factor^floor(t/step_size)",
            "torch StepLR",
            derived={"step_size": lambda T, v: None if T is None else max(1, T // 3)},
            with_total_steps=True,
            ranges={"step_size": ">= 1"},
        ),
        ScheduleSpec(
            "piecewise",
            piecewise,
            {"lr": "base LR (with milestones)",
             "boundaries": "steps where the LR changes (with values)",
             "values": "absolute LRs, one more than boundaries",
             "milestones": "steps where lr is cut (default 50%, 75% of T)",
             "factor": "multiplier at each milestone", "total_steps": T_OPT_HELP},
            "values[i] for b[i-1] < t <= b[i]  |  lr * factor^#(milestones <= t)",
            "Keras PiecewiseConstantDecay, torch MultiStepLR",
            derived={
                "milestones": lambda T, v: None
                if T is None or v.get("boundaries") is not None
                else [max(1, T // 2), max(2, 3 * T // 4)]
            },
            with_total_steps=True,
            lr_alternatives=("values",),
            ranges={"values": "[0, 1e9]", "boundaries": ">= 0", "milestones": ">= 0"},
        ),
        ScheduleSpec(
            "plateau",
            plateau,
            {"lr": LR_HELP, "factor": "multiplier at each cut",
             "patience": "bad evaluations tolerated before a cut",
             "threshold": "smallest change that counts as better",
             "threshold_mode": "rel or abs", "cooldown": "evaluations to wait after a cut",
             "min_lr": "lower bound", "mode": "auto (from monitor), min or max",
             "eps": "smallest cut that is applied",
             "monitor": "what train/compare feed it: val_loss (default), val_accuracy, train_loss",
             "total_steps": T_OPT_HELP},
            "lr * factor^(cuts), a cut after patience+1 evaluations without improvement",
            "torch ReduceLROnPlateau",
            stateful=True,
            ranges={"factor": "(0, 1)", "patience": ">= 0", "threshold": ">= 0", "cooldown": ">= 0", "eps": ">= 0"},
        ),
        ScheduleSpec(
            "onecycle",
            onecycle,
            {"max_lr": "peak LR", "total_steps": T_HELP,
             "pct_start": "share of steps spent warming up",
             "div_factor": "start = max_lr / div_factor",
             "final_div_factor": "end = start / final_div_factor", "anneal": "cos or linear",
             "three_phase": "Smith's symmetric cycle + annihilation",
             "cycle_momentum": "cycle momentum (beta1) inversely",
             "base_momentum": "momentum at the LR peak", "max_momentum": "momentum at the ends",
             "pct_final": "share of steps before the final drop (optax; default: none)"},
            "max_lr/div -> max_lr -> max_lr/(div*final_div), momentum inverse",
            "torch OneCycleLR, optax *_onecycle_schedule (pct_final)",
            lr_param="max_lr",
            ranges={"pct_start": "(0, 1)", "div_factor": "[1, 1e12]", "final_div_factor": "[1, 1e12]",
                    "pct_final": "(pct_start, 1)"},
        ),
        ScheduleSpec(
            "geron",
            geron,
            {"max_lr": "peak LR", "total_steps": T_HELP,
             "pct_start": "share of steps rising to max_lr", "pct_final": "share before the final drop",
             "div_factor": "start = max_lr / div_factor", "final_div_factor": "end = start / final_div_factor"},
            "linear max_lr/div -> max_lr -> max_lr/div, then / final_div_factor",
            "Geron, Hands-On ML (1cycle); optax linear_onecycle_schedule",
            lr_param="max_lr",
            ranges={"pct_start": "(0, 1)", "pct_final": "(pct_start, 1)", "div_factor": "[1, 1e12]",
                    "final_div_factor": "[1, 1e12]"},
        ),
        ScheduleSpec(
            "tanh",
            tanh,
            {"lr": LR_HELP, "total_steps": T_HELP, "lb": "tanh argument at t=0",
             "ub": "tanh argument at t=T", "min_lr": "final floor"},
            "min_lr + (lr - min_lr) * (1 - tanh(lb + (ub - lb) t/T)) / 2",
            "timm TanhLRScheduler",
            ranges={"lb": "< ub"},
        ),
        ScheduleSpec(
            "piecewise_interpolate",
            piecewise_interpolate,
            {"lr": LR_HELP, "boundaries": "steps where the next scale is reached (default 50%, 75% of T)",
             "scales": "LR multipliers, one per boundary", "interpolate": "linear or cosine",
             "total_steps": T_OPT_HELP},
            "lr * prod(scales[:i]) at boundaries[i], interpolated",
            "optax piecewise_interpolate_schedule",
            with_total_steps=True,
            derived={
                "boundaries": lambda T, v: None if T is None else [max(1, T // 2), max(2, 3 * T // 4)]
            },
            ranges={"boundaries": ">= 1", "scales": "[0, 1]"},
        ),
        ScheduleSpec(
            "cosine",
            cosine,
            {"lr": LR_HELP, "total_steps": T_HELP, "eta_min": "final LR (torch)",
             "num_cycles": "cosine waves over T: 0.5 is one half-wave down (HF)",
             "min_lr_rate": "floor as a share of lr (HF cosine_with_min_lr)"},
            "eta_min + (lr - eta_min) * (1 + cos(pi*t/T)) / 2",
            "torch CosineAnnealingLR, Keras CosineDecay",
            ranges={"num_cycles": "> 0", "min_lr_rate": "[0, 1]"},
        ),
        ScheduleSpec(
            "cosine_restarts",
            cosine_restarts,
            {"lr": LR_HELP, "T_0": "first period (default T/4)", "T_mult": "period growth factor",
             "eta_min": "LR at the end of each period",
             "cycle_decay": "each restart's peak times this (timm cycle_decay, Keras m_mul)",
             "total_steps": T_OPT_HELP},
            "cosine over periods T_0, T_0*T_mult, ... restarting at lr",
            "torch CosineAnnealingWarmRestarts (SGDR)",
            derived={"T_0": lambda T, v: None if T is None else max(1, T // 4)},
            with_total_steps=True,
            ranges={"T_0": ">= 1", "T_mult": ">= 1", "cycle_decay": "(0, 1]"},
        ),
        ScheduleSpec(
            "polynomial",
            polynomial,
            {"lr": LR_HELP, "total_steps": T_HELP, "power": "exponent", "end_lr": "final LR"},
            "(lr - end_lr) * (1 - t/T)^power + end_lr",
            "torch PolynomialLR, Keras PolynomialDecay, optax",
            ranges={"power": ">= 0"},
        ),
        ScheduleSpec(
            "linear",
            linear,
            {"lr": LR_HELP, "total_steps": T_HELP, "start_factor": "multiplier at t=0",
             "end_factor": "multiplier at t=T"},
            "lr * (start_factor + (end_factor - start_factor) * t/T)",
            "torch LinearLR, HF linear",
            ranges={"start_factor": "[0, 1]", "end_factor": "[0, 1]"},
        ),
        ScheduleSpec(
            "cyclic",
            cyclic,
            {"lr": "lowest LR (default max_lr/4)", "max_lr": "highest LR",
             "step_size_up": "steps from lr to max_lr (default T/4)",
             "step_size_down": "steps back down (default = up)",
             "mode": "triangular, triangular2, exp_range", "gamma": "exp_range decay per step",
             "cycle_momentum": "cycle momentum inversely", "base_momentum": "momentum at max_lr",
             "max_momentum": "momentum at lr", "total_steps": T_OPT_HELP},
            "lr + (max_lr - lr) * triangle(t) * f(cycle)",
            "torch CyclicLR",
            lr_param="max_lr",
            derived={
                "lr": lambda T, v: None if v.get("max_lr") is None else v["max_lr"] / 4,
                "step_size_up": lambda T, v: None if T is None else max(1, T // 4),
            },
            with_total_steps=True,
            ranges={"lr": "[0, max_lr]", "step_size_up": ">= 1", "step_size_down": ">= 1", "gamma": "(0, 1]"},
        ),
        ScheduleSpec(
            "warmup_stable_decay",
            warmup_stable_decay,
            {"lr": LR_HELP, "total_steps": T_HELP,
             "decay_steps": "length of the decay (default T/10)",
             "decay": "cosine, linear, 1-sqrt", "min_lr": "final LR"},
            "warm-up, lr, then decay to min_lr over decay_steps",
            "HF warmup_stable_decay, timm WSD",
            ranges={"decay_steps": ">= 1"},
        ),
        ScheduleSpec(
            "sequential",
            sequential,
            {"schedules": "the parts, each {name: ..., parameters} (default: warm-up, cosine)",
             "boundaries": "steps where each part after the first starts (default: parts' total_steps)",
             "lr": "LR of the parts that give none", "total_steps": "run length; the last part runs to it"},
            "part i at step t - boundaries[i-1], for boundaries[i-1] <= t < boundaries[i]",
            "torch SequentialLR, optax join_schedules",
            derived={"schedules": _default_parts},
            ranges={"boundaries": ">= 1"},
        ),
        ScheduleSpec(
            "warmup",
            constant,
            {"lr": LR_HELP, "total_steps": T_OPT_HELP},
            "warmup_start_lr -> lr linearly over warmup_steps, then lr",
            "HF constant_with_warmup",
            derived={"warmup_steps": lambda T, v: None if T is None else (max(1, T // 10) if T > 1 else 0)},
            with_total_steps=True,
            doc=(
                "A linear warm-up from ``warmup_start_lr`` to ``lr`` over ``warmup_steps``\n"
                "(default 10% of T), then ``lr``: Hugging Face ``constant_with_warmup``. Every\n"
                "other schedule takes the same warm-up parameters; this one is the warm-up alone."
            ),
        ),
    ]
}  # fmt: skip


def schedule_names() -> list[str]:
    return list(SCHEDULES)


def get_spec(name: str) -> ScheduleSpec:
    """The registry entry for ``name``; an error that suggests the closest name otherwise."""
    spec = SCHEDULES.get(name)
    if spec is None:
        raise usage_error(
            f"unknown schedule '{name}'{closest(name, schedule_names())}; "
            f"choose from: {', '.join(schedule_names())}"
        )
    return spec


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (``--set``) into a dict of parsed values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise usage_error(f"--set: expected key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def route_sets(names: Sequence[str], sets: dict[str, Any], what: str) -> dict[str, dict]:
    """Each schedule's parameters from ``--set``: ``name.key=value`` sets one schedule's,
    ``key=value`` every listed schedule's that has it. ``what`` names the list in errors
    (``"plotted"``, ``"compared"``). Every key must reach at least one schedule."""
    routed: dict[str, dict] = {name: {} for name in names}

    def nested(spec_name: str, sub: str) -> bool:  # schedules.1.lr: a part's parameter
        head = sub.split(".")[0]
        spec = get_spec(spec_name)
        return "." in sub and head in spec.param_names and spec.param(head).kind == "schedules"

    for key, value in sets.items():
        owner, dot, sub = key.partition(".")
        if dot and owner not in routed and any(nested(n, key) for n in routed):
            for name in routed:
                if nested(name, key):
                    routed[name][key] = value
            continue
        if dot:
            if owner not in routed:
                raise usage_error(
                    f"--set {key}: schedule '{owner}' is not in the {what} list "
                    f"({', '.join(names)})"
                )
            known = get_spec(owner).param_names
            if sub not in known and not nested(owner, sub):
                raise usage_error(
                    f"--set {key}: schedule '{owner}' has no parameter '{sub}'{closest(sub, known)}"
                )
            routed[owner][sub] = value
            continue
        takers = [n for n in routed if key in get_spec(n).param_names]
        if not takers:
            known = sorted({p for n in names for p in get_spec(n).param_names})
            raise usage_error(
                f"--set {key}: none of the {what} schedules has a parameter '{key}'"
                f"{closest(key, known)}"
            )
        for name in takers:
            routed[name][key] = value
    return routed


def epochs_of(value: Any) -> float | None:
    """The number of epochs a value like ``"2ep"``, ``"2.5 epochs"`` gives (None: not epochs)."""
    if not isinstance(value, str):
        return None
    found = _EPOCHS.match(value)
    return None if found is None else float(found.group(1))


def uses_epochs(name: str, params: dict[str, Any]) -> bool:
    """Whether ``params`` give any length in epochs (``epochs``, or a value like ``"2ep"``),
    in this schedule or in a part of it."""
    for key, value in params.items():
        if key == EPOCHS_PARAM.name and value is not None:
            return True
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if epochs_of(item) is not None:
                return True
            if isinstance(item, dict) and item.get("name") in SCHEDULES:
                if uses_epochs(item["name"], item):
                    return True
    return False


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    """A run length in epochs as optimizer steps: ``round(epochs * steps_per_epoch)``, at
    least 1 (``train.epochs``, ``--epochs``)."""
    return max(1, round(epochs * steps_per_epoch))


def in_steps(name: str, params: dict[str, Any], steps_per_epoch: float | None) -> dict[str, Any]:
    """``params`` with every length given in epochs turned into optimizer steps.

    ``epochs: E`` sets ``total_steps = round(E * steps_per_epoch)``; a step-counted parameter
    (:data:`STEP_PARAMS`: ``s``, ``boundaries``, ``milestones``, ``warmup_steps``...) written
    as ``"Nep"`` or ``"N epochs"`` becomes ``N * steps_per_epoch`` (rounded where the parameter
    is a whole number). Parts of ``sequential`` are converted too. Without
    ``steps_per_epoch``, a length in epochs is an error that says where to give it.

    >>> in_steps("cosine", {"lr": 0.1, "epochs": 3}, steps_per_epoch=100)
    {'lr': 0.1, 'total_steps': 300}
    """
    spec = get_spec(name)
    if not uses_epochs(name, params):
        return params

    def counted(key: str, epochs: float, given: Any) -> int | float:
        if steps_per_epoch is None:
            raise usage_error(
                f"schedule '{name}': {key}={given!r} is in epochs; give steps_per_epoch "
                f"(train.steps_per_epoch, plot --steps-per-epoch, or build_schedule's "
                f"steps_per_epoch)"
            )
        exact = epochs * steps_per_epoch
        kind = spec.param(key).kind if key in spec.param_names else "int"
        return exact if kind == "float" else int(round(exact))

    def steps(key: str, value: Any) -> Any:
        epochs = epochs_of(value)
        return value if epochs is None else counted(key, epochs, value)

    out: dict[str, Any] = {}
    for key, value in params.items():
        head = key.split(".")[0]
        if key == EPOCHS_PARAM.name:
            continue
        if head in STEP_PARAMS:
            if isinstance(value, list | tuple):
                out[key] = [steps(head, item) for item in value]
            else:
                out[key] = steps(head, value)
        elif (
            isinstance(value, list)
            and head in spec.param_names
            and spec.param(head).kind == "schedules"
        ):
            out[key] = [
                {
                    "name": part["name"],
                    **in_steps(
                        part["name"],
                        {k: v for k, v in part.items() if k != "name"},
                        steps_per_epoch,
                    ),
                }
                if isinstance(part, dict) and part.get("name") in SCHEDULES
                else part
                for part in value
            ]
        elif "." in key and key.rsplit(".", 1)[-1] in STEP_PARAMS:  # schedules.1.total_steps
            out[key] = steps(key, value)
        else:
            out[key] = value
    epochs = params.get(EPOCHS_PARAM.name)
    if epochs is not None:
        if params.get("total_steps") is not None:
            raise usage_error(
                f"schedule '{name}': give epochs or total_steps, not both "
                f"(got epochs={epochs!r}, total_steps={params['total_steps']!r})"
            )
        if isinstance(epochs, bool) or not isinstance(epochs, int | float) or not epochs > 0:
            raise usage_error(f"schedule '{name}': epochs must be a number > 0, got {epochs!r}")
        out["total_steps"] = counted("total_steps", float(epochs), f"{epochs}ep")
    return out


def with_part_sets(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``schedules.I.KEY=value`` (``--set``) applied to part I (from 0) of the ``schedules``
    list given in ``params`` (or the default parts, when none is given)."""
    spec = get_spec(name)
    nested = [key for key in params if "." in key]
    if not nested:
        return params
    out = {k: v for k, v in params.items() if "." not in k}
    for key in nested:
        head, _, rest = key.partition(".")
        index_text, _, sub = rest.partition(".")
        if head not in spec.param_names or spec.param(head).kind != "schedules":
            raise usage_error(
                f"schedule '{name}' has no parameter '{key}'{closest(key, spec.param_names)}"
            )
        parts = out.get(head)
        if parts is None and head in spec.derived:
            parts = spec.derived[head](params.get("total_steps"), params)
        if not isinstance(parts, list):
            raise usage_error(f"--set {key}: give {head} first (a list of schedules)")
        if not index_text.isdigit() or int(index_text) >= len(parts) or not sub:
            raise usage_error(
                f"--set {key}: write {head}.I.KEY=value with I from 0 to {len(parts) - 1}"
            )
        parts = [dict(p) if isinstance(p, dict) else p for p in parts]
        target = parts[int(index_text)]
        if not isinstance(target, dict):
            raise usage_error(f"--set {key}: part {index_text} is not a schedule")
        target[sub] = params[key]
        out[head] = parts
    return out


def parse_value(text: str) -> Any:
    """Read a ``--set`` value: numbers, true/false, none, comma or bracketed lists, or text."""
    raw = text.strip()
    if raw.startswith(("[{", "{")):  # parts of sequential: YAML flow, [{name: linear}, ...]
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise usage_error(f"--set: cannot read {raw!r} as YAML ({problem})") from None
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
        return [parse_value(part) for part in raw.split(",") if part.strip()]
    if "," in raw:
        return [parse_value(part) for part in raw.split(",") if part.strip()]
    lowered = raw.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null", "~"):
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def _coerce(schedule: str, param: Param, value: Any) -> Any:
    where = f"schedule '{schedule}': {param.name}"
    if value is None:
        return None
    if param.kind in ("floats", "ints", "schedules"):
        items = value if isinstance(value, list | tuple) else [value]
        single = Param(param.name, param.kind[:-1])
        return [_coerce(schedule, single, item) for item in items]
    if param.kind == "schedule":
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise usage_error(
                f"{where}: each part must be a schedule written as {{name: ..., parameters}}, "
                f"got {value!r}"
            )
        return dict(value)
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        raise usage_error(f"{where} must be true or false, got {value!r}")
    if param.kind == "str":
        if not isinstance(value, str) or (param.choices and value not in param.choices):
            raise usage_error(
                f"{where} must be one of {', '.join(param.choices)}, got {value!r}"
                + (closest(value, param.choices) if isinstance(value, str) else "")
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise usage_error(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise usage_error(f"{where} must be finite, got {value!r}")
    if param.kind == "int":
        if float(value) != int(value):
            raise usage_error(f"{where} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def build_schedule(
    name: str, params: dict[str, Any] | None = None, steps_per_epoch: float | None = None
) -> Schedule:
    """Validate ``params`` against the registry entry ``name`` and build the schedule.

    Unset parameters take their defaults; those derived from the run length use
    ``total_steps`` when it is given. Errors name the schedule, the parameter and the value.
    Lengths may be given in epochs (``epochs: 10``, ``s: 2ep``; see :func:`in_steps`) when
    ``steps_per_epoch`` is given.
    """
    spec = get_spec(name)
    given = in_steps(name, with_part_sets(name, dict(params or {})), steps_per_epoch)
    names = spec.param_names
    for key in given:
        if key not in names:
            raise usage_error(
                f"schedule '{name}' has no parameter '{key}'{closest(key, names)}; "
                f"its parameters are: {', '.join(names)}"
            )
    values = {key: _coerce(name, spec.param(key), value) for key, value in given.items()}
    total = values.get("total_steps")
    if total is not None and total < 1:
        raise usage_error(f"schedule '{name}': total_steps must be >= 1, got {total}")
    for key, derive in spec.derived.items():
        if values.get(key) is None:
            values[key] = derive(total, values)
    checked = {p.name: values.get(p.name, None if p.required else p.default) for p in spec.params}
    checked.update({k: v for k, v in values.items() if k in WARMUP_PARAMS})
    for key, value in checked.items():
        check_range(name, key, value, spec.valid(key), checked)
    warmup_steps = values.pop("warmup_steps", None) or 0
    warmup_start = values.pop("warmup_start_lr", None) or 0.0
    if warmup_steps and spec.uses_total_steps and total is not None:
        if warmup_steps >= total:
            raise usage_error(
                f"schedule '{name}': warmup_steps ({warmup_steps}) must be < total_steps ({total})"
            )
        values["total_steps"] = total - warmup_steps
    for p in spec.params:
        if values.get(p.name) is not None:
            continue
        if p.required:
            hint = " (set it with --steps or total_steps)" if p.name == "total_steps" else ""
            flag = " (--lr)" if p.name == spec.lr_param else ""
            raise usage_error(f"schedule '{name}': missing parameter {p.name}{flag}{hint}")
        if p.name in spec.derived and _required_by_factory(spec, p.name):
            raise usage_error(
                f"schedule '{name}': set {p.name}, or total_steps to derive it from the run"
            )
    built = spec.build(values)
    built.params = dict(given)
    built = with_warmup(built, warmup_steps, warmup_start)
    if total is not None:
        built.total_steps = total
    built.recipe = (name, dict(params or {}), steps_per_epoch)
    return built


def rebuilt(recipe: tuple[str, dict[str, Any], float | None], state: Any = None) -> Schedule:
    """A pickled schedule, built again from its recipe (a stateful one gets its state back)."""
    name, params, steps_per_epoch = recipe
    schedule = build_schedule(name, params, steps_per_epoch)
    if state is not None:
        schedule.state = state  # type: ignore[attr-defined]
    return schedule


def _reduce_schedule(schedule: Schedule) -> tuple[Any, ...]:
    """How pickle stores a schedule: its recipe (its functions are closures)."""
    if schedule.recipe is None:
        raise TypeError(
            f"schedule '{schedule.name}' cannot be pickled: build it with "
            f"lrtool.build_schedule(name, params), which records how to build it again"
        )
    return (rebuilt, (schedule.recipe, getattr(schedule, "state", None)))


for _schedule_type in (Schedule, PlateauSchedule):  # copyreg matches exact types only
    copyreg.pickle(_schedule_type, _reduce_schedule)  # type: ignore[arg-type]


def _required_by_factory(spec: ScheduleSpec, name: str) -> bool:
    parameter = inspect.signature(spec.factory).parameters.get(name)
    return parameter is not None and parameter.default is inspect.Parameter.empty


def sample_steps(total: int, max_points: int) -> list[int]:
    """Up to ``max_points`` steps spread evenly over 0..total-1, first and last included."""
    if total <= max_points:
        return list(range(total))
    stride = (total - 1) / (max_points - 1)
    return sorted({round(i * stride) for i in range(max_points)})
