"""The state a range test or a search restores: weights, optimizer state, modes and RNG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def cpu_copy(obj: Any) -> Any:
    """A detached CPU copy of every tensor inside ``obj`` (dicts, lists and tuples)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [cpu_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(cpu_copy(v) for v in obj)
    return obj


@dataclass
class StateSnapshot:
    """Weights, optimizer state, train/eval modes and RNG state, kept on the CPU (one copy)."""

    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    modes: dict[str, bool]
    cpu_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer) -> StateSnapshot:
        return cls(
            cpu_copy(model.state_dict()),
            cpu_copy(optimizer.state_dict()),
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
