"""The one training loop every engine runs: the range test, verification and the budgeted
search, and ``train``/``compare``.

A :class:`TrainingLoop` is built once per run from the model, the optimizer, how to get a
loss from a batch (``loss_fn``, a model that returns ``.loss``, or a ``step_fn``) and the
:class:`LoopOptions` (micro-batch accumulation, mixed precision, gradient clipping). It owns
what an optimizer step is:

* the forward pass under autocast (bf16, or fp16 with a GradScaler on CUDA);
* the loss of each micro-batch, checked to be a scalar, scaled by ``1/accumulation_steps``;
* backward, clipping (after unscaling), the optimizer step;
* the loss of the step, averaged over ranks under torchrun, so every rank stops together.

:meth:`TrainingLoop.run` drives a whole run: the LR of each step comes from the caller (a
ladder or a schedule), a non-finite monitored loss stops the run, and an observer sees every
step. :meth:`TrainingLoop.evaluate` is the one evaluation: fixed validation batches for the
range test and the search, the whole validation split (with accuracy) for ``train``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lrtool.distributed import active_world_size, mean_over_ranks
from lrtool.errors import LrtoolError, usage_error
from lrtool.heartbeat import first_step_done
from lrtool.settings import AUTOCAST_DTYPES

StepFn = Callable[[nn.Module, Any], torch.Tensor]
# (step, total steps, lr, monitored loss) after each finite step: progress bars.
Progress = Callable[[int, int, float, float], None]
# (step, lr, training loss, monitored loss) after every step, the non-finite one included;
# returns a reason to stop, or None.
Observer = Callable[[int, float, float, float], str | None]

AMP_CHOICES = AUTOCAST_DTYPES  # the dtypes autocast takes (lrtool.settings)


@dataclass(frozen=True)
class LoopOptions:
    """How one optimizer step is taken; the same for every command (the config's ``loop:``).

    ``accumulation_steps`` micro-batches make one optimizer step (the logged loss is their
    mean); ``amp`` is ``"bf16"`` or ``"fp16"`` autocast (None: full precision); ``grad_clip``
    caps the global gradient norm (None: no clipping).
    """

    accumulation_steps: int = 1
    amp: str | None = None
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        n = self.accumulation_steps
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise usage_error(f"accumulation_steps: must be an integer >= 1, got {n!r}")
        if self.amp in ("none", "off", False):
            object.__setattr__(self, "amp", None)
        if self.amp is not None and self.amp not in AMP_CHOICES:
            raise usage_error(f"amp: must be {', '.join(AMP_CHOICES)} or None, got {self.amp!r}")
        clip = self.grad_clip
        if clip is not None and not (isinstance(clip, int | float) and 0 < clip < math.inf):
            raise usage_error(f"grad_clip: must be a positive finite number or None, got {clip!r}")


def loop_options(
    options: LoopOptions | None,
    accumulation_steps: int | None = None,
    amp: str | None = None,
    grad_clip: float | None = None,
) -> LoopOptions:
    """The :class:`LoopOptions` of an API call: ``options`` as given, or built from the flat
    shortcuts (``find_lr``, ``verify_lr`` and ``train`` take both); giving both is an error
    rather than a silent choice of one."""
    flat = {"accumulation_steps": accumulation_steps, "amp": amp, "grad_clip": grad_clip}
    given = [k for k, v in flat.items() if v is not None]
    if options is None:
        return LoopOptions(1 if accumulation_steps is None else accumulation_steps, amp, grad_clip)
    if not isinstance(options, LoopOptions):
        raise usage_error(
            f"options: expected lrtool.LoopOptions(...), got {type(options).__name__}"
        )
    if given:
        raise usage_error(
            f"options: pass LoopOptions or the shortcut keywords ({', '.join(given)}), not both"
        )
    return options


def check_api_inputs(optimizer: Any, train_loader: Any, model: Any = None) -> None:
    """One clear error for the common mix-ups of the Python API (``find_lr``, ``verify_lr``
    and ``train`` share it)."""
    if isinstance(optimizer, type):
        raise LrtoolError(
            f"optimizer: pass an optimizer instance, e.g. {optimizer.__name__}(model.parameters(),"
            f" lr=1e-3), not the class"
        )
    if not hasattr(optimizer, "param_groups"):
        raise LrtoolError(
            f"optimizer: expected a torch optimizer (with param_groups), got "
            f"{type(optimizer).__name__}"
        )
    if isinstance(train_loader, torch.utils.data.Dataset) and not isinstance(
        train_loader, torch.utils.data.IterableDataset | list | tuple
    ):
        raise LrtoolError(
            "train_loader: got a Dataset of single items; wrap it in "
            "torch.utils.data.DataLoader(dataset, batch_size=..., shuffle=True)"
        )
    if not hasattr(train_loader, "__iter__"):
        raise LrtoolError(
            f"train_loader: expected an iterable of batches (a DataLoader or a list), got "
            f"{type(train_loader).__name__}"
        )
    for i, group in enumerate(optimizer.param_groups):
        if "lr" not in group:
            raise LrtoolError(
                f"optimizer: param group {i} has no 'lr' ({type(optimizer).__name__} keeps "
                f"{sorted(k for k in group if k != 'params')}); lrtool sets group['lr'] each "
                f"step, so the optimizer must read its LR from there"
            )
    if isinstance(model, nn.Module):
        mine = {id(p) for p in model.parameters()}
        theirs = [p for g in optimizer.param_groups for p in g["params"]]
        if mine and theirs and not any(id(p) in mine for p in theirs):
            raise LrtoolError(
                "optimizer: it updates none of the model's parameters (was it built for "
                "another model, or before the model was copied or moved?); build it from "
                "model.parameters()"
            )


@dataclass
class Evaluation:
    """The mean loss over the evaluated batches, and the accuracy where it applies."""

    loss: float
    accuracy: float | None = None


# --------------------------------------------------------------------------------------------
# Batches and losses
# --------------------------------------------------------------------------------------------


def map_tensors(fn: Callable[[torch.Tensor], Any], obj: Any) -> Any:
    """``obj`` with ``fn`` applied to every tensor inside it, through mappings, lists and
    tuples (named tuples included), each rebuilt as its own type."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):
        return type(obj)({k: map_tensors(fn, v) for k, v in obj.items()})  # type: ignore[call-arg]
    if isinstance(obj, tuple | list):
        mapped = [map_tensors(fn, v) for v in obj]
        return type(obj)(mapped) if not hasattr(obj, "_fields") else type(obj)(*mapped)
    return obj


def to_device(batch: Any, device: torch.device | None) -> Any:
    """Move every tensor inside a (nested) batch to ``device``."""
    if device is None:
        return batch
    return map_tensors(lambda t: t.to(device, non_blocking=True), batch)


def cycle(loader: Iterable) -> Iterator[Any]:
    """Batches from ``loader``, starting a new pass whenever one ends."""
    if isinstance(loader, list | tuple) and loader:
        return itertools.cycle(loader)  # a fixed list of batches: the C iterator
    return _passes(loader)


def _passes(loader: Iterable) -> Iterator[Any]:
    served = 0
    while True:
        empty = True
        for batch in loader:
            empty = False
            served += 1
            yield batch
        if empty and served and iter(loader) is loader:
            raise LrtoolError(
                f"the training loader is a one-shot iterator (a generator): it ran out after "
                f"{served} batches and cannot start again; pass a list of batches or a "
                f"DataLoader, which can"
            )
        if empty:
            raise LrtoolError("the training loader yielded no batches")


def loss_from_output(output: Any) -> torch.Tensor | None:
    """The loss a model computed itself: a ``.loss`` attribute or a ``"loss"`` key."""
    if isinstance(output, Mapping) and "loss" in output:
        return output["loss"]
    loss = getattr(output, "loss", None)
    return loss if isinstance(loss, torch.Tensor) else None


def logits_of(output: Any) -> torch.Tensor:
    """The prediction inside a model's output: the tensor, its ``logits`` (attribute or key),
    or the first tensor of a tuple (``return_dict=False`` style). Anything else is an error
    that says what the model returned."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if isinstance(output.get("logits"), torch.Tensor):
            return output["logits"]
        raise LrtoolError(
            f"the model returned a dict without 'logits' or 'loss' (keys: "
            f"{', '.join(map(str, list(output)[:6]))}); return a tensor, or one of those keys"
        )
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise LrtoolError(
        f"the model returned {type(output).__name__}, not a tensor of predictions; return "
        f"the logits (or an object with .logits or .loss)"
    )


TARGET_KEYS = ("labels", "targets", "target", "y")


def forward(
    model: nn.Module, batch: Any, loss_fn: Callable[..., torch.Tensor] | None
) -> tuple[torch.Tensor, Any, Any]:
    """``(loss, prediction, target)`` of one batch with the default unpacking.

    ``(inputs, targets)`` tuples go through ``model(inputs)``; dicts are passed as keyword
    arguments (``model(**batch)``); a model that returns its own loss needs no ``loss_fn``.
    The prediction and target are None where the model computed the loss itself.
    """
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
            return own, None, None
        prediction = logits_of(output)
        return loss_fn(prediction, batch[1]), prediction, batch[1]
    if isinstance(batch, Mapping):
        output = model(**batch)
        own = loss_from_output(output)
        target = next((batch[k] for k in TARGET_KEYS if k in batch), None)
        if own is not None:
            return own, logits_of(output), target
        if loss_fn is None or target is None:
            raise LrtoolError(
                "the model's output has no loss (no .loss attribute or 'loss' key) and "
                "there is no loss function and 'labels' key to compute one; pass loss_fn "
                "or a step_fn(model, batch) -> loss"
            )
        prediction = logits_of(output)
        return loss_fn(prediction, target), prediction, target
    if isinstance(batch, torch.Tensor) and loss_fn is None:
        own = loss_from_output(model(batch))
        if own is not None:
            return own, None, None
    raise LrtoolError(
        f"cannot unpack a batch of type {type(batch).__name__} "
        f"({describe(batch)}); the default step takes (inputs, targets) or a dict of "
        f"keyword arguments; pass step_fn(model, batch) -> loss for anything else"
    )


def default_step(loss_fn: Callable[..., torch.Tensor] | None) -> StepFn:
    """The step used when none is given: the loss of :func:`forward`."""

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        return forward(model, batch, loss_fn)[0]

    return step


def check_scalar(loss: Any) -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise LrtoolError(f"the step must return a scalar loss tensor, got {describe(loss)}")
    if torch.is_grad_enabled() and not loss.requires_grad:
        raise LrtoolError(
            "the loss does not depend on any trainable parameter (all frozen, "
            "requires_grad=False, or the loss was detached); unfreeze what the LR should train"
        )


def describe(batch: Any) -> str:
    if isinstance(batch, tuple | list):
        return f"{len(batch)} item(s): " + ", ".join(type(b).__name__ for b in batch[:4])
    if isinstance(batch, torch.Tensor):
        return f"a tensor of shape {tuple(batch.shape)}"
    return repr(batch)[:60]


def accuracy_counts(prediction: Any, target: Any) -> int | None:
    """Correct predictions in a batch: argmax over classes, or ``> 0`` for one logit."""
    if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor):
        return None
    if prediction.shape[-1] == 1:
        predicted = (prediction > 0).to(target.dtype)
    else:
        predicted = prediction.argmax(dim=-1)
    return int((predicted == target).sum())


# --------------------------------------------------------------------------------------------
# Devices, precision, gradients
# --------------------------------------------------------------------------------------------


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def check_device(device: torch.device) -> None:
    """One clear error for a device this machine does not have."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LrtoolError("device: cuda was asked for but no CUDA GPU is available; use cpu")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps and mps.is_available()):
        raise LrtoolError("device: mps was asked for but is not available; use cpu")


def amp_context(
    amp: str | None, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the autocast context for ``amp`` on ``device`` (nullcontext for None)."""
    if amp is None:
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type == "cpu":
        raise usage_error("amp: fp16 autocast needs a GPU (cuda or mps); use amp='bf16' on the CPU")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise usage_error("amp: this GPU does not support bf16; use amp='fp16'")
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


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


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


class TrainingLoop:
    """Optimizer steps and evaluations of one model with one optimizer (see the module doc)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        *,
        step_fn: StepFn | None = None,
        options: LoopOptions | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.step_fn = step_fn
        self.options = options or LoopOptions()
        dev = torch.device(device) if device is not None else model_device(model)
        check_device(dev)
        self.device = dev
        self.move = None if dev.type == "cpu" else dev
        self.loss_of: StepFn = step_fn or default_step(loss_fn)
        self.autocast = amp_context(self.options.amp, dev)
        self.scaler = (
            torch.amp.GradScaler("cuda")
            if self.options.amp == "fp16" and dev.type == "cuda"
            else None
        )
        self.ranked = active_world_size() > 1
        self.zero_grad = grad_resetter(optimizer)
        self.train_step: Callable[[Iterator[Any]], float] = (
            self._plain_step() if self.plain else self._full_step
        )

    @property
    def plain(self) -> bool:
        """No accumulation, clipping, AMP, device moves or ranks: the step a bare loop takes."""
        o = self.options
        return (
            o.accumulation_steps == 1
            and o.grad_clip is None
            and o.amp is None
            and self.move is None
            and not self.ranked
        )

    def run(
        self,
        batches: Iterator[Any],
        steps: int,
        lr_at: Callable[[int], float],
        observe: Observer | None = None,
        *,
        monitor: Callable[[], float] | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Train up to ``steps`` optimizer steps; returns why it stopped (``"completed"``).

        Step t first sets its LR with ``lr_at(t)`` (which returns the LR of the first param
        group), then takes one optimizer step. The monitored loss is the training loss, or
        ``monitor()`` (say, the loss over fixed validation batches) when given. ``observe``
        sees every step, the last non-finite one included, and may return a reason to stop;
        a non-finite monitored loss always stops the run.
        """
        model, step = self.model, self.train_step
        model.train()
        t = 0
        try:
            for t in range(steps):
                lr = lr_at(t)
                loss = step(batches)
                value = loss if monitor is None else monitor()
                reason = observe(t, lr, loss, value) if observe is not None else None
                if not math.isfinite(value):
                    return f"non-finite loss ({value}) at step {t}, lr {lr:.3g}"
                if progress is not None:
                    progress(t, steps, lr, value)
                if t == 0:
                    first_step_done()
                if reason:
                    return reason
        except SystemExit as exc:  # user code must not end the run silently, with exit 0
            raise LrtoolError(f"user code called sys.exit({exc.code!r}) at step {t}") from None
        return "completed"

    def _full_step(self, batches: Iterator[Any]) -> float:
        """Forward, backward (over the micro-batches) and one optimizer step; the mean loss."""
        optimizer, scaler, options = self.optimizer, self.scaler, self.options
        self.zero_grad()
        total = None
        n = options.accumulation_steps
        for _ in range(n):
            batch = to_device(next(batches), self.move)
            with self.autocast():
                loss = self.loss_of(self.model, batch)
            check_scalar(loss)
            scaled = loss / n if n > 1 else loss
            (scaler.scale(scaled) if scaler else scaled).backward()
            total = scaled.detach() if total is None else total + scaled.detach()
        if options.grad_clip is not None:
            if scaler:
                scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), options.grad_clip)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        assert total is not None
        value = float(total)
        if self.ranked:  # every rank sees the mean over ranks: one curve, one stop
            value = mean_over_ranks(value, self.move)
        return value

    def _plain_step(self) -> Callable[[Iterator[Any]], float]:
        """The step of a bare loop, with everything it touches bound once (the hot path)."""
        zero_grad, optimizer_step = self.zero_grad, self.optimizer.step
        loss_of, model = self.loss_of, self.model

        def plain_step(batches: Iterator[Any]) -> float:
            zero_grad()
            loss = loss_of(model, next(batches))
            check_scalar(loss)
            loss.backward()
            optimizer_step()
            return float(loss.detach())

        return plain_step

    def evaluate(
        self, batches: Iterable, max_batches: int | None = None, *, accuracy: bool = False
    ) -> Evaluation:
        """The loss over ``batches`` in eval mode, without gradients, averaged over ranks.

        With ``max_batches`` (the fixed batches a range test or a search monitors) the loss
        is the mean of the first ``max_batches`` batch losses, as torch-lr-finder's val mode;
        without, it is the mean over every sample (batches weighed by their size), and
        ``accuracy`` adds the share of correct predictions where the batches carry targets.
        """
        model = self.model
        was_training = model.training
        model.eval()
        total, seen, samples, correct = 0.0, 0, 0, 0
        counted = accuracy
        with torch.no_grad(), self.autocast():
            for batch in batches:
                batch = to_device(batch, self.move)
                if max_batches is not None:
                    total += float(self.loss_of(model, batch))
                    seen += 1
                    if seen >= max_batches:
                        break
                    continue
                if self.step_fn is not None:
                    loss, prediction, target = self.step_fn(model, batch), None, None
                else:
                    loss, prediction, target = forward(model, batch, self.loss_fn)
                n = _batch_size(target, batch)
                total += float(loss) * n
                samples += n
                seen += 1
                if counted:
                    hits = accuracy_counts(prediction, target)
                    if hits is None:
                        counted = False
                    else:
                        correct += hits
        model.train(was_training)
        if seen == 0:
            raise LrtoolError("the validation data yielded no batches")
        if max_batches is not None:
            value = total / seen
        else:
            value = total / samples
        if self.ranked:
            value = mean_over_ranks(value, self.move)
        share = correct / samples if counted and max_batches is None and samples else None
        return Evaluation(value, share)


def _batch_size(target: Any, batch: Any) -> int:
    if isinstance(target, torch.Tensor) and target.dim() > 0:
        return len(target)
    if isinstance(batch, tuple | list) and batch and isinstance(batch[0], torch.Tensor):
        return len(batch[0])
    return 1
