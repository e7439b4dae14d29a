"""A custom model in your own loop: find the LR with lrtool, then train with 1cycle.

    python examples/plain_loop.py

Tiny and CPU-only (a few seconds): a residual MLP on generated 3-class data, plain
``(inputs, targets)`` batches from a ``DataLoader``, SGD with momentum.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lrtool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script or with -m
from examples.custom_model import ResidualMLP  # noqa: E402


def make_data(n: int = 1200, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    y = (x[:, :3] + 0.5 * torch.randn(n, 3, generator=g)).argmax(dim=1)
    return TensorDataset(x, y)


def main(steps: int = 200) -> dict[str, float]:
    torch.manual_seed(0)
    train = DataLoader(make_data(), batch_size=32, shuffle=True)
    val_x, val_y = make_data(400, seed=1).tensors
    model = ResidualMLP(n_features=20, n_outputs=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    # 1. The range test. Weights, optimizer state and RNG are restored afterwards.
    result = lrtool.find_lr(model, optimizer, train, loss_fn, start_lr=1e-5, end_lr=10, steps=80)
    print(f"range test: {result.stop_reason}")
    print(f"suggested lr {result.lr:.3g}, onecycle max_lr {result.onecycle_max_lr:.3g}")

    # 2. Two lines drive any lrtool schedule, momentum included.
    schedule = lrtool.build_schedule(
        "onecycle", {"max_lr": result.onecycle_max_lr, "total_steps": steps}
    )
    scheduler = lrtool.LrtoolScheduler(optimizer, schedule)
    step = 0
    while step < steps:
        for x, y in train:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == steps:
                break
    model.eval()
    with torch.no_grad():
        val_loss = float(loss_fn(model(val_x), val_y))
        accuracy = float((model(val_x).argmax(1) == val_y).float().mean())
    print(f"after {steps} steps of 1cycle: val loss {val_loss:.4f}, accuracy {accuracy:.3f}")
    return {"lr": result.lr, "val_loss": val_loss, "accuracy": accuracy}


if __name__ == "__main__":
    main()
