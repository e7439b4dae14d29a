"""Per-step cost of lrtool's trainer and range test against a bare PyTorch loop.

Same model, batches (pre-built tensors), thread count and number of steps. A (lrtool) and B
(bare loop: set the LR, forward, backward, step, read the loss) alternate; the median of N
pairs is compared. Evaluation is excluded (one evaluation at the end of the lrtool run is
subtracted by timing it separately). Target: lrtool / bare <= 1.05.

Rerun: python benchmarks/train_overhead.py [--pairs 7 --steps 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lrtool.finder import find_lr
from lrtool.schedules import build_schedule
from lrtool.trainer import train


def make(width: int):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))


def batches(n: int):
    g = torch.Generator().manual_seed(0)
    return [
        (torch.randn(64, 64, generator=g), torch.randint(0, 10, (64,), generator=g))
        for _ in range(n)
    ]


def bare(model, data, steps, schedule):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for t in range(steps):
        for g in opt.param_groups:
            g["lr"] = schedule(t)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(data[t % len(data)][0]), data[t % len(data)][1])
        loss.backward()
        opt.step()
        float(loss.detach())
    return time.perf_counter() - start


def lrtool_train(model, data, steps, schedule):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    train(model, opt, data, nn.CrossEntropyLoss(), schedule, steps, eval_every=steps)
    return time.perf_counter() - start


def lrtool_find(model, data, steps, schedule):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    find_lr(model, opt, data, nn.CrossEntropyLoss(), start_lr=1e-5, end_lr=1e-2, steps=steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = batches(32)
    schedule = build_schedule("onecycle", {"max_lr": 0.05, "total_steps": args.steps})
    print(f"{'model':10} {'engine':8} {'lrtool ms/step':>15} {'bare ms/step':>13} {'ratio':>7}")
    for width in (64, 512):
        for name, fn in (("train", lrtool_train), ("find", lrtool_find)):
            a, b = [], []
            for _ in range(args.pairs):
                a.append(fn(make(width), data, args.steps, schedule))
                b.append(bare(make(width), data, args.steps, schedule))
            ta, tb = statistics.median(a), statistics.median(b)
            print(
                f"mlp-{width:<6} {name:8} {1000 * ta / args.steps:15.3f} "
                f"{1000 * tb / args.steps:13.3f} {ta / tb:7.3f}"
            )


if __name__ == "__main__":
    main()
