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

import dataclasses
from typing import Any

from torch.optim.lr_scheduler import LRScheduler

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


class LrtoolScheduler(LRScheduler):
    """Sets ``param_group['lr']`` (and momentum/beta1) to the schedule's value at each step.

    A real torch LR scheduler (:class:`torch.optim.lr_scheduler.LRScheduler`): ``step()``,
    ``get_last_lr()``, ``last_epoch`` (the step now applied), and ``state_dict()`` /
    ``load_state_dict()`` holding the step, the param groups' ratios, the momentum keys and a
    plateau schedule's state, so a run resumed from a checkpoint continues with the very LRs
    (and momenta) it would have had. Lightning's ``configure_optimizers`` and the Hugging Face
    ``Trainer(optimizers=(optimizer, scheduler))`` take it as they take torch's schedulers.
    """

    def __init__(self, optimizer: Any, schedule: Schedule, last_step: int = -1) -> None:
        self.schedule = schedule
        self.ratios = group_ratios(optimizer.param_groups)
        if last_step != -1:  # resuming without a checkpoint: the groups' LRs are the base
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        super().__init__(optimizer, last_epoch=last_step)  # applies step last_step + 1

    @property
    def t(self) -> int:
        """The step whose values are applied now (``last_epoch``)."""
        return int(self.last_epoch)

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
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        return lr

    def step(self, epoch: int | None = None) -> float:  # type: ignore[override]
        """Advance to the next step (call after ``optimizer.step()``); returns the new LR.
        ``epoch`` (torch's deprecated argument) jumps to that step instead."""
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        return self.apply(self.last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The LR of every param group at ``last_epoch`` (torch's hook)."""
        lr = self.schedule(self.last_epoch)
        return [lr * ratio for ratio in self.ratios]

    def update(self, metric: float) -> float:
        """Feed a validation metric to a ``plateau`` schedule; returns the LR now in use."""
        update = getattr(self.schedule, "update", None)
        if update is None:
            raise LrtoolError(
                f"schedule '{self.schedule.name}' does not take metrics; only plateau does"
            )
        update(metric)
        return self.apply(self.last_epoch)

    def get_last_lr(self) -> list[float]:  # type: ignore[override]
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def current_momentum(self) -> float | None:
        group = self.optimizer.param_groups[0]
        key = momentum_key(group)
        if key == "betas":
            return float(group["betas"][0])
        return float(group["momentum"]) if key == "momentum" else None

    def state_dict(self) -> dict[str, Any]:
        """Plain data (no functions), so ``torch.save`` and checkpoints of Lightning and the
        HF Trainer can hold it: the step, the ratios, the schedule's name and parameters (to
        check a resume uses the same one) and a plateau schedule's state."""
        state = getattr(self.schedule, "state", None)
        return {
            "last_epoch": int(self.last_epoch),
            "step_count": int(self._step_count),
            "ratios": list(self.ratios),
            "base_lrs": [float(b) for b in self.base_lrs],
            "schedule": self.schedule.name,
            "schedule_params": dict(self.schedule.params),
            "plateau_state": None if state is None else dataclasses.asdict(state),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the same step, ratios and plateau state, applied
        to the optimizer at once. The state is checked whole first (the schedule, its
        parameters, one ratio and base LR per param group, finite numbers): a state from
        another schedule, another scheduler or another optimizer is one :class:`LrtoolError`
        naming the mismatch, and the scheduler is left as it was."""
        checked = self._checked_state(state_dict)
        self.last_epoch, self._step_count, self.ratios, base_lrs, plateau = checked
        if base_lrs is not None:
            self.base_lrs = base_lrs
        if plateau is not None:
            self.schedule.load_state(plateau)  # type: ignore[attr-defined]
        self.apply(self.last_epoch)

    def _checked_state(self, state: Any) -> tuple[int, int, list[float], Any, Any]:
        """(last_epoch, step_count, ratios, base_lrs or None, plateau state or None) of a
        saved state, or an error saying what does not match this scheduler."""
        if not isinstance(state, dict) or "schedule" not in state or "last_epoch" not in state:
            raise LrtoolError(
                "this is not an LrtoolScheduler state (no 'schedule' and 'last_epoch' keys); "
                "load the state the run's LrtoolScheduler.state_dict() saved"
            )
        name = state["schedule"]
        if name != self.schedule.name:
            raise LrtoolError(
                f"this scheduler state is for schedule '{name}', not '{self.schedule.name}'; "
                f"build the scheduler with the schedule the run used"
            )
        saved_params = state.get("schedule_params")
        if saved_params is not None:
            mine = _plain(dict(self.schedule.params))
            differ = sorted(
                k
                for k in set(mine) | set(_plain(saved_params))
                if mine.get(k) != _plain(saved_params).get(k)
            )
            if differ:
                shown = ", ".join(
                    f"{k}: saved {_plain(saved_params).get(k)!r}, here {mine.get(k)!r}"
                    for k in differ
                )
                raise LrtoolError(
                    f"this scheduler state is for another '{name}' schedule ({shown}); build "
                    f"the scheduler with the parameters the run used"
                )
        groups = len(self.optimizer.param_groups)
        last_epoch = _whole(state["last_epoch"], "last_epoch", -1)
        step_count = _whole(state.get("step_count", self._step_count), "step_count", 0)
        ratios = _numbers(state.get("ratios", self.ratios), "ratios", groups, lowest=0.0)
        base = state.get("base_lrs")
        base_lrs = None if base is None else _numbers(base, "base_lrs", groups, lowest=0.0)
        plateau = state.get("plateau_state")
        restored = None
        if plateau is not None and hasattr(self.schedule, "state"):
            try:
                restored = type(self.schedule.state)(**plateau)
            except TypeError as exc:
                raise LrtoolError(f"scheduler state: plateau_state does not fit: {exc}") from None
        return last_epoch, step_count, ratios, base_lrs, restored


def _plain(value: Any) -> Any:
    """Tuples as lists, so a state that went through JSON or YAML compares equal."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _whole(value: Any, key: str, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise LrtoolError(f"scheduler state: {key} must be an integer >= {lowest}, got {value!r}")
    return value


def _numbers(values: Any, key: str, count: int, lowest: float) -> list[float]:
    """``count`` finite numbers >= ``lowest`` (one per param group)."""
    import math

    if not isinstance(values, list | tuple) or len(values) != count:
        got = len(values) if isinstance(values, list | tuple) else type(values).__name__
        raise LrtoolError(
            f"scheduler state: {key} has {got} entries but the optimizer has {count} param "
            f"groups; load the state into a scheduler over the same optimizer"
        )
    numbers = []
    for v in values:
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
            or v < lowest
        ):
            raise LrtoolError(
                f"scheduler state: {key} must be finite numbers >= {lowest:g}, got {v!r}"
            )
        numbers.append(float(v))
    return numbers
