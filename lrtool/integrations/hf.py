"""The range test for a Hugging Face ``Trainer``: its model, its data collator and batch size
(``trainer.get_train_dataloader()``) and the optimizer it would build; then the suggestion
handed back to it.

::

    from lrtool.integrations.hf import find_lr, use_suggestion

    result = find_lr(trainer)                        # the model is restored afterwards
    use_suggestion(trainer, result, "onecycle")      # or "constant" (args.learning_rate)
    trainer.train()
"""

from __future__ import annotations

from typing import Any

from lrtool.errors import LrtoolError
from lrtool.finder import RangeTestResult
from lrtool.finder import find_lr as run_range_test


def find_lr(trainer: Any, **find_kwargs: Any) -> RangeTestResult:
    """Run lrtool's range test on ``trainer.model`` with the Trainer's training batches and
    optimizer (the one passed in ``optimizers=``, else the one ``create_optimizer`` builds
    from ``TrainingArguments``: AdamW, weight decay groups). ``find_kwargs`` go to
    :func:`lrtool.find_lr`. The model and optimizer are restored; an optimizer the Trainer
    built only for the test is dropped again, so ``train()`` builds its own."""
    built_here = trainer.optimizer is None
    if built_here:
        trainer.create_optimizer()
    try:
        loader = trainer.get_train_dataloader()
        return run_range_test(trainer.model, trainer.optimizer, loader, **find_kwargs)
    finally:
        if built_here:
            trainer.optimizer = None


def use_suggestion(trainer: Any, result: RangeTestResult, schedule: str = "onecycle") -> float:
    """Give the Trainer the range test's answer; returns the LR set.

    ``"constant"``: ``args.learning_rate`` becomes the suggested constant LR (the Trainer's
    own ``lr_scheduler_type`` then shapes it). ``"onecycle"``: the optimizer is built at the
    1cycle peak and driven by an :class:`lrtool.LrtoolScheduler` 1cycle over the run's steps.
    """
    from lrtool.schedules import build_schedule
    from lrtool.torch_adapter import LrtoolScheduler

    if schedule not in ("constant", "onecycle"):
        raise LrtoolError(f"schedule: must be constant or onecycle, got {schedule!r}")
    value = result.lr if schedule == "constant" else result.onecycle_max_lr
    if value is None:
        raise LrtoolError(
            "the range test gave no suggestion (see result.recommendation.warnings); "
            "keep the Trainer's learning_rate"
        )
    trainer.args.learning_rate = value
    if schedule == "constant":
        trainer.optimizer, trainer.lr_scheduler = None, None
        return value
    steps = total_steps(trainer)
    trainer.optimizer = None
    trainer.create_optimizer()
    trainer.lr_scheduler = LrtoolScheduler(
        trainer.optimizer, build_schedule("onecycle", {"max_lr": value, "total_steps": steps})
    )
    return value


def total_steps(trainer: Any) -> int:
    """The optimizer steps ``train()`` will take: ``max_steps``, or the epochs' worth."""
    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        return int(args.max_steps)
    per_epoch = max(1, len(trainer.get_train_dataloader()) // args.gradient_accumulation_steps)
    return int(per_epoch * args.num_train_epochs)
