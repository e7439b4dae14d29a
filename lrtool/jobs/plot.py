"""``lrtool plot`` and ``lrtool schedules``: schedules as curves for the terminal and CSV.

No torch here: both stay fast. Long schedules are evaluated only at the sampled
steps a terminal can show (``max_points``), so a 1,000,000-step plot costs what a short one
does; the CSV export evaluates every step.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError, check_input_file, usage_error
from lrtool.schedules import (
    Schedule,
    ScheduleSpec,
    build_schedule,
    epochs_to_steps,
    get_spec,
    parse_sets,
    route_sets,
    sample_steps,
)

DEFAULT_STEPS = 1000  # --steps when neither the flag nor --config gives a length
MAX_CSV_ROWS = 10_000_000  # --csv writes every step
MAX_EVALUATIONS = 4000  # plateau's synthetic metric: at most this many evaluations
EXAMPLE_LR = 0.1  # the LR a plot or an example uses when none is given


@dataclass
class ScheduleView:
    curves: dict[str, tuple[list[int], list[float], list[float | None]]] = field(
        default_factory=dict
    )
    built: dict[str, Schedule] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    steps: int = 0
    notes: list[str] = field(default_factory=list)
    steps_per_epoch: int | None = None  # x in epochs, and lengths like "2ep"

    def key_points(self, label: str) -> list[tuple[str, int, float]]:
        """Start, peak, lowest and end of a curve, at the exact steps: the plotted samples
        find where the extremes are, then the steps between neighbouring samples are
        evaluated (a 1cycle of 1,000 steps peaks at step 299, not at the sample 301)."""
        xs, ys, _ = self.curves[label]
        sched = self.built[label]
        exact = not sched.stateful

        def refine(i: int, better: Any) -> tuple[int, float]:
            if not exact:
                return xs[i], ys[i]
            lo, hi = xs[max(0, i - 1)], xs[min(len(xs) - 1, i + 1)]
            return better(((t, sched(t)) for t in range(lo, hi + 1)), key=lambda p: p[1])

        peak = refine(max(range(len(ys)), key=lambda i: ys[i]), max)
        low = refine(min(range(len(ys)), key=lambda i: ys[i]), min)
        return [
            ("start", xs[0], ys[0]),
            ("peak", *peak),
            ("lowest", *low),
            ("end", max(xs[-1], self.steps - 1), ys[-1]),  # plateau holds its last LR
        ]

    def full_rows(self) -> list[dict[str, Any]]:
        """Every step of every schedule, for the CSV."""
        rows: list[dict[str, Any]] = []
        for label, sched in self.built.items():
            if label in self.metrics:
                xs, lrs, moms = self.curves[label]
                rows += [
                    {"schedule": label, "step": t, "lr": v, "momentum": m}
                    for t, v, m in zip(xs, lrs, moms, strict=True)
                ]
                continue
            for t in range(self.steps):
                rows.append(
                    {"schedule": label, "step": t, "lr": sched(t), "momentum": sched.momentum(t)}
                )
        if self.steps_per_epoch:
            for row in rows:
                row["epoch"] = row["step"] / self.steps_per_epoch
        return rows


def read_metric_csv(path: Path) -> list[float]:
    """One metric value per evaluation: the ``metric`` column, or the last column."""
    check_input_file(path, "--metric-csv")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise LrtoolError(
            f"--metric-csv: {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    except OSError as exc:
        raise LrtoolError(f"--metric-csv: cannot read {path}: {exc.strerror}") from None
    if len(rows) < 2:
        raise LrtoolError(f"--metric-csv: {path} has no data rows")
    header = rows[0]
    col = header.index("metric") if "metric" in header else len(header) - 1
    values = []
    for i, row in enumerate(rows[1:], start=2):
        try:
            value = float(row[col])
        except (ValueError, IndexError):
            raise LrtoolError(
                f"--metric-csv: line {i} of {path} has no number in column {header[col]!r}"
            ) from None
        if not math.isfinite(value):
            raise LrtoolError(f"--metric-csv: line {i} of {path} is not finite ({value})")
        values.append(value)
    return values


def _params_for(
    spec: ScheduleSpec, steps: int, lr: float | None, routed: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    params = {**base, **routed}
    if spec.uses_total_steps and params.get("epochs") is None:
        params["total_steps"] = steps
    if lr is not None:
        params[spec.lr_param] = lr
    elif not spec.has_lr(params):
        params[spec.lr_param] = EXAMPLE_LR
    return params


def example_params(spec: ScheduleSpec, steps: int) -> dict[str, Any]:
    """The parameters ``lrtool schedules NAME`` shows an example with: the run length and an
    LR of 0.1."""
    return {"total_steps": steps, spec.lr_param: EXAMPLE_LR}


def curves_for(
    names: list[str],
    steps: int,
    lr: float | None,
    overrides: dict[str, Any],
    train_params: dict[str, Any],
    metric_csv: Path | None = None,
    max_points: int = 400,
    steps_per_epoch: int | None = None,
) -> ScheduleView:
    """Build each named schedule and sample its LR (and momentum) curve."""
    routed = route_sets(names, overrides, "plotted")
    view = ScheduleView(steps=steps, steps_per_epoch=steps_per_epoch)
    for name in names:
        label = (
            name
            if names.count(name) == 1 or name not in view.built
            else f"{name} ({len(view.built)})"
        )
        base = train_params if len(names) == 1 else {}
        params = _params_for(get_spec(name), steps, lr, routed[name], base)
        sched = build_schedule(name, params, steps_per_epoch)
        view.built[label] = sched
        if sched.stateful:
            metric = read_metric_csv(metric_csv) if metric_csv else None
            stride = 1
            if metric is None:
                # A long plot evaluates every `stride` steps: as cheap as a short one.
                stride = max(1, math.ceil(steps / MAX_EVALUATIONS))
                metric = _stalling(math.ceil(steps / stride))
                every = "one evaluation per step" if stride == 1 else f"one every {stride} steps"
                view.notes.append(
                    f"{label}: response to a synthetic validation metric that improves for "
                    f"30% of the steps, then stalls ({every}; use --metric-csv for your own)"
                )
            xs, lrs = [], []
            for i, value in enumerate(metric):
                xs.append(i * stride)
                lrs.append(sched(i * stride))
                sched.update(value)  # type: ignore[attr-defined]
            view.metrics[label] = metric
            view.curves[label] = (xs, lrs, [None] * len(xs))
            continue
        xs = sample_steps(steps, max_points)
        view.curves[label] = (xs, [sched(t) for t in xs], [sched.momentum(t) for t in xs])
    return view


def _stalling(steps: int) -> list[float]:
    from lrtool.schedules.plateau import stalling_metric

    return stalling_metric(steps)


@dataclass(frozen=True)
class PlotRequest:
    """``lrtool plot``'s flags."""

    schedules: list[str] = field(default_factory=list)
    steps: int | None = None  # DEFAULT_STEPS, or the config's train.steps with --config
    lr: float | None = None
    sets: list[str] = field(default_factory=list)
    config: Path | None = None
    metric_csv: Path | None = None
    csv: Path | None = None
    force: bool = False
    png: Path | None = None
    width: int = 90
    log_y: bool = False
    steps_per_epoch: int | None = None


@dataclass
class PlotOutcome:
    view: ScheduleView
    steps: int
    written: list[Path] = field(default_factory=list)


def plot(request: PlotRequest) -> PlotOutcome:
    """Check the flags, build the curves, write ``--csv`` and ``--png``."""
    if request.steps is not None and request.steps < 1:
        raise usage_error(f"--steps: must be >= 1, got {request.steps}")
    if request.lr is not None and not request.lr > 0:
        raise usage_error(f"--lr: must be > 0, got {request.lr}")
    if request.width < 20:
        raise usage_error(f"--width: must be at least 20 characters, got {request.width}")
    per_epoch = request.steps_per_epoch
    if per_epoch is not None and per_epoch < 1:
        raise usage_error(f"--steps-per-epoch: must be >= 1, got {per_epoch}")
    overrides = parse_sets(request.sets)
    names = list(request.schedules)
    steps = request.steps
    train_params: dict[str, Any] = {}
    if request.config is not None:
        from lrtool.config import load_config

        loaded = load_config(request.config)
        per_epoch = per_epoch or loaded.train.steps_per_epoch
        if not names:
            names = [loaded.train.schedule.name]
            train_params = loaded.train.schedule.params()
            if steps is None and loaded.train.epochs is not None:
                if per_epoch is None:
                    raise usage_error(
                        "train.epochs: plot does not read the data to count steps per epoch; "
                        "give --steps-per-epoch (or train.steps_per_epoch)"
                    )
                steps = epochs_to_steps(loaded.train.epochs, per_epoch)
            elif steps is None:
                steps = loaded.train.steps
    steps = steps or DEFAULT_STEPS
    if not names:
        raise usage_error("--schedule: name at least one schedule (see lrtool schedules)")
    if request.csv is not None:
        from lrtool.outputs import check_output_file

        check_output_file(request.csv, "--csv", request.force)
        if steps * len(names) > MAX_CSV_ROWS:
            raise usage_error(
                f"--csv: writes every step; {steps:,} steps x {len(names)} schedule(s) is more "
                f"than {MAX_CSV_ROWS:,} rows; lower --steps"
            )
    if request.png is not None:
        from lrtool.png import check_png_target

        check_png_target(request.png, request.force)
    view = curves_for(
        names, steps, request.lr, overrides, train_params, request.metric_csv,
        max_points=request.width * 4, steps_per_epoch=per_epoch,
    )  # fmt: skip
    outcome = PlotOutcome(view, steps)
    if request.csv is not None:
        from lrtool.outputs import write_csv

        columns = ["schedule", "step", "lr", "momentum"]
        if per_epoch:
            columns.insert(2, "epoch")
        outcome.written.append(write_csv(request.csv, columns, view.full_rows(), request.force))
    if request.png is not None:
        from lrtool.png import write_png

        png = write_png(
            "schedule", request.png, request.force, curves=view.curves, log_y=request.log_y
        )
        outcome.written.append(png)
    return outcome
