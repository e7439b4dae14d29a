"""Peak memory of a range test on a 50M-parameter model (CPU): lrtool, a bare loop, torch-lr-finder.

    python benchmarks/memory.py [--width 4096 --steps 5]
    pip install torch-lr-finder      # for the third column; not a dependency of lrtool

Each approach runs in its own fresh process (peak RSS cannot be reset within one): build the
model (3 square layers, 50.3M parameters at width 4096), an optimizer and one batch, then run
``--steps`` steps of the range test. Two optimizers: SGD with momentum, fresh (no state yet),
and Adam after one step (its state is two more copies of the weights). The child reports its
peak RSS (``ru_maxrss``). The extra memory of lrtool and torch-lr-finder over the bare loop is
shown in copies of the weights, and in copies of the weights plus the optimizer state as they
stand when the range test starts. Target: lrtool adds at most one copy of the weights and
optimizer state, and keeps it on the CPU (its snapshot is never on the GPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

OPTIMIZERS = {
    "sgd": "SGD with momentum, fresh (no state yet)",
    "adam-warm": "Adam after one step (its state is 2 copies of the weights)",
}

CHILD = r"""
import json, resource, sys
import torch
from torch import nn
torch.set_num_threads(1)
kind, width, steps, optimizer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                      nn.Linear(width, width))
x, y = torch.randn(32, width), torch.randn(32, width)
loss_fn = nn.MSELoss()
if optimizer == "sgd":
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
else:  # Adam after one step: its state (exp_avg, exp_avg_sq) is two more copies of the weights
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    loss_fn(model(x), y).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
params = sum(p.numel() for p in model.parameters())
state_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
state_bytes += sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                   if torch.is_tensor(t))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "bare":
    for lr in torch.logspace(-6, -3, steps).tolist():
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        float(loss)
elif kind == "lrtool":
    from lrtool import find_lr
    find_lr(model, opt, [(x, y)], loss_fn, start_lr=1e-6, end_lr=1e-3, steps=steps, refine=False)
else:
    from torch_lr_finder import LRFinder, TrainDataLoaderIter
    finder = LRFinder(model, opt, loss_fn, device="cpu")
    finder.range_test(TrainDataLoaderIter([(x, y)]), start_lr=1e-6, end_lr=1e-3, num_iter=steps,
                      diverge_th=1e9)
    finder.reset()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"params": params, "state_mb": state_bytes / 2**20, "peak_mb": peak / 1024,
                  "before_mb": before / 1024}))
"""


def measure(kind: str, width: int, steps: int, optimizer: str) -> dict | None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(width), str(steps), optimizer],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if "torch_lr_finder" in done.stderr:
            return None
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="median of this many processes")
    args = parser.parse_args(argv)
    for optimizer, label in OPTIMIZERS.items():
        rows = {}
        for kind in ("bare", "lrtool", "torch-lr-finder"):
            runs = [measure(kind, args.width, args.steps, optimizer) for _ in range(args.repeats)]
            runs = [r for r in runs if r is not None]
            if runs:
                runs.sort(key=lambda r: r["peak_mb"])
                rows[kind] = runs[len(runs) // 2]
        bare = rows["bare"]
        weights_mb = bare["params"] * 4 / 2**20
        print(
            f"\nrange test, {args.steps} steps, {bare['params'] / 1e6:.1f}M parameters "
            f"({weights_mb:.0f} MiB of weights), {label}: weights + optimizer state = "
            f"{bare['state_mb']:.0f} MiB"
        )
        print(
            f"{'approach':16} {'peak RSS MiB':>13} {'extra vs bare':>14} "
            f"{'in weight copies':>17} {'in (weights + state) copies':>28}"
        )
        for kind, row in rows.items():
            extra = row["peak_mb"] - bare["peak_mb"]
            print(
                f"{kind:16} {row['peak_mb']:13.0f} {extra:14.0f} {extra / weights_mb:17.2f} "
                f"{extra / bare['state_mb']:28.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
