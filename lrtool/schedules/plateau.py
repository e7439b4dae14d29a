"""Performance scheduling: cut the LR when the monitored metric stops improving.

The one stateful schedule. Its state is small (best value, bad-evaluation count, cooldown,
current LR) and it changes only through :meth:`PlateauSchedule.update`, called with each new
validation metric. Semantics are exactly torch ``ReduceLROnPlateau``:

* better means ``a < best * (1 - threshold)`` (min/rel), ``a < best - threshold`` (min/abs),
  ``a > best * (1 + threshold)`` (max/rel) or ``a > best + threshold`` (max/abs);
* the LR is cut on the (patience + 1)-th bad evaluation in a row:
  ``lr <- max(lr * factor, min_lr)``, applied only when the change exceeds ``eps``;
* after a cut, ``cooldown`` evaluations are not counted as bad; ``best`` is never reset.

Keras and optax cut one evaluation earlier (when the count reaches ``patience``). Their cuts
are this schedule's with ``patience - 1`` when ``threshold_mode="abs"`` (their threshold is
absolute), ``eps=0`` (they have no such floor) and ``cooldown=0`` (Keras counts its cooldown
differently); otherwise they can differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

from lrtool.schedules.base import LrFn, Schedule, check, declared


@dataclass
class PlateauState:
    lr: float
    best: float
    bad_evaluations: int = 0
    cooldown_left: int = 0
    cuts: list[int] = field(default_factory=list)  # evaluation indices where the LR was cut
    evaluations: int = 0


@dataclass(frozen=True)
class PlateauSchedule(Schedule):
    """A schedule whose value is the current LR; :meth:`update` feeds it a metric.

    Its settings are frozen like any schedule's; what changes is its :class:`PlateauState`,
    only through :meth:`update`, :meth:`reset` and :meth:`load_state`.
    """

    name: str = "plateau"
    lr_fn: LrFn = field(default=lambda t: 0.0, repr=False)
    initial_lr: float = 0.0
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float = 0.0
    mode: str = "min"
    eps: float = 1e-8
    monitor: str = "val_loss"  # what lrtool train feeds it
    # not an argument: a copy (dataclasses.replace) starts from its own state, never shares one
    state: PlateauState = field(default_factory=lambda: PlateauState(0.0, math.inf), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_fn", self._current)  # the value is the state's LR
        self.reset()

    def reset(self) -> None:
        """Back to the start: the initial LR, no best value, nothing counted."""
        worst = math.inf if self.mode == "min" else -math.inf
        self.load_state(PlateauState(lr=self.initial_lr, best=worst))

    def load_state(self, state: PlateauState) -> None:
        """Continue from ``state`` (a checkpoint's); copied, so the two never share a list."""
        for item in fields(PlateauState):
            value = getattr(state, item.name)
            setattr(self.state, item.name, list(value) if isinstance(value, list) else value)

    def _current(self, t: int) -> float:
        return self.state.lr

    @property
    def stateful(self) -> bool:
        return True

    def is_better(self, value: float) -> bool:
        best, thr = self.state.best, self.threshold
        if self.mode == "min":
            return value < (best * (1 - thr) if self.threshold_mode == "rel" else best - thr)
        return value > (best * (1 + thr) if self.threshold_mode == "rel" else best + thr)

    def update(self, metric: float) -> float:
        """Record one evaluation of the monitored metric; returns the LR to use from now on."""
        s = self.state
        s.evaluations += 1
        if self.is_better(metric):
            s.best = metric
            s.bad_evaluations = 0
        else:
            s.bad_evaluations += 1
        if s.cooldown_left > 0:
            s.cooldown_left -= 1
            s.bad_evaluations = 0
        if s.bad_evaluations > self.patience:
            new_lr = max(s.lr * self.factor, self.min_lr)
            if s.lr - new_lr > self.eps:
                s.lr = new_lr
                s.cuts.append(s.evaluations)
            s.cooldown_left = self.cooldown
            s.bad_evaluations = 0
        return s.lr


@declared(factor="(0, 1)", patience=">= 0", threshold=">= 0", cooldown=">= 0", eps=">= 0")
def plateau(
    lr: float,
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: Literal["rel", "abs"] = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    mode: Literal["auto", "min", "max"] = "auto",
    eps: float = 1e-8,
    total_steps: int | None = None,
    monitor: Literal["val_loss", "val_accuracy", "train_loss"] | None = None,
) -> PlateauSchedule:
    """Reduce-on-plateau: ``lr * factor^cuts``, a cut after ``patience + 1`` bad evaluations.

    Equals torch ``ReduceLROnPlateau(mode, factor, patience, threshold, threshold_mode,
    cooldown, min_lr, eps)`` fed the same metric sequence. ``monitor`` is the metric
    ``lrtool train``/``compare`` feed it at each evaluation (the val loss, the default; the val
    accuracy; or the smoothed training loss, which needs no validation data); ``mode`` follows
    from it (``auto``: max for accuracy, min for losses), and a mode that contradicts it is
    refused: ``max`` on a loss would cut the LR at every evaluation while the loss falls. With
    no ``monitor`` (your own loop feeds ``update``), ``mode`` is yours (``auto`` is min).

    >>> p = plateau(1.0, patience=0)
    >>> p.update(1.0), p.update(0.99995)
    (1.0, 0.1)
    """
    name = "plateau"
    check(threshold_mode in ("rel", "abs"), name, "threshold_mode must be rel or abs")
    check(mode in ("auto", "min", "max"), name, "mode must be auto, min or max")
    check(
        monitor in (None, "val_loss", "val_accuracy", "train_loss"),
        name,
        "monitor must be val_loss, val_accuracy or train_loss",
    )
    implied = "max" if monitor == "val_accuracy" else "min"
    check(
        monitor is None or mode in ("auto", implied),
        name,
        f"mode={mode} contradicts monitor={monitor} (a {str(monitor).replace('_', ' ')} improves "
        f"when it {'rises' if implied == 'max' else 'falls'}); leave mode: auto",
    )
    if mode != "auto":
        implied = mode
    return PlateauSchedule(
        total_steps=total_steps, initial_lr=lr, factor=factor, patience=patience,
        threshold=threshold, threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr,
        mode=implied, eps=eps, monitor=monitor or "val_loss",
    )  # fmt: skip


def stalling_metric(steps: int) -> list[float]:
    """A synthetic validation metric for plotting ``plateau``: it falls, then stalls.

    It improves as ``1 / (1 + t/10)`` for the first 30% of the evaluations, then stays flat,
    so the schedule's cuts show where patience runs out.
    """
    knee = max(1, int(0.3 * steps))
    return [1.0 / (1.0 + min(t, knee) / 10.0) for t in range(steps)]
