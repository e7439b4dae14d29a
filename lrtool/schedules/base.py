"""The :class:`Schedule` every factory returns, and the one declaration of each parameter's
valid values (:func:`declared`), which the factory enforces on every call and the registry,
``build_schedule`` and the docs table read. No torch here.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lrtool.errors import usage_error

LrFn = Callable[[int], float]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Schedule:
    """A built schedule: call it with a step to get the LR; ``momentum(t)`` where it cycles one.

    Frozen: a schedule is a value. Building one with another length, name or recipe makes a
    new one (:func:`dataclasses.replace`); only a stateful schedule's state (plateau) changes.
    """

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
    """Refuse what a range cannot say (orders, lengths, combinations), naming the schedule."""
    if not condition:
        raise usage_error(f"schedule '{schedule}': {message}")


# --------------------------------------------------------------------------------------------
# Valid values, declared once
# --------------------------------------------------------------------------------------------

# The ranges of parameters many schedules share; a factory's own declaration may narrow them.
# "> 0", ">= 1", "(0, 1]", "[0, lr]": a bound may name another parameter of the same call.
SHARED_RANGES = {
    "lr": "[0, 1e9]",
    "max_lr": "(0, 1e9]",
    "total_steps": ">= 1",
    "eta_min": "[0, lr]",
    "min_lr": "[0, lr]",
    "end_lr": "[0, lr]",
    "factor": "(0, 1]",
    "s": "> 0",
    "base_momentum": "[0, max_momentum]",
    "max_momentum": "[0, 1)",
}


def declared(**ranges: str) -> Callable[[F], F]:
    """Declare a factory's valid parameter values, once.

    The factory then checks its arguments against them (and :data:`SHARED_RANGES` for the
    shared names it takes) on every call, so a direct call and ``build_schedule`` refuse the
    same values with the same message; the registry and ``docs/schedules.md`` read the same
    declaration from ``factory.ranges``.

    >>> @declared(c=">= 0")
    ... def shape(lr: float, c: float = 1.0) -> float:
    ...     return lr * c
    >>> shape.ranges
    {'lr': '[0, 1e9]', 'c': '>= 0'}
    >>> shape(0.1, c=-1)
    Traceback (most recent call last):
    ...
    lrtool.errors.LrtoolError: schedule 'shape': c must be in >= 0, got -1
    """

    def wrap(factory: F) -> F:
        signature = inspect.signature(factory)
        names = signature.parameters
        unknown = set(ranges) - set(names)
        if unknown:
            raise TypeError(f"{factory.__name__}: ranges for no parameter: {sorted(unknown)}")
        given = {k: v for k, v in SHARED_RANGES.items() if k in names} | ranges
        merged = {k: given[k] for k in names if k in given}  # checked in signature order
        schedule = factory.__name__

        @functools.wraps(factory)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            for name, text in merged.items():
                check_range(schedule, name, values.get(name), text, values)
            return factory(*args, **kwargs)

        checked.ranges = merged  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return wrap


def check_range(schedule: str, name: str, value: Any, text: str, values: dict[str, Any]) -> None:
    """Refuse ``value`` outside ``text`` (``"> 0"``, ``"(0, 1]"``, ``"[0, lr]"``), naming it.
    A list is checked item by item; a value that is no number is left to the factory."""
    if not text or value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_range(schedule, name, item, text, values)
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return
    number = float(value)
    low, high, low_open, high_open = _parse_range(text, values)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high or math.isnan(number):
        shown = text
        for other in values:
            bound_value = values.get(other)
            if other in text and isinstance(bound_value, numbers.Real) and other != name:
                shown = text.replace(other, f"{other}={bound_value:g}")
        raise usage_error(f"schedule '{schedule}': {name} must be in {shown}, got {value!r}")


def _parse_range(
    text: str, values: dict[str, Any]
) -> tuple[float | None, float | None, bool, bool]:
    """``(low, high, low open, high open)``; a bound naming an unset parameter is None."""

    def bound(token: str) -> float | None:
        token = token.strip()
        if token in values or token.isidentifier():
            found = values.get(token)
            return float(found) if isinstance(found, numbers.Real) else None
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


# --------------------------------------------------------------------------------------------
# Interpolation between two values, as torch writes it
# --------------------------------------------------------------------------------------------


def anneal_cos(start: float, end: float, q: float) -> float:
    """``end + (start - end)/2 * (1 + cos(pi*q))``: from start (q = 0) to end (q = 1)."""
    # Written exactly as torch writes it, so values agree to the last bits.
    return end + (start - end) / 2.0 * (math.cos(math.pi * q) + 1)


def anneal_linear(start: float, end: float, q: float) -> float:
    """``start + (end - start)*q``."""
    return (end - start) * q + start
