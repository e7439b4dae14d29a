"""Batches by index from tensors (lrtool's TensorBatches) against a DataLoader over a TensorDataset.

    python benchmarks/input_pipeline.py [--pairs 7 --epochs 20]

The quickstart data (the embedded digits: 1,437 training rows of 64 features, batch 64,
shuffled). A ``DataLoader`` fetches every sample on its own and collates each batch; lrtool
indexes the tensors once per batch with a random permutation. Both are timed (a) iterating
``--epochs`` epochs and (b) inside the quickstart MLP's training step. A and B alternate; the
median of the per-pair ratios is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrtool.config import default_config
from lrtool.data import TensorBatches, load_data


def iterate(batches, epochs: int, train=None) -> float:
    started = time.perf_counter()
    for _ in range(epochs):
        for x, y in batches:
            if train is not None:
                train(x, y)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = default_config()
    data = load_data(config.data, config.seed)
    ours: TensorBatches = data.train
    theirs = DataLoader(
        TensorDataset(ours.inputs, ours.targets),
        batch_size=ours.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def train(x, y):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    print(
        f"quickstart data: {len(ours.inputs)} rows, batch {ours.batch_size}, "
        f"{len(ours)} batches per epoch, {args.epochs} epochs, median of {args.pairs} pairs"
    )
    print(f"{'':22} {'TensorBatches s':>16} {'DataLoader s':>13} {'DataLoader / ours':>18}")
    for label, step in (("iterate only", None), ("with the train step", train)):
        iterate(ours, 1, step), iterate(theirs, 1, step)
        a, b = [], []
        for _ in range(args.pairs):
            a.append(iterate(ours, args.epochs, step))
            b.append(iterate(theirs, args.epochs, step))
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(f"{label:22} {statistics.median(a):16.4f} {statistics.median(b):13.4f} {ratio:18.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
