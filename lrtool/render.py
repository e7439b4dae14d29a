"""What each command prints: a job's outcome rendered on the terminal.

The building blocks (tables, plots) are in :mod:`lrtool.report`; these functions put them
together for one command and print them on a rich console. No torch here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from lrtool import report


class _PipeConsole(Console):
    """A console for which a reader that went away (``lrtool find | head -1``) is not a
    failure: rich exits 1 on a broken pipe; this raises BrokenPipeError, which the CLI's
    entry point turns into exit 0 once stdout points nowhere."""

    def on_broken_pipe(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise BrokenPipeError


def stdout_console() -> Console:
    """Standard output: the terminal's width, or 100 columns when piped."""
    return _PipeConsole(width=None if sys.stdout.isatty() else 100, highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


class ProgressBar:
    """A rich progress bar on stderr when not quiet: on a terminal a bar, elsewhere (a CI log,
    a file) a plain line at every tenth of each phase (:mod:`lrtool.progress`)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self.progress: Any = None
        self.task: Any = None
        self.plain: Any = None
        if enabled and not self.enabled:
            from lrtool.progress import plain_progress

            self.plain = plain_progress(sys.stderr, lambda: self.label)

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=None, info="")
        return self

    def __call__(self, step: int, total: int, lr: float, loss: float) -> None:
        if self.plain is not None:
            self.plain(step, total, lr, loss)
        if self.progress is not None:
            self.progress.update(
                self.task, completed=step + 1, total=total, info=f"lr {lr:.2e} loss {loss:.4f}"
            )

    def relabel(self, label: str) -> None:
        self.label = label
        if self.progress is not None:
            self.progress.update(self.task, description=label, completed=0)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _plot(out: Console, text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def distributed_line(out: Console, summary: dict[str, Any]) -> None:
    info = summary.get("distributed")
    if info:
        out.print(
            f"distributed: {info['world_size']} rank{'s' if info['world_size'] > 1 else ''} "
            f"({info['backend']}"
            f"{', FSDP2 shards' if info.get('strategy') == 'fsdp' else ''}), global batch "
            f"{info['global_batch']} = {info['world_size']} x {info['per_rank_batch']}; "
            f"the loss is the mean over ranks",
            markup=False,
        )


def find(out: Console, result: Any, folder: Path, quiet: bool, no_plot: bool, color: bool) -> None:
    """``lrtool find``: the curve, every rule, the plot, the stop, and the suggestion."""
    from lrtool.suggest import RULES

    rec = result.recommendation
    if not quiet:
        curve = result.lagfree
        out.print(report.curve_table(result.lrs, result.losses, result.smoothed, curve))
        notes = {name: info.note for name, info in RULES.items()}
        searched = result.verification is not None and rec is not None and rec.rule != "lrtool"
        out.print(report.suggestions_table(result.suggestions, notes, "lrtool", searched))
        if not no_plot:
            marks = {"lr": result.lr, "1cycle": result.onecycle_max_lr}
            log_x = result.mode == "exp"
            width, height = plot_size(out)
            plot = report.range_test_plot(
                result.lrs, result.losses, curve, marks, log_x=log_x, width=width,
                height=height, color=color,
            )  # fmt: skip
            _plot(out, plot)
        out.print(f"stop: {result.stop_reason} ({result.steps_run}/{result.steps_requested} steps)")
        if result.coarse is not None:
            first = result.coarse
            out.print(
                f"refined: after the first sweep ({first.start_lr:.2g}..{first.end_lr:.2g}, "
                f"{first.steps_run} steps; {first.stop_reason}), a second sweep over "
                f"{result.start_lr:.3g}..{result.end_lr:.3g} ({result.steps_total} steps in "
                f"all) is the curve read here: {result.refined_because}",
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
    out.print(report.answer_line(result), markup=False)
    if not quiet:
        out.print(f"why ({rec.rule}): {rec.reason}", markup=False)
        out.print(f"results: {folder}/range_test.csv, {folder}/summary.json", markup=False)


def train(
    out: Console, err: Console, result: Any, summary: dict, quiet: bool, no_plot: bool, color: bool
) -> None:
    """``lrtool train``: the evaluations, the loss and LR plot, and the final line."""
    if not quiet:
        found = summary.get("range_test")
        if found:
            key, where = found["used"], found.get("from", "this run")
            origin = "the range test" if where == "this run" else f"the range test in {where}"
            out.print(f"LR from {origin} ({key}): {report.fmt_lr(found[key])}", markup=False)
        out.print(report.eval_table(result.evals))
        if not no_plot and len(result.steps) > 1:
            plot = report.train_plot(
                result.steps,
                result.smoothed_train_losses(),
                [e["step"] for e in result.evals],
                [e["val_loss"] for e in result.evals],
                result.lrs,
                *plot_size(out, 90, 24),
                color=color,
            )
            _plot(out, plot)
    for note in summary.get("notes") or []:
        out.print(f"note: {note}", markup=False)
    if result.stop_reason != "completed":
        err.print(f"stopped: {result.stop_reason}", markup=False)
    out.print(f"{report.train_line(summary)}; results in {summary['output_folder']}", markup=False)


def plot_size(out: Console, width: int = 90, height: int = 22) -> tuple[int, int]:
    """A figure that fits the terminal (80x24 included): at most its width, and on a
    terminal at most its height less two lines; piped output keeps the full size."""
    width = max(20, min(width, out.width))
    if out.is_terminal:
        height = max(12, min(height, out.size.height - 2))
    return width, height


def compare(
    out: Console, outcome: Any, quiet: bool, no_plot: bool, color: bool, log_y: bool = False
) -> None:
    """``lrtool compare``: the table, the val-loss and LR overlays, and the winner."""
    summary = outcome.summary
    one = outcome.one_schedule
    label = "each run's LR in the lr column" if one is None else f"{one} at several LRs"
    out.print(report.compare_table(outcome.rows, summary["target_val_loss"], label))
    for note in summary.get("notes") or []:
        out.print(f"note: {note}", markup=False)
    if not (quiet or no_plot):
        results = outcome.results
        val = {
            r.label: ([e["step"] for e in r.evals], [e["val_loss"] for e in r.evals])
            for r in results
        }
        width, height = plot_size(out, 90, 20)
        title = "Validation loss" + (" (log scale)" if log_y else "")
        _plot(
            out,
            report.overlay_plot(
                val, title, "val loss", log_y=log_y, width=width, height=height, color=color
            ),
        )
        lrs = {r.label: (r.steps, r.lrs) for r in results}
        _plot(
            out,
            report.overlay_plot(
                lrs, "Learning rate", "lr", log_y=True, width=width, height=height, color=color
            ),
        )
    out.print(
        f"{report.compare_line(summary)}; results in {outcome.folder}",
        markup=False,
    )


def schedules(out: Console, name: str | None) -> None:
    """``lrtool schedules [NAME]``: every schedule, or one in detail with an example."""
    from lrtool.jobs.plot import example_params
    from lrtool.schedules import SCHEDULES, build_schedule, get_spec, sample_steps

    if name is None:
        out.print(report.schedules_table(list(SCHEDULES.values())))
        out.print("Any schedule also takes warmup_steps and warmup_start_lr (a linear warm-up).")
        out.print("Details: lrtool schedules NAME   Plot: lrtool plot --schedule NAME")
        return
    spec = get_spec(name)
    out.print(report.schedule_detail_table(spec))
    if spec.description:
        out.print(spec.description, markup=False)
    example = example_params(spec, 100)
    sched = build_schedule(spec.name, example)
    values = ", ".join(f"t={t}: {sched(t):.4g}" for t in sample_steps(100, 6))
    out.print(f"example {example}: {values}", markup=False)


def plot(out: Console, outcome: Any, log_y: bool, width: int, color: bool) -> None:
    """``lrtool plot``: the notes, the curves, each schedule's key points, what was written."""
    view = outcome.view
    for note in view.notes:
        out.print(note, markup=False)
    width, height = plot_size(out, width, 22)
    _plot(
        out,
        report.schedule_plot(
            view.curves, log_y=log_y, width=width, height=height, color=color,
            steps_per_epoch=view.steps_per_epoch,
        ),
    )  # fmt: skip
    for label in view.curves:
        out.print(report.key_points_table(label, view.key_points(label), view.steps_per_epoch))
    for path in outcome.written:
        out.print(f"wrote {path}", markup=False)
