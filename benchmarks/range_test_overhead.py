"""Range-test cost per step: lrtool against a bare PyTorch loop and against torch-lr-finder.

    python benchmarks/range_test_overhead.py            # median of 7 alternated triples
    python benchmarks/range_test_overhead.py --pairs 9 --steps 300
    pip install torch-lr-finder                          # for column (c); not a dependency

The same model (rebuilt from the same seed), batches (pre-built tensors, cycled), thread count
(1) and number of steps for (a) ``lrtool.find_lr`` through the Python API, (b) a bare loop that
sets the LR of the exponential ladder and does forward, backward and step and reads the loss,
and (c) torch-lr-finder's ``LRFinder.range_test``. The LR range (1e-5 to 1e-2) never diverges,
so all three run every step. Each measurement is the whole call, including state snapshot and
restore and the suggestion rules (lrtool) or torch-lr-finder's own bookkeeping. The three
alternate (a, b, c, a, b, c, ...) and the median of the per-pair ratios is reported. Times are the thread's CPU time
(``time.thread_time``), which a busy or virtual machine disturbs much less than wall time. Targets: lrtool / bare <= 1.05,
lrtool / torch-lr-finder <= 1.0.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from lrtool.finder import find_lr, lr_ladder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_tasks import conv_net  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7, help="alternated repetitions (>= 5)")
    parser.add_argument("--steps", type=int, default=200, help="range-test steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = [("MLP 64-64-10", mlp, batches((64,))), ("CNN 3x32x32", cnn, batches((3, 32, 32)))]
    print(
        f"range test, {args.steps} steps, 1 thread, median of {args.pairs} alternated runs\n"
        f"{'model':14} {'lrtool ms/step':>15} {'bare':>8} {'torch-lr-finder':>16} "
        f"{'lrtool/bare':>12} {'lrtool/tlf':>11}"
    )
    for name, make, data in cases:
        run_lrtool(make, data, 20), run_bare(make, data, 20), run_torch_lr_finder(make, data, 20)
        runners = {
            "lrtool": run_lrtool,
            "bare": run_bare,
            "tlf": run_torch_lr_finder,
        }
        times: dict[str, list[float]] = {key: [] for key in runners}
        order = list(runners)
        for _ in range(args.pairs):
            for key in order:
                gc.collect()  # each run starts from a collected heap, so none pays for another
                elapsed = runners[key](make, data, args.steps)
                if elapsed is not None:
                    times[key].append(elapsed)
            order = order[1:] + order[:1]  # rotate, so that no runner always goes first
        per = {k: 1000 * statistics.median(v) / args.steps for k, v in times.items() if v}
        # The ratio of each alternated pair, then the median: robust to drift of the machine.
        ratio_bare = statistics.median(
            a / b for a, b in zip(times["lrtool"], times["bare"], strict=True)
        )
        tlf_ms = f"{per['tlf']:16.3f}" if "tlf" in per else f"{'not installed':>16}"
        ratio_tlf = (
            f"{statistics.median(a / b for a, b in zip(times['lrtool'], times['tlf'], strict=True)):11.3f}"
            if times["tlf"]
            else f"{'-':>11}"
        )
        print(
            f"{name:14} {per['lrtool']:15.3f} {per['bare']:8.3f} {tlf_ms} "
            f"{ratio_bare:12.3f} {ratio_tlf}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
