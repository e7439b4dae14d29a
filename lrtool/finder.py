"""The LR range test: train briefly while the LR grows, and record the loss at each LR.

:func:`find_lr` is the engine behind ``lrtool find`` and the public Python API. It returns a
:class:`RangeTestResult` and never prints; progress goes through an optional callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrtool.errors import LrtoolError, describe_exception, usage_error
from lrtool.loop import (
    LoopOptions,
    Progress,
    StepFn,
    TrainingLoop,
    check_api_inputs,
    cycle,
    loop_options,
)
from lrtool.schedules.torch_adapter import group_ratios
from lrtool.search import check_budget
from lrtool.settings import restarts_need_a_snapshot
from lrtool.snapshot import StateSnapshot, check_mode
from lrtool.suggest import DebiasedEma, Recommendation, lrtool_constant, recommend, run_rules

__all__ = [
    "Progress",
    "RangeTestInterrupted",
    "RangeTestResult",
    "FindPlan",
    "RangeTestFailed",
    "StepFn",
    "find_lr",
    "lr_ladder",
    "merge_sweeps",
]


def lr_ladder(start_lr: float, end_lr: float, steps: int, mode: str = "exp") -> list[float]:
    """The LR of each step: ``start * (end/start)^(i/(N-1))`` (exp) or
    ``start + (end - start) * i/(N-1)`` (linear), so step 0 is exactly ``start_lr`` and step
    N-1 exactly ``end_lr``.

    >>> lr_ladder(1e-3, 1e-1, 3)
    [0.001, 0.01, 0.1]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise usage_error(f"find.steps: must be an integer of at least 2, got {steps!r}")
    if not (math.isfinite(start_lr) and math.isfinite(end_lr)):
        raise usage_error(f"find.start_lr/end_lr: must be finite (got {start_lr:g}, {end_lr:g})")
    if not (0 < start_lr < end_lr):
        raise usage_error(
            f"find.end_lr: must be greater than find.start_lr > 0 (got {start_lr:g}, {end_lr:g})"
        )
    if mode not in ("exp", "linear"):
        raise usage_error(f"find.mode: must be exp or linear, got {mode!r}")
    last = steps - 1
    if mode == "exp":
        ratio = end_lr / start_lr
        if math.isfinite(ratio):
            lrs = [start_lr * ratio ** (i / last) for i in range(steps)]
        else:  # more than ~308 decades: the same ladder, computed in logs
            low, span = math.log(start_lr), math.log(end_lr) - math.log(start_lr)
            lrs = [math.exp(low + span * i / last) for i in range(steps)]
    else:
        lrs = [start_lr + (end_lr - start_lr) * (i / last) for i in range(steps)]
    lrs[0], lrs[-1] = start_lr, end_lr
    return lrs


def is_diverged(smoothed: float, best: float, threshold: float) -> bool:
    """Whether the smoothed loss has left the best so far by ``threshold`` times.

    For positive losses this is ``smoothed > threshold * best``; the form
    ``smoothed > best + (threshold - 1) * |best|`` keeps its meaning for negative losses.
    """
    return smoothed > best + (threshold - 1) * abs(best)


@dataclass
class RangeTestResult:
    """The curve of a range test and what it suggests. Plain data: it never prints."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stop_reason: str
    steps_requested: int
    start_lr: float
    end_lr: float
    mode: str
    suggestions: dict[str, float | None] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    group_lrs: list[list[float]] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False
    monitor: str = "train"
    read_curve: str = ""  # the curve the suggestion was read from (monitor, or "train")
    repeat_lrs: list[float | None] = field(default_factory=list)  # per sweep, with repeats
    coarse: RangeTestResult | None = None  # the first sweep, when this one refines it
    refined_because: str = ""
    verification: Any = None  # a lrtool.verify.VerifyResult with find --verify

    failed: str | None = None  # why the run failed after some steps (user code, torch)
    discarded_steps: int = 0  # a second sweep that could not be read, and was not kept
    optimizer_group: str = "sgd"  # adaptive | sgd: which of lrtool's fitted rules reads it
    # Set by lrtool find: what the run read and where ({'data': ..., 'device': ...}).
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_total(self) -> int:
        """Training steps spent, the first sweep included when this result refines it."""
        first = self.coarse.steps_total if self.coarse else 0
        return self.steps_run + first + self.discarded_steps

    @property
    def lr(self) -> float | None:
        """The recommended constant LR, or None when the curve cannot support one."""
        return self.recommendation.lr if self.recommendation else None

    @property
    def onecycle_max_lr(self) -> float | None:
        """The recommended peak LR of a 1cycle schedule, or None."""
        return self.recommendation.onecycle_max_lr if self.recommendation else None

    @property
    def steps_run(self) -> int:
        return len(self.lrs)

    @property
    def lagfree(self) -> list[float]:
        """The lag-free curve the suggestion rules read (NaN past the first non-finite loss);
        ``smoothed`` is the debiased EMA that watches for divergence."""
        from lrtool.suggest import lagfree_curve

        return lagfree_curve(self.lrs, self.losses)

    def __repr__(self) -> str:
        rec = self.recommendation
        confidence = rec.confidence if rec else "none"
        shown = "None" if self.lr is None else f"{self.lr:.3g}"
        peak = "None" if self.onecycle_max_lr is None else f"{self.onecycle_max_lr:.3g}"
        flags = " interrupted" if self.interrupted else (" failed" if self.failed else "")
        return (
            f"RangeTestResult(lr={shown}, onecycle_max_lr={peak}, confidence={confidence}, "
            f"steps={self.steps_run}/{self.steps_requested}{flags}, "
            f"stop={self.stop_reason!r})"
        )

    @property
    def group_lr(self) -> list[float | None]:
        """The suggested constant LR for each param group (their ratios kept)."""
        if self.lr is None or not self.lrs:
            return [None] * max(1, len(self.group_lrs))
        return [self.lr * (g[0] / self.lrs[0]) for g in self.group_lrs] or [self.lr]

    def plot(self, ax: Any = None) -> Any:
        """A matplotlib Axes: the raw losses (points), the curve the rules read (line), and
        the suggestions marked; log-scale LRs for an exponential sweep. Needs matplotlib."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise LrtoolError("result.plot needs matplotlib: pip install matplotlib") from None
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        from lrtool.png import draw_range_test

        draw_range_test(ax, self, curve_label="curve the rules read")
        return ax

    def to_dict(self) -> dict[str, Any]:
        """Everything in the result as plain data (see :meth:`save`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeTestResult:
        """The result :meth:`to_dict` gave, checked whole: a file that was edited or mixed
        from two runs is one :class:`LrtoolError` naming what does not fit, not figures that
        fail or mislead later. JSON ``null`` in a curve is NaN (a step that diverged)."""
        from lrtool.verify import Candidate, VerifyResult

        values = _checked_result_fields(data)
        if values.get("recommendation") is not None:
            values["recommendation"] = Recommendation(**values["recommendation"])
        if values.get("coarse") is not None:
            values["coarse"] = cls.from_dict(values["coarse"])
        checked = values.get("verification")
        if checked is not None:
            checked = dict(checked)
            candidates = [Candidate(**_nan_for_null(c)) for c in checked.pop("candidates", [])]
            values["verification"] = VerifyResult(candidates=candidates, **_nan_for_null(checked))
        try:
            return cls(**values)
        except TypeError as exc:
            raise LrtoolError(f"not a range-test result: {exc}") from None

    def save(self, path: str | Path) -> Path:
        """Write the result to a JSON file (atomically, NaN as null, like every JSON lrtool
        writes); :meth:`load` reads it back equal."""
        from lrtool.outputs import json_text, write_atomic

        return write_atomic(Path(path), json_text(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> RangeTestResult:
        """Read a result written by :meth:`save` (checked: see :meth:`from_dict`)."""
        from lrtool.errors import check_input_file

        check_input_file(Path(path), "range-test result")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LrtoolError(f"cannot read a range-test result from {path}: {exc}") from None
        try:
            return cls.from_dict(data)
        except LrtoolError as exc:
            raise LrtoolError(f"{path}: {exc.message}") from None

    def rows(self) -> list[dict[str, float | int]]:
        return [
            {"step": i, "lr": lr, "loss": loss, "smoothed_loss": s, "lagfree_loss": c}
            for i, (lr, loss, s, c) in enumerate(
                zip(self.lrs, self.losses, self.smoothed, self.lagfree, strict=True)
            )
        ]

    def to_frame(self) -> Any:
        """A pandas DataFrame with columns ``step, lr, loss, smoothed_loss, lagfree_loss``."""
        import pandas as pd

        columns = ["step", "lr", "loss", "smoothed_loss", "lagfree_loss"]
        return pd.DataFrame(self.rows(), columns=columns)


class RangeTestInterrupted(KeyboardInterrupt):
    """Ctrl-C during a range test: the state is restored and the partial result is attached."""

    def __init__(self, result: RangeTestResult) -> None:
        super().__init__("range test interrupted")
        self.result = result


class RangeTestFailed(LrtoolError):
    """An error after the range test had taken steps (the model raised, say): the state is
    restored, and the curve up to the failure is attached."""

    def __init__(self, result: RangeTestResult) -> None:
        super().__init__(f"the range test failed: {result.failed}")
        self.result = result


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


def find_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    mode: str = "exp",
    smoothing: float = 0.95,
    diverge_threshold: float = 4.0,
    refine: bool | str = "auto",
    step_fn: StepFn | None = None,
    accumulation_steps: int | None = None,
    grad_clip: float | None = None,
    amp: str | None = None,
    device: str | torch.device | None = None,
    val_loader: Iterable | None = None,
    val_batches: int = 4,
    restore: bool = True,
    progress: Progress | bool | None = None,
    budget: float | None = None,
    target_steps: int | None = None,
    monitor: str | None = None,
    repeats: int = 1,
    snapshot: str = "cpu",
    snapshot_dir: str | Path | None = None,
    options: LoopOptions | None = None,
) -> RangeTestResult:
    """Run an LR range test and return its curve and suggestions.

    Step i of N trains one optimizer step at ``lr_ladder(start_lr, end_lr, N, mode)[i]``; the
    loss is smoothed with a debiased EMA (``smoothing`` is its beta, 0 turns it off); the run
    stops early when a loss is NaN/Inf or the smoothed loss exceeds ``diverge_threshold``
    times the best so far. Several param groups keep their LR ratio to the first group
    with an LR above 0 (a group at LR 0 stays at 0).

    ``refine="auto"`` (the default) runs a second sweep of ``steps`` steps, from the same
    weights, over the 3.5 decades below where the first one diverged, when the first curve is
    too weak to read (see :func:`lrtool.suggest.refinement_reason`): a sweep of 8 decades
    gives the model only a few steps in the decades that matter, too few for slow starters
    such as CNNs or RMSprop to show a drop. ``True`` always refines, ``False`` never. The
    refined curve is the result; the first sweep is kept as ``result.coarse``.

    Batches may be ``(inputs, targets)`` tuples, dicts passed as ``model(**batch)``, or anything
    a ``step_fn(model, batch) -> loss`` understands; a model that returns its own loss (``.loss``
    or ``"loss"``) needs no ``loss_fn``. How each optimizer step is taken is
    :class:`lrtool.loop.LoopOptions` (``options``; ``accumulation_steps``, ``amp`` and
    ``grad_clip`` are shortcuts for its fields): micro-batches per step (the logged loss is
    their mean), ``"bf16"``/``"fp16"`` autocast (GradScaler for fp16 on CUDA), a cap on the
    gradient norm. With ``monitor="val"`` the
    monitored loss is the mean over the first ``val_batches`` validation batches after each
    step (that many forward passes a step), as torch-lr-finder's val mode; the training loss
    is recorded too, and read where the validation curve gives no number. ``monitor="train"``
    watches the training loss and keeps ``val_loader`` for the search. ``monitor=None`` (the
    default) is :func:`default_monitor`: ``"val"`` when ``val_loader`` is given, else
    ``"train"``.

    The budgeted search (:func:`lrtool.verify.verify_lr` with ``budget``) follows when
    ``budget`` > 0: constant-LR trainings seeded by the curve's suggestion, at most ``budget``
    times ``target_steps`` steps in all (``target_steps``: the length of the training the LR
    is for), scored on the first :data:`lrtool.verify.SEARCH_VAL_BATCHES` batches of
    ``val_loader`` when given (one score a candidate, so more than the sweep's per-step
    ``val_batches``); its LRs become
    ``result.lr`` and ``result.onecycle_max_lr`` and ``result.verification`` says what was
    spent. ``budget=None`` (the default) is :data:`lrtool.search.DEFAULT_BUDGET` when
    ``target_steps`` is given and 0 (the curve alone) when it is not: what ``lrtool find`` does.

    ``repeats=K`` runs K sweeps from the same state (a shuffling loader gives each its own
    data order) and reads their median curve; the spread of their suggestions feeds the
    confidence. ``progress=True`` shows a progress bar (a callable gets each step instead).

    Model weights, optimizer state, train/eval modes and the RNG state are restored afterwards
    (``restore=True``), also when the sweep raises or is interrupted. ``snapshot`` says where
    the state is kept meanwhile: ``"cpu"`` (one host copy), ``"disk"`` (a temporary folder
    under ``snapshot_dir``, for models that do not fit twice in host memory) or ``"none"``
    (nothing kept, nothing restored, no second sweep: for users who reload the model
    themselves); see :mod:`lrtool.snapshot`. A model sharded with FSDP2 keeps and restores each
    rank's own shards. Ctrl-C raises :class:`RangeTestInterrupted` carrying the partial result.
    """
    check_api_inputs(optimizer, train_loader, model)
    options = loop_options(options, accumulation_steps, amp, grad_clip)
    plan = FindPlan.checked(
        lr_ladder(start_lr, end_lr, steps, mode), start_lr, end_lr, mode, smoothing,
        diverge_threshold, refine, val_loader, val_batches, monitor, budget, target_steps,
        repeats, snapshot, snapshot_dir, restore,
    )  # fmt: skip
    if any("initial_lr" in g for g in optimizer.param_groups):
        raise LrtoolError(
            "the optimizer already has an LR scheduler attached (its param groups carry "
            "'initial_lr'); give the range test an optimizer without a scheduler"
        )
    loop = TrainingLoop(model, optimizer, loss_fn, step_fn=step_fn, options=options, device=device)
    first_pass = getattr(train_loader, "passes", None)  # a replayable loader (TensorBatches)
    with _step_progress(progress) as step_progress:
        if plan.repeats == 1:
            result = sweep_and_refine(loop, train_loader, val_loader, plan, step_progress)
        else:
            result = repeated_sweeps(loop, train_loader, val_loader, plan, step_progress)
    raise_if_stopped(result)
    if plan.budget > 0 and result.lrs:
        from lrtool.verify import SEARCH_VAL_BATCHES, search_after_sweep

        assert plan.target_steps is not None
        if first_pass is not None:
            # The candidates train on the batches the sweep started from, not on the ones
            # after it: the same batches whichever sweeps (refine, repeats) came before.
            train_loader.passes = first_pass  # type: ignore[attr-defined]
        search_after_sweep(
            result, model, optimizer, train_loader, loss_fn, plan.budget, plan.target_steps,
            search_span(result, plan.budget),
            val_loader=val_loader, val_batches=SEARCH_VAL_BATCHES, step_fn=step_fn,
            options=options, device=device, snapshot=plan.snapshot,
            snapshot_dir=plan.snapshot_dir,
        )  # fmt: skip
        raise_if_stopped(result)
    return result


@dataclass(frozen=True)
class FindPlan:
    """The checked settings of one :func:`find_lr` call: the ladder and how to read it, the
    repeats, the search and the snapshot."""

    ladder: list[float]
    start_lr: float
    end_lr: float
    mode: str
    smoothing: float
    diverge_threshold: float
    refine: bool | str
    monitor: str  # train | val
    val_batches: int
    budget: float  # 0: the curve alone
    target_steps: int | None
    repeats: int
    snapshot: str
    snapshot_dir: str | Path | None
    restore: bool

    @classmethod
    def checked(
        cls,
        ladder: list[float],
        start_lr: float,
        end_lr: float,
        mode: str,
        smoothing: float,
        diverge_threshold: float,
        refine: bool | str,
        val_loader: Iterable | None,
        val_batches: int,
        monitor: str | None,
        budget: float | None,
        target_steps: int | None,
        repeats: int,
        snapshot: str,
        snapshot_dir: str | Path | None,
        restore: bool,
    ) -> FindPlan:
        """One line naming the argument for each value :func:`find_lr` cannot use."""
        from lrtool.search import default_budget

        check_mode(snapshot)
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise usage_error(f"repeats: must be an integer >= 1, got {repeats!r}")
        if budget is None:
            budget = default_budget(target_steps)
        check_budget(budget, target_steps)
        if restarts_need_a_snapshot(snapshot, budget, repeats):
            raise usage_error(
                "snapshot: none keeps no state, but the budgeted search and repeats restore "
                "the model between runs; use snapshot='cpu' or 'disk' (or budget=0)"
            )
        if isinstance(val_batches, bool) or not isinstance(val_batches, int) or val_batches < 1:
            raise usage_error(f"val_batches: must be an integer >= 1, got {val_batches!r}")
        if not 0 <= smoothing < 1:
            raise usage_error(f"smoothing: must be in [0, 1), got {smoothing}")
        if not diverge_threshold > 1:
            raise usage_error(f"diverge_threshold: must be > 1, got {diverge_threshold}")
        if refine not in (True, False, "auto"):
            raise usage_error(f"refine: must be True, False or 'auto', got {refine!r}")
        if monitor is None:
            monitor = default_monitor(val_loader is not None, budget)
        if monitor not in ("train", "val"):
            raise usage_error(f"monitor: must be train or val, got {monitor!r}")
        if monitor == "val" and val_loader is None:
            raise usage_error("monitor: val needs validation batches (val_loader)")
        return cls(
            ladder, start_lr, end_lr, mode, smoothing, diverge_threshold, refine, monitor,
            val_batches, float(budget), target_steps, repeats, snapshot, snapshot_dir, restore,
        )  # fmt: skip


def default_monitor(has_val: bool, budget: float = 0.0) -> str:
    """What the sweep watches unless told: the validation batches when there are some (their
    curve is read first, and the training loss recorded by the same sweep where it cannot be:
    :func:`attach_suggestions`), else the training loss; whatever the budget. Chosen out of
    fold on the suggestion suite (docs/suggestion-quality.md, "What the sweep watches")."""
    return "val" if has_val else "train"


def sweep_and_refine(
    loop: TrainingLoop,
    train_loader: Iterable,
    val_loader: Iterable | None,
    plan: FindPlan,
    progress: Progress | None,
) -> RangeTestResult:
    """One sweep up the plan's ladder, then the second, denser sweep when the first curve is
    too weak to read; the state is restored after each, and the suggestions attached."""
    model, optimizer = loop.model, loop.optimizer
    watched = None
    if plan.monitor == "val":
        assert val_loader is not None

        def watched() -> float:
            return loop.evaluate(val_loader, plan.val_batches).loss

    name = "train" if watched is None else f"val ({plan.val_batches} batches)"

    def sweep(ladder: list[float], low: float, high: float, mode: str) -> RangeTestResult:
        return _sweep(
            loop, ladder, train_loader, low, high, mode, plan.smoothing, plan.diverge_threshold,
            watched, name, progress,
        )  # fmt: skip

    keep = (plan.snapshot, plan.snapshot_dir)
    kept = StateSnapshot.take(model, optimizer, *keep) if plan.restore else None
    try:
        result = sweep(plan.ladder, plan.start_lr, plan.end_lr, plan.mode)
        stopped = result.interrupted or result.failed
        reason = None if stopped else _refine_reason(result, plan.refine, kept)
        if reason is not None:
            assert kept is not None
            kept.restore(model, optimizer)
            low, high = refine_range(result)
            second = sweep(lr_ladder(low, high, len(plan.ladder), "exp"), low, high, "exp")
            result = _refined(result, second, reason, low, high)
    finally:
        if kept is not None:
            kept.restore(model, optimizer)
            kept.close()
    result.optimizer_group = optimizer_group(optimizer)
    if result.coarse is not None:
        result.coarse.optimizer_group = result.optimizer_group
    attach_suggestions(result)
    return result


def _refined(
    first: RangeTestResult, second: RangeTestResult, reason: str, low: float, high: float
) -> RangeTestResult:
    """The second sweep with the first kept as its ``coarse``, unless the second cannot be
    read where the first could (then the first, with the second's steps counted)."""
    finished = not (second.interrupted or second.failed)
    if finished and _unreadable(second) and not _unreadable(first):
        first.discarded_steps = second.steps_run
        first.elapsed_s += second.elapsed_s
        first.refined_because = (
            f"{reason}; a second sweep over {low:.3g}..{high:.3g} could not be read "
            f"either, so the first curve is kept"
        )
        return first
    second.coarse = first
    second.refined_because = reason
    second.elapsed_s += first.elapsed_s
    return second


def repeated_sweeps(
    loop: TrainingLoop,
    train_loader: Iterable,
    val_loader: Iterable | None,
    plan: FindPlan,
    progress: Progress | None,
) -> RangeTestResult:
    """``plan.repeats`` sweeps from the same state (a shuffling loader gives each its own data
    order), merged into their median curve (:func:`merge_sweeps`). A stop keeps the sweeps so
    far, merged and marked; a failed sweep is the result."""
    runs: list[RangeTestResult] = []
    for _ in range(plan.repeats):
        run = sweep_and_refine(loop, train_loader, val_loader, plan, progress)
        if run.failed:
            return run
        runs.append(run)
        if run.interrupted:
            merged = merge_sweeps(runs)
            merged.interrupted = True
            return merged
    return merge_sweeps(runs)


def raise_if_stopped(result: RangeTestResult) -> None:
    """:class:`RangeTestInterrupted` or :class:`RangeTestFailed` when the result (the sweep,
    or the search after it) was stopped; they carry it."""
    if result.interrupted:
        raise RangeTestInterrupted(result)
    if result.failed:
        raise RangeTestFailed(result)


@contextlib.contextmanager
def _step_progress(progress: Progress | bool | None) -> Iterator[Progress | None]:
    """The per-step callback: a rich bar for ``progress=True``, the callable as it is."""
    if progress is True:
        with progress_bar() as bar:
            yield bar
    else:
        yield progress if callable(progress) else None


@contextlib.contextmanager
def progress_bar() -> Iterator[Progress]:
    """``find_lr(progress=True)``: a rich progress bar on stderr (notebooks show it too); where
    stderr is not a terminal (a CI log, a file), a plain line at every tenth of the sweep."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from lrtool.progress import plain_progress

    console = Console(stderr=True)
    if not (console.is_terminal or console.is_jupyter):
        yield plain_progress(sys.stderr)
        return
    bar = Progress(
        TextColumn("range test"), BarColumn(), TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(), transient=True, console=console,
    )  # fmt: skip
    task = bar.add_task("range test", total=None, info="")

    def update(step: int, total: int, lr: float, loss: float) -> None:
        bar.update(task, completed=step + 1, total=total, info=f"lr {lr:.2e} loss {loss:.4f}")

    with bar:
        yield update


REFINE_DECADES = 3.5  # width of the second sweep, below where the first one diverged


def refine_range(first: RangeTestResult) -> tuple[float, float]:
    """The LRs of the second sweep: 3.5 decades up to twice where the first one stopped."""
    finite = [lr for lr, loss in zip(first.lrs, first.losses, strict=True) if math.isfinite(loss)]
    diverged = first.steps_run < first.steps_requested
    high = min(first.end_lr, 2 * finite[-1]) if diverged and finite else first.end_lr
    low = max(first.start_lr, high / 10**REFINE_DECADES)
    if first.mode != "exp" or low >= high:
        low = first.start_lr
    return low, high


def sweep_stop(result: RangeTestResult) -> float:
    """Where the first sweep stopped: its last LR with a finite loss (where it diverged, or
    its end); the first sweep's when a second one refined it."""
    first = result.coarse or result
    finite = [lr for lr, loss in zip(first.lrs, first.losses, strict=True) if math.isfinite(loss)]
    return finite[-1] if finite else first.start_lr


def search_span(result: RangeTestResult, budget: float) -> tuple[float, float] | None:
    """Where a budgeted search looks when the curve gave no number: the bracket of
    :func:`lrtool.search.fallback_span` below where the sweep stopped."""
    from lrtool.search import fallback_span

    return fallback_span(sweep_stop(result), budget)


def _refine_reason(
    result: RangeTestResult, refine: bool | str, snapshot: StateSnapshot | None
) -> str | None:
    from lrtool.suggest import MIN_POINTS, refinement_reason

    finite = sum(1 for v in result.losses if math.isfinite(v))
    if refine is False or snapshot is None or finite < MIN_POINTS:
        return None  # too short a curve to say where a second sweep should look
    if refine is True:
        return "asked for (refine=True)"
    low, high = refine_range(result)
    if math.log10(high / low) > math.log10(result.end_lr / result.start_lr) - 1:
        return None  # a second sweep would not be much denser than the first
    return refinement_reason(result.lrs, result.losses)


def _unreadable(result: RangeTestResult) -> bool:
    from lrtool.suggest import curve_features

    return isinstance(curve_features(result.lrs, result.losses), str)


def _sweep(
    loop: TrainingLoop,
    ladder: list[float],
    loader: Iterable,
    start_lr: float,
    end_lr: float,
    mode: str,
    smoothing: float,
    diverge_threshold: float,
    monitor: Callable[[], float] | None,
    monitor_name: str,
    progress: Progress | None,
) -> RangeTestResult:
    """One pass up an LR ladder (no state restore here): the loop with an LR per step, the
    debiased EMA of the monitored loss, and the divergence stop."""
    optimizer = loop.optimizer
    ratios = group_ratios(optimizer.param_groups)
    groups = list(zip(optimizer.param_groups, ratios, strict=True))
    lrs: list[float] = []
    losses: list[float] = []
    train_losses: list[float] = []
    smoothed: list[float] = []
    ema = DebiasedEma(smoothing)
    best = math.inf
    excess = diverge_threshold - 1

    def lr_at(i: int) -> float:
        lr = ladder[i]
        for group, ratio in groups:
            group["lr"] = lr * ratio
        return lr

    def observe(i: int, lr: float, train_loss: float, value: float) -> str | None:
        nonlocal best
        lrs.append(lr)
        losses.append(value)
        train_losses.append(train_loss)
        if not math.isfinite(value):
            smoothed.append(math.nan)
            return None  # the loop stops on it
        current = ema.update(value)
        smoothed.append(current)
        if current > best + excess * abs(best):  # is_diverged, inlined (hot path)
            return (
                f"diverged at step {i}, lr {lr:.3g}: smoothed loss {current:.4g} > "
                f"{diverge_threshold:g} x best {best:.4g}"
            )
        if current < best:
            best = current
        return None

    interrupted = False
    failed = None
    started = time.perf_counter()
    try:
        stop_reason = loop.run(
            cycle(loader), len(ladder), lr_at, observe, monitor=monitor, progress=progress
        )
    except KeyboardInterrupt:
        interrupted = True
        stop_reason = f"interrupted at step {len(lrs)}"
    except Exception as exc:  # user code or torch, after the run started: keep the curve
        if not lrs:
            raise
        failed = describe_exception(exc)
        stop_reason = f"failed at step {len(lrs)}: {failed}"
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        stop_reason=stop_reason,
        steps_requested=len(ladder),
        start_lr=start_lr,
        end_lr=end_lr,
        mode=mode,
        group_lrs=[[lr * r for lr in lrs] for r in ratios],
        train_losses=train_losses,
        elapsed_s=time.perf_counter() - started,
        interrupted=interrupted,
        monitor=monitor_name,
        failed=failed,
    )


def attach_suggestions(result: RangeTestResult, repeat_lrs: list[float] | None = None) -> None:
    """Run every suggestion rule on the curve and choose the recommendation. A sweep that
    watched validation batches records the training loss too; where the validation curve
    gives no number (flat, noise), the rules read the training-loss curve of the same sweep,
    and the reason says so (``result.read_curve``)."""
    group = result.optimizer_group
    result.suggestions = run_rules(result.lrs, result.losses, group)
    rec = recommend(result.lrs, result.losses, result.suggestions, repeat_lrs, group)
    result.read_curve = result.monitor
    if rec.lr is None and result.monitor != "train" and len(result.train_losses) == len(result.lrs):
        found = run_rules(result.lrs, result.train_losses, group)
        fallback = recommend(result.lrs, result.train_losses, found, repeat_lrs, group)
        if fallback.lr is not None:
            why = "; ".join(rec.warnings) or "unreadable"
            fallback.reason = (
                f"the {result.monitor} curve gave no number ({why}), so the training loss of "
                f"the same sweep was read: {fallback.reason}"
            )
            result.suggestions, rec, result.read_curve = found, fallback, "train"
    result.recommendation = rec


def optimizer_group(optimizer: torch.optim.Optimizer) -> str:
    """``"sgd"`` for torch's SGD (with or without momentum), ``"adaptive"`` for every other
    optimizer (Adam, AdamW, RMSprop, Adagrad and the like scale each parameter's step)."""
    return "sgd" if isinstance(optimizer, torch.optim.SGD) else "adaptive"


def merge_sweeps(runs: list[RangeTestResult]) -> RangeTestResult:
    """Sweeps of the same ladder merged step by step (``find.repeats``).

    The merged curve's loss at step i is the median over the sweeps that reached step i
    (kept while at least half of them did); the spread of the per-sweep suggestions feeds the
    confidence statement.
    """
    longest = max(runs, key=lambda r: r.steps_run)
    need = (len(runs) + 1) // 2
    lrs, losses, smoothed = [], [], []
    for i, lr in enumerate(longest.lrs):
        at = [r.losses[i] for r in runs if r.steps_run > i]
        if len(at) < need:
            break
        lrs.append(lr)
        losses.append(statistics.median(at))
        smoothed.append(statistics.median(r.smoothed[i] for r in runs if r.steps_run > i))
    merged = RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        stop_reason=f"median of {len(runs)} sweeps; " + "; ".join(r.stop_reason for r in runs),
        steps_requested=longest.steps_requested,
        start_lr=longest.start_lr,
        end_lr=longest.end_lr,
        mode=longest.mode,
        group_lrs=[g[: len(lrs)] for g in longest.group_lrs],
        elapsed_s=sum(r.elapsed_s for r in runs),
        monitor=longest.monitor,
        optimizer_group=longest.optimizer_group,
    )
    per_run = [lrtool_constant(r.lrs, r.losses, r.optimizer_group) for r in runs]
    attach_suggestions(merged, [v for v in per_run if v is not None])
    merged.repeat_lrs = per_run
    return merged


CURVE_FIELDS = ("lrs", "losses", "smoothed")


def _is_json_number(v: Any) -> bool:
    """A number as lrtool's JSON writes one: a number, null (NaN) or "inf"/"-inf"."""
    if v is None or v in ("inf", "-inf"):
        return True
    return isinstance(v, int | float) and not isinstance(v, bool)


def _nan_for_null(values: dict[str, Any]) -> dict[str, Any]:
    return {k: math.nan if v is None and k in ("score", "halfway", "predicted") else v
            for k, v in values.items()}  # fmt: skip


def _checked_result_fields(data: Any) -> dict[str, Any]:
    """The fields of a saved result, with every curve a list of numbers of one length, the
    sweep's range and LRs consistent, and the suggestion inside the sweep unless a search
    chose it; the first thing that does not fit is one LrtoolError."""
    if not isinstance(data, dict):
        raise LrtoolError(
            f"not a range-test result: a JSON object was expected, got {type(data).__name__}"
        )
    values = dict(data)
    for key in (*CURVE_FIELDS, "train_losses"):
        curve = values.get(key, [])
        if not isinstance(curve, list) or not all(map(_is_json_number, curve)):
            raise LrtoolError(f"'{key}' must be a list of numbers")
        values[key] = [math.nan if v is None else float(v) for v in curve]
    lengths = {key: len(values[key]) for key in CURVE_FIELDS}
    if len(set(lengths.values())) > 1:
        raise LrtoolError(f"the curves have different lengths ({lengths}): not one sweep's")
    start, end = values.get("start_lr"), values.get("end_lr")
    if not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in (start, end)):
        raise LrtoolError("'start_lr' and 'end_lr' must be positive numbers")
    if not start < end:  # type: ignore[operator]
        raise LrtoolError(f"'start_lr' ({start}) must be below 'end_lr' ({end})")
    tolerance = 1e-9 * end  # type: ignore[operator]
    if any(not (start - tolerance <= lr <= end + tolerance) for lr in values["lrs"]):  # type: ignore[operator]
        raise LrtoolError(f"'lrs' go outside the sweep's range {start:g}..{end:g}")
    if values.get("mode") not in ("exp", "linear"):
        raise LrtoolError(f"'mode' must be exp or linear, got {values.get('mode')!r}")
    requested = values.get("steps_requested")
    if not isinstance(requested, int) or requested < lengths["lrs"]:
        raise LrtoolError(
            f"'steps_requested' ({requested!r}) must be a count of at least the {lengths['lrs']} steps recorded"
        )
    rec = values.get("recommendation")
    searched = values.get("verification") is not None
    if rec is not None:
        if not isinstance(rec, dict):
            raise LrtoolError("'recommendation' must be an object")
        for key in ("lr", "onecycle_max_lr"):
            v = rec.get(key)
            if v is None:
                continue
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise LrtoolError(f"'recommendation.{key}' must be a positive number or null")
            if key == "lr" and not searched and not (start - tolerance <= v <= end + tolerance):  # type: ignore[operator]
                raise LrtoolError(
                    f"the suggested lr {v:g} is outside the sweep {start:g}..{end:g}, and no search chose it"
                )
    return values
