"""Moved to :mod:`lrtool.schedules.torch_adapter`; this name keeps old imports working."""

from lrtool.schedules.torch_adapter import LrtoolScheduler, group_ratios, momentum_key

__all__ = ["LrtoolScheduler", "group_ratios", "momentum_key"]
