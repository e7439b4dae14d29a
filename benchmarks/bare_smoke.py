"""What `lrtool find configs/smoke.yaml --smoke` trains, in a bare torch script: the same data
size, model, optimizer, batches and number of steps (argv[1]), with the validation forward
passes a val-monitored sweep takes (4 batches a step). benchmarks/startup.py times it beside
lrtool to show lrtool's own start-up and overhead."""

from __future__ import annotations

import sys

import torch
from torch import nn


def main(steps: int) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(512, 16), torch.randint(0, 4, (512,))
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for i in range(steps):
        at = (i * 32) % 512
        loss = loss_fn(model(x[at : at + 32]), y[at : at + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for j in range(4):
                loss_fn(model(x[j * 32 : (j + 1) * 32]), y[j * 32 : (j + 1) * 32])


if __name__ == "__main__":
    main(int(sys.argv[1]))
