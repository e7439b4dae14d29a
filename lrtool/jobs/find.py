"""``lrtool find``: the range test of a config, its suggestion, and the result files.

Flags override the config's ``find`` section (validated once, with the config); the sweep
runs (``find.repeats`` times, merged), then the budgeted search when ``find.budget`` asks for
one; ``range_test.csv`` (and ``range_test_first_sweep.csv``, ``verify.csv``) and
``summary.json`` are written, partial and marked interrupted on Ctrl-C.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
)
from lrtool.settings import restarts_need_a_snapshot

if TYPE_CHECKING:
    from lrtool.build import Setup
    from lrtool.finder import RangeTestResult

RANGE_TEST_FILE = "range_test.csv"
FIRST_SWEEP_FILE = "range_test_first_sweep.csv"
VERIFY_FILE = "verify.csv"
SUMMARY_FILE = "summary.json"
FILES = [RANGE_TEST_FILE, FIRST_SWEEP_FILE, VERIFY_FILE, SUMMARY_FILE]
# smoothed_loss: the debiased EMA, the divergence monitor; lagfree_loss: the centred smoothing
# the suggestion rules read (and the plot draws).
RANGE_TEST_COLUMNS = ["step", "lr", "loss", "smoothed_loss", "lagfree_loss"]
VERIFY_COLUMNS = ["use", "lr", "score", "steps", "kept", "rung", "predicted", "note"]


@dataclass(frozen=True)
class FindFlags:
    """``lrtool find``'s overrides of the config's ``find`` section (None: the config's)."""

    start_lr: float | None = None
    end_lr: float | None = None
    steps: int | None = None
    mode: str | None = None
    repeats: int | None = None
    refine: bool | None = None
    budget: float | None = None
    verify: bool | None = None
    verify_steps: int | None = None
    monitor: str | None = None
    val_batches: int | None = None
    snapshot: str | None = None


@dataclass(frozen=True)
class FindOutputs:
    """Where the results go (rank 0 only under torchrun)."""

    out: Path | None = None
    force: bool = False
    png: Path | None = None
    smoke: bool = False
    expect_lr: str | None = None


@dataclass
class FindOutcome:
    """What ``lrtool find`` produced: the result, the summary written, and where."""

    result: RangeTestResult
    summary: dict[str, Any]
    folder: Path | None  # None on the ranks other than 0 under torchrun
    interrupted: bool = False
    smoke: tuple[bool, str] | None = None  # (passed, verdict line) with --smoke
    files: list[Path] = field(default_factory=list)


def configure(loaded: LoadedConfig, flags: FindFlags) -> LoadedConfig:
    """The config with the flags applied (one validation pass). ``--smoke`` changes nothing:
    it judges exactly the answer ``lrtool find`` gives with the same config and flags (a CI
    job that wants it faster says so: ``--budget 0``, ``--steps N``)."""
    configured = loaded.with_values("find", asdict(flags))
    if ready(configured).train.epochs is not None:  # validated here, once
        # The search chooses the LR for a training of train.steps: count the epochs in steps.
        configured = run_length(configured).loaded
    find = configured.config.find
    if find.monitor == "val" and configured.config.data.val_fraction == 0:
        raise usage_error("find.monitor: val needs validation data (set data.val_fraction > 0)")
    if restarts_need_a_snapshot(find.snapshot, search_budget(configured.config), find.repeats):
        raise usage_error(
            "find.snapshot: none keeps no state to restore, but the budgeted search and "
            "repeats start each run from it; set find.budget: 0 (--budget 0) and repeats 1, "
            "or use snapshot cpu or disk"
        )
    return configured


def run(
    loaded: LoadedConfig,
    flags: FindFlags,
    outputs: FindOutputs,
    backend: str = "auto",
    progress: Progress | None = None,
) -> FindOutcome:
    """Run ``lrtool find`` and write its result files (see the module doc)."""
    from lrtool import outputs as files
    from lrtool.smoke import parse_expected_range

    distributed.check_backend(backend)
    expected = parse_expected_range(outputs.expect_lr) if outputs.expect_lr is not None else None
    if expected is not None and not outputs.smoke:
        raise usage_error("--expect-lr: only used with --smoke")
    loaded = configure(loaded, flags)
    if not distributed.is_main_rank():  # under torchrun: train in step with rank 0
        result, interrupted = range_test_or_partial(loaded, backend, None)
        return FindOutcome(result, {}, None, interrupted)
    check_png(outputs.png, outputs.force)
    target, alternatives = run_folders(outputs.out, loaded.name, "find")
    with files.claimed_folder(target, FILES, outputs.force, alternatives) as folder:
        result, interrupted = range_test_or_partial(loaded, backend, progress)
        outcome = FindOutcome(result, summary(result, loaded, folder), folder, interrupted)
        if outputs.smoke and not (interrupted or result.failed):
            from lrtool.smoke import smoke_verdict

            outcome.smoke = smoke_verdict(result, expected)
            outcome.summary["smoke"] = {"ok": outcome.smoke[0], "verdict": outcome.smoke[1]}
            outcome.summary["message"] = outcome.smoke[1]
        outcome.files = write(outcome, folder, outputs.force, outputs.png)
    if result.failed:
        raise LrtoolError(f"{result.failed}; the partial results are in {folder}")
    return outcome


def range_test_or_partial(
    loaded: LoadedConfig, backend: str, progress: Progress | None
) -> tuple[RangeTestResult, bool]:
    """The range test's result, also when it was stopped: interrupted (True) or failed
    (``result.failed``) after it had taken steps."""
    from lrtool.finder import RangeTestFailed, RangeTestInterrupted

    try:
        return find(loaded, backend, progress), False
    except RangeTestInterrupted as stop:
        return stop.result, True
    except RangeTestFailed as stop:
        return stop.result, False


def find(loaded: LoadedConfig, backend: str = "auto", progress: Progress | None = None):  # type: ignore[no-untyped-def]
    """The range test a config describes, run by :func:`lrtool.find_lr` with the arguments
    :func:`find_arguments` reads from the config: the same engine, defaults and search as the
    Python API."""
    from lrtool.finder import RangeTestFailed, RangeTestInterrupted, find_lr

    setup = prepare(loaded, backend)
    try:
        result = find_lr(
            setup.model, setup.optimizer, setup.fresh_train_batches(), setup.loss_fn,
            progress=progress, **find_arguments(setup),
        )  # fmt: skip
    except (RangeTestInterrupted, RangeTestFailed) as stop:
        stop.result.context = run_context(setup)
        raise
    result.context = run_context(setup)
    return result


def find_arguments(setup: Setup) -> dict[str, Any]:
    """The keyword arguments of :func:`lrtool.find_lr` that a config's ``find`` and ``loop``
    sections, its validation split and its training length stand for."""
    config = setup.config
    f = config.find
    return {
        "start_lr": f.start_lr,
        "end_lr": f.end_lr,
        "steps": f.steps,
        "mode": f.mode,
        "smoothing": f.smoothing,
        "diverge_threshold": f.diverge_threshold,
        "refine": f.refine,
        "options": config.loop.options(),
        "device": setup.device,
        "val_loader": setup.data.val,
        "val_batches": f.val_batches,
        "monitor": None if f.monitor == "auto" else f.monitor,  # None: find_lr's default
        "repeats": f.repeats,
        "budget": search_budget(config),
        "target_steps": f.verify_steps or config.train.steps,
        "snapshot": f.snapshot,
        "snapshot_dir": _snapshot_dir(setup),
    }


def search_budget(config: Any) -> float:
    """``find.budget``, with ``find.verify: false`` forcing 0 and ``true`` at least 1."""
    from lrtool.search import DEFAULT_BUDGET

    budget = DEFAULT_BUDGET if config.find.budget is None else config.find.budget
    if config.find.verify is False:
        return 0.0
    if config.find.verify is True:
        return max(budget, 1.0)
    return budget


def _snapshot_dir(setup: Setup) -> Path | None:
    """``find.snapshot_dir`` (relative to the working folder, like ``--out``)."""
    given = setup.config.find.snapshot_dir
    return None if given is None else Path(given).expanduser()


def summary(result: RangeTestResult, loaded: LoadedConfig, folder: Path) -> dict[str, Any]:
    """What ``summary.json`` of ``lrtool find`` holds."""
    rec = result.recommendation
    checked = result.verification
    from lrtool.report import answer_line

    return {
        "command": "find",
        "config": loaded.source,
        "message": answer_line(result),
        "lr": result.lr,
        "onecycle_max_lr": result.onecycle_max_lr,
        "rule": rec.rule if rec else None,
        "optimizer_group": result.optimizer_group,
        "reason": rec.reason if rec else None,
        "confidence": rec.confidence if rec else "none",
        "spread_decades": rec.spread_decades if rec else None,
        "warnings": rec.warnings if rec else [],
        "suggestions": result.suggestions,
        "repeat_lrs": result.repeat_lrs,
        "stop_reason": result.stop_reason,
        "interrupted": result.interrupted,
        "failed": result.failed,
        "steps_run": result.steps_run,
        "steps_requested": result.steps_requested,
        "steps_total": result.steps_total + (checked.steps_spent if checked else 0),
        "discarded_steps": result.discarded_steps,
        "refine_note": result.refined_because or None,
        "refined": None
        if result.coarse is None
        else {
            "because": result.refined_because,
            "first_sweep": [result.coarse.start_lr, result.coarse.end_lr],
            "first_sweep_steps": result.coarse.steps_run,
            "first_sweep_stop_reason": result.coarse.stop_reason,
        },
        "verify": None
        if checked is None
        else {
            "because": checked.because,
            "candidates": checked.rows(),
            "steps_spent": checked.steps_spent,
            "monitor": checked.monitor,
            "budget": checked.budget,
            "target_steps": checked.target_steps,
            "budget_spent": None
            if not checked.target_steps
            else round(checked.steps_spent / checked.target_steps, 4),
        },
        "start_lr": result.start_lr,
        "end_lr": result.end_lr,
        "mode": result.mode,
        "monitor": result.monitor,
        "read_curve": result.read_curve or result.monitor,
        "elapsed_s": round(result.elapsed_s, 3),
        "data": result.context.get("data"),
        "device": result.context.get("device"),
        "distributed": distributed.describe(
            loaded.config.data.batch_size, loaded.config.distributed
        ),
        **common_summary(loaded, folder),
    }


def write(outcome: FindOutcome, folder: Path, force: bool, png: Path | None) -> list[Path]:
    """The result files, put in place together: the curve(s), the search's candidates, the
    summary; then the PNG."""
    from lrtool import outputs as files

    result = outcome.result
    texts = {RANGE_TEST_FILE: files.csv_text(RANGE_TEST_COLUMNS, result.rows())}
    if result.coarse is not None:
        texts[FIRST_SWEEP_FILE] = files.csv_text(RANGE_TEST_COLUMNS, result.coarse.rows())
    if result.verification is not None:
        texts[VERIFY_FILE] = files.csv_text(VERIFY_COLUMNS, result.verification.rows())
    texts[SUMMARY_FILE] = files.json_text(outcome.summary)
    written = files.write_results(folder, texts, FILES)
    if png is not None and result.steps_run >= 2:
        written.append(png_after_results("range_test", png, force, folder, result=result))
    return written
