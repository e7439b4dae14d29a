"""The LR range test: train briefly while the LR grows, and record the loss at each LR.

:func:`find_lr` is the engine behind ``lrtool find`` and the public Python API. It returns a
:class:`RangeTestResult` and never prints; progress goes through an optional callback.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrtool.distributed import active_world_size, mean_over_ranks
from lrtool.errors import LrtoolError, usage_error
from lrtool.heartbeat import first_step_done
from lrtool.search import check_budget
from lrtool.suggest import Recommendation, recommend, run_rules

StepFn = Callable[[nn.Module, Any], torch.Tensor]
Progress = Callable[[int, int, float, float], None]


def lr_ladder(start_lr: float, end_lr: float, steps: int, mode: str = "exp") -> list[float]:
    """The LR of each step: ``start * (end/start)^(i/(N-1))`` (exp) or
    ``start + (end - start) * i/(N-1)`` (linear), so step 0 is exactly ``start_lr`` and step
    N-1 exactly ``end_lr``.

    >>> lr_ladder(1e-3, 1e-1, 3)
    [0.001, 0.01, 0.1]
    """
    if steps < 2:
        raise usage_error(f"find.steps: must be at least 2, got {steps}")
    if not (0 < start_lr < end_lr):
        raise usage_error(
            f"find.end_lr: must be greater than find.start_lr > 0 (got {start_lr:g}, {end_lr:g})"
        )
    if mode not in ("exp", "linear"):
        raise usage_error(f"find.mode: must be exp or linear, got {mode!r}")
    last = steps - 1
    if mode == "exp":
        ratio = end_lr / start_lr
        lrs = [start_lr * ratio ** (i / last) for i in range(steps)]
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
    repeat_lrs: list[float | None] = field(default_factory=list)  # per sweep, with repeats
    coarse: RangeTestResult | None = None  # the first sweep, when this one refines it
    refined_because: str = ""
    verification: Any = None  # a lrtool.verify.VerifyResult with find --verify

    discarded_steps: int = 0  # a second sweep that could not be read, and was not kept
    optimizer_group: str = "sgd"  # adaptive | sgd: which of lrtool's fitted rules reads it

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


# --------------------------------------------------------------------------------------------
# Batches, steps and state
# --------------------------------------------------------------------------------------------


def to_device(batch: Any, device: torch.device | None) -> Any:
    """Move every tensor inside a (nested) batch to ``device``."""
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple | list):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    return batch


def grad_resetter(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """``optimizer.zero_grad(set_to_none=True)``, bound once for a loop over the same groups.

    For an optimizer that keeps torch's own ``zero_grad``, this sets ``p.grad = None`` for its
    parameters directly: the same effect without the profiler record and dynamo guard torch
    wraps every call in (about 6 us, 2% of a small MLP's step on a CPU). Under an active
    ``torch.profiler`` it calls ``zero_grad`` itself, so that traces keep their labels. An
    optimizer that overrides ``zero_grad`` always gets its own.
    """
    profiling = getattr(torch.autograd, "_profiler_enabled", None)  # private: may go away
    if type(optimizer).zero_grad is not torch.optim.Optimizer.zero_grad or profiling is None:
        return functools.partial(optimizer.zero_grad, set_to_none=True)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    zero_grad = optimizer.zero_grad

    def reset() -> None:
        if profiling():
            zero_grad(set_to_none=True)
            return
        for p in params:
            p.grad = None

    return reset


def loss_from_output(output: Any) -> torch.Tensor | None:
    """The loss a model computed itself: a ``.loss`` attribute or a ``"loss"`` key."""
    if isinstance(output, Mapping) and "loss" in output:
        return output["loss"]
    loss = getattr(output, "loss", None)
    return loss if isinstance(loss, torch.Tensor) else None


def default_step(loss_fn: Callable[..., torch.Tensor] | None) -> StepFn:
    """The step used when none is given: ``(inputs, targets)`` tuples, dict batches passed as
    keyword arguments (``model(**batch)``), and models that return their own loss."""

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        # (inputs, targets) first: the common case, and a concrete-type check, where the
        # Mapping check below is an ABC lookup.
        if isinstance(batch, (tuple, list)) and len(batch) >= 2:
            output = model(batch[0])
            if loss_fn is None:
                own = loss_from_output(output)
                if own is None:
                    raise LrtoolError(
                        "no loss function was given and the model's output has no loss "
                        "(.loss or 'loss'); pass loss_fn or a step_fn(model, batch) -> loss"
                    )
                return own
            return loss_fn(_logits(output), batch[1])
        if isinstance(batch, Mapping):
            output = model(**batch)
            own = loss_from_output(output)
            if own is not None:
                return own
            target = next(
                (batch[k] for k in ("labels", "targets", "target", "y") if k in batch), None
            )
            if loss_fn is None or target is None:
                raise LrtoolError(
                    "the model's output has no loss (no .loss attribute or 'loss' key) and "
                    "there is no loss function and 'labels' key to compute one; pass loss_fn "
                    "or a step_fn(model, batch) -> loss"
                )
            return loss_fn(_logits(output), target)
        if isinstance(batch, torch.Tensor) and loss_fn is None:
            own = loss_from_output(model(batch))
            if own is not None:
                return own
        raise LrtoolError(
            f"cannot unpack a batch of type {type(batch).__name__} "
            f"({_describe(batch)}); the default step takes (inputs, targets) or a dict of "
            f"keyword arguments; pass step_fn(model, batch) -> loss for anything else"
        )

    return step


def _check_scalar(loss: Any) -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise LrtoolError(f"the step must return a scalar loss tensor, got {_describe(loss)}")


def _logits(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    return getattr(output, "logits", output)


def _describe(batch: Any) -> str:
    if isinstance(batch, tuple | list):
        return f"{len(batch)} item(s): " + ", ".join(type(b).__name__ for b in batch[:4])
    if isinstance(batch, torch.Tensor):
        return f"a tensor of shape {tuple(batch.shape)}"
    return repr(batch)[:60]


def cycle(loader: Iterable) -> Iterator[Any]:
    """Batches from ``loader``, starting a new pass whenever one ends."""
    if isinstance(loader, list | tuple) and loader:
        return itertools.cycle(loader)  # a fixed list of batches: the C iterator
    return _passes(loader)


def _passes(loader: Iterable) -> Iterator[Any]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise LrtoolError("the training loader yielded no batches")


def _cpu_copy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_cpu_copy(v) for v in obj)
    return obj


@dataclass
class StateSnapshot:
    """Weights, optimizer state, train/eval modes and RNG state, kept on the CPU (one copy)."""

    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    modes: dict[str, bool]
    cpu_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    scaler_state: dict[str, Any] | None = None

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer) -> StateSnapshot:
        return cls(
            _cpu_copy(model.state_dict()),
            _cpu_copy(optimizer.state_dict()),
            {name: m.training for name, m in model.named_modules()},
            torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        )

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        model.load_state_dict(self.model_state)
        optimizer.load_state_dict(self.optimizer_state)
        for name, module in model.named_modules():
            if name in self.modes:
                module.training = self.modes[name]
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


def _amp_context(
    amp: str | None, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    if amp in (None, "none", "off", False):
        return contextlib.nullcontext
    if amp not in ("bf16", "fp16"):
        raise usage_error(f"amp: must be bf16, fp16 or None, got {amp!r}")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type == "cpu":
        raise usage_error("amp: fp16 autocast needs a GPU (cuda or mps); use amp='bf16' on the CPU")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise usage_error("amp: this GPU does not support bf16; use amp='fp16'")
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


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
    accumulation_steps: int = 1,
    grad_clip: float | None = None,
    amp: str | None = None,
    device: str | torch.device | None = None,
    val_loader: Iterable | None = None,
    val_batches: int = 4,
    restore: bool = True,
    progress: Progress | None = None,
    budget: float = 0.0,
    target_steps: int | None = None,
) -> RangeTestResult:
    """Run an LR range test and return its curve and suggestions.

    Step i of N trains one optimizer step at ``lr_ladder(start_lr, end_lr, N, mode)[i]``; the
    loss is smoothed with a debiased EMA (``smoothing`` is its beta, 0 turns it off); the run
    stops early when a loss is NaN/Inf or the smoothed loss exceeds ``diverge_threshold``
    times the best so far. Several param groups keep their LR ratio to the first group.

    ``refine="auto"`` (the default) runs a second sweep of ``steps`` steps, from the same
    weights, over the 3.5 decades below where the first one diverged, when the first curve is
    too weak to read (see :func:`lrtool.suggest.refinement_reason`): a sweep of 8 decades
    gives the model only a few steps in the decades that matter, too few for slow starters
    such as CNNs or RMSprop to show a drop. ``True`` always refines, ``False`` never. The
    refined curve is the result; the first sweep is kept as ``result.coarse``.

    Batches may be ``(inputs, targets)`` tuples, dicts passed as ``model(**batch)``, or anything
    a ``step_fn(model, batch) -> loss`` understands; a model that returns its own loss (``.loss``
    or ``"loss"``) needs no ``loss_fn``. ``accumulation_steps`` micro-batches make one optimizer
    step (the logged loss is their mean). ``amp`` is ``"bf16"`` or ``"fp16"`` autocast
    (GradScaler for fp16 on CUDA). With ``val_loader``, the monitored loss is the mean over its
    first ``val_batches`` batches after each step (costing that many forward passes a step).

    ``budget`` > 0 then runs the budgeted search (:func:`lrtool.verify.verify_lr` with
    ``budget``): constant-LR trainings seeded by the curve's suggestion, at most ``budget``
    times ``target_steps`` steps in all (``target_steps``: the length of the training the LR
    is for), scored on ``val_loader`` when given; its LRs become ``result.lr`` and
    ``result.onecycle_max_lr`` and ``result.verification`` says what was spent.

    Model weights, optimizer state, train/eval modes and the RNG state are restored afterwards
    (``restore=True``), also when the sweep raises or is interrupted; the snapshot is kept on
    the CPU. Ctrl-C raises :class:`RangeTestInterrupted` carrying the partial result.
    """
    if accumulation_steps < 1:
        raise usage_error(f"accumulation_steps: must be >= 1, got {accumulation_steps}")
    if val_batches < 1:
        raise usage_error(f"val_batches: must be >= 1, got {val_batches}")
    if not 0 <= smoothing < 1:
        raise usage_error(f"smoothing: must be in [0, 1), got {smoothing}")
    if diverge_threshold <= 1:
        raise usage_error(f"diverge_threshold: must be > 1, got {diverge_threshold}")
    if refine not in (True, False, "auto"):
        raise usage_error(f"refine: must be True, False or 'auto', got {refine!r}")
    check_budget(budget, target_steps)
    if any("initial_lr" in g for g in optimizer.param_groups):
        raise LrtoolError(
            "the optimizer already has an LR scheduler attached (its param groups carry "
            "'initial_lr'); give the range test an optimizer without a scheduler"
        )
    ladder = lr_ladder(start_lr, end_lr, steps, mode)
    dev = torch.device(device) if device is not None else model_device(model)
    sweep = _Sweep(
        model=model,
        optimizer=optimizer,
        step=step_fn or default_step(loss_fn),
        autocast=_amp_context(amp, dev),
        scaler=torch.amp.GradScaler("cuda") if amp == "fp16" and dev.type == "cuda" else None,
        move=None if dev.type == "cpu" else dev,
        smoothing=smoothing,
        diverge_threshold=diverge_threshold,
        accumulation_steps=accumulation_steps,
        grad_clip=grad_clip,
        val_loader=val_loader,
        val_batches=val_batches,
        progress=progress,
    )
    snapshot = StateSnapshot.take(model, optimizer) if restore else None
    try:
        result = sweep.run(ladder, train_loader, start_lr, end_lr, mode)
        reason = None if result.interrupted else _refine_reason(result, refine, snapshot)
        if reason is not None:
            assert snapshot is not None
            snapshot.restore(model, optimizer)
            low, high = refine_range(result)
            coarse = result
            second = sweep.run(lr_ladder(low, high, steps, "exp"), train_loader, low, high, "exp")
            if not second.interrupted and _unreadable(second) and not _unreadable(coarse):
                # Keep the curve that can be read; the second sweep's steps still count.
                result.discarded_steps = second.steps_run
                result.elapsed_s += second.elapsed_s
                result.refined_because = (
                    f"{reason}; a second sweep over {low:.3g}..{high:.3g} could not be read "
                    f"either, so the first curve is kept"
                )
            else:
                result = second
                result.coarse = coarse
                result.refined_because = reason
                result.elapsed_s += coarse.elapsed_s
    finally:
        if snapshot is not None:
            snapshot.restore(model, optimizer)
    result.optimizer_group = optimizer_group(optimizer)
    if result.coarse is not None:
        result.coarse.optimizer_group = result.optimizer_group
    attach_suggestions(result)
    if result.interrupted:
        raise RangeTestInterrupted(result)
    if budget > 0 and result.lrs:
        from lrtool.verify import search_after_sweep

        assert target_steps is not None
        search_after_sweep(
            result, model, optimizer, train_loader, loss_fn, budget, target_steps,
            val_loader=val_loader, val_batches=val_batches, step_fn=step_fn, amp=amp,
            device=device,
        )  # fmt: skip
    return result


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


def search_span(result: RangeTestResult) -> tuple[float, float]:
    """Where a budgeted search looks when the curve gave no number: the decades below where
    the sweep stopped (the second sweep's range when there was one)."""
    return (result.start_lr, result.end_lr) if result.coarse else refine_range(result)


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


@dataclass
class _Sweep:
    """One pass up an LR ladder: the inner loop of :func:`find_lr` (no state restore here)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: StepFn
    autocast: Callable[[], contextlib.AbstractContextManager]
    scaler: Any
    move: torch.device | None
    smoothing: float
    diverge_threshold: float
    accumulation_steps: int
    grad_clip: float | None
    val_loader: Iterable | None
    val_batches: int
    progress: Progress | None

    def run(
        self, ladder: list[float], loader: Iterable, start_lr: float, end_lr: float, mode: str
    ) -> RangeTestResult:
        model, optimizer = self.model, self.optimizer
        base = [float(g["lr"]) for g in optimizer.param_groups]
        ratios = [b / base[0] if base[0] > 0 else 1.0 for b in base]
        lrs: list[float] = []
        losses: list[float] = []
        train_losses: list[float] = []
        smoothed: list[float] = []
        stop_reason = "completed"
        interrupted = False
        beta = self.smoothing
        avg, best, power = 0.0, math.inf, 1.0
        started = time.perf_counter()
        batches = cycle(loader)
        groups = list(zip(optimizer.param_groups, ratios, strict=True))
        one_step = self._plain_step_fn() if self.plain else self._one_step
        distributed = active_world_size() > 1
        progress, total, excess = self.progress, len(ladder), self.diverge_threshold - 1
        model.train()
        try:
            for i, lr in enumerate(ladder):
                for group, ratio in groups:
                    group["lr"] = lr * ratio
                train_loss = one_step(batches)
                if distributed:  # every rank sees the mean over ranks: one curve, one stop
                    train_loss = mean_over_ranks(train_loss, self.move)
                value = (
                    train_loss
                    if self.val_loader is None
                    else mean_over_ranks(
                        _val_loss(
                            model, self.val_loader, self.val_batches, self.step, self.move,
                            self.autocast,
                        ),
                        self.move,
                    )
                )  # fmt: skip
                lrs.append(lr)
                losses.append(value)
                train_losses.append(train_loss)
                if not math.isfinite(value):
                    smoothed.append(math.nan)
                    stop_reason = f"non-finite loss ({value}) at step {i}, lr {lr:.3g}"
                    break
                avg = beta * avg + (1 - beta) * value
                power *= beta  # beta ** (i + 1), kept as a running product (hot path)
                current = avg / (1 - power)
                smoothed.append(current)
                if progress is not None:
                    progress(i, total, lr, value)
                if i == 0:
                    first_step_done()
                if current > best + excess * abs(best):  # is_diverged, inlined (hot path)
                    stop_reason = (
                        f"diverged at step {i}, lr {lr:.3g}: smoothed loss {current:.4g} > "
                        f"{self.diverge_threshold:g} x best {best:.4g}"
                    )
                    break
                if current < best:
                    best = current
        except KeyboardInterrupt:
            interrupted = True
            stop_reason = f"interrupted at step {len(lrs)}"
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
            monitor="train" if self.val_loader is None else f"val ({self.val_batches} batches)",
        )

    def _one_step(self, batches: Iterator[Any]) -> float:
        """Forward, backward (over the micro-batches) and one optimizer step; the mean loss."""
        optimizer, scaler = self.optimizer, self.scaler
        self.zero_grad()
        total = None
        n = self.accumulation_steps
        for _ in range(n):
            batch = to_device(next(batches), self.move)
            with self.autocast():
                loss = self.step(self.model, batch)
            _check_scalar(loss)
            scaled = loss / n if n > 1 else loss
            (scaler.scale(scaled) if scaler else scaled).backward()
            total = scaled.detach() if total is None else total + scaled.detach()
        if self.grad_clip is not None:
            if scaler:
                scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        assert total is not None
        return float(total)

    @functools.cached_property
    def zero_grad(self) -> Callable[[], None]:
        return grad_resetter(self.optimizer)

    @functools.cached_property
    def plain(self) -> bool:
        """No accumulation, clipping, AMP or device moves: the step a bare loop takes."""
        return (
            self.accumulation_steps == 1
            and self.grad_clip is None
            and self.scaler is None
            and self.move is None
            and self.autocast is contextlib.nullcontext
        )

    def _plain_step_fn(self) -> Callable[[Iterator[Any]], float]:
        """The step of a bare loop, with everything it touches bound once (the hot path)."""
        zero_grad, optimizer_step = self.zero_grad, self.optimizer.step
        step, model = self.step, self.model

        def plain_step(batches: Iterator[Any]) -> float:
            zero_grad()
            loss = step(model, next(batches))
            _check_scalar(loss)
            loss.backward()
            optimizer_step()
            return float(loss.detach())

        return plain_step


def attach_suggestions(result: RangeTestResult, repeat_lrs: list[float] | None = None) -> None:
    """Run every suggestion rule on the curve and choose the recommendation."""
    group = result.optimizer_group
    result.suggestions = run_rules(result.lrs, result.losses, group)
    result.recommendation = recommend(
        result.lrs, result.losses, result.suggestions, repeat_lrs, group
    )


def optimizer_group(optimizer: torch.optim.Optimizer) -> str:
    """``"sgd"`` for torch's SGD (with or without momentum), ``"adaptive"`` for every other
    optimizer (Adam, AdamW, RMSprop, Adagrad and the like scale each parameter's step)."""
    return "sgd" if isinstance(optimizer, torch.optim.SGD) else "adaptive"


def _val_loss(
    model: nn.Module,
    loader: Iterable,
    count: int,
    step: StepFn,
    move: torch.device | None,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> float:
    """Mean loss over the first ``count`` batches of ``loader`` (eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    total, seen = 0.0, 0
    with torch.no_grad(), autocast():
        for batch in loader:
            total += float(step(model, to_device(batch, move)))
            seen += 1
            if seen >= count:
                break
    model.train(was_training)
    if seen == 0:
        raise LrtoolError("the validation loader yielded no batches")
    return total / seen
