"""``lrtool compare``: several schedules (or one at several LRs) from the same initial weights
and data order, side by side, and which reaches the target val loss first.

Each run is planned up front (:class:`RunPlan`) and every schedule validated before any
training; runs go one by one or to ``--jobs`` worker processes (same numbers either way).
``compare.csv`` (every evaluation of every run) and ``summary.json`` are written, with the
finished runs only and marked interrupted on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtool.errors import LrtoolError, usage_error
from lrtool.jobs.common import (
    LoadedConfig,
    check_png,
    common_summary,
    png_after_results,
    ready,
    run_folders,
    run_length,
    with_length_flags,
)
from lrtool.jobs.find import RANGE_TEST_COLUMNS
from lrtool.jobs.train import (
    LrPlan,
    check_target,
    check_validation_data,
    fit_patience,
    range_test_for_lr,
    schedule_params,
    stopped_in_range_test,
    write_range_test_only,
)

if TYPE_CHECKING:
    from lrtool.finder import RangeTestResult
    from lrtool.trainer import TrainResult

DEFAULT_SCHEDULES = "constant,power,exponential,piecewise,plateau,onecycle"
COMPARE_FILE = "compare.csv"
RANGE_TEST_FILE = "range_test.csv"  # with --lr-from-find: the sweep the LRs came from
SUMMARY_FILE = "summary.json"
FILES = [COMPARE_FILE, RANGE_TEST_FILE, SUMMARY_FILE]


@dataclass(frozen=True)
class RunPlan:
    """One run of a comparison: its label, schedule, parameters and LR plan."""

    label: str
    schedule: str
    params: dict[str, Any]
    lr: LrPlan


@dataclass(frozen=True)
class CompareFlags:
    """``lrtool compare``'s choices beyond the config (None: the config's)."""

    schedules: str | None = None
    schedule: str | None = None
    lrs: str | None = None
    sets: list[str] = field(default_factory=list)
    steps: int | None = None
    lr: LrPlan = field(default_factory=LrPlan)
    target: float | None = None
    jobs: int = 1
    epochs: float | None = None


@dataclass(frozen=True)
class CompareOutputs:
    out: Path | None = None
    force: bool = False
    png: Path | None = None


@dataclass
class CompareOutcome:
    """What ``lrtool compare`` produced; ``results`` holds the finished runs."""

    results: list[TrainResult]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    folder: Path | None
    interrupted: bool = False
    one_schedule: str | None = None  # --schedule NAME --lrs ...: one schedule at several LRs
    found: RangeTestResult | None = None  # the range test of --lr-from-find


def plan_runs(flags: CompareFlags, loaded: LoadedConfig) -> list[RunPlan]:
    """One :class:`RunPlan` per run.

    ``--schedules a,b`` compares schedules; ``--schedule a --lrs x,y`` one schedule at several
    LRs. ``--set name.key=value`` sets a parameter of one schedule (``key=value`` of every
    listed schedule that has it); the config's ``train.schedule`` parameters apply to the
    schedule of the same name.
    """
    from lrtool.schedules import get_spec, parse_sets, route_sets

    if flags.schedule is not None and flags.schedules is not None:
        raise usage_error("use either --schedules a,b,... or --schedule NAME --lrs x,y,...")
    if flags.lrs is not None and flags.schedule is None:
        raise usage_error("--lrs needs --schedule NAME (one schedule at several LRs)")
    if flags.schedule is not None and flags.lrs is None:
        raise usage_error("--schedule needs --lrs x,y,... (or use --schedules a,b,...)")
    names = (
        [flags.schedule]
        if flags.schedule
        else [n.strip() for n in (flags.schedules or DEFAULT_SCHEDULES).split(",") if n.strip()]
    )
    if not names:
        raise usage_error("--schedules: name at least one schedule")
    for name in names:
        get_spec(name)
    routed = route_sets(names, parse_sets(flags.sets), "compared")
    configured = loaded.config.train.schedule
    plans = []
    for name in names:
        params = dict(configured.params()) if configured.name == name else {}
        params.update(routed[name])
        plans.append(RunPlan(name, name, params, flags.lr))
    if flags.schedule is None:
        return plans
    assert flags.lrs is not None
    one = plans[0]
    return [
        RunPlan(f"{one.schedule} lr={v:g}", one.schedule, one.params, LrPlan(v, "--lrs"))
        for v in _parse_lrs(flags.lrs)
    ]


def _parse_lrs(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise usage_error(f"--lrs: {part.strip()!r} is not a number") from None
        if not (value > 0 and math.isfinite(value)):
            raise usage_error(f"--lrs: every LR must be positive, got {part.strip()}")
        values.append(value)
    return values


def run(
    loaded: LoadedConfig,
    flags: CompareFlags,
    outputs: CompareOutputs,
    progress: Any = None,
    on_run: Callable[[str], None] | None = None,
) -> CompareOutcome:
    """Run ``lrtool compare`` and write its result files (see the module doc). ``progress``
    follows the range test (``--lr-from-find``); ``on_run(label)`` is told as each run starts
    (one process)."""
    from lrtool import distributed
    from lrtool import outputs as files
    from lrtool.schedules import build_schedule, get_spec, in_steps, uses_epochs

    if distributed.launched_by_torchrun():
        raise usage_error(
            "compare does not run under torchrun; run it as one process (--jobs N runs "
            "schedules in parallel), or use find/train under torchrun"
        )
    check_target(flags.target)
    if flags.jobs < 1:
        raise usage_error(f"--jobs: must be >= 1, got {flags.jobs}")
    loaded = with_length_flags(loaded, flags.steps, flags.epochs)
    ready(loaded)  # the config validated here, once
    plans = plan_runs(flags, loaded)
    jobs, jobs_note = usable_jobs(flags.jobs, len(plans))
    counts_epochs = any(uses_epochs(p.schedule, p.params) for p in plans)
    length = run_length(loaded, counts_epochs)
    loaded = length.loaded
    plans = [
        replace(p, params=in_steps(p.schedule, p.params, length.steps_per_epoch)) for p in plans
    ]
    check_validation_data([(p.schedule, p.params) for p in plans], loaded)
    check_png(outputs.png, outputs.force)
    config = loaded.config
    target_folder, alternatives = run_folders(outputs.out, loaded.name, "compare")
    saved = next((s for s in (p.lr.saved() for p in plans) if s is not None), None)
    with files.claimed_folder(target_folder, FILES, outputs.force, alternatives) as folder:
        found = saved
        if any(p.lr.needs_range_test for p in plans):
            found, stopped = range_test_for_lr(loaded, "auto", progress)
            if stopped:
                summary = stopped_in_range_test(found, loaded, folder, "compare")
                write_range_test_only(summary, found, folder, FILES)
                if found.failed:
                    raise LrtoolError(f"{found.failed}; the partial results are in {folder}")
                return CompareOutcome([], [], summary, folder, True, flags.schedule, found)
        runs, notes = [], []
        evaluations = config.train.steps // config.train.eval_every
        for plan in plans:
            full, _ = schedule_params(
                plan.schedule, plan.params, config.train.steps, plan.lr, found, config.optimizer.lr
            )
            full, note = fit_patience(plan.schedule, full, evaluations)
            notes += [note] if note else []
            build_schedule(plan.schedule, full)  # every schedule is validated before training
            runs.append(replace(plan, params=full))
        notes += [jobs_note] if jobs_note else []
        results, interrupted = _compare_or_partial(loaded, runs, jobs, on_run)
        if not results:  # interrupted before any run finished: nothing to write
            return CompareOutcome([], [], {}, folder, True, flags.schedule, found)
        target = flags.target if flags.target is not None else config.train.target
        rows, used_target = summary_rows(results, target)
        used = {plan.label: plan for plan in runs}
        for row in rows:  # the LR each run used: its schedule's LR parameter
            plan = used[row["run"]]
            row["lr"] = plan.params.get(get_spec(plan.schedule).lr_param)
        done = {r.label for r in results}
        summary = {
            "command": "compare",
            "config": loaded.source,
            "steps": config.train.steps,
            **length.summary(),
            "target_val_loss": used_target,
            "runs": rows,
            "params": {plan.label: plan.params for plan in runs},
            "winner": next((r["run"] for r in rows if r.get("winner")), None),
            "range_test": None
            if found is None
            else {
                "lr": found.lr,
                "onecycle_max_lr": found.onecycle_max_lr,
                "from": getattr(found, "source", "this run"),
            },
            "jobs": jobs,
            "interrupted": interrupted,
            "runs_not_done": [plan.label for plan in runs if plan.label not in done],
            "notes": notes,
            "data": results[0].context.get("data"),
            "device": results[0].context.get("device"),
            **common_summary(loaded, folder),
        }
        failed = [r for r in results if r.failed]
        summary["failed"] = {r.label: r.failed for r in failed} or None
        from lrtool.report import compare_line

        summary["message"] = compare_line(summary)
        from lrtool.trainer import EVAL_COLUMNS

        eval_rows = [{"schedule": r.label, **e} for r in results for e in r.evals]
        texts = {COMPARE_FILE: files.csv_text(["schedule", *EVAL_COLUMNS], eval_rows)}
        if found is not None and found is not saved:
            texts[RANGE_TEST_FILE] = files.csv_text(RANGE_TEST_COLUMNS, found.rows())
        texts[SUMMARY_FILE] = files.json_text(summary)
        files.write_results(folder, texts, FILES)
        if outputs.png is not None:
            png_after_results("compare", outputs.png, outputs.force, folder, results=results)
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise LrtoolError(
            f"run {first.label} failed: {first.failed}{more}; the other runs and the partial "
            f"results are in {folder}"
        )
    return CompareOutcome(results, rows, summary, folder, interrupted, flags.schedule, found)


def summary_rows(
    results: list[TrainResult], target: float | None
) -> tuple[list[dict[str, Any]], float | None]:
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


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``lrtool compare``: the runs finished so far, and the partial one."""

    def __init__(self, results: list) -> None:
        super().__init__("compare interrupted")
        self.results = results


def usable_jobs(asked: int, runs: int) -> tuple[int, str | None]:
    """``--jobs`` capped at the CPU cores this process may use (each worker trains with one
    thread; more workers than cores only take turns, several times slower) and at the runs;
    a note says when it was capped."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    jobs = max(1, min(asked, cores, runs))
    if asked > cores:
        return jobs, f"--jobs {asked} capped at the {cores} CPU cores this process may use"
    return jobs, None


def _compare_or_partial(
    loaded: LoadedConfig, runs: list[RunPlan], jobs: int, on_run: Callable[[str], None] | None
) -> tuple[list[TrainResult], bool]:
    try:
        return compare_runs(loaded, runs, jobs, on_run), False
    except CompareInterrupted as stop:
        return stop.results, True


def compare_runs(
    loaded: LoadedConfig,
    runs: list[RunPlan],
    jobs: int = 1,
    on_run: Callable[[str], None] | None = None,
) -> list[TrainResult]:
    """Train each planned run (``params`` complete) from the same initial weights and data
    order.

    Every run rebuilds the model from the config's seed, so weights and batch order are
    identical; with ``jobs > 1`` runs go to worker processes and give the same numbers,
    since each run uses one intra-op thread either way.
    """
    import torch

    from lrtool.jobs.train import train_schedule
    from lrtool.trainer import TrainFailed, TrainInterrupted

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if jobs <= 1:
            results: list[TrainResult] = []
            for plan in runs:
                if on_run:
                    on_run(plan.label)
                try:
                    results.append(
                        train_schedule(loaded, plan.schedule, plan.params, label=plan.label)
                    )
                except TrainFailed as stop:  # the others still run; the job reports it
                    results.append(stop.result)
                except TrainInterrupted as stop:
                    results.append(stop.result)
                    raise CompareInterrupted(results) from None
            return results
        return _compare_in_workers(loaded, runs, jobs)
    finally:
        torch.set_num_threads(threads)


def _train_job(args: tuple) -> object:
    """One compare run in a worker process (module level so it pickles). The parent stops it
    with SIGTERM (:func:`lrtool.interrupts.ignore_in_worker`); it returns what it trained."""
    import torch

    from lrtool import interrupts
    from lrtool.config import Config
    from lrtool.jobs.train import train_schedule
    from lrtool.trainer import TrainFailed, TrainInterrupted

    config_data, source, base_dir, name, params, label, threads = args
    torch.set_num_threads(threads)
    loaded = LoadedConfig(Config.model_validate(config_data), source, base_dir)
    with interrupts.working():
        try:
            return train_schedule(loaded, name, params, label=label)
        except (TrainInterrupted, TrainFailed) as stop:
            return stop.result
        except KeyboardInterrupt:
            return None  # stopped while the run was being built: nothing trained to return


def _compare_in_workers(loaded: LoadedConfig, runs: list[RunPlan], jobs: int) -> list:
    """The runs in ``jobs`` worker processes. On a stop signal the runs not started are
    dropped, the running ones are told to stop (SIGTERM) and return what they trained, and
    a worker that does not finish within the grace period is killed: none is left behind."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, wait

    from lrtool import interrupts

    data = loaded.config.model_dump()
    payload = [
        (data, loaded.source, loaded.base_dir, p.schedule, p.params, p.label, 1) for p in runs
    ]
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=mp.get_context("spawn"),
        initializer=interrupts.ignore_in_worker,
    )
    futures = [pool.submit(_train_job, item) for item in payload]
    try:
        results = [r for r in (f.result() for f in futures) if r is not None]
    except KeyboardInterrupt:
        for f in futures:
            f.cancel()
        workers = list((getattr(pool, "_processes", None) or {}).values())
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.terminate()  # SIGTERM: the worker returns its partial result
        wait(futures, timeout=WORKER_GRACE_S)
        done = [
            f.result()
            for f in futures
            if f.done() and not f.cancelled() and not f.exception() and f.result() is not None
        ]
        for worker in workers:
            with contextlib.suppress(Exception):
                if worker.is_alive():
                    worker.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise CompareInterrupted(done) from None
    pool.shutdown()
    return results


WORKER_GRACE_S = 20.0  # how long a stopped worker has to return its partial result
