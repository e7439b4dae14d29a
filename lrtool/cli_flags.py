"""Every flag of the ``lrtool`` commands: its name, type and help (one place).

:mod:`lrtool.cli` declares each command's parameters with these; the values go to the jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from lrtool.settings import AMP_MODES, DEVICES, SNAPSHOT_MODES, one_of

# Shared by several commands --------------------------------------------------------------------------------

ConfigArg = Annotated[
    Path | None,
    typer.Argument(help="YAML config; default: the embedded quickstart (digits, MLP, SGD)."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (overrides seed).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help=f"{one_of(DEVICES)}.")]
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


AccumulationOpt = Annotated[
    int | None,
    typer.Option("--accumulation-steps", help="Micro-batches per optimizer step (loop.*)."),
]
AmpOpt = Annotated[
    str | None, typer.Option("--amp", help=f"Autocast: {one_of(AMP_MODES)} (fp16: GPU) (loop.amp).")
]
GradClipOpt = Annotated[
    float | None, typer.Option("--grad-clip", help="Cap on the gradient norm (loop.grad_clip).")
]
TargetOpt = Annotated[
    float | None,
    typer.Option("--target", help="Val loss to reach (train.target; compare: constant's best)."),
]


# One command's flags ----------------------------------------------------------------------------

StartLrOpt = Annotated[float | None, typer.Option("--start-lr", help="First LR of the sweep.")]
EndLrOpt = Annotated[float | None, typer.Option("--end-lr", help="Last LR of the sweep.")]
SweepStepsOpt = Annotated[int | None, typer.Option("--steps", help="Number of sweep steps.")]
ModeOpt = Annotated[str | None, typer.Option("--mode", help="exp or linear LR growth.")]
RepeatsOpt = Annotated[
    int | None, typer.Option("--repeats", help="Sweeps with different data orders (median).")
]
RefineOpt = Annotated[
    bool | None,
    typer.Option(
        "--refine/--no-refine",
        help="Always / never run a second, denser sweep (default: when the curve is weak).",
    ),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget",
        help="Budgeted search after the sweep: at most B trainings of train.steps steps "
        "(0: the curve alone).",
    ),
]
VerifyOpt = Annotated[
    bool | None,
    typer.Option(
        "--verify/--no-verify", help="Force the budgeted search on (budget at least 1) or off."
    ),
]
VerifyStepsOpt = Annotated[
    int | None,
    typer.Option("--verify-steps", help="Training length the search chooses for (train.steps)."),
]
SnapshotOpt = Annotated[
    str | None,
    typer.Option(
        "--snapshot", help=f"Keep the start state on {one_of(SNAPSHOT_MODES)} (find.snapshot)."
    ),
]
MonitorOpt = Annotated[
    str | None,
    typer.Option(
        "--monitor",
        help="What the sweep watches: auto (val with a validation split, else train), train "
        "(each step's loss) or val (fixed val batches; the training loss is read where "
        "their curve cannot be).",
    ),
]
ValBatchesOpt = Annotated[
    int | None,
    typer.Option("--val-batches", help="Validation batches a val-monitored sweep reads each step."),
]
SmokeOpt = Annotated[
    bool, typer.Option("--smoke", help="CI check: a short sweep with a pass/fail verdict.")
]
ExpectLrOpt = Annotated[
    str | None, typer.Option("--expect-lr", help="With --smoke: MIN:MAX the LR must fall in.")
]
PlotScheduleOpt = Annotated[
    list[str] | None, typer.Option("--schedule", help="Schedule name (repeat to overlay).")
]
PlotStepsOpt = Annotated[
    int | None,
    typer.Option("--steps", help="Steps shown; total_steps where used (default 1000)."),
]
PlotLrOpt = Annotated[float | None, typer.Option("--lr", help="lr, or max_lr for onecycle/cyclic.")]
PlotLogYOpt = Annotated[bool, typer.Option("--log-y", help="Log-scale LR axis.")]
PlotCsvOpt = Annotated[Path | None, typer.Option("--csv", help="Write schedule,step,lr,momentum.")]
PlotConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Plot the schedule of a config's train section.")
]
PlotMetricCsvOpt = Annotated[
    Path | None, typer.Option("--metric-csv", help="plateau: metric per evaluation (CSV).")
]
PlotWidthOpt = Annotated[int, typer.Option("--width", help="Plot width in characters.")]
TrainScheduleOpt = Annotated[str | None, typer.Option("--schedule", help="Schedule name.")]
TrainStepsOpt = Annotated[
    int | None, typer.Option("--steps", help="Optimizer steps (train.steps).")
]
TrainLrOpt = Annotated[
    float | None, typer.Option("--lr", help="lr, or max_lr for onecycle/cyclic.")
]
TrainLrFromFindOpt = Annotated[
    bool,
    typer.Option(
        "--lr-from-find",
        help="Run a range test first and use its suggestion; --lr-from-find PATH reuses an "
        "earlier lrtool find (its folder or summary.json) instead.",
    ),
]
# --lr-from-find PATH arrives here (LrtoolGroup, below, moves a path after --lr-from-find to it:
# Typer has no option that is a flag alone and takes a value when one follows).
LrFromFindPathOpt = Annotated[Path | None, typer.Option("--lr-from-find-path", hidden=True)]
CompareSchedulesOpt = Annotated[
    str | None,
    typer.Option("--schedules", help="Comma-separated schedule names to compare."),
]
CompareScheduleOpt = Annotated[
    str | None, typer.Option("--schedule", help="One schedule at several --lrs.")
]
CompareLrsOpt = Annotated[str | None, typer.Option("--lrs", help="Comma-separated LRs.")]
CompareStepsOpt = Annotated[int | None, typer.Option("--steps", help="Optimizer steps per run.")]
EpochsOpt = Annotated[
    float | None,
    typer.Option("--epochs", help="Run length in epochs instead of --steps (train.epochs)."),
]
StepsPerEpochOpt = Annotated[
    int | None,
    typer.Option(
        "--steps-per-epoch",
        help="Steps per epoch: lengths like 2ep become steps and the x-axis counts epochs.",
    ),
]
CompareLrOpt = Annotated[
    float | None, typer.Option("--lr", help="LR (max_lr for onecycle) for every run.")
]
CompareLrFromFindOpt = Annotated[
    bool,
    typer.Option(
        "--lr-from-find",
        help="One range test gives every run its LR; --lr-from-find PATH reuses an earlier "
        "lrtool find (its folder or summary.json).",
    ),
]
CompareJobsOpt = Annotated[int, typer.Option("--jobs", help="Runs in parallel processes.")]
CompareLogYOpt = Annotated[
    bool, typer.Option("--log-y", help="Log-scale the validation-loss plot.")
]
FindSetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Any config key: section.key=value (repeatable), e.g. data.batch_size=32."
    ),
]


class LrtoolGroup(TyperGroup):
    """The command group: ``--lr-from-find PATH`` (a directory or a ``.json`` after the flag)
    becomes the hidden ``--lr-from-find-path PATH``; ``--lr-from-find`` alone stays a flag."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, lr_from_find_paths(args))


def lr_from_find_paths(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--lr-from-find="):
            out += ["--lr-from-find-path", arg.split("=", 1)[1]]
        elif arg == "--lr-from-find" and i + 1 < len(args) and _is_find_result(args[i + 1]):
            out += ["--lr-from-find-path", args[i + 1]]
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


def _is_find_result(token: str) -> bool:
    """A folder, or a JSON file: never a config (YAML) nor a flag."""
    if token.startswith("-"):
        return False
    return Path(token).expanduser().is_dir() or token.lower().endswith(".json")
