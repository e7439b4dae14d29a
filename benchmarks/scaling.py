"""How the range test's cost grows with steps, model width and batch size (1 thread, CPU).

    python benchmarks/scaling.py

Each row is the median of 3 calls of ``lrtool.find_lr`` (LR 1e-5 to 1e-2, so no early stop,
no second sweep) on an MLP 64 -> width -> width -> 10 with random batches. The last columns give
the time per step and lrtool's fixed cost per call (snapshot, restore and suggestion rules).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from lrtool import suggest
from lrtool.finder import find_lr


def run(width: int, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
    )
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(batch, 64, generator=g), torch.randint(0, 10, (batch,), generator=g))]
    times = []
    for _ in range(3):
        suggest._curve_features.cache_clear()
        suggest._ema98.cache_clear()
        started = time.perf_counter()
        find_lr(model, opt, data, nn.CrossEntropyLoss(), start_lr=1e-5, end_lr=1e-2,
                steps=steps, refine=False)  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    torch.set_num_threads(1)
    print(f"{'steps':>6} {'width':>6} {'batch':>6} {'seconds':>8} {'ms/step':>8}")
    rows = [(s, 256, 64) for s in (100, 200, 400, 800)]
    rows += [(200, w, 64) for w in (64, 1024, 2048)]
    rows += [(200, 256, b) for b in (16, 256, 1024)]
    for steps, width, batch in rows:
        seconds = run(width, batch, steps)
        print(f"{steps:6} {width:6} {batch:6} {seconds:8.3f} {1000 * seconds / steps:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
