"""Config-driven runs: build everything a config describes and call one engine.

These are what the CLI commands call (one function each); they return the engines' plain
result objects and write nothing.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from pathlib import Path

from lrtool.build import Setup, build, check_batch, resolve_device
from lrtool.config import Config
from lrtool.data import TensorBatches
from lrtool.finder import (
    Progress,
    RangeTestInterrupted,
    RangeTestResult,
    attach_suggestions,
    find_lr,
)
from lrtool.heap import retain_freed_memory
from lrtool.suggest import lrtool_constant


def prepare(config: Config, base_dir: Path | None, backend: str = "auto") -> Setup:
    """Build a config's setup; under torchrun, join the process group first.

    The run owns its process (a CLI command or a compare worker), so it also keeps freed CPU
    memory for the next step instead of page-faulting it back in (:mod:`lrtool.heap`).
    """
    from lrtool.distributed import init_from_env

    retain_freed_memory()
    dist = init_from_env(resolve_device(config.device), backend)
    setup = build(config, base_dir, dist=dist)
    check_batch(setup)
    return setup


def range_test(
    setup: Setup, progress: Progress | None = None, order_seed: int | None = None
) -> RangeTestResult:
    """One range test with the config's ``find`` settings (``order_seed`` varies the data order)."""
    f = setup.config.find
    batches = setup.fresh_train_batches()
    if order_seed is not None and isinstance(batches, TensorBatches):
        batches.seed = order_seed
    return find_lr(
        setup.model,
        setup.optimizer,
        batches,
        setup.loss_fn,
        start_lr=f.start_lr,
        end_lr=f.end_lr,
        steps=f.steps,
        mode=f.mode,
        smoothing=f.smoothing,
        diverge_threshold=f.diverge_threshold,
        refine=f.refine,
        device=setup.device,
        progress=progress,
    )


def find_from_config(
    config: Config,
    base_dir: Path | None = None,
    progress: Progress | None = None,
    backend: str = "auto",
) -> RangeTestResult:
    """``lrtool find``: one sweep, or ``find.repeats`` sweeps combined into a median curve, then
    the budgeted search when ``find.budget`` (or ``--verify``) asks for one."""
    setup = prepare(config, base_dir, backend)
    if config.find.repeats == 1:
        result = range_test(setup, progress)
    else:
        result = repeated_range_test(setup, config.find.repeats, progress)
    budget = search_budget(config)
    if budget > 0 and result.lrs:
        search_suggestion(setup, result, budget)
    return result


def search_budget(config: Config) -> float:
    """``find.budget``, with ``find.verify: false`` forcing 0 and ``true`` at least 1."""
    from lrtool.search import DEFAULT_BUDGET

    budget = DEFAULT_BUDGET if config.find.budget is None else config.find.budget
    if config.find.verify is False:
        return 0.0
    if config.find.verify is True:
        return max(budget, 1.0)
    return budget


def search_suggestion(setup: Setup, result: RangeTestResult, budget: float) -> None:
    """The budgeted search: constant-LR trainings seeded by the curve, at most ``budget``
    times ``find.verify_steps`` (default ``train.steps``) steps, scored on the validation
    batches when the data has them; its LRs become the answer."""
    from lrtool.verify import search_after_sweep

    config = setup.config
    search_after_sweep(
        result, setup.model, setup.optimizer, setup.fresh_train_batches(), setup.loss_fn,
        budget, config.find.verify_steps or config.train.steps,
        val_loader=setup.data.val, val_batches=8, device=setup.device,
    )  # fmt: skip


def repeated_range_test(
    setup: Setup, repeats: int, progress: Progress | None = None
) -> RangeTestResult:
    """K sweeps from the same weights with different data orders, merged step by step.

    The merged curve's loss at step i is the median over the sweeps that reached step i
    (kept while at least half of them did); the spread of the per-sweep suggestions feeds the
    confidence statement.
    """
    runs: list[RangeTestResult] = []
    for k in range(repeats):
        try:
            runs.append(range_test(setup, progress, order_seed=setup.config.seed + 1000 * (k + 1)))
        except RangeTestInterrupted as stop:
            runs.append(stop.result)
            merged = merge_runs(runs)
            merged.interrupted = True
            raise RangeTestInterrupted(merged) from None
    return merge_runs(runs)


def merge_runs(runs: list[RangeTestResult]) -> RangeTestResult:
    longest = max(runs, key=lambda r: r.steps_run)
    need = (len(runs) + 1) // 2
    lrs, losses, smoothed = [], [], []
    for i, lr in enumerate(longest.lrs):
        at = [r.losses[i] for r in runs if r.steps_run > i]
        if len(at) < need:
            break
        lrs.append(lr)
        losses.append(statistics.median(at))
        smoothed.append(statistics.median(r.smoothed[i] for r in runs if r.steps_run > i))
    merged = RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        stop_reason=f"median of {len(runs)} sweeps; " + "; ".join(r.stop_reason for r in runs),
        steps_requested=longest.steps_requested,
        start_lr=longest.start_lr,
        end_lr=longest.end_lr,
        mode=longest.mode,
        group_lrs=[g[: len(lrs)] for g in longest.group_lrs],
        elapsed_s=sum(r.elapsed_s for r in runs),
        monitor=longest.monitor,
        optimizer_group=longest.optimizer_group,
    )
    per_run = [lrtool_constant(r.lrs, r.losses, r.optimizer_group) for r in runs]
    attach_suggestions(merged, [v for v in per_run if v is not None])
    merged.repeat_lrs = per_run
    return merged


# --------------------------------------------------------------------------------------------
# Training and comparison
# --------------------------------------------------------------------------------------------


def schedule_params(
    name: str, params: dict, steps: int, lr: float | None, found: RangeTestResult | None = None
) -> dict:
    """The parameters a run's schedule gets: the given ones, the run length, and the LR from
    ``--lr`` or a range test (the 1cycle peak for onecycle and cyclic) unless set already."""
    from lrtool.schedules import get_spec

    spec = get_spec(name)
    out = dict(params)
    if spec.uses_total_steps or "total_steps" in spec.param_names:
        out.setdefault("total_steps", steps)
    key = spec.lr_param
    chosen = lr
    if found is not None and chosen is None:
        chosen = found.onecycle_max_lr if key == "max_lr" else found.lr
        if chosen is None:
            from lrtool.errors import LrtoolError

            warning = found.recommendation.warnings[0] if found.recommendation else ""
            reason = warning.removeprefix("no suggestion: ")
            raise LrtoolError(
                f"--lr-from-find: the range test gave no suggestion ({reason}); "
                f"widen find.start_lr/find.end_lr or pass --lr"
            )
    if chosen is not None:
        out[key] = chosen
    return out


def train_from_config(
    config: Config,
    name: str,
    params: dict,
    base_dir: Path | None = None,
    progress: Progress | None = None,
    label: str | None = None,
    backend: str = "auto",
):
    """Build the config's setup and train one schedule (``params`` already complete)."""
    from lrtool.schedules import build_schedule
    from lrtool.trainer import train

    schedule = build_schedule(name, params)
    setup = prepare(config, base_dir, backend)
    return train(
        setup.model,
        setup.optimizer,
        setup.fresh_train_batches(),
        setup.loss_fn,
        schedule,
        config.train.steps,
        val_batches=setup.data.val,
        eval_every=config.train.eval_every,
        classification=setup.data.task == "classification",
        grad_clip=config.train.grad_clip,
        device=setup.device,
        label=label or name,
        progress=progress,
    )


def _train_job(args: tuple) -> object:
    """One compare run in a worker process (module level so it pickles)."""
    import torch

    config_data, name, params, base_dir, label, threads = args
    torch.set_num_threads(threads)
    config = Config.model_validate(config_data)
    from lrtool.trainer import TrainInterrupted

    try:
        return train_from_config(config, name, params, base_dir, label=label)
    except TrainInterrupted as stop:
        return stop.result


def compare_runs(
    config: Config,
    runs: list[tuple[str, str, dict]],
    base_dir: Path | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list:
    """Train each ``(label, schedule, params)`` from the same initial weights and data order.

    Every run rebuilds the model from the config's seed, so weights and batch order are
    identical; with ``jobs > 1`` runs go to worker processes and give the same numbers,
    since each run uses one intra-op thread either way.
    """
    import torch

    from lrtool.trainer import TrainInterrupted

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if jobs <= 1:
            results = []
            for label, name, params in runs:
                if progress:
                    progress(label)
                try:
                    results.append(train_from_config(config, name, params, base_dir, label=label))
                except TrainInterrupted as stop:
                    results.append(stop.result)
                    raise CompareInterrupted(results) from None
            return results
        return _compare_in_workers(config, runs, base_dir, jobs)
    finally:
        torch.set_num_threads(threads)


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``lrtool compare``: the runs finished so far, and the partial one."""

    def __init__(self, results: list) -> None:
        super().__init__("compare interrupted")
        self.results = results


def _compare_in_workers(
    config: Config, runs: list[tuple[str, str, dict]], base_dir: Path | None, jobs: int
) -> list:
    import multiprocessing as mp
    import os
    import signal
    from concurrent.futures import ProcessPoolExecutor, wait

    payload = [(config.model_dump(), n, p, base_dir, label, 1) for label, n, p in runs]
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    futures = [pool.submit(_train_job, item) for item in payload]
    try:
        results = [f.result() for f in futures]
    except KeyboardInterrupt:
        # Runs that have not started are dropped; running ones are told to stop, and return
        # what they trained (a worker turns SIGINT into its partial result).
        for f in futures:
            f.cancel()
        for pid in list(getattr(pool, "_processes", {}) or {}):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)
        wait(futures, timeout=20)
        done = [f.result() for f in futures if f.done() and not f.cancelled() and not f.exception()]
        pool.shutdown(wait=False, cancel_futures=True)
        raise CompareInterrupted(done) from None
    pool.shutdown()
    return results


def compare_summary_rows(results: list, target: float | None) -> tuple[list[dict], float | None]:
    """One row per run with final/best val loss, accuracy and steps to ``target``.

    The default target is the best val loss of the ``constant`` run (or of the first run).
    The winner reaches the target in the fewest steps (ties: lower best val loss).
    """
    if target is None:
        base = next((r for r in results if r.schedule == "constant"), results[0])
        target = base.best_val_loss
    rows = []
    for r in results:
        rows.append(
            {
                "run": r.label,
                "schedule": r.schedule,
                "final_val_loss": r.final_val_loss,
                "best_val_loss": r.best_val_loss,
                "final_accuracy": r.final_accuracy,
                "steps_to_target": r.steps_to(target) if target is not None else None,
                "wall_s": r.wall_s,
                "stop_reason": r.stop_reason,
            }
        )
    reached = [row for row in rows if row["steps_to_target"] is not None]
    if reached:
        best = min(reached, key=lambda row: (row["steps_to_target"], row["best_val_loss"]))
        best["winner"] = True
    return rows, target
