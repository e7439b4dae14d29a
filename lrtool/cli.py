"""The ``lrtool`` command line: parse flags, call one job (:mod:`lrtool.jobs`), render its
outcome (:mod:`lrtool.render`).

Torch is imported only inside the commands that train (find, train, compare), so ``--help``,
``schedules`` and ``plot`` start fast. Every command is wrapped in
:func:`lrtool.cli_errors.handle_errors`, the one place an :class:`LrtoolError` is caught and
printed as one line on stderr with its exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lrtool import cli_flags as flag
from lrtool import distributed, interrupts, render
from lrtool.cli_errors import debug_state, handle_errors

app = typer.Typer(
    cls=flag.LrtoolGroup,
    name="lrtool",
    help="Find a good learning rate (LR range test), plot schedules, and compare them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _stdout() -> Console:
    return render.stdout_console()


def _stderr() -> Console:
    return render.stderr_console()


def _version(value: bool) -> None:
    if value:
        from lrtool import __version__

        typer.echo(f"lrtool {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    no_imports: Annotated[
        bool,
        typer.Option(
            "--no-imports",
            help="Refuse import paths in configs (a config with one runs code); also "
            "LRTOOL_NO_IMPORTS=1.",
        ),
    ] = False,
) -> None:
    """lrtool: the learning-rate tool."""
    debug_state["debug"] = debug
    from lrtool.imports import refuse_imports

    refuse_imports(no_imports)


def _loaded(
    config: Path | None,
    seed: int | None,
    device: str | None,
    accumulation: int | None = None,
    amp: str | None = None,
    grad_clip: float | None = None,
) -> Any:
    from lrtool.jobs.common import LoopFlags, load

    return load(config, seed, device, LoopFlags(accumulation, amp, grad_clip))


def _lr_plan(lr: float | None, lr_from_find: bool, path: Path | None = None) -> Any:
    from lrtool.jobs.train import LrPlan

    return LrPlan(explicit=lr, from_find=lr_from_find or path is not None, from_find_path=path)


def _interrupted(what: str, folder: Path | None) -> None:
    line = f"interrupted ({interrupts.signal_name()}): partial results ({what}) in {folder}"
    _stderr().print(line, markup=False)
    raise typer.Exit(interrupts.exit_code())


# find ------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def find(
    config: flag.ConfigArg = None,
    start_lr: flag.StartLrOpt = None,
    end_lr: flag.EndLrOpt = None,
    steps: flag.SweepStepsOpt = None,
    mode: flag.ModeOpt = None,
    repeats: flag.RepeatsOpt = None,
    refine: flag.RefineOpt = None,
    budget: flag.BudgetOpt = None,
    verify: flag.VerifyOpt = None,
    verify_steps: flag.VerifyStepsOpt = None,
    monitor: flag.MonitorOpt = None,
    val_batches: flag.ValBatchesOpt = None,
    snapshot: flag.SnapshotOpt = None,
    set_: flag.FindSetOpt = None,
    accumulation_steps: flag.AccumulationOpt = None,
    amp: flag.AmpOpt = None,
    grad_clip: flag.GradClipOpt = None,
    backend: flag.BackendOpt = "auto",
    seed: flag.SeedOpt = None,
    device: flag.DeviceOpt = None,
    out: flag.OutOpt = None,
    force: flag.ForceOpt = False,
    quiet: flag.QuietOpt = False,
    no_plot: flag.NoPlotOpt = False,
    as_json: flag.JsonOpt = False,
    png: flag.PngOpt = None,
    smoke: flag.SmokeOpt = False,
    expect_lr: flag.ExpectLrOpt = None,
) -> None:
    """Run an LR range test and suggest a learning rate (constant and 1cycle peak)."""
    from lrtool.jobs import find as job
    from lrtool.outputs import json_text

    loaded = _loaded(config, seed, device, accumulation_steps, amp, grad_clip)
    loaded = loaded.with_sets(list(set_ or []))
    flags = job.FindFlags(
        start_lr, end_lr, steps, mode, repeats, refine, budget, verify, verify_steps, monitor,
        val_batches, snapshot,
    )  # fmt: skip
    outputs = job.FindOutputs(out, force, png, smoke, expect_lr)
    with render.ProgressBar("range test", not (quiet or as_json)) as bar:
        outcome = job.run(loaded, flags, outputs, backend, bar)
    if outcome.folder is None:  # a rank other than 0 under torchrun: rank 0 reports
        raise typer.Exit(interrupts.exit_code() if outcome.interrupted else 0)
    if outcome.interrupted:
        _interrupted(f"{outcome.result.steps_run} steps", outcome.folder)
    if outcome.smoke is not None:
        _stderr().print(outcome.smoke[1], markup=False, soft_wrap=True)  # a verdict: stderr
    if as_json:
        typer.echo(json_text(outcome.summary), nl=False)
    elif outcome.smoke is not None:
        pass  # the verdict is the output
    else:
        out_console = _stdout()
        render.distributed_line(out_console, outcome.summary)
        render.find(
            out_console, outcome.result, outcome.folder, quiet, no_plot, sys.stdout.isatty()
        )
    if outcome.smoke is not None and not outcome.smoke[0]:
        raise typer.Exit(1)


# schedules and plot ----------------------------------------------------------------------------


@app.command()
@handle_errors
def schedules(
    name: Annotated[str | None, typer.Argument(help="Show one schedule in detail.")] = None,
) -> None:
    """List every schedule with its parameters, defaults and formula."""

    render.schedules(_stdout(), name)


@app.command()
@handle_errors
def plot(
    schedule: flag.PlotScheduleOpt = None,
    steps: flag.PlotStepsOpt = None,
    steps_per_epoch: flag.StepsPerEpochOpt = None,
    lr: flag.PlotLrOpt = None,
    set_: flag.SetOpt = None,
    log_y: flag.PlotLogYOpt = False,
    csv: flag.PlotCsvOpt = None,
    config: flag.PlotConfigOpt = None,
    metric_csv: flag.PlotMetricCsvOpt = None,
    force: flag.ForceOpt = False,
    png: flag.PngOpt = None,
    width: flag.PlotWidthOpt = 90,
) -> None:
    """Plot one or more LR schedules (and momentum) in the terminal."""
    from lrtool.jobs.plot import PlotRequest
    from lrtool.jobs.plot import plot as run_plot

    request = PlotRequest(
        list(schedule or []), steps, lr, list(set_ or []), config, metric_csv, csv, force, png,
        width, log_y, steps_per_epoch,
    )  # fmt: skip
    outcome = run_plot(request)
    render.plot(_stdout(), outcome, log_y, width, sys.stdout.isatty())


# train and compare -----------------------------------------------------------------------------


@app.command()
@handle_errors
def train(
    config: flag.ConfigArg = None,
    schedule: flag.TrainScheduleOpt = None,
    set_: flag.SetOpt = None,
    steps: flag.TrainStepsOpt = None,
    epochs: flag.EpochsOpt = None,
    lr: flag.TrainLrOpt = None,
    lr_from_find: flag.TrainLrFromFindOpt = False,
    lr_from_find_path: flag.LrFromFindPathOpt = None,
    target: flag.TargetOpt = None,
    accumulation_steps: flag.AccumulationOpt = None,
    amp: flag.AmpOpt = None,
    grad_clip: flag.GradClipOpt = None,
    backend: flag.BackendOpt = "auto",
    seed: flag.SeedOpt = None,
    device: flag.DeviceOpt = None,
    out: flag.OutOpt = None,
    force: flag.ForceOpt = False,
    quiet: flag.QuietOpt = False,
    no_plot: flag.NoPlotOpt = False,
    as_json: flag.JsonOpt = False,
    png: flag.PngOpt = None,
) -> None:
    """Train for a budget of steps with a schedule and show the evaluations."""
    from lrtool.jobs import train as job
    from lrtool.outputs import json_text

    loaded = _loaded(config, seed, device, accumulation_steps, amp, grad_clip)
    flags = job.TrainFlags(
        schedule,
        list(set_ or []),
        steps,
        _lr_plan(lr, lr_from_find, lr_from_find_path),
        target,
        epochs,
    )
    outputs = job.TrainOutputs(out, force, png)
    main = distributed.is_main_rank()
    with render.ProgressBar(
        "range test" if lr_from_find and lr_from_find_path is None else "training",
        main and not (quiet or as_json),
    ) as bar:
        outcome = job.run(loaded, flags, outputs, backend, bar, bar.relabel)
    if outcome.folder is None:  # a rank other than 0: mirror rank 0's exit code
        raise typer.Exit(interrupts.exit_code() if outcome.interrupted else int(outcome.diverged))
    if outcome.interrupted or outcome.result is None:
        _interrupted(outcome.done, outcome.folder)
    if as_json:
        typer.echo(json_text(outcome.summary), nl=False)
    else:
        console = _stdout()
        render.distributed_line(console, outcome.summary)
        render.train(
            console, _stderr(), outcome.result, outcome.summary, quiet, no_plot,
            sys.stdout.isatty(),
        )  # fmt: skip
    if outcome.diverged:
        raise typer.Exit(1)  # a diverged training run fails a CI job; its results are kept


@app.command()
@handle_errors
def compare(
    config: flag.ConfigArg = None,
    schedules_: flag.CompareSchedulesOpt = None,
    schedule: flag.CompareScheduleOpt = None,
    lrs: flag.CompareLrsOpt = None,
    set_: flag.SetOpt = None,
    steps: flag.CompareStepsOpt = None,
    epochs: flag.EpochsOpt = None,
    lr: flag.CompareLrOpt = None,
    lr_from_find: flag.CompareLrFromFindOpt = False,
    lr_from_find_path: flag.LrFromFindPathOpt = None,
    target: flag.TargetOpt = None,
    jobs: flag.CompareJobsOpt = 1,
    accumulation_steps: flag.AccumulationOpt = None,
    amp: flag.AmpOpt = None,
    grad_clip: flag.GradClipOpt = None,
    seed: flag.SeedOpt = None,
    device: flag.DeviceOpt = None,
    out: flag.OutOpt = None,
    force: flag.ForceOpt = False,
    quiet: flag.QuietOpt = False,
    no_plot: flag.NoPlotOpt = False,
    as_json: flag.JsonOpt = False,
    png: flag.PngOpt = None,
    log_y: flag.CompareLogYOpt = False,
) -> None:
    """Train several schedules (or LRs) from the same weights and data order, side by side."""
    from lrtool.jobs import compare as job
    from lrtool.outputs import json_text

    loaded = _loaded(config, seed, device, accumulation_steps, amp, grad_clip)
    flags = job.CompareFlags(
        schedules_, schedule, lrs, list(set_ or []), steps,
        _lr_plan(lr, lr_from_find, lr_from_find_path), target,
        jobs, epochs,
    )  # fmt: skip
    err = _stderr()
    show = not (quiet or as_json)
    on_run = (
        (lambda label: err.print(f"training {label} ...")) if show and sys.stderr.isatty() else None
    )
    with render.ProgressBar("range test", show) as bar:
        outcome = job.run(loaded, flags, job.CompareOutputs(out, force, png), bar, on_run)
    if not outcome.results and outcome.found is not None and outcome.summary:
        _interrupted(f"the range test, {outcome.found.steps_run} steps", outcome.folder)
    if not outcome.results:
        err.print("interrupted before any run finished; nothing was written")
        raise typer.Exit(interrupts.exit_code())
    if outcome.interrupted:
        runs = len(outcome.summary["runs"]) + len(outcome.summary["runs_not_done"])
        _interrupted(f"{len(outcome.results)} of {runs} runs", outcome.folder)
    if as_json:
        typer.echo(json_text(outcome.summary), nl=False)
        return
    render.compare(_stdout(), outcome, quiet, no_plot, sys.stdout.isatty(), log_y)
