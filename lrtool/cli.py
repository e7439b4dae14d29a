"""The ``lrtool`` command line: parse flags, call one engine, render the result.

Torch is imported only inside the commands that train (find, train, compare), so ``--help``,
``schedules`` and ``plot`` start fast. Every :class:`LrtoolError` is caught once, here, and
printed as one line on stderr with its exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from lrtool import distributed
from lrtool.errors import INTERRUPTED_EXIT, LrtoolError, usage_error

app = typer.Typer(
    name="lrtool",
    help="Find a good learning rate (LR range test), plot schedules, and compare them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def _stdout(quiet: bool = False) -> Console:
    return Console(quiet=quiet, width=None if sys.stdout.isatty() else 100, highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


RANK_ERROR_GRACE_S = 3.0  # how long a failing rank other than 0 leaves rank 0 to report


def handle_errors(fn: F) -> F:
    """Turn an LrtoolError into one line on stderr and its exit code; remove empty new run folders."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        finished = False  # the command ran to its end (its own exit codes included)
        try:
            result = fn(*args, **kwargs)
            finished = True
            return result
        except typer.Exit:
            finished = True
            raise
        except LrtoolError as exc:
            if _state["debug"]:
                raise
            if distributed.is_main_rank():
                _stderr().print(f"error: {exc.message}", markup=False, soft_wrap=True)
            else:
                # Under torchrun the ranks usually fail alike, and rank 0 speaks for all. Exiting
                # at once could let torchrun stop rank 0 before it has printed, so this rank
                # waits: once rank 0 has exited, torchrun stops this one here. A rank still
                # running after the wait failed on its own, and says so.
                time.sleep(RANK_ERROR_GRACE_S)
                _stderr().print(
                    f"error (rank {os.environ.get('RANK', '?')}): {exc.message}",
                    markup=False,
                    soft_wrap=True,
                )
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if _state["debug"]:
                raise
            _stderr().print("interrupted", markup=False)
            raise typer.Exit(INTERRUPTED_EXIT) from None
        finally:
            from lrtool.results import remove_empty_new_folders

            remove_empty_new_folders()
            distributed.finish(finished)

    return wrapper  # type: ignore[return-value]


def _say_distributed(summary: dict[str, Any]) -> None:
    info = summary.get("distributed")
    if info:
        _stdout().print(
            f"distributed: {info['world_size']} ranks ({info['backend']}), global batch "
            f"{info['global_batch']} = {info['world_size']} x {info['per_rank_batch']}; "
            f"the loss is the mean over ranks",
            markup=False,
        )


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
) -> None:
    """lrtool: the learning-rate tool."""
    _state["debug"] = debug


# Shared options --------------------------------------------------------------------------------

ConfigArg = Annotated[
    Path | None,
    typer.Argument(help="YAML config; default: the embedded quickstart (digits, MLP, SGD)."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (overrides seed).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")]
BackendOpt = Annotated[
    str,
    typer.Option("--backend", help="Under torchrun: auto (nccl on GPUs, else gloo), gloo, nccl."),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Output folder (default runs/<config>-<cmd>-<time>).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing result files.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result line.")]
NoPlotOpt = Annotated[bool, typer.Option("--no-plot", help="Skip the terminal plot.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the summary as JSON on stdout and nothing else.")
]
PngOpt = Annotated[
    Path | None, typer.Option("--png", help="Also write the plot as a PNG (needs lrtool[png]).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Schedule parameter key=value (repeatable)."),
]


def _load(
    config: Path | None, seed: int | None, device: str | None
) -> tuple[Any, str, Path | None]:
    """The config (file or embedded default) with --seed/--device applied."""
    from lrtool import config as cfg

    if config is None:
        loaded, source, base = cfg.default_config(), "quickstart", None
    else:
        loaded, source, base = cfg.load_config(config), str(config), config.resolve().parent
    if device is not None and device not in ("auto", "cpu", "cuda", "mps"):
        raise usage_error(f"--device: must be auto, cpu, cuda or mps, got {device!r}")
    loaded = cfg.apply_overrides(loaded, "", {"seed": seed, "device": device}, source)
    if distributed.launched_by_torchrun():  # before any folder is made
        distributed.shard_batch_size(loaded.data.batch_size, int(os.environ["WORLD_SIZE"]))
    return loaded, source, base


def _config_name(source: str) -> str:
    return Path(source).stem if source != "quickstart" else "quickstart"


class _Bar:
    """A rich progress bar on stderr, shown only on a terminal and when not quiet."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=_stderr(),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=None, info="")
        return self

    def __call__(self, step: int, total: int, lr: float, loss: float) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task, completed=step + 1, total=total, info=f"lr {lr:.2e} loss {loss:.4f}"
            )

    def relabel(self, label: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=label, completed=0)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _check_png(png: Path | None, force: bool) -> None:
    """Fail before any work when --png cannot be honoured (checked once, up front)."""
    if png is not None:
        from lrtool.png import check_png_target

        check_png_target(png, force)


def _write_png(kind: str, path: Path, force: bool, **data: Any) -> None:
    from lrtool.png import write_png

    write_png(kind, path, force, **data)


# find ------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def find(
    config: ConfigArg = None,
    start_lr: Annotated[
        float | None, typer.Option("--start-lr", help="First LR of the sweep.")
    ] = None,
    end_lr: Annotated[float | None, typer.Option("--end-lr", help="Last LR of the sweep.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Number of sweep steps.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="exp or linear LR growth.")] = None,
    repeats: Annotated[
        int | None, typer.Option("--repeats", help="Sweeps with different data orders (median).")
    ] = None,
    refine: Annotated[
        bool | None,
        typer.Option(
            "--refine/--no-refine",
            help="Always / never run a second, denser sweep (default: when the curve is weak).",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            help="Budgeted search after the sweep: at most B trainings of train.steps steps "
            "(0: the curve alone).",
        ),
    ] = None,
    verify: Annotated[
        bool | None,
        typer.Option(
            "--verify/--no-verify",
            help="Force the budgeted search on (budget at least 1) or off.",
        ),
    ] = None,
    verify_steps: Annotated[
        int | None,
        typer.Option(
            "--verify-steps", help="Training length the search chooses for (train.steps)."
        ),
    ] = None,
    backend: BackendOpt = "auto",
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out: OutOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    no_plot: NoPlotOpt = False,
    as_json: JsonOpt = False,
    png: PngOpt = None,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="CI check: a short sweep with a pass/fail verdict.")
    ] = False,
    expect_lr: Annotated[
        str | None, typer.Option("--expect-lr", help="With --smoke: MIN:MAX the LR must fall in.")
    ] = None,
) -> None:
    """Run an LR range test and suggest a learning rate (constant and 1cycle peak)."""
    from lrtool import config as cfg
    from lrtool import results as res
    from lrtool.smoke import parse_expected_range, smoke_verdict

    distributed.check_backend(backend)
    expected = parse_expected_range(expect_lr) if expect_lr is not None else None
    if expected is not None and not smoke:
        raise usage_error("--expect-lr: only used with --smoke")
    loaded, source, base = _load(config, seed, device)
    if smoke and steps is None:
        steps = min(loaded.find.steps, 60)
    loaded = cfg.apply_overrides(
        loaded,
        "find",
        {
            "start_lr": start_lr,
            "end_lr": end_lr,
            "steps": steps,
            "mode": mode,
            "repeats": repeats,
            "refine": refine,
            "budget": budget,
            "verify": False if smoke and verify is None else verify,  # smoke stays short
            "verify_steps": verify_steps,
        },
        source,
    )
    from lrtool.finder import RangeTestInterrupted
    from lrtool.runs import find_from_config

    if not distributed.is_main_rank():  # under torchrun: train in step with rank 0, which reports
        try:
            find_from_config(loaded, base, None, backend)
        except RangeTestInterrupted:
            raise typer.Exit(INTERRUPTED_EXIT) from None
        return
    folder = res.prepare_folder(
        res.run_folder(str(out) if out else None, _config_name(source), "find"),
        ["range_test.csv", "range_test_first_sweep.csv", "verify.csv", "summary.json"],
        force,
    )
    _check_png(png, force)
    interrupted = False
    with _Bar("range test", not (quiet or as_json)) as bar:
        try:
            result = find_from_config(loaded, base, bar, backend)
        except RangeTestInterrupted as stop:
            result, interrupted = stop.result, True
    summary = res.range_test_summary(result, loaded.model_dump(mode="json"), source)
    summary["distributed"] = distributed.describe(loaded.data.batch_size)
    summary["output_folder"] = str(folder)
    res.write_csv(folder / "range_test.csv", res.RANGE_TEST_COLUMNS, result.rows())
    if result.coarse is not None:
        first = folder / "range_test_first_sweep.csv"
        res.write_csv(first, res.RANGE_TEST_COLUMNS, result.coarse.rows())
    if result.verification is not None:
        rows = result.verification.rows()
        res.write_csv(folder / "verify.csv", res.VERIFY_COLUMNS, rows)
    verdict = smoke_verdict(result, expected) if smoke else None
    if verdict is not None:
        summary["smoke"] = {"ok": verdict[0], "verdict": verdict[1]}
    res.write_json(folder / "summary.json", summary)
    if png is not None and result.steps_run >= 2:
        _write_png("range_test", png, force, result=result)
    if interrupted:
        _stderr().print(f"interrupted: partial results ({result.steps_run} steps) in {folder}")
        raise typer.Exit(INTERRUPTED_EXIT)
    if as_json:
        typer.echo(res.json_text(summary), nl=False)
    elif verdict is not None:
        typer.echo(verdict[1])
    else:
        _say_distributed(summary)
        _render_find(result, folder, quiet, no_plot)
    if verdict is not None and not verdict[0]:
        raise typer.Exit(1)


def _render_find(result: Any, folder: Path, quiet: bool, no_plot: bool) -> None:
    from lrtool import report
    from lrtool.suggest import RULES

    out = _stdout()
    rec = result.recommendation
    if not quiet:
        curve = result.lagfree
        out.print(report.curve_table(result.lrs, result.losses, result.smoothed, curve))
        notes = {name: info.note for name, info in RULES.items()}
        out.print(report.suggestions_table(result.suggestions, notes, "lrtool"))
        if not no_plot:
            marks = {"lr": result.lr, "1cycle": result.onecycle_max_lr}
            out.print(
                report.range_test_plot(
                    result.lrs,
                    result.losses,
                    curve,
                    marks,
                    log_x=result.mode == "exp",
                    color=sys.stdout.isatty(),
                ),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        out.print(f"stop: {result.stop_reason} ({result.steps_run}/{result.steps_requested} steps)")
        if result.coarse is not None:
            first = result.coarse
            out.print(
                f"refined: the first sweep ({first.start_lr:.2g}..{first.end_lr:.2g}, "
                f"{first.steps_run} steps; {first.stop_reason}) was too weak to read: "
                f"{result.refined_because}; this curve is a second sweep over "
                f"{result.start_lr:.3g}..{result.end_lr:.3g} ({result.steps_total} steps in all)",
                markup=False,
            )
        elif result.refined_because:
            out.print(f"refine: {result.refined_because}", markup=False)
        if result.verification is not None:
            out.print(report.verify_table(result.verification))
        for warning in rec.warnings if rec else []:
            out.print(f"warning: {warning}", markup=False)
    if result.lr is None:
        out.print("no suggestion: see the warning above; results in " + str(folder), markup=False)
        return
    out.print(
        f"suggested lr: {result.lr:.3g} (constant)   onecycle max_lr: {result.onecycle_max_lr:.3g}"
        f"   confidence: {rec.confidence}"
        + (
            f" (rules within {rec.spread_decades:.2f} decades)"
            if rec.spread_decades is not None
            else ""
        ),
        markup=False,
    )
    if not quiet:
        out.print(f"why ({rec.rule}): {rec.reason}", markup=False)
        out.print(f"results: {folder}/range_test.csv, {folder}/summary.json", markup=False)


# schedules and plot ----------------------------------------------------------------------------


@app.command()
@handle_errors
def schedules(
    name: Annotated[str | None, typer.Argument(help="Show one schedule in detail.")] = None,
) -> None:
    """List every schedule with its parameters, defaults and formula."""
    from lrtool import report
    from lrtool.schedules import SCHEDULES, build_schedule, get_spec, sample_steps

    out = _stdout()
    if name is None:
        out.print(report.schedules_table(list(SCHEDULES.values())))
        out.print("Any schedule also takes warmup_steps and warmup_start_lr (a linear warm-up).")
        out.print("Details: lrtool schedules NAME   Plot: lrtool plot --schedule NAME")
        return
    spec = get_spec(name)
    out.print(report.schedule_detail_table(spec))
    if spec.description:
        out.print(spec.description, markup=False)
    example = _example_params(spec.name, 100, None)
    sched = build_schedule(spec.name, example)
    shown = sample_steps(100, 6)
    values = ", ".join(f"t={t}: {sched(t):.4g}" for t in shown)
    out.print(f"example {example}: {values}", markup=False)


def _example_params(name: str, steps: int, lr: float | None) -> dict[str, Any]:
    from lrtool.schedules import get_spec

    spec = get_spec(name)
    params: dict[str, Any] = {"total_steps": steps}
    params[spec.lr_param] = lr if lr is not None else 0.1
    return params


@app.command()
@handle_errors
def plot(
    schedule: Annotated[
        list[str] | None, typer.Option("--schedule", help="Schedule name (repeat to overlay).")
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", help="Steps shown; total_steps where used.")
    ] = 1000,
    lr: Annotated[
        float | None, typer.Option("--lr", help="lr, or max_lr for onecycle/cyclic.")
    ] = None,
    set_: SetOpt = None,
    log_y: Annotated[bool, typer.Option("--log-y", help="Log-scale LR axis.")] = False,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write schedule,step,lr,momentum.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Plot the schedule of a config's train section.")
    ] = None,
    metric_csv: Annotated[
        Path | None, typer.Option("--metric-csv", help="plateau: metric per evaluation (CSV).")
    ] = None,
    force: ForceOpt = False,
    png: PngOpt = None,
    width: Annotated[int, typer.Option("--width", help="Plot width in characters.")] = 90,
) -> None:
    """Plot one or more LR schedules (and momentum) in the terminal."""
    from lrtool import report
    from lrtool.schedule_view import curves_for, parse_sets

    if steps < 1:
        raise usage_error(f"--steps: must be >= 1, got {steps}")
    if lr is not None and not lr > 0:
        raise usage_error(f"--lr: must be > 0, got {lr}")
    overrides = parse_sets(set_ or [])
    names = list(schedule or [])
    train_params: dict[str, Any] = {}
    if config is not None:
        from lrtool.config import load_config

        loaded = load_config(config)
        if not names:
            names = [loaded.train.schedule.name]
            train_params = loaded.train.schedule.params()
            if steps == 1000:
                steps = loaded.train.steps
    if not names:
        raise usage_error("--schedule: name at least one schedule (see lrtool schedules)")
    if csv is not None and csv.exists() and not force:
        raise LrtoolError(f"--csv: {csv} exists; pass --force to overwrite it")
    _check_png(png, force)
    view = curves_for(names, steps, lr, overrides, train_params, metric_csv, max_points=width * 4)
    out = _stdout()
    for note in view.notes:
        out.print(note, markup=False)
    out.print(
        report.schedule_plot(view.curves, log_y=log_y, width=width, color=sys.stdout.isatty()),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for label, (xs, ys, _) in view.curves.items():
        out.print(report.key_points_table(label, xs, ys, steps))
    if csv is not None:
        from lrtool.results import write_csv

        write_csv(csv, ["schedule", "step", "lr", "momentum"], view.full_rows())
        out.print(f"wrote {csv}", markup=False)
    if png is not None:
        _write_png("schedule", png, force, curves=view.curves, log_y=log_y)
        out.print(f"wrote {png}", markup=False)


# train and compare -----------------------------------------------------------------------------


@app.command()
@handle_errors
def train(
    config: ConfigArg = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="Schedule name.")] = None,
    set_: SetOpt = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Optimizer steps (train.steps).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="lr, or max_lr for onecycle/cyclic.")
    ] = None,
    lr_from_find: Annotated[
        bool, typer.Option("--lr-from-find", help="Run a range test first and use its suggestion.")
    ] = False,
    backend: BackendOpt = "auto",
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out: OutOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    no_plot: NoPlotOpt = False,
    as_json: JsonOpt = False,
    png: PngOpt = None,
) -> None:
    """Train for a budget of steps with a schedule and show the evaluations."""
    from lrtool import results as res
    from lrtool.schedule_view import parse_sets

    distributed.check_backend(backend)
    loaded, source, base = _load(config, seed, device)
    loaded = _train_overrides(loaded, steps, source)
    if lr is not None and not lr > 0:
        raise usage_error(f"--lr: must be > 0, got {lr}")
    name = schedule or loaded.train.schedule.name
    params = dict(loaded.train.schedule.params()) if schedule is None else {}
    params.update(parse_sets(set_ or []))
    from lrtool.schedules import build_schedule, get_spec

    get_spec(name)
    main = distributed.is_main_rank()
    if main:
        folder = res.prepare_folder(
            res.run_folder(str(out) if out else None, _config_name(source), "train"),
            ["train.csv", "eval.csv", "summary.json"],
            force,
        )
        _check_png(png, force)
    from lrtool.runs import find_from_config, schedule_params, train_from_config
    from lrtool.trainer import EVAL_COLUMNS, TRAIN_COLUMNS, TrainInterrupted

    found = None
    with _Bar("range test", main and not (quiet or as_json)) as bar:
        if lr_from_find and lr is None:
            found = find_from_config(loaded, base, bar if main else None, backend)
        full = schedule_params(name, params, loaded.train.steps, lr, found)
        build_schedule(name, full)  # validate before training
        bar.relabel("training")
        interrupted = False
        try:
            result = train_from_config(
                loaded, name, full, base, bar if main else None, backend=backend
            )
        except TrainInterrupted as stop:
            result, interrupted = stop.result, True
    if not main:  # under torchrun: rank 0 reports; the others mirror its exit code
        if interrupted:
            raise typer.Exit(INTERRUPTED_EXIT)
        raise typer.Exit(1 if result.stop_reason.startswith("non-finite") else 0)
    res.write_csv(folder / "train.csv", TRAIN_COLUMNS, result.step_rows())
    res.write_csv(folder / "eval.csv", EVAL_COLUMNS, result.evals)
    summary = {
        "command": "train",
        "config": source,
        "schedule": name,
        "params": full,
        "lr_source": "range test" if found is not None else ("--lr" if lr else "config"),
        "steps_run": len(result.steps),
        "steps_requested": result.steps_requested,
        "stop_reason": result.stop_reason,
        "interrupted": interrupted,
        "final_val_loss": result.final_val_loss,
        "best_val_loss": result.best_val_loss,
        "final_accuracy": result.final_accuracy,
        "wall_s": round(result.wall_s, 3),
        "distributed": distributed.describe(loaded.data.batch_size),
        "output_folder": str(folder),
        "config_echo": loaded.model_dump(mode="json"),
        "versions": res.versions(),
    }
    if found is not None:
        summary["range_test"] = {"lr": found.lr, "onecycle_max_lr": found.onecycle_max_lr}
    res.write_json(folder / "summary.json", summary)
    if png is not None and result.steps:
        _write_png("train", png, force, result=result)
    if interrupted:
        _stderr().print(f"interrupted: partial results ({len(result.steps)} steps) in {folder}")
        raise typer.Exit(INTERRUPTED_EXIT)
    if as_json:
        typer.echo(res.json_text(summary), nl=False)
    else:
        _say_distributed(summary)
        _render_train(result, summary, folder, quiet, no_plot)
    if result.stop_reason.startswith("non-finite"):
        raise typer.Exit(1)  # a diverged training run fails a CI job; its results are kept


def _train_overrides(loaded: Any, steps: int | None, source: str) -> Any:
    """--steps for train/compare; eval_every shrinks with it so a short run still evaluates."""
    from lrtool import config as cfg

    if steps is None:
        return loaded
    every = min(loaded.train.eval_every, steps) if steps >= 1 else None
    return cfg.apply_overrides(loaded, "train", {"steps": steps, "eval_every": every}, source)


def _render_train(result: Any, summary: dict, folder: Path, quiet: bool, no_plot: bool) -> None:
    from lrtool import report

    out = _stdout()
    if not quiet:
        if summary.get("range_test"):
            rt = summary["range_test"]
            key = "onecycle_max_lr" if summary["schedule"] in ("onecycle", "cyclic") else "lr"
            out.print(f"LR from the range test ({key}): {report.fmt_lr(rt[key])}", markup=False)
        out.print(report.eval_table(result.evals))
        if not no_plot and len(result.steps) > 1:
            out.print(
                report.train_plot(
                    result.steps,
                    result.smoothed_train_losses(),
                    [e["step"] for e in result.evals],
                    [e["val_loss"] for e in result.evals],
                    result.lrs,
                    color=sys.stdout.isatty(),
                ),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    if result.stop_reason != "completed":
        _stderr().print(f"stopped: {result.stop_reason}", markup=False)
    acc = summary["final_accuracy"]
    out.print(
        f"{summary['schedule']}: final val loss {report.fmt_loss(summary['final_val_loss'])}, "
        f"best {report.fmt_loss(summary['best_val_loss'])}"
        + (f", accuracy {acc:.3f}" if acc is not None else "")
        + f" after {summary['steps_run']} steps; results in {folder}",
        markup=False,
    )


@app.command()
@handle_errors
def compare(
    config: ConfigArg = None,
    schedules_: Annotated[
        str | None,
        typer.Option("--schedules", help="Comma-separated schedule names to compare."),
    ] = None,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="One schedule at several --lrs.")
    ] = None,
    lrs: Annotated[str | None, typer.Option("--lrs", help="Comma-separated LRs.")] = None,
    set_: SetOpt = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps per run.")] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="LR (max_lr for onecycle) for every run.")
    ] = None,
    lr_from_find: Annotated[
        bool, typer.Option("--lr-from-find", help="One range test gives every run its LR.")
    ] = False,
    target: Annotated[
        float | None, typer.Option("--target", help="Val loss to reach (default: constant's best).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Runs in parallel processes.")] = 1,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out: OutOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    no_plot: NoPlotOpt = False,
    as_json: JsonOpt = False,
    png: PngOpt = None,
) -> None:
    """Train several schedules (or LRs) from the same weights and data order, side by side."""
    from lrtool import results as res
    from lrtool.schedule_view import plan_runs

    if distributed.launched_by_torchrun():
        raise usage_error(
            "compare does not run under torchrun; run it as one process (--jobs N runs "
            "schedules in parallel), or use find/train under torchrun"
        )
    loaded, source, base = _load(config, seed, device)
    loaded = _train_overrides(loaded, steps, source)
    if target is not None and not target > 0:
        raise usage_error(f"--target: must be a positive val loss, got {target}")
    if jobs < 1:
        raise usage_error(f"--jobs: must be >= 1, got {jobs}")
    if lr is not None and not lr > 0:
        raise usage_error(f"--lr: must be > 0, got {lr}")
    plan = plan_runs(schedules_, schedule, lrs, set_ or [], loaded)
    if any(name == "plateau" for _, name, _ in plan) and loaded.data.val_fraction == 0:
        raise usage_error("plateau needs validation data: set data.val_fraction > 0")
    folder = res.prepare_folder(
        res.run_folder(str(out) if out else None, _config_name(source), "compare"),
        ["compare.csv", "summary.json"],
        force,
    )
    _check_png(png, force)
    from lrtool.runs import compare_runs, compare_summary_rows, find_from_config, schedule_params
    from lrtool.schedules import build_schedule

    found = None
    if lr_from_find:
        with _Bar("range test", not (quiet or as_json)) as bar:
            found = find_from_config(loaded, base, bar)
    runs = []
    for label, name, params in plan:
        chosen = params.pop("__lr__", None) or lr
        default = params.pop("__default_lr__", None)
        if chosen is None and found is None:
            chosen = default
        full = schedule_params(name, params, loaded.train.steps, chosen, found)
        build_schedule(name, full)  # every schedule is validated before any training
        runs.append((label, name, full))
    err = _stderr()
    show = not (quiet or as_json) and sys.stderr.isatty()
    from lrtool.runs import CompareInterrupted

    interrupted = False
    try:
        results = compare_runs(
            loaded,
            runs,
            base,
            jobs,
            (lambda label: err.print(f"training {label} ...")) if show else None,
        )
    except CompareInterrupted as stop:
        results, interrupted = stop.results, True
    if not results:
        err.print("interrupted before any run finished; nothing was written")
        raise typer.Exit(INTERRUPTED_EXIT)
    rows, used_target = compare_summary_rows(results, target)
    eval_rows = [{"schedule": r.label, **e} for r in results for e in r.evals]
    from lrtool.trainer import EVAL_COLUMNS

    res.write_csv(folder / "compare.csv", ["schedule", *EVAL_COLUMNS], eval_rows)
    summary = {
        "command": "compare",
        "config": source,
        "steps": loaded.train.steps,
        "target_val_loss": used_target,
        "runs": rows,
        "params": {label: p for label, _, p in runs},
        "winner": next((r["run"] for r in rows if r.get("winner")), None),
        "range_test": {"lr": found.lr, "onecycle_max_lr": found.onecycle_max_lr} if found else None,
        "jobs": jobs,
        "interrupted": interrupted,
        "runs_not_done": [label for label, _, _ in runs if label not in {r.label for r in results}],
        "output_folder": str(folder),
        "config_echo": loaded.model_dump(mode="json"),
        "versions": res.versions(),
    }
    res.write_json(folder / "summary.json", summary)
    if png is not None:
        _write_png("compare", png, force, results=results)
    if interrupted:
        err.print(f"interrupted: partial results ({len(results)} of {len(runs)} runs) in {folder}")
        raise typer.Exit(INTERRUPTED_EXIT)
    if as_json:
        typer.echo(res.json_text(summary), nl=False)
        return
    from lrtool import report

    console = _stdout()
    label = "same LR per schedule" if schedule is None else f"{schedule} at several LRs"
    console.print(report.compare_table(rows, used_target, label))
    if not (quiet or no_plot):
        val = {
            r.label: ([e["step"] for e in r.evals], [e["val_loss"] for e in r.evals])
            for r in results
        }
        console.print(
            report.overlay_plot(val, "Validation loss", "val loss", color=sys.stdout.isatty()),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        lrc = {r.label: (r.steps, r.lrs) for r in results}
        console.print(
            report.overlay_plot(lrc, "Learning rate", "lr", log_y=True, color=sys.stdout.isatty()),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"winner: {summary['winner'] or 'none reached the target'}; results in {folder}",
        markup=False,
    )


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    run()
