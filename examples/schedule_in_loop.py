"""lrtool schedules in a plain PyTorch loop: 1cycle with momentum, and reduce-on-plateau.

    python examples/schedule_in_loop.py

``LrtoolScheduler(optimizer, schedule)`` sets the LR (and momentum, or Adam's beta1, when the
schedule cycles it) of step 0; each ``scheduler.step()`` after ``optimizer.step()`` moves to the
next step. ``plateau`` is driven by a metric instead: ``scheduler.update(val_loss)``.
"""

from __future__ import annotations

import torch
from torch import nn

import lrtool


def regression_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return x, x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.1 * torch.randn(n, 1, generator=g)


def onecycle_with_momentum(steps: int = 100) -> list[tuple[float, float]]:
    x, y = regression_data(512, 0)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = lrtool.build_schedule("onecycle", {"max_lr": 0.1, "total_steps": steps})
    scheduler = lrtool.LrtoolScheduler(optimizer, schedule)
    seen = []
    for step in range(steps):
        idx = torch.arange(step * 16, step * 16 + 16) % len(x)
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        optimizer.step()
        scheduler.step()
    peak = max(range(steps), key=lambda i: seen[i][0])
    print(
        f"onecycle: lr {seen[0][0]:.4f} -> {seen[peak][0]:.4f} (step {peak}) -> {seen[-1][0]:.2e}; "
        f"momentum {seen[0][1]:.2f} -> {seen[peak][1]:.2f} -> {seen[-1][1]:.2f}"
    )
    return seen


def plateau_on_validation(epochs: int = 30) -> list[float]:
    x, y = regression_data(512, 1)
    xv, yv = regression_data(256, 2)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    schedule = lrtool.build_schedule("plateau", {"lr": 0.05, "factor": 0.5, "patience": 2})
    scheduler = lrtool.LrtoolScheduler(optimizer, schedule)
    lrs = []
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            loss = nn.functional.mse_loss(model(x[i : i + 64]), y[i : i + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = float(nn.functional.mse_loss(model(xv), yv))
        lrs.append(scheduler.update(val_loss))  # the LR for the next epoch
    cuts = sum(1 for a, b in zip(lrs, lrs[1:], strict=False) if b < a)
    print(f"plateau: lr 0.05 -> {lrs[-1]:.4g} after {cuts} cuts; final val loss {val_loss:.4f}")
    return lrs


if __name__ == "__main__":
    onecycle_with_momentum()
    plateau_on_validation()
