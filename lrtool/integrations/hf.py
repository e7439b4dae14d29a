"""The range test for a Hugging Face ``Trainer``, measuring the training the Trainer will run,
and its suggestion handed back to it.

::

    from lrtool.integrations.hf import find_lr, use_suggestion

    result = find_lr(trainer)                        # the model is restored afterwards
    use_suggestion(trainer, result, "onecycle")      # or "constant" (args.learning_rate)
    trainer.train()

What is measured is what ``train()`` does: the Trainer's ``compute_loss`` (a subclass's own,
label smoothing included), its clipping (``max_grad_norm``), its accumulation
(``gradient_accumulation_steps``) and mixed precision (``bf16``/``fp16``), on its batches
(``get_train_dataloader()``) with the optimizer it will use: the one given in
``optimizers=``, else the one ``create_optimizer`` builds. The budgeted search chooses the LR
for the Trainer's real number of optimizer steps and scores on its ``eval_dataset``.
"""

from __future__ import annotations

import warnings
from typing import Any

from lrtool.errors import LrtoolError
from lrtool.finder import RangeTestResult
from lrtool.finder import find_lr as run_range_test
from lrtool.loop import LoopOptions, to_device

SHORTCUTS = ("accumulation_steps", "grad_clip", "amp")  # find_lr's flat loop options


def find_lr(trainer: Any, **find_kwargs: Any) -> RangeTestResult:
    """Run lrtool's range test as ``trainer.train()`` would train (see the module doc).
    ``find_kwargs`` go to :func:`lrtool.find_lr` and override what is read from the Trainer:
    ``step_fn`` (default: ``trainer.compute_loss``), the loop options (default: the
    Trainer's accumulation, clipping and precision), ``target_steps`` (default: the optimizer
    steps ``train()`` will take, :func:`total_steps`), ``val_loader`` (default: the eval
    dataloader when there is an ``eval_dataset``), ``device`` (default: ``args.device``). The
    model and optimizer are restored; an optimizer the Trainer built only for the test is
    dropped again, so ``train()`` builds its own."""
    built_here = trainer.optimizer is None
    if built_here:
        trainer.create_optimizer()
    try:
        loader = trainer.get_train_dataloader()
        kwargs = _measured_as_trained(trainer)
        if any(k in find_kwargs for k in SHORTCUTS):
            del kwargs["options"]  # the caller's shortcuts stand for the loop options
        kwargs.update(find_kwargs)
        return run_range_test(trainer.model, trainer.optimizer, loader, **kwargs)
    finally:
        if built_here:
            trainer.optimizer = None


def _measured_as_trained(trainer: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`lrtool.find_lr` that make it train as the Trainer."""
    args = trainer.args
    clip = getattr(args, "max_grad_norm", None)
    amp = (
        "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) else None
    )
    kwargs: dict[str, Any] = {
        "step_fn": trainer_loss(trainer),
        "options": LoopOptions(
            accumulation_steps=int(getattr(args, "gradient_accumulation_steps", 1) or 1),
            grad_clip=clip if clip and clip > 0 else None,
            amp=amp,
        ),
        "target_steps": total_steps(trainer),
        "device": getattr(args, "device", None),
    }
    if getattr(trainer, "eval_dataset", None) is not None:
        kwargs["val_loader"] = trainer.get_eval_dataloader()
    return kwargs


def trainer_loss(trainer: Any) -> Any:
    """``step_fn(model, batch) -> loss`` by the Trainer's own ``compute_loss``, on the batch
    prepared as ``train()`` prepares it (moved to its device)."""
    prepare = getattr(trainer, "_prepare_inputs", None)
    device = getattr(trainer.args, "device", None)

    def step(model: Any, batch: Any) -> Any:
        inputs = prepare(batch) if prepare is not None else to_device(batch, device)
        return trainer.compute_loss(model, inputs)

    return step


def use_suggestion(trainer: Any, result: RangeTestResult, schedule: str = "onecycle") -> float:
    """Give the Trainer the range test's answer; returns the LR set.

    The optimizer the Trainer was given (``optimizers=(opt, ...)``) is kept, with its LR set
    (param groups keep their ratios); without one, the Trainer builds its own at
    ``args.learning_rate``. ``"constant"``: the suggested constant LR, shaped by the Trainer's
    own ``lr_scheduler_type``. ``"onecycle"``: the 1cycle peak, driven by an
    :class:`lrtool.LrtoolScheduler` over the Trainer's real optimizer steps; the schedule
    settings it replaces (``lr_scheduler_type``, warm-up, a scheduler given in
    ``optimizers=``) are named in one warning.
    """
    from lrtool.schedules import build_schedule
    from lrtool.schedules.torch_adapter import LrtoolScheduler

    if schedule not in ("constant", "onecycle"):
        raise LrtoolError(f"schedule: must be constant or onecycle, got {schedule!r}")
    value = result.lr if schedule == "constant" else result.onecycle_max_lr
    if value is None:
        raise LrtoolError(
            "the range test gave no suggestion (see result.recommendation.warnings); "
            "keep the Trainer's learning_rate"
        )
    trainer.args.learning_rate = value
    if trainer.optimizer is not None:
        _set_lr(trainer.optimizer, value)  # the user's optimizer stays the one that trains
    if schedule == "constant":
        trainer.lr_scheduler = None  # the Trainer builds its lr_scheduler_type on this LR
        return value
    replaced = _replaced_settings(trainer)
    if replaced:
        warnings.warn(
            f"lrtool's 1cycle schedule replaces {', '.join(replaced)} (1cycle warms up and "
            f"anneals itself)",
            UserWarning,
            stacklevel=2,
        )
    steps = total_steps(trainer)
    if trainer.optimizer is None:
        trainer.create_optimizer()
    trainer.lr_scheduler = LrtoolScheduler(
        trainer.optimizer, build_schedule("onecycle", {"max_lr": value, "total_steps": steps})
    )
    return value


def _set_lr(optimizer: Any, value: float) -> None:
    """The first param group's LR to ``value``, the others in the same ratio as before."""
    groups = optimizer.param_groups
    first = groups[0]["lr"]
    for group in groups:
        group["lr"] = value * (group["lr"] / first) if first else value
        group.pop("initial_lr", None)  # a scheduler built later starts from the new LR


def _replaced_settings(trainer: Any) -> list[str]:
    args = trainer.args
    replaced = []
    kind = str(getattr(args, "lr_scheduler_type", "linear")).split(".")[-1].lower()
    if kind != "linear":
        replaced.append(f"lr_scheduler_type={kind!r}")
    if getattr(args, "warmup_steps", 0):
        replaced.append(f"warmup_steps={args.warmup_steps}")
    if getattr(args, "warmup_ratio", 0):
        replaced.append(f"warmup_ratio={args.warmup_ratio}")
    if getattr(trainer, "lr_scheduler", None) is not None:
        replaced.append(f"the {type(trainer.lr_scheduler).__name__} given in optimizers=")
    return replaced


def total_steps(trainer: Any) -> int:
    """The optimizer steps ``train()`` will take, counted as the Trainer counts them
    (``max_steps``, or the epochs' worth with accumulation and a last partial step)."""
    args = trainer.args
    loader = trainer.get_train_dataloader()
    count = getattr(trainer, "set_initial_training_values", None)
    if count is not None:
        return int(count(args, loader)[-1])  # (..., max_steps): the Trainer's own arithmetic
    if args.max_steps and args.max_steps > 0:
        return int(args.max_steps)
    accumulation = max(1, int(args.gradient_accumulation_steps))
    per_epoch = max(1, -(-len(loader) // accumulation))
    return int(-(-args.num_train_epochs * per_epoch // 1))
