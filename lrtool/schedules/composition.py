"""Composing built schedules, as optax does: one after another (:func:`join`) and behind a
linear warm-up (:func:`with_warmup`). They take :class:`Schedule` objects, so any factory's
result composes; the registry's ``sequential`` builds its parts by name, then joins them.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from lrtool.schedules.base import Schedule, check, declared


def join(parts: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Built schedules one after another: ``parts[i]`` at step ``t - boundaries[i-1]`` for
    ``i = #(boundaries <= t)`` (``boundaries[-1]`` read as 0). Each part counts its own steps
    from 0, as in optax ``join_schedules`` and torch ``SequentialLR``. Momentum is cycled when
    every part cycles it.

    >>> from lrtool.schedules import constant
    >>> join([constant(1.0), constant(0.5)], [10])(10)
    0.5
    """
    bounds = list(boundaries)
    pieces = list(parts)
    check(len(pieces) == len(bounds) + 1, "sequential", "needs one boundary fewer than schedules")

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


@declared(warmup_steps=">= 0", warmup_start_lr="[0, 1e9]")
def with_warmup(schedule: Schedule, warmup_steps: int, warmup_start_lr: float = 0.0) -> Schedule:
    """Prefix ``schedule`` with a linear warm-up.

    For t < W: ``warmup_start_lr + (schedule(0) - warmup_start_lr) * t / W``; afterwards
    ``schedule(t - W)``. With the default start of 0 it equals Hugging Face's warm-up factor
    ``t / W``.

    >>> from lrtool.schedules import constant
    >>> with_warmup(constant(1.0), warmup_steps=4)(1)
    0.25
    """
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
