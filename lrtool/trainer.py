"""Short scheduled training and side-by-side comparison of schedules.

:func:`train` runs a schedule for a budget of optimizer steps, evaluating every ``eval_every``
steps, and returns a :class:`TrainResult`; it never prints.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrtool.errors import LrtoolError, describe_exception
from lrtool.loop import (
    LoopOptions,
    Progress,
    StepFn,
    TrainingLoop,
    check_api_inputs,
    cycle,
    loop_options,
)
from lrtool.schedules import Schedule
from lrtool.schedules.torch_adapter import LrtoolScheduler
from lrtool.suggest import DebiasedEma, debiased_ema

TRAIN_COLUMNS = ["step", "lr", "momentum", "train_loss"]
EVAL_COLUMNS = ["step", "lr", "train_loss_smoothed", "val_loss", "val_accuracy"]
SMOOTH_BETA = 0.9  # the train-loss EMA shown beside each evaluation


@dataclass
class TrainResult:
    """Per-step LR, momentum and loss, and the evaluation points of one training run."""

    label: str
    schedule: str
    steps: list[int] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    momentums: list[float | None] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "completed"
    interrupted: bool = False
    failed: str | None = None  # why the run failed after some steps (user code, torch)
    # Set by lrtool train: what the run read and where ({'data': ..., 'device': ...}).
    context: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    steps_requested: int = 0

    def step_rows(self) -> list[dict[str, Any]]:
        return [
            {"step": s, "lr": lr, "momentum": m, "train_loss": loss}
            for s, lr, m, loss in zip(
                self.steps, self.lrs, self.momentums, self.train_losses, strict=True
            )
        ]

    def smoothed_train_losses(self) -> list[float]:
        return debiased_ema(self.train_losses, SMOOTH_BETA)

    def _val(self) -> list[tuple[int, float]]:
        return [
            (e["step"], e["val_loss"])
            for e in self.evals
            if e.get("val_loss") is not None and math.isfinite(e["val_loss"])
        ]

    @property
    def final_val_loss(self) -> float | None:
        vals = self._val()
        return vals[-1][1] if vals else None

    @property
    def best_val_loss(self) -> float | None:
        vals = self._val()
        return min(v for _, v in vals) if vals else None

    @property
    def final_accuracy(self) -> float | None:
        accs = [e["val_accuracy"] for e in self.evals if e.get("val_accuracy") is not None]
        return accs[-1] if accs else None

    def steps_to(self, target: float) -> int | None:
        """The first evaluated step whose val loss is at or below ``target``."""
        for step, value in self._val():
            if value <= target:
                return step
        return None


class TrainInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the partial result is attached."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__("training interrupted")
        self.result = result


class TrainFailed(LrtoolError):
    """An error after training had taken steps (the model or the schedule raised); the
    partial result is attached."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(f"training {result.label} failed: {result.failed}")
        self.result = result


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_batches: Iterable,
    loss_fn: Callable[..., torch.Tensor] | None,
    schedule: Schedule,
    steps: int,
    *,
    val_loader: Iterable | None = None,
    eval_every: int = 25,
    classification: bool = True,
    grad_clip: float | None = None,
    device: str | torch.device | None = None,
    label: str | None = None,
    progress: Progress | None = None,
    step_fn: StepFn | None = None,
    options: LoopOptions | None = None,
    accumulation_steps: int | None = None,
    amp: str | None = None,
    val_batches: Iterable | None = None,
) -> TrainResult:
    """Train for ``steps`` optimizer steps; step t uses exactly ``schedule(t)``.

    Evaluates before training (step 0) and after every ``eval_every`` steps and the last one:
    val loss, plus accuracy for classification. A ``plateau`` schedule is fed the val loss.
    ``val_loader`` holds the validation batches (``val_batches``, its old name, still works
    and warns). ``options`` (accumulation, AMP, clipping: :class:`lrtool.loop.LoopOptions`)
    shape every step; ``accumulation_steps``, ``amp`` and ``grad_clip`` are shortcuts for its
    fields, as in :func:`lrtool.find_lr`.
    A non-finite training loss stops the run (``stop_reason`` says so); Ctrl-C raises
    :class:`TrainInterrupted` with the partial result.
    """
    check_api_inputs(optimizer, train_batches, model)
    if val_batches is not None:
        if val_loader is not None:
            raise LrtoolError("train: pass val_loader (val_batches is its old name), not both")
        warnings.warn(
            "train(val_batches=...) is renamed val_loader=..., as in find_lr and verify_lr",
            DeprecationWarning,
            stacklevel=2,
        )
        val_loader = val_batches
    val_batches = val_loader
    monitored = getattr(schedule, "monitor", "val_loss")
    if schedule.stateful and val_batches is None and monitored != "train_loss":
        raise LrtoolError(
            f"the plateau schedule monitors {monitored}: it needs validation data (set "
            f"data.val_fraction > 0, or monitor=train_loss)"
        )
    result = TrainResult(label or schedule.name, schedule.name, steps_requested=steps)
    options = loop_options(options, accumulation_steps, amp, grad_clip)
    loop = TrainingLoop(model, optimizer, loss_fn, step_fn=step_fn, options=options, device=device)
    driver = LrtoolScheduler(optimizer, schedule)
    ema = DebiasedEma(SMOOTH_BETA)
    started = time.perf_counter()

    def run_eval(t: int, lr: float, smoothed: float | None) -> None:
        row: dict[str, Any] = {
            "step": t,
            "lr": lr,
            "train_loss_smoothed": smoothed,
            "val_loss": None,
            "val_accuracy": None,
        }
        if val_batches is not None:
            evaluation = loop.evaluate(val_batches, accuracy=classification)
            row["val_loss"], row["val_accuracy"] = evaluation.loss, evaluation.accuracy
        if schedule.stateful and t > 0:
            metric = {
                "val_loss": row["val_loss"],
                "val_accuracy": row["val_accuracy"],
                "train_loss": smoothed,
            }[monitored]
            if metric is None:
                raise LrtoolError(
                    f"the plateau schedule monitors {monitored}, which this run does not have "
                    f"(accuracy needs a classification task)"
                )
            driver.update(metric)
        result.evals.append(row)

    def observe(t: int, lr: float, loss: float, value: float) -> None:
        result.steps.append(t)
        result.lrs.append(lr)
        result.momentums.append(driver.current_momentum())
        result.train_losses.append(loss)
        if not math.isfinite(loss):
            return  # the loop stops on it
        smoothed = ema.update(loss)
        done = t + 1
        if done % eval_every == 0 or done == steps:
            run_eval(done, lr, smoothed)

    model.train()
    try:
        run_eval(0, schedule(0), None)
        result.stop_reason = loop.run(
            cycle(train_batches), steps, driver.apply, observe, progress=progress
        )
    except KeyboardInterrupt:
        result.interrupted = True
        result.stop_reason = f"interrupted at step {len(result.steps)}"
        result.wall_s = time.perf_counter() - started
        raise TrainInterrupted(result) from None
    except Exception as exc:  # user code, torch or the schedule, after the run started
        if not result.steps:
            raise
        result.failed = describe_exception(exc)
        result.stop_reason = f"failed at step {len(result.steps)}: {result.failed}"
        result.wall_s = time.perf_counter() - started
        raise TrainFailed(result) from exc
    result.wall_s = time.perf_counter() - started
    return result
