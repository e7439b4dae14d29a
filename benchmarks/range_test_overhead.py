"""Range-test cost per step: lrtool against a bare PyTorch loop and against torch-lr-finder.

    python benchmarks/range_test_overhead.py             # 9 alternated rounds, about 1.5 minutes
    python benchmarks/range_test_overhead.py --pairs 15  # tighter intervals
    pip install torch-lr-finder                           # for column (c); not a dependency

The same model (rebuilt from the same seed), batches (pre-built tensors, cycled), thread count
(1) and number of steps for (a) ``lrtool.find_lr`` through the Python API, (b) a bare loop that
sets the LR of the exponential ladder and does forward, backward and step and reads the loss,
and (c) torch-lr-finder's ``LRFinder.range_test`` plus ``reset``. The LR range (1e-5 to 1e-2)
never diverges, so all three run every step. Each measurement is the whole call, including
state snapshot and restore and the suggestion rules (lrtool) or torch-lr-finder's own
bookkeeping. A fourth run, (d), is the bare loop again: the ratio d/b is an A/A test that shows
how much this machine moves a ratio that should be exactly 1.

Each round runs a, b, c, d, rotating the order every round; each ratio is the median of the
per-round ratios, with a 90% bootstrap interval. The process keeps freed memory for reuse, as
``lrtool find`` does (``lrtool.heap``; ``--default-malloc`` leaves glibc's defaults), for all
four runners alike. Times are the thread's CPU time
(``time.thread_time``), which a busy or virtual machine disturbs much less than wall time.
Targets: lrtool / bare <= 1.05, lrtool / torch-lr-finder <= 1.0.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import statistics
import time

import torch
from torch import nn

from lrtool.finder import find_lr, lr_ladder
from lrtool.heap import retain_freed_memory


def conv_net(in_channels: int = 1, classes: int = 10) -> nn.Module:
    """Two 3x3 conv layers (16, 32 channels), max-pool, global average pool, a linear head."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, classes),
    )


START, END = 1e-5, 1e-2
# CPU time of this thread: with one intra-op thread all the work runs here, and unlike wall
# time it does not count the moments the (virtual) machine gives the core to someone else.
CLOCK = time.thread_time


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return conv_net(in_channels=3)


def batches(shape: tuple[int, ...], n: int = 32, size: int = 64) -> list:
    g = torch.Generator().manual_seed(0)
    return [
        (torch.randn(size, *shape, generator=g), torch.randint(0, 10, (size,), generator=g))
        for _ in range(n)
    ]


def optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=START, momentum=0.9)


def run_lrtool(make, data, steps: int) -> float:
    from lrtool import suggest

    # Every run here gives the same curve: clear the rules' caches so that each call pays
    # for its analysis, as a user's single call does.
    suggest._curve_features.cache_clear()
    suggest._ema98.cache_clear()
    model = make()
    opt = optimizer(model)
    started = CLOCK()
    result = find_lr(
        model, opt, data, nn.CrossEntropyLoss(), start_lr=START, end_lr=END, steps=steps,
        refine=False,
    )  # fmt: skip
    elapsed = CLOCK() - started
    assert result.steps_run == steps, result.stop_reason
    return elapsed


def run_bare(make, data, steps: int) -> float:
    model = make()
    opt = optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    ladder = lr_ladder(START, END, steps)
    started = CLOCK()
    for lr, (x, y) in zip(ladder, itertools.cycle(data), strict=False):
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        float(loss.detach())
    return CLOCK() - started


def run_torch_lr_finder(make, data, steps: int) -> float | None:
    try:
        import contextlib
        import io

        from torch_lr_finder import LRFinder, TrainDataLoaderIter
    except ImportError:
        return None
    model = make()
    opt = optimizer(model)
    started = CLOCK()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder = LRFinder(model, opt, nn.CrossEntropyLoss(), device="cpu")
        finder.range_test(
            TrainDataLoaderIter(data), start_lr=START, end_lr=END, num_iter=steps,
            step_mode="exp", diverge_th=1e9,
        )  # fmt: skip
        finder.reset()
    elapsed = CLOCK() - started
    assert len(finder.history["lr"]) == steps
    return elapsed


CASES = (
    # name, model, input shape, batch size, steps per run: small models show overhead most; the
    # 32x32 CNN is compute-bound (a conv step is ~50x the MLP's), so runs there are shorter.
    ("MLP 64-64-10", mlp, (64,), 64, 1.0),
    ("CNN 3x16x16", cnn, (3, 16, 16), 16, 1.0),
    ("CNN 3x32x32", cnn, (3, 32, 32), 64, 0.25),
)


def interval(ratios: list[float], draws: int = 2000) -> tuple[float, float]:
    """A 90% bootstrap interval of the median ratio (fixed seed: the same data, the same answer)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(draws))
    return medians[int(0.05 * draws)], medians[int(0.95 * draws) - 1]


def ratio_cell(a: list[float], b: list[float]) -> str:
    """Median of the per-round ratios a/b and its 90% interval, or '-' without b."""
    if not a or not b:
        return "-"
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    low, high = interval(ratios)
    return f"{statistics.median(ratios):.3f} [{low:.3f}, {high:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9, help="alternated rounds (>= 5)")
    parser.add_argument("--steps", type=int, default=300, help="range-test steps (small models)")
    parser.add_argument("--only", default="", help="run the models whose name contains this")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's trimming on (freed memory page-faulted back in each step)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # As `lrtool find` runs: freed memory is kept for the next step, for all four runners
    # alike. Otherwise how many pages each run faults in depends on the heap's history, which
    # adds a few % of noise to a conv step (see benchmarks/freed_memory.py).
    retained = not args.default_malloc and retain_freed_memory()
    print(
        f"range test, 1 thread, median of {args.pairs} alternated rounds [90% bootstrap interval]"
        f", freed memory {'retained (as lrtool find runs)' if retained else 'trimmed (glibc)'}"
        "\nbare (A/A) is a second bare run in the same round: the noise of this machine\n"
    )
    header = (
        f"{'model':13} {'steps':>5} {'lrtool ms/step':>14} {'bare':>7} {'tlf':>7}  "
        f"{'lrtool / bare':>21}  {'lrtool / torch-lr-finder':>24}  {'bare (A/A)':>21}"
    )
    print(header)
    for name, make, shape, size, share in CASES:
        if args.only not in name:
            continue
        steps = max(20, int(args.steps * share))
        data = batches(shape, size=size)
        runners = {
            "lrtool": run_lrtool,
            "bare": run_bare,
            "tlf": run_torch_lr_finder,
            "bare2": run_bare,
        }
        for run in runners.values():  # warm-up: first-call costs belong to no one
            run(make, data, 20)
        times: dict[str, list[float]] = {key: [] for key in runners}
        order = list(runners)
        for _ in range(args.pairs):
            for key in order:
                gc.collect()  # each run starts from a collected heap, so none pays for another
                elapsed = runners[key](make, data, steps)
                if elapsed is not None:
                    times[key].append(elapsed)
            order = order[1:] + order[:1]  # rotate, so that no runner always goes first
        per = {k: 1000 * statistics.median(v) / steps for k, v in times.items() if v}
        tlf = f"{per['tlf']:7.3f}" if "tlf" in per else f"{'n/a':>7}"
        print(
            f"{name:13} {steps:5d} {per['lrtool']:14.3f} {per['bare']:7.3f} {tlf}  "
            f"{ratio_cell(times['lrtool'], times['bare']):>21}  "
            f"{ratio_cell(times['lrtool'], times['tlf']):>24}  "
            f"{ratio_cell(times['bare2'], times['bare']):>21}"
        )
    print("\ntargets: lrtool / bare <= 1.05, lrtool / torch-lr-finder <= 1.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
