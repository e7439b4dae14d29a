"""A custom model for lrtool configs: ``model: {name: import, function: examples.custom_model:build}``.

lrtool passes ``n_features`` and ``n_outputs`` (the data's sizes) to a function that asks for
them; anything under ``model.kwargs`` is passed too.
"""

from __future__ import annotations

from torch import nn


class ResidualMLP(nn.Module):
    """Two residual blocks of Linear-LayerNorm-GELU between an input and an output layer."""

    def __init__(self, n_features: int, n_outputs: int, width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(n_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU())
            for _ in range(blocks)
        )
        self.out = nn.Linear(width, n_outputs)

    def forward(self, x):
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


def build(n_features: int, n_outputs: int, width: int = 64, blocks: int = 2) -> nn.Module:
    return ResidualMLP(n_features, n_outputs, width, blocks)
