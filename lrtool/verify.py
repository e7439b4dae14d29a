"""``lrtool find --verify``: short trainings at LRs around the suggestion, keeping the best.

A range test reads the LR off one short sweep; how well that LR trains is a separate question.
Verification answers it directly: from the same initial weights, train ``steps`` steps at each
candidate (the suggestion times ``10**k`` for k in ``offsets``), with a constant LR for the
constant suggestion and with 1cycle for the 1cycle peak, and keep the candidate whose final
loss is lowest. The cost is ``len(offsets) * steps`` training steps per use, reported in the
result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrtool.distributed import active_world_size, mean_over_ranks
from lrtool.errors import usage_error
from lrtool.finder import (
    StateSnapshot,
    _amp_context,
    _val_loss,
    cycle,
    default_step,
    grad_resetter,
    model_device,
    to_device,
)

OFFSETS = (-0.5, 0.0, 0.5)  # decades around the suggestion
TAIL = 0.2  # without validation batches, the score is the mean loss of the last 20% of steps


@dataclass
class Candidate:
    use: str  # constant | onecycle
    lr: float
    score: float  # final validation loss, or mean training loss over the tail; NaN diverged
    steps: int
    rung: int = 0  # the successive-halving round (budgeted search)


@dataclass
class VerifyResult:
    """The candidates tried for each use and the LR kept."""

    candidates: list[Candidate] = field(default_factory=list)
    lr: float | None = None
    onecycle_max_lr: float | None = None
    steps_spent: int = 0
    elapsed_s: float = 0.0
    monitor: str = "train"
    because: str = "asked for"
    budget: float | None = None  # in target trainings, for the budgeted search
    target_steps: int | None = None
    winner: float | None = None  # the candidate the search kept, before its shift

    def rows(self) -> list[dict[str, Any]]:
        kept = {"constant": self.winner or self.lr, "onecycle": self.onecycle_max_lr}
        last = max((c.rung for c in self.candidates), default=0)
        return [
            {
                "use": c.use,
                "lr": c.lr,
                "score": c.score,
                "steps": c.steps,
                "rung": c.rung,
                "kept": c.lr == kept[c.use] and c.rung == last,
            }
            for c in self.candidates
        ]


def apply_verification(result: Any, checked: VerifyResult, because: str) -> None:
    """Make the verified (or searched) LRs the recommendation of a range-test result."""
    checked.because = because
    result.verification = checked
    rec = result.recommendation
    if rec is None or checked.lr is None:
        return
    if rec.lr is None:  # the curve gave no number: the search alone chose
        rec.reason = f"the curve gave no number ({'; '.join(rec.warnings) or 'unreadable'})"
        rec.confidence = "low"
        rec.warnings = [
            "the range-test curve could not be read: the LR comes from the budgeted search alone"
        ]
    rec.lr = checked.lr
    rec.onecycle_max_lr = checked.onecycle_max_lr or rec.onecycle_max_lr
    if checked.budget is not None and checked.target_steps:
        rec.rule = "lrtool --budget"
        spent = checked.steps_spent / checked.target_steps
        rec.reason += (
            f"; then a budgeted search of {len(checked.candidates)} constant-LR trainings "
            f"({checked.steps_spent} steps = {spent:.2f} "
            f"of a {checked.target_steps}-step training, {checked.monitor} loss)"
        )
    else:
        rec.rule = "lrtool --verify"
        rec.reason += (
            f"; verified by {len(checked.candidates)} short trainings "
            f"({checked.steps_spent} steps, {checked.monitor} loss)"
        )


def candidate_lrs(lr: float, offsets: Iterable[float] = OFFSETS) -> list[float]:
    """``lr * 10**k`` for each offset k (decades), smallest first."""
    return sorted(lr * 10**k for k in offsets)


def verify_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    lr: float | None,
    onecycle_max_lr: float | None = None,
    steps: int = 100,
    offsets: Iterable[float] = OFFSETS,
    val_loader: Iterable | None = None,
    val_batches: int = 8,
    step_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    amp: str | None = None,
    device: str | torch.device | None = None,
    budget: float | None = None,
    target_steps: int | None = None,
    search_span: tuple[float, float] | None = None,
) -> VerifyResult:
    """Train ``steps`` steps at each candidate around ``lr`` (constant) and ``onecycle_max_lr``
    (1cycle), each from the same initial state, and keep the lowest final loss per use.

    With ``budget`` (in trainings of ``target_steps`` steps, the length the LR is for), run the
    budgeted search of :mod:`lrtool.search` instead: successive halving over constant-LR
    candidates centred on ``lr``, spending at most ``budget * target_steps`` steps, with the
    settings chosen on the suggestion suite; the 1cycle peak follows from the constant LR that
    wins; when ``lr`` is None (a curve that gave no number) the candidates are spread over
    ``search_span`` instead. ``steps`` and ``offsets`` are then unused.

    The score is the mean validation loss over ``val_batches`` batches when ``val_loader`` is
    given, else the mean training loss over the last 20% of the steps. A candidate whose loss
    turns NaN/Inf scores NaN and is never kept. The model and optimizer are restored afterwards.
    """
    from lrtool.schedules import build_schedule
    from lrtool.torch_adapter import LrtoolScheduler

    if budget is not None:
        return _search(
            model, optimizer, train_loader, loss_fn, lr, budget, target_steps,
            val_loader, val_batches, step_fn, amp, device, search_span,
        )  # fmt: skip
    if steps < 5:
        raise usage_error(f"verify steps: must be at least 5, got {steps}")
    offsets = tuple(offsets)
    if not offsets:
        raise usage_error("verify offsets: give at least one")
    dev = torch.device(device) if device is not None else model_device(model)
    move = None if dev.type == "cpu" else dev
    autocast = _amp_context(amp, dev)
    step = step_fn or default_step(loss_fn)
    result = VerifyResult(monitor="train" if val_loader is None else f"val ({val_batches} batches)")
    started = time.perf_counter()
    snapshot = StateSnapshot.take(model, optimizer)
    first_pass = getattr(train_loader, "passes", None)  # TensorBatches: the same order each time
    try:
        for use, centre in (("constant", lr), ("onecycle", onecycle_max_lr)):
            if centre is None:
                continue
            for candidate in candidate_lrs(centre, offsets):
                snapshot.restore(model, optimizer)
                if first_pass is not None:
                    train_loader.passes = first_pass  # type: ignore[attr-defined]
                params = {"lr": candidate} if use == "constant" else {"max_lr": candidate}
                schedule = build_schedule(use, {**params, "total_steps": steps})
                driver = LrtoolScheduler(optimizer, schedule)
                losses = _train(model, optimizer, driver, train_loader, step, steps, move, autocast)
                result.steps_spent += len(losses)
                if len(losses) < steps or not all(map(math.isfinite, losses)):
                    score = math.nan
                elif val_loader is not None:
                    score = mean_over_ranks(
                        _val_loss(model, val_loader, val_batches, step, move, autocast), move
                    )
                else:  # the losses are already the mean over ranks under DDP
                    tail = losses[-max(1, int(steps * TAIL)) :]
                    score = sum(tail) / len(tail)
                result.candidates.append(Candidate(use, candidate, score, len(losses)))
    finally:
        snapshot.restore(model, optimizer)
        if first_pass is not None:
            train_loader.passes = first_pass  # type: ignore[attr-defined]
    for use in ("constant", "onecycle"):
        scored = [c for c in result.candidates if c.use == use and math.isfinite(c.score)]
        best = min(scored, key=lambda c: c.score).lr if scored else None
        if use == "constant":
            result.lr = best
        else:
            result.onecycle_max_lr = best
    result.elapsed_s = time.perf_counter() - started
    return result


def _search(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable,
    loss_fn: Callable[..., torch.Tensor] | None,
    lr: float | None,
    budget: float,
    target_steps: int | None,
    val_loader: Iterable | None,
    val_batches: int,
    step_fn: Callable[[nn.Module, Any], torch.Tensor] | None,
    amp: str | None,
    device: str | torch.device | None,
    span: tuple[float, float] | None = None,
) -> VerifyResult:
    """The budgeted search (see :func:`verify_lr`); each score is one constant-LR training."""
    from lrtool.schedules import build_schedule
    from lrtool.search import params_for_budget, plan_search, run_search
    from lrtool.torch_adapter import LrtoolScheduler

    if not (math.isfinite(budget) and budget >= 0):
        raise usage_error(f"budget: must be a number >= 0, got {budget}")
    if target_steps is None or target_steps < 1:
        raise usage_error(
            "budget: needs target_steps, the length of the training the LR is for "
            f"(got {target_steps}); pass target_steps=N"
        )
    result = VerifyResult(
        monitor="train" if val_loader is None else f"val ({val_batches} batches)",
        budget=budget,
        target_steps=target_steps,
    )
    params = params_for_budget(budget)
    plan = None
    if params is not None and (lr is not None or span is not None):
        centre = math.nan if lr is None else lr
        plan = plan_search(centre, budget, target_steps, params, None if lr else span)
    if plan is None:
        return result
    dev = torch.device(device) if device is not None else model_device(model)
    move = None if dev.type == "cpu" else dev
    autocast = _amp_context(amp, dev)
    step = step_fn or default_step(loss_fn)
    started = time.perf_counter()
    snapshot = StateSnapshot.take(model, optimizer)
    first_pass = getattr(train_loader, "passes", None)
    untrained = math.inf

    def score(candidate: float, steps: int) -> float:
        nonlocal untrained
        snapshot.restore(model, optimizer)
        if first_pass is not None:
            train_loader.passes = first_pass  # type: ignore[attr-defined]
        schedule = build_schedule("constant", {"lr": candidate, "total_steps": steps})
        driver = LrtoolScheduler(optimizer, schedule)
        losses = _train(model, optimizer, driver, train_loader, step, steps, move, autocast)
        result.steps_spent += len(losses)
        if losses and not math.isfinite(untrained) and val_loader is None:
            untrained = losses[0]  # the first batch's loss stands in for the untrained model
        if len(losses) < steps or not all(map(math.isfinite, losses)):
            value = math.nan
        elif val_loader is not None:
            value = mean_over_ranks(
                _val_loss(model, val_loader, val_batches, step, move, autocast), move
            )
        else:
            tail = losses[-max(1, int(steps * TAIL)) :]
            value = sum(tail) / len(tail)
        result.candidates.append(Candidate("constant", candidate, value, len(losses)))
        return value if math.isfinite(value) else math.inf

    try:
        if val_loader is not None:
            untrained = mean_over_ranks(
                _val_loss(model, val_loader, val_batches, step, move, autocast), move
            )
        outcome = run_search(plan, score, untrained)
    finally:
        snapshot.restore(model, optimizer)
        if first_pass is not None:
            train_loader.passes = first_pass  # type: ignore[attr-defined]
    for candidate, trial in zip(result.candidates, outcome.trials, strict=True):
        candidate.rung = trial.rung
    result.lr, result.onecycle_max_lr = outcome.lr, outcome.onecycle_max_lr
    result.winner = outcome.winner
    result.elapsed_s = time.perf_counter() - started
    return result


def _train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    driver: Any,
    loader: Iterable,
    step: Callable[[nn.Module, Any], torch.Tensor],
    steps: int,
    move: torch.device | None,
    autocast: Callable[[], Any],
) -> list[float]:
    """Train up to ``steps`` steps; stops at the first non-finite loss (it is included)."""
    model.train()
    batches = cycle(loader)
    ranked = active_world_size() > 1
    zero_grad = grad_resetter(optimizer)
    losses: list[float] = []
    for _ in range(steps):
        with autocast():
            loss = step(model, to_device(next(batches), move))
        value = float(loss.detach())
        if ranked:  # under DDP every rank sees the mean over ranks: they stop together
            value = mean_over_ranks(value, move)
        losses.append(value)
        if not math.isfinite(value):
            break
        zero_grad()
        loss.backward()
        optimizer.step()
        driver.step()
    return losses
