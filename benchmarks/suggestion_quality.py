"""How good is a suggested LR? Regret against a brute-force grid search, for lrtool and the peers.

    python benchmarks/suggestion_quality.py              # the whole suite (see docs/suggestion-quality.md)
    python benchmarks/suggestion_quality.py --quick      # 3 tasks, 1 seed: a few minutes
    python benchmarks/suggestion_quality.py --jobs 2 --markdown docs/suggestion-quality-table.md

For each task of ``quality_tasks.TASKS`` and each seed (the seed sets the initial weights and
the batch order):

1. ``L0``: the validation loss of the untrained model.
2. The grid: train for the task's budget at every LR of a quarter-decade grid, once with a
   constant LR and once with 1cycle (the LR as its peak), from the same initial weights and
   batch order; ``L*`` is the best final validation loss over the grid, per schedule.
3. One range test with ``lrtool.find_lr`` at its defaults (1e-7 to 10, 100 steps) on the same
   initial weights and batches; ``lrtool`` is what ``lrtool find`` answers by default, which
   verifies the suggestion by short trainings when the first sweep was too weak to read. Its curve goes to every rule: lrtool's, faithful versions of
   fastai's (valley, steep, minimum/10) and Lightning's, and torch-lr-finder's own ``plot()``
   suggestion when the package is installed (``pip install torch-lr-finder``: it is not a
   dependency of lrtool).
4. Each suggestion is trained like a grid point; its regret is ``(L(s) - L*) / (L0 - L*)``,
   clipped to [0, 1]: 0 is as good as the grid's best, 1 no better than not training. A
   diverged run, or a rule that gives no LR, counts as 1. lrtool's ``lr`` is judged with a
   constant LR and its ``onecycle_max_lr`` with 1cycle; a peer's single LR is judged both ways.

Every trained point is cached (``--cache``, on by default) so a rerun after a rule change only
trains the new LRs. Each worker uses one thread, so results do not depend on ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tasks import QUICK, TASKS, Task  # noqa: E402

GRID = [10 ** (k / 4) for k in range(-20, 5)]  # 1e-5 .. 10 in quarter decades
SCHEDULES = ("constant", "onecycle")
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "suggestion_quality.json"
BAD = 0.2  # a run "loses" when its regret is above this


# --------------------------------------------------------------------------------------------
# Training (runs in worker processes)
# --------------------------------------------------------------------------------------------


def _setup(task: Task, seed: int) -> tuple[Any, Any, Any, Any]:
    import torch

    from lrtool.data import TensorBatches

    torch.set_num_threads(1)
    xt, yt, xv, yv = task.data(seed)
    torch.manual_seed(1000 + seed)
    model = task.build((xt, yt, xv, yv))
    batches = TensorBatches(xt, yt, task.batch_size, shuffle=True, seed=seed)
    return model, batches, xv, yv


def _val_loss(task: Task, model: Any, xv: Any, yv: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        value = float(task.loss_fn()(model(xv), yv))
    model.train()
    return value


def train_point(name: str, seed: int, schedule: str, lr: float) -> float:
    """Final validation loss after the task's budget at ``lr`` (NaN when it diverged)."""
    import torch

    from lrtool.finder import cycle
    from lrtool.schedules import build_schedule
    from lrtool.torch_adapter import LrtoolScheduler

    task = TASKS[name]
    model, batches, xv, yv = _setup(task, seed)
    if schedule == "none":
        return _val_loss(task, model, xv, yv)
    optimizer = task.make_optimizer(model.parameters(), lr)
    params = {"lr": lr} if schedule == "constant" else {"max_lr": lr}
    scheduler = LrtoolScheduler(
        optimizer, build_schedule(schedule, {**params, "total_steps": task.steps})
    )
    loss_fn = task.loss_fn()
    stream = cycle(batches)
    for t in range(task.steps):
        scheduler.apply(t)
        x, y = next(stream)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            return math.nan
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    value = _val_loss(task, model, xv, yv)
    return value if math.isfinite(value) else math.nan


def range_test_curve(name: str, seed: int) -> dict[str, Any]:
    """lrtool's range test at its defaults, from the same weights and batches as the grid,
    then ``--verify`` around its suggestions (half the task's budget per candidate)."""
    from lrtool.finder import find_lr
    from lrtool.verify import verify_lr

    task = TASKS[name]
    model, batches, xv, yv = _setup(task, seed)
    optimizer = task.make_optimizer(model.parameters(), 1e-3)
    result = find_lr(model, optimizer, batches, task.loss_fn())
    single = find_lr(model, optimizer, batches, task.loss_fn(), refine=False)  # the ablation
    repeated = _repeated(task, model, optimizer, seed, 3)
    checked = verify_lr(
        model,
        optimizer,
        batches,
        task.loss_fn(),
        lr=result.lr,
        onecycle_max_lr=result.onecycle_max_lr,
        steps=task.steps // 2,
        val_loader=[(xv, yv)],
    )
    return {
        "lrs": result.lrs,
        "losses": result.losses,
        "smoothed": result.smoothed,
        "steps": result.steps_total,
        "verified": {"constant": checked.lr, "onecycle": checked.onecycle_max_lr},
        "refined": result.coarse is not None,
        "one_sweep": {"constant": single.lr, "onecycle": single.onecycle_max_lr},
        "repeats3": {"constant": repeated.lr, "onecycle": repeated.onecycle_max_lr},
        "repeats3_steps": repeated.steps_total,
        "one_sweep_steps": single.steps_total,
        "verify_steps": checked.steps_spent,
    }


def _repeated(task: Task, model: Any, optimizer: Any, seed: int, k: int) -> Any:
    """``lrtool find --repeats k``: k sweeps with different data orders, merged."""
    from lrtool.data import TensorBatches
    from lrtool.finder import find_lr
    from lrtool.runs import merge_runs

    xt, yt, _, _ = task.data(seed)
    runs = []
    for r in range(k):
        order = TensorBatches(xt, yt, task.batch_size, shuffle=True, seed=seed + 1000 * (r + 1))
        runs.append(find_lr(model, optimizer, order, task.loss_fn()))
    merged = merge_runs(runs)
    return _Repeated(merged.lr, merged.onecycle_max_lr, sum(r.steps_total for r in runs))


@dataclass
class _Repeated:
    lr: float | None
    onecycle_max_lr: float | None
    steps_total: int


def _run(job: tuple) -> tuple[tuple, Any]:
    kind, *args = job
    if kind == "curve":
        return job, range_test_curve(*args)
    return job, train_point(*args)


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


def torch_lr_finder_package(lrs: list[float], losses: list[float]) -> float | None:
    """torch-lr-finder's own ``LRFinder.plot(suggest_lr=True)`` on our curve (its smoothing)."""
    try:
        import contextlib
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from torch_lr_finder import LRFinder
    except ImportError:
        return None
    smoothed: list[float] = []
    for i, loss in enumerate(losses):  # torch-lr-finder's smooth_f=0.05, no debiasing
        smoothed.append(loss if i == 0 else 0.05 * loss + 0.95 * smoothed[-1])
    finder = LRFinder.__new__(LRFinder)
    finder.history = {"lr": list(lrs), "loss": smoothed}
    fig, ax = plt.subplots()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _, lr = finder.plot(ax=ax, suggest_lr=True)
    except (RuntimeError, ValueError):
        return None
    finally:
        plt.close(fig)
    return float(lr)


def suggestions(curve: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per rule, the LR it gives for each use (constant, onecycle)."""
    from lrtool.suggest import RULES, recommend, run_rules

    found = run_rules(curve["lrs"], curve["losses"])
    rec = recommend(curve["lrs"], curve["losses"], found)
    plain = {"constant": rec.lr, "onecycle": rec.onecycle_max_lr}
    out: dict[str, dict[str, float | None]] = {
        # `lrtool find` by default: verified when the first sweep was too weak to read
        "lrtool": curve["verified"] if curve["refined"] else plain,
        "lrtool (curve only)": plain,
        "lrtool --verify": curve["verified"],
        "lrtool --no-refine": curve["one_sweep"],
        "lrtool --repeats 3": curve["repeats3"],
    }
    for name, info in RULES.items():
        if info.peer:
            out[name] = {"constant": found[name], "onecycle": found[name]}
    package = torch_lr_finder_package(curve["lrs"], curve["losses"])
    if package is not None:
        out["torch_lr_finder (package)"] = {"constant": package, "onecycle": package}
    return out


def _key(name: str, seed: int, schedule: str, lr: float) -> str:
    return f"{name}|{seed}|{schedule}|{lr:.6g}"


def regret(value: float, best: float, untrained: float) -> float:
    """``(L(s) - L*) / (L0 - L*)`` clipped to [0, 1]; a diverged run is 1."""
    if not math.isfinite(value) or untrained <= best:
        return 1.0
    return min(1.0, max(0.0, (value - best) / (untrained - best)))


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _execute(jobs: list[tuple], cache: dict[str, Any], workers: int, path: Path | None) -> None:
    todo = [j for j in jobs if _job_key(j) not in cache]
    if not todo:
        return
    started = time.perf_counter()
    print(f"  running {len(todo)} jobs on {workers} worker(s)...", file=sys.stderr, flush=True)
    if workers <= 1:
        results = map(_run, todo)
        for job, value in results:
            cache[_job_key(job)] = value
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            for i, (job, value) in enumerate(pool.map(_run, todo, chunksize=4)):
                cache[_job_key(job)] = value
                if path is not None and i % 50 == 49:
                    _save(cache, path)
    if path is not None:
        _save(cache, path)
    print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def _job_key(job: tuple) -> str:
    if job[0] == "curve":
        return f"curve|{job[1]}|{job[2]}"
    return _key(*job[1:])


def _save(cache: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    trained = {k: v for k, v in cache.items() if not k.startswith("curve|")}
    tmp.write_text(json.dumps(trained), encoding="utf-8")
    os.replace(tmp, path)


def evaluate(
    names: list[str], seeds: list[int], workers: int, cache_path: Path | None
) -> dict[str, Any]:
    cache: dict[str, Any] = {}
    if cache_path is not None and cache_path.exists():
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
        # Range tests are cheap and change with lrtool's code: never reuse them.
        cache = {k: v for k, v in cache.items() if not k.startswith("curve|")}
    pairs = [(n, s) for n in names for s in seeds]
    # 1. curves, untrained losses and the grid
    jobs: list[tuple] = []
    for n, s in pairs:
        jobs.append(("curve", n, s))
        jobs.append(("train", n, s, "none", 0.0))
        jobs += [("train", n, s, sched, lr) for sched in SCHEDULES for lr in GRID]
    _execute(jobs, cache, workers, cache_path)
    # 2. the suggestions of every rule, trained
    picks = {(n, s): suggestions(cache[f"curve|{n}|{s}"]) for n, s in pairs}
    jobs = []
    for (n, s), by_rule in picks.items():
        for uses in by_rule.values():
            for sched, lr in uses.items():
                if lr is not None and lr > 0:
                    jobs.append(("train", n, s, sched, lr))
    _execute(jobs, cache, workers, cache_path)
    # 3. regrets
    rows = []
    for (n, s), by_rule in picks.items():
        untrained = cache[_key(n, s, "none", 0.0)]
        curve = cache[f"curve|{n}|{s}"]
        for sched in SCHEDULES:
            grid = {lr: cache[_key(n, s, sched, lr)] for lr in GRID}
            finite = {lr: v for lr, v in grid.items() if math.isfinite(v)}
            best_lr = min(finite, key=finite.__getitem__)
            best = finite[best_lr]
            for rule, uses in by_rule.items():
                lr = uses[sched]
                value = cache[_key(n, s, sched, lr)] if lr else math.nan
                rows.append(
                    {
                        "task": n,
                        "held_out": TASKS[n].held_out,
                        "seed": s,
                        "schedule": sched,
                        "rule": rule,
                        "lr": lr,
                        "best_lr": best_lr,
                        "best_at_edge": best_lr in (GRID[0], GRID[-1]),
                        "val_loss": value,
                        "best_val_loss": best,
                        "untrained_val_loss": untrained,
                        "regret": regret(value, best, untrained),
                        "extra_steps": _extra_steps(rule, curve),
                    }
                )
    grid_steps = {n: len(GRID) * TASKS[n].steps for n in names}
    return {"rows": rows, "grid_steps": grid_steps}


def _extra_steps(rule: str, curve: dict[str, Any]) -> int:
    """Training steps a rule's answer cost beyond the training itself."""
    if rule == "lrtool --no-refine":
        return curve["one_sweep_steps"]
    if rule == "lrtool --repeats 3":
        return curve["repeats3_steps"]
    verified = rule == "lrtool --verify" or (rule == "lrtool" and curve["refined"])
    return curve["steps"] + (curve["verify_steps"] if verified else 0)


def summarise(rows: list[dict[str, Any]], subset: str = "all") -> list[dict[str, Any]]:
    picked = [
        r
        for r in rows
        if subset == "all" or (r["held_out"] if subset == "held_out" else not r["held_out"])
    ]
    rules = list(dict.fromkeys(r["rule"] for r in picked))
    table = []
    for rule in rules:
        line: dict[str, Any] = {"rule": rule}
        for sched in SCHEDULES:
            values = [r["regret"] for r in picked if r["rule"] == rule and r["schedule"] == sched]
            line[sched] = {
                "median": statistics.median(values),
                "mean": statistics.fmean(values),
                "worst": max(values),
                "bad": sum(v > BAD for v in values),
                "n": len(values),
            }
        steps = [r["extra_steps"] for r in picked if r["rule"] == rule]
        line["steps"] = statistics.fmean(steps)
        table.append(line)
    return table


def format_table(table: list[dict[str, Any]], grid_steps: float, title: str) -> str:
    head = (
        f"| rule | constant: median | mean | worst | > {BAD} "
        f"| 1cycle: median | mean | worst | > {BAD} | extra steps |"
    )
    lines = [f"**{title}**", "", head, "|---" * 10 + "|"]
    for line in table:
        cells = [line["rule"]]
        for sched in SCHEDULES:
            s = line[sched]
            cells += [f"{s['median']:.3f}", f"{s['mean']:.3f}", f"{s['worst']:.3f}"]
            cells.append(f"{s['bad']}/{s['n']}")
        cells.append(f"{line['steps']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"| grid search (reference) | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | {grid_steps:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LR suggestion regret against a grid search.")
    parser.add_argument("--quick", action="store_true", help=f"tasks {', '.join(QUICK)}; 1 seed")
    parser.add_argument("--tasks", help="comma-separated task names (default: all)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per task (default 2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache of trained points")
    parser.add_argument("--no-cache", action="store_true", help="train everything afresh")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--rows", type=Path, help="write every (task, seed, rule) row as JSON")
    args = parser.parse_args(argv)
    names = list(QUICK) if args.quick else list(TASKS)
    if args.tasks:
        names = [n.strip() for n in args.tasks.split(",")]
        unknown = [n for n in names if n not in TASKS]
        if unknown:
            parser.error(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    seeds = list(range(1 if args.quick else args.seeds))
    started = time.perf_counter()
    out = evaluate(names, seeds, args.jobs, None if args.no_cache else args.cache)
    rows = out["rows"]
    grid_steps = statistics.fmean(out["grid_steps"].values())
    parts = [
        f"{len(names)} tasks x {len(seeds)} seeds; grid {GRID[0]:g}..{GRID[-1]:g} in quarter "
        f"decades ({len(GRID)} LRs); regret = (L(s) - L*) / (L0 - L*), clipped to [0, 1]"
    ]
    parts.append(format_table(summarise(rows), grid_steps, "All tasks"))
    held = [r for r in rows if r["held_out"]]
    if held and len(held) < len(rows):
        parts.append(format_table(summarise(rows, "tuned"), grid_steps, "Tasks used for tuning"))
        parts.append(format_table(summarise(rows, "held_out"), grid_steps, "Held-out tasks"))
    edges = sorted({(r["task"], r["seed"], r["schedule"]) for r in rows if r["best_at_edge"]})
    if edges:
        parts.append(f"warning: the grid's best is at its edge for {edges}")
    worst = sorted(
        (r for r in rows if r["rule"] == "lrtool"), key=lambda r: r["regret"], reverse=True
    )[:5]
    parts.append(
        "lrtool's worst cases: "
        + "; ".join(
            f"{r['task']} seed {r['seed']} {r['schedule']}: regret {r['regret']:.3f} at "
            f"{r['lr'] or float('nan'):.3g} (grid best {r['best_lr']:.3g})"
            for r in worst
        )
    )
    parts.append(f"measured in {time.perf_counter() - started:.0f} s with --jobs {args.jobs}")
    text = "\n\n".join(parts)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.rows:
        args.rows.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
