"""Drive a torch optimizer from any lrtool schedule (LR, and momentum or beta1).

Two lines in a training loop::

    scheduler = LrtoolScheduler(optimizer, onecycle(max_lr=0.1, total_steps=1000))
    for batch in loader: ...; optimizer.step(); scheduler.step()

Like torch schedulers, construction applies step 0 and each ``step()`` moves to the next.
For ``plateau`` call ``scheduler.update(val_loss)`` after each evaluation instead.
Several param groups keep their LR ratio to the first group with an LR above 0; a group at
LR 0 stays at 0. Momentum is cycled only for
optimizers that use it (SGD with momentum > 0, RMSprop with momentum > 0, or any optimizer with
``betas``): unlike torch ``OneCycleLR``, plain SGD without momentum is not silently given some.
"""

from __future__ import annotations

from typing import Any

from lrtool.errors import LrtoolError
from lrtool.schedules import Schedule


def momentum_key(group: dict[str, Any]) -> str | None:
    if "betas" in group:
        return "betas"
    if group.get("momentum", 0) > 0:
        return "momentum"
    return None


def group_ratios(param_groups: list[dict[str, Any]]) -> list[float]:
    """Each param group's LR as a multiple of the reference group's, the first with an LR
    above 0: a schedule (or a ladder) sets ``lr * ratio`` on every group, so discriminative
    LRs keep their proportions and a group at LR 0 (frozen on purpose) stays at 0. All 1
    when every group is at 0."""
    lrs = [float(g["lr"]) for g in param_groups]
    reference = next((lr for lr in lrs if lr > 0), 0.0)
    return [lr / reference if reference > 0 else 1.0 for lr in lrs]


class LrtoolScheduler:
    """Sets ``param_group['lr']`` (and momentum/beta1) to the schedule's value at each step."""

    def __init__(self, optimizer: Any, schedule: Schedule, last_step: int = -1) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.ratios = group_ratios(optimizer.param_groups)
        self.t = last_step + 1
        self.apply(self.t)

    def apply(self, t: int) -> float:
        """Set the values of step ``t`` on every param group; returns the LR of group 0."""
        lr = self.schedule(t)
        momentum = self.schedule.momentum(t)
        for group, ratio in zip(self.optimizer.param_groups, self.ratios, strict=True):
            group["lr"] = lr * ratio
            if momentum is not None:
                key = momentum_key(group)
                if key == "betas":
                    group["betas"] = (momentum, *tuple(group["betas"])[1:])
                elif key == "momentum":
                    group["momentum"] = momentum
        return lr

    def step(self) -> float:
        """Advance to the next step (call after ``optimizer.step()``); returns the new LR."""
        self.t += 1
        return self.apply(self.t)

    def update(self, metric: float) -> float:
        """Feed a validation metric to a ``plateau`` schedule; returns the LR now in use."""
        update = getattr(self.schedule, "update", None)
        if update is None:
            raise LrtoolError(
                f"schedule '{self.schedule.name}' does not take metrics; only plateau does"
            )
        update(metric)
        return self.apply(self.t)

    def get_last_lr(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def current_momentum(self) -> float | None:
        group = self.optimizer.param_groups[0]
        key = momentum_key(group)
        if key == "betas":
            return float(group["betas"][0])
        return float(group["momentum"]) if key == "momentum" else None
