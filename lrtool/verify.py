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

    def rows(self) -> list[dict[str, Any]]:
        kept = {"constant": self.lr, "onecycle": self.onecycle_max_lr}
        return [
            {
                "use": c.use,
                "lr": c.lr,
                "score": c.score,
                "steps": c.steps,
                "kept": c.lr == kept[c.use],
            }
            for c in self.candidates
        ]


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
) -> VerifyResult:
    """Train ``steps`` steps at each candidate around ``lr`` (constant) and ``onecycle_max_lr``
    (1cycle), each from the same initial state, and keep the lowest final loss per use.

    The score is the mean validation loss over ``val_batches`` batches when ``val_loader`` is
    given, else the mean training loss over the last 20% of the steps. A candidate whose loss
    turns NaN/Inf scores NaN and is never kept. The model and optimizer are restored afterwards.
    """
    from lrtool.schedules import build_schedule
    from lrtool.torch_adapter import LrtoolScheduler

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
