"""lrtool: find a good learning rate, and schedule it.

Importing :mod:`lrtool` is cheap: the torch-based engines load on first use, so schedules and
the CLI's non-training commands never import torch.

Python API::

    import lrtool
    result = lrtool.find_lr(model, optimizer, train_loader, loss_fn)   # LR range test
    result.lr, result.onecycle_max_lr, result.to_frame()
    sched = lrtool.build_schedule("onecycle", {"max_lr": result.onecycle_max_lr, "total_steps": 1000})
    driver = lrtool.LrtoolScheduler(optimizer, sched)                 # then driver.step() each step
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from lrtool.errors import LrtoolError
from lrtool.schedules import SCHEDULES, Schedule, build_schedule

_LAZY = {
    "find_lr": "lrtool.finder",
    "RangeTestResult": "lrtool.finder",
    "RangeTestInterrupted": "lrtool.finder",
    "RangeTestFailed": "lrtool.finder",
    "lr_ladder": "lrtool.finder",
    "LrtoolScheduler": "lrtool.schedules.torch_adapter",
    "verify_lr": "lrtool.verify",
    "VerifyResult": "lrtool.verify",
    "train": "lrtool.trainer",
    "TrainResult": "lrtool.trainer",
    "TrainInterrupted": "lrtool.trainer",
    "TrainFailed": "lrtool.trainer",
    "LoopOptions": "lrtool.loop",
    "read_suggestion": "lrtool.saved",
    "SavedSuggestion": "lrtool.saved",
    "Recommendation": "lrtool.suggest",
    "RULES": "lrtool.suggest",
    "TensorBatches": "lrtool.data",
}
# Reachable as before, but not part of the public API listed in __all__: a glibc allocator
# setting, not a learning-rate tool.
_UNLISTED = {"retain_freed_memory": "lrtool.heap"}

__all__ = ["LrtoolError", "SCHEDULES", "Schedule", "build_schedule", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name) or _UNLISTED.get(name)
    if module is None:
        raise AttributeError(f"module 'lrtool' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
