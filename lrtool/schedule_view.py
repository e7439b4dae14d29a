"""Schedules as curves for the terminal and CSV, and the run plans of ``lrtool compare``.

No torch here: ``lrtool plot`` stays fast. Long schedules are evaluated only at the sampled
steps a terminal can show (``max_points``), so a 1,000,000-step plot costs what a short one
does; the CSV export evaluates every step.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError, closest, usage_error
from lrtool.schedules import Schedule, build_schedule, get_spec, parse_value, sample_steps

DEFAULT_COMPARE = "constant,power,exponential,piecewise,plateau,onecycle"


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` into a dict of parsed values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise usage_error(f"--set: expected key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


@dataclass
class ScheduleView:
    curves: dict[str, tuple[list[int], list[float], list[float | None]]] = field(
        default_factory=dict
    )
    built: dict[str, Schedule] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    steps: int = 0
    notes: list[str] = field(default_factory=list)

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
        return rows


def read_metric_csv(path: Path) -> list[float]:
    """One metric value per evaluation: the ``metric`` column, or the last column."""
    if not path.exists():
        raise LrtoolError(f"--metric-csv: file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
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
    name: str, steps: int, lr: float | None, overrides: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    spec = get_spec(name)
    params = dict(base)
    for key, value in overrides.items():
        target, dot, sub = key.partition(".")
        if dot and target == name:
            params[sub] = value
        elif not dot and key in spec.param_names:
            params[key] = value
    if "total_steps" in spec.param_names:
        params["total_steps"] = steps
    if lr is not None:
        params[spec.lr_param] = lr
    elif params.get(spec.lr_param) is None and not (name == "piecewise" and "values" in params):
        params[spec.lr_param] = 0.1
    return params


def curves_for(
    names: list[str],
    steps: int,
    lr: float | None,
    overrides: dict[str, Any],
    train_params: dict[str, Any],
    metric_csv: Path | None = None,
    max_points: int = 400,
) -> ScheduleView:
    """Build each named schedule and sample its LR (and momentum) curve."""
    for name in names:
        get_spec(name)
    known = {p for n in names for p in get_spec(n).param_names}
    for key in overrides:
        base_key = key.split(".", 1)[-1] if "." in key else key
        owner = key.split(".", 1)[0] if "." in key else None
        if owner is not None and owner not in names:
            raise usage_error(f"--set {key}: '{owner}' is not among the plotted schedules")
        if owner is None and base_key not in known:
            raise usage_error(
                f"--set {key}: no plotted schedule has a parameter '{key}'"
                f"{closest(key, sorted(known))}"
            )
    view = ScheduleView(steps=steps)
    for name in names:
        label = (
            name
            if names.count(name) == 1 or name not in view.built
            else f"{name} ({len(view.built)})"
        )
        params = _params_for(name, steps, lr, overrides, train_params if len(names) == 1 else {})
        sched = build_schedule(name, params)
        view.built[label] = sched
        if sched.stateful:
            metric = read_metric_csv(metric_csv) if metric_csv else None
            if metric is None:
                metric = _stalling(steps)
                view.notes.append(
                    f"{label}: response to a synthetic validation metric that improves for "
                    f"30% of the steps, then stalls (one evaluation per step; use --metric-csv "
                    f"for your own)"
                )
            xs, lrs = [], []
            for t, value in enumerate(metric):
                xs.append(t)
                lrs.append(sched(t))
                sched.update(value)  # type: ignore[attr-defined]
            view.metrics[label] = metric
            view.curves[label] = (xs, lrs, [None] * len(xs))
            continue
        xs = sample_steps(steps, max_points)
        view.curves[label] = (xs, [sched(t) for t in xs], [sched.momentum(t) for t in xs])
    return view


def _stalling(steps: int) -> list[float]:
    from lrtool.plateau import stalling_metric

    return stalling_metric(steps)


def plan_runs(
    schedules: str | None,
    schedule: str | None,
    lrs: str | None,
    sets: list[str],
    config: Any,
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, schedule, params)`` for each compare run.

    ``--schedules a,b`` compares schedules; ``--schedule a --lrs x,y`` one schedule at several
    LRs. ``--set name.key=value`` sets a parameter of one schedule (``key=value`` of every
    listed schedule that has it); the config's ``train.schedule`` parameters apply to the
    schedule of the same name; otherwise the LR is ``optimizer.lr``.
    """
    if schedule is not None and schedules is not None:
        raise usage_error("use either --schedules a,b,... or --schedule NAME --lrs x,y,...")
    if lrs is not None and schedule is None:
        raise usage_error("--lrs needs --schedule NAME (one schedule at several LRs)")
    if schedule is not None and lrs is None:
        raise usage_error("--schedule needs --lrs x,y,... (or use --schedules a,b,...)")
    overrides = parse_sets(sets)
    names = (
        [schedule]
        if schedule
        else [n.strip() for n in (schedules or DEFAULT_COMPARE).split(",") if n.strip()]
    )
    if not names:
        raise usage_error("--schedules: name at least one schedule")
    for name in names:
        get_spec(name)
    for key in overrides:
        owner, dot, sub = key.partition(".")
        if dot:
            if owner not in names:
                raise usage_error(
                    f"--set {key}: schedule '{owner}' is not in the compared list ({', '.join(names)})"
                )
            if sub not in get_spec(owner).param_names:
                raise usage_error(f"--set {key}: schedule '{owner}' has no parameter '{sub}'")
        elif not any(key in get_spec(n).param_names for n in names):
            raise usage_error(
                f"--set {key}: none of the compared schedules has a parameter '{key}'"
            )
    cfg_sched = config.train.schedule
    plan = []
    for name in names:
        params: dict[str, Any] = dict(cfg_sched.params()) if cfg_sched.name == name else {}
        spec = get_spec(name)
        for key, value in overrides.items():
            owner, dot, sub = key.partition(".")
            if dot and owner == name:
                params[sub] = value
            elif not dot and key in spec.param_names:
                params[key] = value
        if spec.lr_param not in params and not (name == "piecewise" and "values" in params):
            params["__default_lr__"] = config.optimizer.lr  # unless --lr or a range test
        plan.append((name, name, params))
    if schedule is None:
        return plan
    values = []
    for part in lrs.split(","):  # type: ignore[union-attr]
        try:
            value = float(part)
        except ValueError:
            raise usage_error(f"--lrs: {part.strip()!r} is not a number") from None
        if not (value > 0 and math.isfinite(value)):
            raise usage_error(f"--lrs: every LR must be positive, got {part.strip()}")
        values.append(value)
    label, name, params = plan[0]
    return [
        (
            f"{name} lr={v:g}",
            name,
            {**{k: p for k, p in params.items() if k != "__default_lr__"}, "__lr__": v},
        )
        for v in values
    ]
