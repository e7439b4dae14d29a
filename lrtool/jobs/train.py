"""``lrtool train``: one schedule for a budget of steps, with its evaluations.

The LR plan (:class:`LrPlan`) says where the run's LR comes from; :func:`schedule_params`
applies it. ``train.csv`` (every step), ``eval.csv`` (every evaluation) and ``summary.json``
are written, partial and marked interrupted on Ctrl-C.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtool import distributed
from lrtool.errors import LrtoolError, usage_error
from lrtool.jobs.common import (
    LoadedConfig,
    Progress,
    check_png,
    common_summary,
    png_after_results,
    prepare,
    ready,
    run_context,
    run_folders,
    run_length,
    with_length_flags,
)
from lrtool.jobs.find import RANGE_TEST_COLUMNS

if TYPE_CHECKING:
    from lrtool.finder import RangeTestResult
    from lrtool.schedules.base import Schedule
    from lrtool.trainer import TrainResult

TRAIN_FILE = "train.csv"
EVAL_FILE = "eval.csv"
RANGE_TEST_FILE = "range_test.csv"  # with --lr-from-find: the sweep the LR came from
SUMMARY_FILE = "summary.json"
FILES = [TRAIN_FILE, EVAL_FILE, RANGE_TEST_FILE, SUMMARY_FILE]


@dataclass(frozen=True)
class LrPlan:
    """Where a run's LR comes from, first match wins: an explicit value (``--lr``, or one of
    ``--lrs``), the range test (``--lr-from-find``), the schedule's own parameters (config
    or ``--set``), and ``optimizer.lr``."""

    explicit: float | None = None
    explicit_source: str = "--lr"
    from_find: bool = False
    from_find_path: Path | None = None  # an earlier find's folder or summary.json: no new test

    def __post_init__(self) -> None:
        if self.explicit is not None and not self.explicit > 0:
            raise usage_error(f"{self.explicit_source}: must be > 0, got {self.explicit}")

    @property
    def needs_range_test(self) -> bool:
        return self.from_find and self.explicit is None and self.from_find_path is None

    def saved(self) -> Any:
        """The suggestion of ``--lr-from-find PATH`` (read once, up front), or None."""
        if self.from_find_path is None or self.explicit is not None:
            return None
        from lrtool.saved import read_suggestion

        return read_suggestion(self.from_find_path)


def schedule_params(
    name: str,
    params: dict[str, Any],
    steps: int,
    plan: LrPlan,
    found: RangeTestResult | None,
    fallback_lr: float,
) -> tuple[dict[str, Any], str]:
    """The parameters a run's schedule gets (the given ones, the run length, the LR of the
    plan) and where the LR came from: ``--lr``/``--lrs``, ``range test``, ``config`` or
    ``optimizer.lr``. The range test gives its 1cycle peak to schedules whose LR is a peak."""
    from lrtool.schedules import get_spec

    spec = get_spec(name)
    out = dict(params)
    out.setdefault("total_steps", steps)
    if plan.explicit is not None:
        out[spec.lr_param] = plan.explicit
        return out, plan.explicit_source
    if found is not None:
        chosen = getattr(found, spec.suggestion_key)
        if chosen is None:
            warning = found.recommendation.warnings[0] if found.recommendation else ""
            reason = warning.removeprefix("no suggestion: ") or "none for this schedule's use"
            raise LrtoolError(
                f"--lr-from-find: the range test gave no suggestion ({reason}); "
                f"widen find.start_lr/find.end_lr or pass --lr"
            )
        out[spec.lr_param] = chosen
        return out, getattr(found, "label", "range test")
    if spec.has_lr(out):
        return out, "config"
    out[spec.lr_param] = fallback_lr
    return out, "optimizer.lr"


@dataclass(frozen=True)
class TrainFlags:
    """``lrtool train``'s choices beyond the config (None: the config's)."""

    schedule: str | None = None
    sets: list[str] = field(default_factory=list)
    steps: int | None = None
    lr: LrPlan = field(default_factory=LrPlan)
    target: float | None = None
    epochs: float | None = None


@dataclass(frozen=True)
class TrainOutputs:
    out: Path | None = None
    force: bool = False
    png: Path | None = None


@dataclass
class TrainOutcome:
    """What ``lrtool train`` produced."""

    result: TrainResult | None  # None when the run stopped in its range test
    summary: dict[str, Any]
    folder: Path | None  # None on the ranks other than 0 under torchrun
    interrupted: bool = False
    found: RangeTestResult | None = None

    @property
    def diverged(self) -> bool:
        return self.result is not None and self.result.stop_reason.startswith("non-finite")

    @property
    def done(self) -> str:
        """What was trained, for the interrupted line."""
        if self.result is None:
            steps = self.found.steps_run if self.found else 0
            return f"the range test, {steps} steps"
        return f"{len(self.result.steps)} steps"


PATIENCE_SHARE = 6  # derived patience: a cut possible after about a sixth of the evaluations


def fit_patience(name: str, params: dict[str, Any], evaluations: int) -> tuple[dict, str | None]:
    """A plateau schedule's patience for this run's ``evaluations``: derived from the budget
    when not set (``evaluations // 6``, at least 1), so performance scheduling can act within
    the run; a note when a given patience cannot fire at all."""
    from lrtool.schedules import get_spec

    if not get_spec(name).stateful:
        return params, None
    out = dict(params)
    if out.get("patience") is None:
        out["patience"] = max(1, evaluations // PATIENCE_SHARE)
        return out, (
            f"{name}: patience {out['patience']} derived from the budget ({evaluations} "
            f"evaluations); set {name}.patience to choose"
        )
    if out["patience"] + 1 >= evaluations:
        return out, (
            f"{name}: patience {out['patience']} cannot cut within {evaluations} evaluations "
            f"(a cut needs {out['patience'] + 1} bad ones in a row); lower it or evaluate more "
            f"often (train.eval_every)"
        )
    return out, None


def check_validation_data(runs: list[tuple[str, dict[str, Any]]], loaded: LoadedConfig) -> None:
    """Schedules fed a validation metric (plateau) need a validation split: said up front."""
    from lrtool.schedules import get_spec

    if loaded.config.data.val_fraction == 0:
        for name, params in runs:
            monitor = params.get("monitor") or "val_loss"
            if get_spec(name).stateful and monitor != "train_loss":
                raise usage_error(
                    f"{name} needs validation data to monitor {monitor}: set "
                    f"data.val_fraction > 0, or {name}.monitor=train_loss"
                )


def check_target(target: float | None) -> None:
    if target is not None and not target > 0:
        raise usage_error(f"--target: must be a positive val loss, got {target}")


def run(
    loaded: LoadedConfig,
    flags: TrainFlags,
    outputs: TrainOutputs,
    backend: str = "auto",
    progress: Progress | None = None,
    phase: Any = None,
) -> TrainOutcome:
    """Run ``lrtool train`` and write its result files (see the module doc). ``phase(label)``
    is told when training starts after a range test."""
    from lrtool import outputs as files
    from lrtool.schedules import build_schedule, get_spec, in_steps, parse_sets, uses_epochs
    from lrtool.trainer import EVAL_COLUMNS, TRAIN_COLUMNS

    distributed.check_backend(backend)
    loaded = with_length_flags(loaded, flags.steps, flags.epochs)
    configured = ready(loaded).train.schedule  # the config validated here, once
    name = flags.schedule or configured.name
    get_spec(name)
    params = dict(configured.params()) if flags.schedule is None else {}
    params.update(parse_sets(flags.sets))
    length = run_length(loaded, uses_epochs(name, params))
    loaded = length.loaded
    params = in_steps(name, params, length.steps_per_epoch)
    check_target(flags.target)
    config = loaded.config
    check_validation_data([(name, params)], loaded)
    main = distributed.is_main_rank()
    if main:
        check_png(outputs.png, outputs.force)
    first_choice, alternatives = run_folders(outputs.out, loaded.name, "train")
    claim = (
        files.claimed_folder(first_choice, FILES, outputs.force, alternatives)
        if main
        else contextlib.nullcontext()  # ranks other than 0: no folder
    )
    saved = flags.lr.saved()  # an earlier find's answer: read before anything is claimed
    with claim as folder:
        found = saved
        if flags.lr.needs_range_test:
            found, stopped = range_test_for_lr(loaded, backend, progress if main else None)
            if stopped:
                outcome = TrainOutcome(None, {}, folder, found.interrupted, found)
                if folder is not None:
                    outcome.summary = stopped_in_range_test(found, loaded, folder, "train")
                    write_range_test_only(outcome.summary, found, folder, FILES)
                return finish(outcome)
        full, source = schedule_params(
            name, params, config.train.steps, flags.lr, found, config.optimizer.lr
        )
        evaluations = config.train.steps // config.train.eval_every
        full, note = fit_patience(name, full, evaluations)
        schedule = build_schedule(name, full)  # checked before any training, then trained
        if phase is not None:
            phase("training")
        result, interrupted = _train_or_partial(
            loaded, name, full, progress if main else None, backend, schedule
        )
        outcome = TrainOutcome(result, {}, folder, interrupted, found)
        if folder is None:
            return finish(outcome)
        target = flags.target if flags.target is not None else config.train.target
        outcome.summary = {
            "command": "train",
            "config": loaded.source,
            "schedule": name,
            "params": full,
            "lr_source": source,
            "steps_run": len(result.steps),
            "steps_requested": result.steps_requested,
            **length.summary(),
            "stop_reason": result.stop_reason,
            "interrupted": interrupted,
            "failed": result.failed,
            "final_val_loss": result.final_val_loss,
            "best_val_loss": result.best_val_loss,
            "final_accuracy": result.final_accuracy,
            "wall_s": round(result.wall_s, 3),
            "data": result.context.get("data"),
            "device": result.context.get("device"),
            "distributed": distributed.describe(config.data.batch_size, config.distributed),
            **common_summary(loaded, folder),
        }
        if note:
            outcome.summary["notes"] = [note]
        if target is not None:
            outcome.summary["target_val_loss"] = target
            outcome.summary["steps_to_target"] = result.steps_to(target)
        from lrtool.report import train_line

        outcome.summary["message"] = train_line(outcome.summary)
        texts = {
            TRAIN_FILE: files.csv_text(TRAIN_COLUMNS, result.step_rows()),
            EVAL_FILE: files.csv_text(EVAL_COLUMNS, result.evals),
        }
        if found is not None:
            outcome.summary["range_test"] = {
                "lr": found.lr,
                "onecycle_max_lr": found.onecycle_max_lr,
                "used": get_spec(name).suggestion_key,
                "from": getattr(found, "source", "this run"),
            }
            if found is not saved:
                texts[RANGE_TEST_FILE] = files.csv_text(RANGE_TEST_COLUMNS, found.rows())
        texts[SUMMARY_FILE] = files.json_text(outcome.summary)
        files.write_results(folder, texts, FILES)
        if outputs.png is not None and result.steps:
            png_after_results("train", outputs.png, outputs.force, folder, result=result)
    return finish(outcome)


def finish(outcome: TrainOutcome) -> TrainOutcome:
    """The outcome, or the one error line of a run that failed (its files are written)."""
    failed = outcome.found.failed if outcome.result is None and outcome.found else None
    failed = failed or (outcome.result.failed if outcome.result is not None else None)
    if failed and outcome.folder is not None:
        raise LrtoolError(f"{failed}; the partial results are in {outcome.folder}")
    if failed:
        raise LrtoolError(failed)
    return outcome


def range_test_for_lr(
    loaded: LoadedConfig, backend: str, progress: Progress | None
) -> tuple[RangeTestResult, bool]:
    """The range test of ``--lr-from-find``; True when it was interrupted or failed (its
    partial result is then what the run writes)."""
    from lrtool.jobs.find import range_test_or_partial

    found, interrupted = range_test_or_partial(loaded, backend, progress)
    return found, interrupted or found.failed is not None


def stopped_in_range_test(
    found: RangeTestResult, loaded: LoadedConfig, folder: Path, command: str
) -> dict[str, Any]:
    """The summary of a train or compare run stopped during its range test."""
    return {
        "command": command,
        "config": loaded.source,
        "stopped_in": "range test",
        "interrupted": found.interrupted,
        "failed": found.failed,
        "range_test": {
            "lr": found.lr,
            "onecycle_max_lr": found.onecycle_max_lr,
            "steps_run": found.steps_run,
            "stop_reason": found.stop_reason,
        },
        **common_summary(loaded, folder),
    }


def write_range_test_only(
    summary: dict[str, Any], found: RangeTestResult, folder: Path, names: list[str]
) -> None:
    from lrtool import outputs as files

    texts = {
        RANGE_TEST_FILE: files.csv_text(RANGE_TEST_COLUMNS, found.rows()),
        SUMMARY_FILE: files.json_text(summary),
    }
    files.write_results(folder, texts, names)


def _train_or_partial(
    loaded: LoadedConfig,
    name: str,
    params: dict[str, Any],
    progress: Progress | None,
    backend: str,
    schedule: Schedule,
) -> tuple[TrainResult, bool]:
    """The training's result, also when it was interrupted (True) or failed after it had
    taken steps (``result.failed``)."""
    from lrtool.trainer import TrainFailed, TrainInterrupted

    try:
        trained = train_schedule(loaded, name, params, progress, backend=backend, schedule=schedule)
        return trained, False
    except TrainInterrupted as stop:
        return stop.result, True
    except TrainFailed as stop:
        return stop.result, False


def train_schedule(
    loaded: LoadedConfig,
    name: str,
    params: dict[str, Any],
    progress: Progress | None = None,
    label: str | None = None,
    backend: str = "auto",
    schedule: Schedule | None = None,
) -> TrainResult:
    """Build the config's setup and train one schedule (``params`` already complete), with
    the config's ``train`` and ``loop`` settings; ``schedule``: the one already built from
    ``name`` and ``params`` (else built here)."""
    from lrtool.schedules import build_schedule
    from lrtool.trainer import train

    config = loaded.config
    from lrtool.trainer import TrainFailed, TrainInterrupted

    if schedule is None:
        schedule = build_schedule(name, params)
    setup = prepare(loaded, backend)
    try:
        result = train(
            setup.model,
            setup.optimizer,
            setup.fresh_train_batches(),
            setup.loss_fn,
            schedule,
            config.train.steps,
            val_loader=setup.data.val,
            eval_every=config.train.eval_every,
            classification=setup.data.task == "classification",
            device=setup.device,
            label=label or name,
            progress=progress,
            options=config.loop.options(),
        )
    except (TrainInterrupted, TrainFailed) as stop:
        stop.result.context = run_context(setup)
        raise
    result.context = run_context(setup)
    return result
