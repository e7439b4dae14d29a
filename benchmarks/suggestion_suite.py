"""Train the suggestion suite once and cache every result, so that rules are scored in seconds.

    python benchmarks/suggestion_suite.py --jobs 2          # 48 tasks x 3 seeds (about 40 min)
    python benchmarks/suggestion_suite.py --quick           # 3 tasks x 1 seed (CI)

For every task of ``suite_tasks.TASKS`` and seed, from the same initial weights and batch order:

* ``L0``, the validation loss of the untrained model;
* two raw range-test curves with ``lrtool.find_lr`` (no smoothing is stored: rules smooth for
  themselves): the default sweep (1e-7 to 10, 100 steps) and the second, denser sweep that
  ``find_lr`` runs over ``refine_range`` of the first when its curve is weak (stored always; a
  rule that does not refine does not count its steps);
* the ground truth: a constant LR and 1cycle (the LR as its peak) trained for the task's full
  budget at every LR of a quarter-decade grid from 1e-5 to 10, plus eighth-decade points either
  side of each schedule's best. Constant runs record the validation loss and the mean training
  loss of their last 20% of steps at 1/64, 1/32, ..., 1/2 and 1 of the budget: a constant-LR
  run of n steps is exactly the first n steps of the full run (same weights, same batches), so
  the budgeted search is re-scored from these prefixes without training again.

Results are stored in ``benchmarks/suggestion_suite.json`` (committed); a rerun trains only
what is missing. Each worker uses one thread, so results do not depend on ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_tasks import QUICK, SEEDS, TASKS  # noqa: E402

GRID = [10 ** (k / 4) for k in range(-20, 5)]  # 1e-5 .. 10 in quarter decades
FRACTIONS = [2.0**-k for k in range(6, -1, -1)]  # 1/64 .. 1 of the budget
CACHE = Path(__file__).resolve().parent / "suggestion_suite.json"
QUICK_CACHE = Path(__file__).resolve().parent / ".cache" / "suggestion_suite_quick.json"
SWEEP = {"start_lr": 1e-7, "end_lr": 10.0, "steps": 100}  # find_lr's defaults


def _setup(name: str, seed: int) -> tuple[Any, Any, Any, Any]:
    import torch

    from lrtool.data import TensorBatches

    torch.set_num_threads(1)
    task = TASKS[name]
    xt, yt, xv, yv = task.load()
    torch.manual_seed(1000 + seed)
    model = task.model((xt, yt, xv, yv))
    return model, TensorBatches(xt, yt, task.batch_size, shuffle=True, seed=seed), xv, yv


def _val_loss(name: str, model: Any, xv: Any, yv: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        value = float(TASKS[name].loss_fn()(model(xv), yv))
    model.train()
    return value if math.isfinite(value) else math.nan


def train_run(name: str, seed: int, schedule: str, lr: float) -> dict[str, Any]:
    """One training run at ``lr`` for the task's budget; constant runs record prefixes."""

    from lrtool.loop import cycle
    from lrtool.schedules import build_schedule
    from lrtool.schedules.torch_adapter import LrtoolScheduler

    task = TASKS[name]
    model, batches, xv, yv = _setup(name, seed)
    optimizer = task.make_optimizer(model.parameters(), lr)
    params = {"lr": lr} if schedule == "constant" else {"max_lr": lr}
    driver = LrtoolScheduler(
        optimizer, build_schedule(schedule, {**params, "total_steps": task.steps})
    )
    loss_fn = task.loss_fn()
    marks = sorted({max(1, round(f * task.steps)) for f in FRACTIONS})
    if schedule != "constant":
        marks = [task.steps]
    stream = cycle(batches)
    losses: list[float] = []
    val: list[float] = []
    tail: list[float] = []
    for t in range(task.steps):
        driver.apply(t)
        x, y = next(stream)
        loss = loss_fn(model(x), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        losses.append(value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if t + 1 in marks:
            val.append(_val_loss(name, model, xv, yv))
            last = losses[-max(1, round(0.2 * len(losses))) :]
            tail.append(sum(last) / len(last))
    diverged = len(losses) < task.steps
    val += [math.nan] * (len(marks) - len(val))
    tail += [math.nan] * (len(marks) - len(tail))
    return {"lr": lr, "marks": marks, "val": val, "tail": tail, "diverged": diverged}


START = GRID.index(10**-2.5)  # the grid is walked up from here, then down
HOPELESS = 0.9  # regret against the best so far beyond which a run is no better than none


def grid_job(name: str, seed: int, schedule: str) -> list[dict[str, Any]]:
    """The quarter-decade grid, then eighth-decade points either side of the best.

    The walk goes up from 10^-2.5 and then down from there; in each direction it ends after two
    runs in a row that diverged or lost at least 90% of the improvement of the best so far
    (``skipped`` runs: every LR further out is assumed at least as bad; scoring treats a skipped
    LR above the walk as diverged and one below it like the lowest LR trained).
    """
    model, _, xv, yv = _setup(name, seed)
    untrained = _val_loss(name, model, xv, yv)
    runs: dict[int, dict[str, Any]] = {}
    best = math.inf

    def final(run: dict[str, Any]) -> float:
        value = run["val"][-1] if run["val"] else math.nan
        return value if math.isfinite(value) else math.inf

    for direction in (range(START, len(GRID)), range(START - 1, -1, -1)):
        streak = 0
        for i in direction:
            if streak >= 2:
                runs[i] = {"lr": GRID[i], "marks": [], "val": [], "tail": [], "skipped": True}
                continue
            run = train_run(name, seed, schedule, GRID[i])
            runs[i] = run
            best = min(best, final(run))
            hopeless = final(run) >= untrained - (1 - HOPELESS) * (untrained - min(best, untrained))
            streak = streak + 1 if run["diverged"] or hopeless else 0
    ordered = [runs[i] for i in range(len(GRID))]
    top = min(range(len(GRID)), key=lambda i: final(ordered[i]))
    for side in (-1, 1):
        if 0 <= top + side < len(GRID) and not ordered[top + side].get("skipped"):
            ordered.append(train_run(name, seed, schedule, math.sqrt(GRID[top] * GRID[top + side])))
    return sorted(ordered, key=lambda r: r["lr"])


def curve_job(name: str, seed: int) -> dict[str, Any]:
    """L0 and the two raw sweeps of ``find_lr`` (restored after each)."""
    from lrtool.finder import find_lr, refine_range

    task = TASKS[name]
    model, batches, xv, yv = _setup(name, seed)
    untrained = _val_loss(name, model, xv, yv)
    optimizer = task.make_optimizer(model.parameters(), 1e-3)
    first = find_lr(model, optimizer, batches, task.loss_fn(), refine=False, **SWEEP)
    low, high = refine_range(first)
    second = find_lr(
        model,
        optimizer,
        batches,
        task.loss_fn(),
        refine=False,
        start_lr=low,
        end_lr=high,
        steps=SWEEP["steps"],
    )
    return {
        "untrained": untrained,
        "first": {"lrs": first.lrs, "losses": first.losses},
        "second": {"lrs": second.lrs, "losses": second.losses},
    }


VAL_BATCHES = 4  # find_lr's val_batches: the monitored loss of a val-monitored sweep


def val_curve_job(name: str, seed: int) -> dict[str, Any]:
    """The two raw sweeps of ``find_lr`` monitoring the first ``VAL_BATCHES`` validation
    batches after each step (``monitor="val"``, what ``lrtool find`` reads by default when the
    data has a validation split); the second sweep over ``refine_range`` of the first."""
    from lrtool.finder import find_lr, refine_range

    task = TASKS[name]
    model, batches, xv, yv = _setup(name, seed)
    size = task.batch_size
    val = [(xv[i : i + size], yv[i : i + size]) for i in range(0, len(xv), size)][:VAL_BATCHES]
    optimizer = task.make_optimizer(model.parameters(), 1e-3)
    sweep = {"refine": False, "val_loader": val, "val_batches": VAL_BATCHES, "monitor": "val"}
    first = find_lr(model, optimizer, batches, task.loss_fn(), **sweep, **SWEEP)
    low, high = refine_range(first)
    second = find_lr(
        model, optimizer, batches, task.loss_fn(), **sweep, start_lr=low, end_lr=high,
        steps=SWEEP["steps"],
    )  # fmt: skip
    return {
        "first": {"lrs": first.lrs, "losses": first.losses},
        "second": {"lrs": second.lrs, "losses": second.losses},
    }


# The LR-free optimizers users pick instead of an LR finder, at their documented defaults
# (the ``bench`` extra: prodigyopt, schedulefree, dadaptation), each trained for the task's
# budget from the same initial weights and batches as the grid. "cosine": with torch's
# CosineAnnealingLR to the end (judged against the 1cycle grid, like schedule-free).
PEERS = ("prodigy", "prodigy_cosine", "schedulefree", "dadapt", "dadapt_cosine")
SGD_LIKE = {"sgd", "momentum", "nesterov"}


def peer_optimizer(method: str, optimizer: str, params: Any) -> Any:
    """The peer's optimizer at its defaults; the SGD variant for SGD-like tasks where the
    method has one (schedule-free, D-Adaptation), Prodigy (Adam-based only) everywhere."""
    base = method.removesuffix("_cosine")
    sgd = optimizer in SGD_LIKE
    if base == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(params, lr=1.0)
    if base == "schedulefree":
        import schedulefree

        return (
            schedulefree.SGDScheduleFree(params) if sgd else schedulefree.AdamWScheduleFree(params)
        )
    if base == "dadapt":
        import dadaptation

        return (
            dadaptation.DAdaptSGD(params, lr=1.0) if sgd else dadaptation.DAdaptAdam(params, lr=1.0)
        )
    raise ValueError(method)


def peer_run(name: str, seed: int, method: str) -> dict[str, Any]:
    """One LR-free training for the task's budget: the final validation loss (NaN diverged)."""
    import torch

    from lrtool.loop import cycle

    task = TASKS[name]
    model, batches, xv, yv = _setup(name, seed)
    optimizer = peer_optimizer(method, task.optimizer, model.parameters())
    sched = None
    if method.endswith("_cosine"):
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=task.steps)
    train_mode = getattr(optimizer, "train", None)  # schedule-free keeps two sets of weights
    if train_mode is not None:
        train_mode()
    loss_fn = task.loss_fn()
    stream = cycle(batches)
    diverged = False
    for _ in range(task.steps):
        x, y = next(stream)
        loss = loss_fn(model(x), y)
        if not math.isfinite(float(loss.detach())):
            diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if sched is not None:
            sched.step()
    if getattr(optimizer, "eval", None) is not None:
        optimizer.eval()  # schedule-free: evaluate the averaged weights
    val = math.nan if diverged else _val_loss(name, model, xv, yv)
    return {"val": val, "diverged": diverged or not math.isfinite(val)}


def peer_job(name: str, seed: int) -> dict[str, Any]:
    return {method: peer_run(name, seed, method) for method in PEERS}


def _run(job: tuple) -> tuple[str, Any]:
    kind, name, seed, *rest = job
    if kind == "curve":
        return _key(job), curve_job(name, seed)
    if kind == "valcurve":
        return _key(job), val_curve_job(name, seed)
    if kind == "peers":
        return _key(job), peer_job(name, seed)
    return _key(job), grid_job(name, seed, rest[0])


KINDS = ("curve", "valcurve", "grid", "peers")


def _key(job: tuple) -> str:
    return "|".join(map(str, job))


def _round(value: Any) -> Any:
    """Six significant digits keep the file small; NaN is written as null."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def load(path: Path = CACHE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def save(cache: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def build(
    names: list[str], seeds: list[int], workers: int, path: Path, kinds: tuple[str, ...] = KINDS
) -> dict[str, Any]:
    cache = load(path)
    jobs: list[tuple] = [
        (k, n, s) for k in ("curve", "valcurve", "peers") for n in names for s in seeds
    ]
    jobs += [
        ("grid", n, s, sched) for n in names for s in seeds for sched in ("constant", "onecycle")
    ]
    todo = [j for j in jobs if _key(j) not in cache and j[0] in kinds]
    # The slow families first, so that the two workers finish together.
    todo.sort(
        key=lambda j: (
            -TASKS[j[1]].steps
            * (3 if TASKS[j[1]].family in ("rnn", "transformer", "cnn", "cnn_bn") else 1)
        )
    )
    started = time.perf_counter()
    print(f"{len(todo)} of {len(jobs)} jobs to run on {workers} worker(s)", file=sys.stderr)
    if todo:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [pool.submit(_run, j) for j in todo]
            for done, future in enumerate(as_completed(futures), 1):
                key, value = future.result()
                cache[key] = _round(value)
                save(cache, path)
                elapsed = time.perf_counter() - started
                print(f"  {done}/{len(todo)} {key} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
    return cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 tasks x 1 seed, own cache file")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--tasks", nargs="*", help="only these tasks")
    parser.add_argument("--cache", type=Path, help="the cache file (default: the committed one)")
    parser.add_argument("--kinds", nargs="*", choices=KINDS, default=list(KINDS))
    args = parser.parse_args(argv)
    names = list(QUICK) if args.quick else (args.tasks or list(TASKS))
    seeds = [0] if args.quick else list(SEEDS)
    path = args.cache or (QUICK_CACHE if args.quick else CACHE)
    build(names, seeds, args.jobs, path, tuple(args.kinds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
