"""Schedules that cycle the LR (and momentum the other way): 1cycle, Geron's 1cycle, and
cyclical LRs. Each factory declares its parameters' valid values once
(:func:`lrtool.schedules.base.declared`); its docstring holds the closed form, the defaults
and the library it matches.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from lrtool.schedules.base import Schedule, anneal_cos, anneal_linear, check, declared

# The 1cycle shapes (torch's and Geron's) take the same parameters, with the same bounds.
ONE_CYCLE_RANGES = {
    "total_steps": ">= 2",
    "pct_start": "(0, 1)",
    "div_factor": "[1, 1e12]",
    "final_div_factor": "[1, 1e12]",
    "pct_final": "(pct_start, 1)",
}


@declared(**ONE_CYCLE_RANGES)
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
    check(anneal in ("cos", "linear"), name, f"anneal must be cos or linear, got {anneal!r}")
    check(
        pct_final is None or not three_phase,
        name,
        "pct_final sets the third phase; it cannot be used with three_phase",
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
    interpolate = anneal_cos if anneal == "cos" else anneal_linear

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


@declared(**ONE_CYCLE_RANGES)
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
    return dataclasses.replace(built, name="geron")


@declared(lr="[0, max_lr]", step_size_up=">= 1", step_size_down=">= 1", gamma="(0, 1]")
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
    down = step_size_up if step_size_down is None else step_size_down
    modes = ("triangular", "triangular2", "exp_range")
    check(mode in modes, name, f"mode must be one of {', '.join(modes)}, got {mode!r}")
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
