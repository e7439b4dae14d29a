"""The :class:`Schedule` every factory returns, and the parameter checks factories share.

Split from :mod:`lrtool.schedules` so that :mod:`lrtool.plateau` (a schedule with state) can
use them without importing the registry: imports point one way. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lrtool.errors import usage_error

LrFn = Callable[[int], float]


@dataclass
class Schedule:
    """A built schedule: call it with a step to get the LR; ``momentum(t)`` where it cycles one."""

    name: str
    lr_fn: LrFn
    momentum_fn: LrFn | None = None
    total_steps: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # (name, params, steps_per_epoch) of build_schedule: how to build this schedule again, so
    # that it pickles (multiprocessing, checkpoints) although its functions are closures
    recipe: tuple[str, dict[str, Any], float | None] | None = None

    def __call__(self, t: int) -> float:
        return self.lr_fn(t)

    def momentum(self, t: int) -> float | None:
        return None if self.momentum_fn is None else self.momentum_fn(t)

    @property
    def has_momentum(self) -> bool:
        return self.momentum_fn is not None

    @property
    def stateful(self) -> bool:
        return False


def check(condition: bool, schedule: str, message: str) -> None:
    if not condition:
        raise usage_error(f"schedule '{schedule}': {message}")


def positive(schedule: str, name: str, value: float) -> None:
    check(value > 0, schedule, f"{name} must be > 0, got {name}={value!r}")


def non_negative(schedule: str, name: str, value: float) -> None:
    check(value >= 0, schedule, f"{name} must be >= 0, got {name}={value!r}")


def decay_factor(schedule: str, name: str, value: float) -> None:
    check(0 < value < 1, schedule, f"{name} must be in (0, 1), got {name}={value!r}")
