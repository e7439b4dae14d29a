"""``lrtool find --verify``: short trainings at LRs around the suggestion, keeping the best.

A range test reads the LR off one short sweep; how well that LR trains is a separate question.
Verification answers it directly: from the same initial weights, train ``steps`` steps at each
candidate (the suggestion times ``10**k`` for k in ``offsets``), with a constant LR for the
constant suggestion and with 1cycle for the 1cycle peak, and keep the candidate whose final
loss is lowest. The cost is ``len(offsets) * steps`` training steps per use, reported in the
result.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrtool.errors import describe_exception, usage_error
from lrtool.heartbeat import phase_started
from lrtool.loop import LoopOptions, StepFn, TrainingLoop, check_api_inputs, cycle, loop_options
from lrtool.snapshot import StateSnapshot, check_mode

OFFSETS = (-0.5, 0.0, 0.5)  # decades around the suggestion
# The validation batches a search candidate (or a verify trial) is scored on: a final score
# is read once per candidate, so it can afford more batches than the sweep's per-step monitor
# (find_lr's val_batches, 4), and the suite scores the search on the whole validation split.
SEARCH_VAL_BATCHES = 8
TAIL = 0.2  # without validation batches, the score is the mean loss of the last 20% of steps


@dataclass
class Candidate:
    use: str  # constant | onecycle
    lr: float
    score: float  # final validation loss, or mean training loss over the tail; NaN diverged
    steps: int
    rung: int = 0  # the successive-halving round (budgeted search)
    halfway: float = math.nan  # the same score after steps // 2 steps
    predicted: float = math.nan  # its predicted loss at the search's target length
    explored: bool = False  # the extra neighbour of a winner at the edge of the candidates


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
    predicted: float | None = None  # the winner's predicted loss at the target length
    kept_curve: bool = False  # the curve's own LR held within the search's margin
    onecycle_from_curve: bool = False  # the 1cycle peak is the range test's own
    interrupted: bool = False  # stopped by a signal: the candidates so far, no choice
    failed: str | None = None  # an error in a training: the candidates so far, no choice

    def rows(self) -> list[dict[str, Any]]:
        """One row per training, then (for the budgeted search) one per LR it suggests: the
        ``kept`` rows hold exactly the LRs of the recommendation, so the table, the starred
        row and the summary line give one answer."""
        last = max((c.rung for c in self.candidates), default=0)
        searched = self.budget is not None
        kept = {"constant": self.lr, "onecycle": None if searched else self.onecycle_max_lr}
        rows = []
        for c in self.candidates:
            winner = searched and c.lr == self.winner and c.rung == last
            note = "explored beyond the edge" if c.explored else ""
            if winner and self.kept_curve:
                note = "the curve's LR: kept (no candidate beat it by the margin)"
            elif winner:
                note = "winner" if self.lr == c.lr else "winner (moved: see the next row)"
            rows.append(
                {
                    "use": c.use,
                    "lr": c.lr,
                    "score": c.score,
                    "steps": c.steps,
                    "rung": c.rung,
                    "kept": c.lr == kept[c.use] and c.rung == last,
                    "predicted": c.predicted,
                    "note": note,
                }
            )
        if searched and self.lr is not None and self.winner is not None:
            if self.lr != self.winner:
                moved = math.log10(self.lr / self.winner)
                rows.append(
                    _suggested("constant", self.lr, last, f"the winner moved {moved:+.3g} decades")
                )
            if self.onecycle_max_lr is not None:
                above = math.log10(self.onecycle_max_lr / self.lr)
                note = (
                    "the range test's 1cycle peak"
                    if self.onecycle_from_curve
                    else f"the constant LR {above:+.3g} decades"
                )
                rows.append(_suggested("onecycle", self.onecycle_max_lr, last, note))
        return rows


def _suggested(use: str, lr: float, rung: int, note: str) -> dict[str, Any]:
    """A row of the search table that no training produced: an LR the search suggests."""
    row = {"use": use, "lr": lr, "score": math.nan, "steps": 0, "rung": rung, "kept": True}
    return {**row, "predicted": math.nan, "note": note}


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
    if checked.onecycle_max_lr is None and checked.budget is not None:
        checked.onecycle_max_lr, checked.onecycle_from_curve = rec.onecycle_max_lr, True
    rec.onecycle_max_lr = checked.onecycle_max_lr or rec.onecycle_max_lr
    if checked.budget is not None and checked.target_steps:
        rec.rule = "lrtool --budget"
        spent = checked.steps_spent / checked.target_steps
        rec.reason += (
            f"; then a budgeted search of {len(checked.candidates)} constant-LR trainings "
            f"({checked.steps_spent} steps = {spent:.2f} "
            f"of a {checked.target_steps}-step training, {checked.monitor} loss)"
        )
        if checked.kept_curve:
            rec.reason += ", which kept the curve's LR: no candidate beat it by the margin"
    else:
        rec.rule = "lrtool --verify"
        rec.reason += (
            f"; verified by {len(checked.candidates)} short trainings "
            f"({checked.steps_spent} steps, {checked.monitor} loss)"
        )


def search_after_sweep(
    result: Any,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable,
    loss_fn: Callable[..., torch.Tensor] | None,
    budget: float,
    target_steps: int,
    span: tuple[float, float] | None,
    **options: Any,
) -> None:
    """The budgeted search seeded by a range-test result, whose recommendation it updates
    (``lrtool find`` and ``find_lr(budget=...)``); ``span`` is where it looks when the curve
    gave no number (:func:`lrtool.finder.search_span`); ``options`` go to :func:`verify_lr`."""
    if result.lr is None and span is None:
        return  # no number and nowhere to look: the curve's "no number" stands
    checked = verify_lr(
        model,
        optimizer,
        train_loader,
        loss_fn,
        lr=result.lr,
        onecycle_max_lr=result.onecycle_max_lr,
        budget=budget,
        target_steps=target_steps,
        search_span=span,
        **options,
    )
    if checked.interrupted or checked.failed:
        # The sweep stands; the search's candidates are kept for the record, none chosen.
        result.verification = checked
        checked.because = "stopped before it could choose"
        result.interrupted = result.interrupted or checked.interrupted
        if checked.failed:
            result.failed = f"the budgeted search failed: {checked.failed}"
        suffix = "interrupted" if checked.interrupted else "failed"
        result.stop_reason += f"; the budgeted search {suffix} after {checked.steps_spent} steps"
        return
    apply_verification(result, checked, f"budget {budget:g} x {target_steps} steps")


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
    val_batches: int = SEARCH_VAL_BATCHES,
    step_fn: StepFn | None = None,
    amp: str | None = None,
    device: str | torch.device | None = None,
    budget: float | None = None,
    target_steps: int | None = None,
    search_span: tuple[float, float] | None = None,
    options: LoopOptions | None = None,
    snapshot: str = "cpu",
    snapshot_dir: str | Path | None = None,
    accumulation_steps: int | None = None,
    grad_clip: float | None = None,
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
    ``options`` (accumulation, AMP, clipping: :class:`lrtool.loop.LoopOptions`) apply to
    every training; ``accumulation_steps``, ``amp`` and ``grad_clip`` are shortcuts for its
    fields. ``snapshot`` keeps
    the initial state on the CPU (``"cpu"``) or in a temporary folder (``"disk"``, under
    ``snapshot_dir``): see :mod:`lrtool.snapshot`; each training starts from it.
    """
    from lrtool.schedules import build_schedule, get_spec

    check_api_inputs(optimizer, train_loader, model)
    options = loop_options(options, accumulation_steps, amp, grad_clip)
    for name, value in (("lr", lr), ("onecycle_max_lr", onecycle_max_lr)):
        if value is not None and not (
            isinstance(value, int | float) and math.isfinite(value) and value > 0
        ):
            raise usage_error(f"verify_lr: {name} must be a positive finite number, got {value!r}")
    if lr is None and (budget is None or search_span is None):
        raise usage_error(
            "verify_lr: give lr, the LR to verify (or, with a budget, search_span: where to "
            "search when there is no LR to start from)"
        )
    check_mode(snapshot)
    if snapshot == "none":
        raise usage_error(
            "snapshot: the search restores the model before each training; use "
            "snapshot='cpu' or 'disk' (or budget 0)"
        )
    keep = (snapshot, snapshot_dir)
    loop = TrainingLoop(model, optimizer, loss_fn, step_fn=step_fn, options=options, device=device)
    if budget is not None:
        return _search(
            loop, train_loader, lr, budget, target_steps, val_loader, val_batches, search_span,
            keep,
        )  # fmt: skip
    if steps < 5:
        raise usage_error(f"verify steps: must be at least 5, got {steps}")
    offsets = tuple(offsets)
    if not offsets:
        raise usage_error("verify offsets: give at least one")
    trials = _Trials.start(loop, train_loader, val_loader, val_batches, keep)
    result = VerifyResult(monitor=trials.monitor)
    started = time.perf_counter()
    with _stops_recorded(result, trials):
        for use, centre in (("constant", lr), ("onecycle", onecycle_max_lr)):
            if centre is None:
                continue
            for candidate in candidate_lrs(centre, offsets):
                params = {get_spec(use).lr_param: candidate}
                schedule = build_schedule(use, {**params, "total_steps": steps})
                losses, score, _ = trials.train(schedule, steps)
                result.steps_spent += len(losses)
                result.candidates.append(Candidate(use, candidate, score, len(losses)))
    if result.interrupted or result.failed:
        return result
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
    loop: TrainingLoop,
    train_loader: Iterable,
    lr: float | None,
    budget: float,
    target_steps: int | None,
    val_loader: Iterable | None,
    val_batches: int,
    span: tuple[float, float] | None = None,
    keep: tuple[str, str | Path | None] = ("cpu", None),
) -> VerifyResult:
    """The budgeted search (see :func:`verify_lr`); each score is one constant-LR training."""
    from lrtool.schedules import build_schedule
    from lrtool.search import (
        check_budget,
        fallback_params_for_budget,
        params_for_budget,
        plan_search,
        predicted_full_length,
        run_search,
    )

    check_budget(budget, target_steps, require_target=True)
    assert target_steps is not None
    result = VerifyResult(
        monitor="train" if val_loader is None else f"val ({val_batches} batches)",
        budget=budget,
        target_steps=target_steps,
    )
    plan = None
    if lr is not None:
        params = params_for_budget(budget)
        if params is not None:
            plan = plan_search(lr, budget, target_steps, params)
    elif span is not None:  # the curve gave no number: the bracket (search.fallback_span)
        params = fallback_params_for_budget(budget)
        if params is not None:
            plan = plan_search(math.nan, budget, target_steps, params, span)
    if plan is None:
        return result
    trials = _Trials.start(loop, train_loader, val_loader, val_batches, keep)
    started = time.perf_counter()
    untrained = math.inf

    def score(candidate: float, steps: int) -> tuple[float, float]:
        nonlocal untrained
        schedule = build_schedule("constant", {"lr": candidate, "total_steps": steps})
        losses, value, halfway = trials.train(schedule, steps)
        result.steps_spent += len(losses)
        if losses and not math.isfinite(untrained) and val_loader is None:
            untrained = losses[0]  # the first batch's loss stands in for the untrained model
        predicted = predicted_full_length(value, halfway, steps, target_steps)
        result.candidates.append(
            Candidate("constant", candidate, value, len(losses), 0, halfway, predicted)
        )
        return (value if math.isfinite(value) else math.inf), halfway

    with _stops_recorded(result, trials):
        if val_loader is not None:
            untrained = trials.val_loss()
        outcome = run_search(plan, score, untrained)
    if result.interrupted or result.failed:
        return result
    for candidate, trial in zip(result.candidates, outcome.trials, strict=True):
        candidate.rung, candidate.explored = trial.rung, trial.explored
    result.lr, result.onecycle_max_lr = outcome.lr, outcome.onecycle_max_lr
    result.winner, result.predicted = outcome.winner, outcome.predicted
    result.kept_curve = outcome.kept_curve
    result.elapsed_s = time.perf_counter() - started
    return result


@contextlib.contextmanager
def _stops_recorded(result: VerifyResult, trials: _Trials) -> Iterator[None]:
    """Around candidate trainings: a stop signal or an error (user code, torch) is recorded
    on ``result`` with the candidates tried so far, and the initial state is restored."""
    try:
        yield
    except KeyboardInterrupt:
        result.interrupted = True
    except Exception as exc:
        result.failed = describe_exception(exc)
    finally:
        trials.restore()
        trials.snapshot.close()


@dataclass
class _Trials:
    """Candidate trainings from one initial state: each restores the weights, the optimizer
    state and the loader's batch order, trains, and scores (validation loss, else the mean
    training loss of the last 20% of steps; NaN when the loss turned non-finite)."""

    loop: TrainingLoop
    loader: Iterable
    val_loader: Iterable | None
    val_batches: int
    snapshot: StateSnapshot
    first_pass: int | None  # TensorBatches: the same order each time

    @classmethod
    def start(
        cls,
        loop: TrainingLoop,
        loader: Iterable,
        val_loader: Iterable | None,
        val_batches: int,
        keep: tuple[str, str | Path | None] = ("cpu", None),
    ) -> _Trials:
        snapshot = StateSnapshot.take(loop.model, loop.optimizer, *keep)
        assert snapshot is not None  # verify_lr refuses snapshot="none"
        return cls(loop, loader, val_loader, val_batches, snapshot, getattr(loader, "passes", None))

    @property
    def monitor(self) -> str:
        return "train" if self.val_loader is None else f"val ({self.val_batches} batches)"

    def restore(self) -> None:
        self.snapshot.restore(self.loop.model, self.loop.optimizer)
        if self.first_pass is not None:
            self.loader.passes = self.first_pass  # type: ignore[attr-defined]

    def val_loss(self) -> float:
        assert self.val_loader is not None
        return self.loop.evaluate(self.val_loader, self.val_batches).loss

    def train(self, schedule: Any, steps: int) -> tuple[list[float], float, float]:
        """(the losses, the score, the score after ``steps // 2`` steps) of ``steps`` steps of
        ``schedule`` from the initial state; the scores are NaN when a loss turned
        non-finite (the halfway one also when the run is too short to have one)."""
        from lrtool.schedules.torch_adapter import LrtoolScheduler

        self.restore()
        phase_started("search")
        driver = LrtoolScheduler(self.loop.optimizer, schedule)
        losses: list[float] = []
        half = steps // 2
        halfway = math.nan

        def record(t: int, lr: float, loss: float, value: float) -> None:
            nonlocal halfway
            losses.append(loss)
            if t + 1 == half and math.isfinite(loss):
                halfway = self.score(losses)

        self.loop.run(cycle(self.loader), steps, driver.apply, record)
        if len(losses) < steps or not all(map(math.isfinite, losses)):
            return losses, math.nan, math.nan
        return losses, self.score(losses), halfway

    def score(self, losses: list[float]) -> float:
        """The validation loss now, or the mean training loss of the last 20% of ``losses``
        (already the mean over ranks under DDP)."""
        if self.val_loader is not None:
            return self.val_loss()
        tail = losses[-max(1, int(len(losses) * TAIL)) :]
        return sum(tail) / len(tail)
