"""The range test on a LightningModule, and its suggestion applied where Lightning's own
tuner puts it (``update_attr``).

::

    from lrtool.integrations.lightning import find_lr

    result = find_lr(module, datamodule=dm)   # sets module.lr (or .learning_rate / hparams)
    trainer.fit(module, datamodule=dm)       # configure_optimizers reads the new LR

The range test calls the module's own ``configure_optimizers`` and ``training_step``, so the
loss is exactly the one ``fit`` trains; ``self.log`` calls inside ``training_step`` are
silenced during the test (no trainer is attached then) and work again afterwards. The
module's weights are restored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from lrtool.errors import LrtoolError
from lrtool.finder import RangeTestResult
from lrtool.finder import find_lr as run_range_test

LR_ATTRIBUTES = ("lr", "learning_rate")  # where Lightning's tuner looks too


def find_lr(
    module: Any,
    datamodule: Any = None,
    train_dataloaders: Iterable | None = None,
    *,
    update_attr: bool = True,
    attr_name: str | None = None,
    use: str = "lr",
    trainer: Any = None,
    **find_kwargs: Any,
) -> RangeTestResult:
    """Run lrtool's range test on ``module`` with the batches of ``datamodule`` (its
    ``train_dataloader()``) or ``train_dataloaders``, and the optimizer of its
    ``configure_optimizers``. ``find_kwargs`` go to :func:`lrtool.find_lr` (``steps``,
    ``start_lr``, ``budget`` and ``target_steps``, ...).

    A ``configure_optimizers`` that returns an LR scheduler too (an ``LrtoolScheduler`` as the
    docs show) works as it is: the test uses the optimizer alone. One that reads
    ``self.trainer`` (``estimated_stepping_batches``, ``max_steps``) before ``fit`` gets a
    stand-in answering from ``trainer`` (the ``pl.Trainer`` you will fit with: its
    ``max_steps`` or ``max_epochs``) or from ``target_steps``, else one epoch of batches;
    ``trainer`` also sets ``target_steps``, so the budgeted search chooses for that run.

    With ``update_attr`` the suggestion (``use="lr"``: the constant LR; ``"onecycle_max_lr"``:
    the 1cycle peak) is written to ``attr_name``, or to the first of ``lr``/``learning_rate``
    found on the module or in ``module.hparams``.
    """
    loader = _train_batches(datamodule, train_dataloaders)
    steps = find_kwargs.get("target_steps") or _run_steps(trainer, loader)
    if trainer is not None and steps is not None:
        find_kwargs.setdefault("target_steps", steps)
    with _trainer_for_configure(module, trainer, steps or _batches_in(loader)):
        optimizer = _first_optimizer(module.configure_optimizers())
    for group in optimizer.param_groups:  # built for this test: drop its scheduler's marks
        group.pop("initial_lr", None)
    with _silenced_logging(module):
        result = run_range_test(module, optimizer, loader, step_fn=_step_fn(module), **find_kwargs)
    if update_attr:
        value = getattr(result, use)
        if value is None:
            raise LrtoolError(
                "the range test gave no suggestion to set (see result.recommendation.warnings)"
            )
        set_lr_attribute(module, value, attr_name)
    return result


def set_lr_attribute(module: Any, value: float, attr_name: str | None = None) -> str:
    """Write ``value`` where ``configure_optimizers`` reads the LR; returns the name used."""
    hparams = getattr(module, "hparams", None)
    names = (attr_name,) if attr_name else LR_ATTRIBUTES
    for name in names:
        if hasattr(module, name) and not callable(getattr(module, name)):
            setattr(module, name, value)
            return name
        if hparams is not None and name in hparams:
            hparams[name] = value
            return f"hparams.{name}"
    raise LrtoolError(
        f"the module has no attribute {' or '.join(names)} (nor in module.hparams) to set the "
        f"LR on; pass attr_name=, or update_attr=False and use result.lr"
    )


@dataclass
class _TrainerStandIn:
    """What a ``configure_optimizers`` may read from ``self.trainer`` before ``fit``."""

    estimated_stepping_batches: int
    max_steps: int
    max_epochs: int | None = None
    accumulate_grad_batches: int = 1


@contextlib.contextmanager
def _trainer_for_configure(module: Any, trainer: Any, steps: int | None) -> Iterator[None]:
    """``module.trainer`` answers while ``configure_optimizers`` runs: the real trainer's
    attributes when one is given, else a stand-in; the module is detached again after."""
    if getattr(module, "_trainer", None) is not None or not hasattr(module, "_trainer"):
        yield  # attached to a trainer already (or not a LightningModule): nothing to lend
        return
    stand_in = _TrainerStandIn(
        estimated_stepping_batches=int(steps or 1),
        max_steps=int(getattr(trainer, "max_steps", -1) or -1) if trainer else int(steps or -1),
        max_epochs=getattr(trainer, "max_epochs", None),
        accumulate_grad_batches=int(getattr(trainer, "accumulate_grad_batches", 1) or 1),
    )
    module._trainer = stand_in
    try:
        yield
    finally:
        module._trainer = None


def _run_steps(trainer: Any, loader: Iterable) -> int | None:
    """The optimizer steps ``trainer.fit`` will take: its ``max_steps``, or ``max_epochs``
    times the batches per epoch over the accumulation; None without a trainer."""
    if trainer is None:
        return None
    max_steps = getattr(trainer, "max_steps", -1) or -1
    if max_steps > 0:
        return int(max_steps)
    per_epoch = _batches_in(loader)
    epochs = getattr(trainer, "max_epochs", None) or 1
    accumulation = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
    return None if per_epoch is None else max(1, epochs * (-(-per_epoch // accumulation)))


def _batches_in(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _train_batches(datamodule: Any, train_dataloaders: Iterable | None) -> Iterable:
    if train_dataloaders is not None:
        return train_dataloaders
    if datamodule is None:
        raise LrtoolError("pass datamodule= or train_dataloaders= (the batches to sweep on)")
    with contextlib.suppress(AttributeError, NotImplementedError):
        datamodule.prepare_data()
    with contextlib.suppress(AttributeError, NotImplementedError):
        datamodule.setup("fit")
    return datamodule.train_dataloader()


def _first_optimizer(configured: Any) -> torch.optim.Optimizer:
    """The optimizer in any of the shapes ``configure_optimizers`` may return."""
    if isinstance(configured, torch.optim.Optimizer):
        return configured
    if isinstance(configured, dict) and "optimizer" in configured:
        return _first_optimizer(configured["optimizer"])
    if isinstance(configured, list | tuple) and configured:
        return _first_optimizer(configured[0])
    raise LrtoolError(
        f"configure_optimizers returned {type(configured).__name__}; expected an optimizer, "
        f"a dict with 'optimizer', or a list/tuple starting with one"
    )


def _step_fn(module: Any) -> Any:
    def step(model: Any, batch: Any) -> torch.Tensor:
        out = module.training_step(batch, 0)
        loss = out["loss"] if isinstance(out, dict) else out
        if not isinstance(loss, torch.Tensor):
            raise LrtoolError("training_step must return the loss (a tensor or {'loss': ...})")
        return loss

    return step


@contextlib.contextmanager
def _silenced_logging(module: Any) -> Iterator[None]:
    """``self.log``/``self.log_dict`` as no-ops on this instance, removed afterwards."""
    names = [n for n in ("log", "log_dict") if n not in vars(module)]
    for name in names:
        setattr(module, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for name in names:
            vars(module).pop(name, None)
