"""Rendering: rich tables and plotext terminal plots, built from plain result data.

Nothing here trains or imports torch; every function takes numbers and returns a renderable
(a rich ``Table`` or a plot string), so it is testable without a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

SERIES_MARKERS = ["*", "o", "x", "+", "#", "%", "@", "&"]  # one per series without colour
PLOT_POINTS = 2000  # the most points handed to plotext per curve; a terminal shows fewer


def fmt_lr(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"


def fmt_loss(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def evenly_spaced(n: int, count: int) -> list[int]:
    """Up to ``count`` indices spread over 0..n-1, first and last included."""
    if n <= count:
        return list(range(n))
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


# --------------------------------------------------------------------------------------------
# Range test
# --------------------------------------------------------------------------------------------


def curve_table(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    curve: Sequence[float] | None = None,
    rows: int = 15,
) -> Table:
    """Some steps of the sweep: the raw loss, the lag-free curve the rule reads and the
    debiased EMA that watches for divergence."""
    table = Table(title="Range test (a subset of the steps)", title_justify="left")
    names = ["step", "lr", "loss", "lag-free (rule)", "EMA (divergence)"]
    for name in names if curve is not None else names[:3] + names[4:]:
        table.add_column(name, justify="right")
    for i in evenly_spaced(len(lrs), rows):
        cells = [str(i), fmt_lr(lrs[i]), fmt_loss(losses[i])]
        if curve is not None:
            cells.append(fmt_loss(curve[i]))
        table.add_row(*cells, fmt_loss(smoothed[i]))
    return table


def suggestions_table(
    suggestions: dict[str, float | None],
    notes: dict[str, str],
    recommended: str | None,
    searched: bool = False,
) -> Table:
    """Every rule's LR on the curve; the recommended rule starred, unless a search chose the
    answer (``searched``): then no rule is, and its title points to the search's table."""
    title = "Suggestions" + (
        " of the curve (the search below chose the answer)" if searched else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("rule")
    table.add_column("lr", justify="right")
    table.add_column("note", overflow="fold")
    for name, value in suggestions.items():
        mark = " *" if name == recommended and not searched else ""
        table.add_row(name + mark, fmt_lr(value), notes.get(name, ""))
    return table


def answer_line(result: Any) -> str:
    """The one line that states a range test's answer: the same words on the terminal, in
    ``summary.json``'s ``message`` and in ``--json``."""
    rec = result.recommendation
    if result.lr is None:
        why = rec.warnings[0] if rec and rec.warnings else "the curve cannot support a number"
        return f"no suggestion: {why.removeprefix('no suggestion: ')}"
    spread = (
        f" (rules within {rec.spread_decades:.2f} decades)"
        if rec.spread_decades is not None
        else ""
    )
    peak = "-" if result.onecycle_max_lr is None else f"{result.onecycle_max_lr:.3g}"
    return (
        f"suggested lr: {result.lr:.3g} (constant)   onecycle max_lr: {peak}   "
        f"confidence: {rec.confidence}{spread}"
    )


def verify_table(verification: Any) -> Table:
    """The --verify or --budget candidates: LR, steps, score and which one was kept."""
    if verification.budget is not None:
        spent = verification.steps_spent / max(verification.target_steps or 1, 1)
        title = (
            f"Budgeted search ({verification.because}: spent {verification.steps_spent} "
            f"steps = {spent:.2f} of one training, {verification.monitor} loss)"
        )
    else:
        title = (
            f"Verify ({verification.because}: {verification.steps_spent} training steps, "
            f"{verification.monitor} loss)"
        )
    table = Table(title=title, title_justify="left")
    table.add_column("use")
    table.add_column("lr", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("loss", justify="right")
    searched = verification.budget is not None
    if searched:
        table.add_column(f"at {verification.target_steps}", justify="right")  # predicted
    table.add_column("kept")
    table.add_column("note", overflow="fold")
    for row in verification.rows():
        score = row["score"]
        trained = row["steps"] > 0
        shown = ("diverged" if score != score else f"{score:.4g}") if trained else "-"
        cells = [row["use"], fmt_lr(row["lr"]), str(row["steps"]) if trained else "-", shown]
        if searched:
            predicted = row["predicted"]
            cells.append("-" if predicted != predicted else f"{predicted:.4g}")
        cells += ["*" if row["kept"] else "", row.get("note", "")]
        table.add_row(*cells)
    return table


def _log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    stride = max(1, (last - first) // 8)
    ticks = [10.0**e for e in range(first, last + 1, stride)]
    return ticks, [f"1e{e}" for e in range(first, last + 1, stride)]


def _new_figure(plt: Any) -> None:
    """Start from one empty panel: plotext keeps its figure (and a two-panel layout) between
    plots in one process, so a range-test plot after a schedule plot with momentum would land
    in the old layout. Sizes are ours to set: plotext would otherwise clip the figure to the
    terminal it guesses (80x24 when stdout is piped), squashing a second panel to one line."""
    plt.main().clear_figure()
    plt.limitsize(False, False)


def panel_heights(total: int) -> tuple[int, int]:
    """The rows of a two-panel figure of ``total`` rows: 60% above, the rest below (each at
    least 7, enough for a title, three ticks and an axis)."""
    top = max(8, round(total * 0.6))
    return top, max(7, total - top)


def _finish(plt: Any, width: int, height: int, color: bool) -> str:
    plt.plotsize(width, height)
    plt.theme("pro" if color else "clear")
    text = plt.build()
    plt.clf()
    return text if color else plt.uncolorize(text)


def loss_window(losses: Sequence[float], curve: Sequence[float]) -> tuple[float, float] | None:
    """The y-range of a range-test plot: from just below the lowest raw loss (always visible)
    to three times the curve's median rise above its minimum, so that one exploding point
    does not flatten the part the rule reads."""
    raw = [v for v in losses if math.isfinite(v)]
    line = sorted(v for v in curve if math.isfinite(v)) or sorted(raw)
    if not raw or not line:
        return None
    low = min(min(raw), line[0])
    top = line[0] + 3 * (line[len(line) // 2] - line[0])
    top = min(top, max(max(raw), line[-1]))
    pad = 0.02 * (top - low) if top > low else 1e-12
    return low - pad, top + pad


def range_test_plot(
    lrs: Sequence[float],
    losses: Sequence[float],
    curve: Sequence[float],
    marks: dict[str, float | None],
    log_x: bool = True,
    width: int = 90,
    height: int = 22,
    color: bool = False,
) -> str:
    """The raw losses (dots) and the lag-free curve the rule reads (line) against LR on a log
    axis, with the suggestions marked; the y-range keeps the lowest raw loss in view."""
    import plotext as plt

    _new_figure(plt)
    pairs = [(x, y, c) for x, y, c in zip(lrs, losses, curve, strict=False) if math.isfinite(y)]
    if len(pairs) < 2:
        return "(not enough finite points to plot)"
    window = loss_window([p[1] for p in pairs], [p[2] for p in pairs])
    assert window is not None
    low, top = window
    xs = [p[0] for p in pairs]
    plt.scatter(xs, [min(p[1], top) for p in pairs], label="loss (raw)", color="gray", marker="dot")
    line = [p for p in pairs if math.isfinite(p[2])]
    plt.plot(
        [p[0] for p in line],
        [min(p[2], top) for p in line],
        label="lag-free curve (read by the rule)",
        color="blue",
        marker="braille",
    )
    plt.ylim(low, top)
    palette = ["red", "green", "orange", "magenta", "cyan"]
    for i, ((name, value), colour) in enumerate(zip(marks.items(), palette, strict=False)):
        if value is not None and xs[0] <= value <= xs[-1]:
            plt.vline(value, colour)
            # one label a row, so that two close marks do not overwrite each other
            plt.text(name, value, top - 0.1 * i * (top - low), color=colour)
    if log_x:
        plt.xscale("log")
        ticks, labels = _log_ticks(xs[0], xs[-1])
        plt.xticks(ticks, labels)
    plt.title("Loss vs learning rate")
    plt.xlabel("learning rate")
    plt.ylabel("loss")
    return _finish(plt, width, height, color)


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def schedule_plot(
    curves: dict[str, tuple[list[int], list[float], list[float | None]]],
    log_y: bool = False,
    width: int = 90,
    height: int = 22,
    color: bool = False,
    title: str = "Learning rate schedule",
    steps_per_epoch: int | None = None,
) -> str:
    """LR against step for each schedule; a second panel of momentum where one defines it.
    With ``steps_per_epoch`` the x-axis counts epochs."""
    import plotext as plt

    xlabel = "step"
    if steps_per_epoch:
        xlabel = f"epoch ({steps_per_epoch} steps)"
        curves = {
            name: ([t / steps_per_epoch for t in xs], lrs, moms)  # type: ignore[misc]
            for name, (xs, lrs, moms) in curves.items()
        }

    _new_figure(plt)
    with_momentum = any(any(m is not None for m in c[2]) for c in curves.values())
    if with_momentum:
        plt.subplots(2, 1)
        plt.subplot(1, 1)
    palette = ["blue", "red", "green", "orange", "magenta", "cyan", "gray"]
    for (name, (steps, lrs, _)), colour in zip(curves.items(), palette * 4, strict=False):
        ys = [max(v, 1e-300) for v in lrs] if log_y else lrs
        plt.plot(steps, ys, label=name, color=colour, marker="braille")
    if log_y:
        plt.yscale("log")
    plt.title(title)
    plt.ylabel("lr")
    if with_momentum:
        top, bottom = panel_heights(height)
        plt.plotsize(width, top)
        plt.subplot(2, 1)
        for (name, (steps, _, moms)), colour in zip(curves.items(), palette * 4, strict=False):
            pts = [(s, m) for s, m in zip(steps, moms, strict=True) if m is not None]
            if pts:
                plt.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    label=name,
                    color=colour,
                    marker="braille",
                )
        plt.title("Momentum (beta1 for Adam-style optimizers)")
        plt.plotsize(width, bottom)
        plt.xlabel(xlabel)
        plt.theme("pro" if color else "clear")
        text = plt.build()
        plt.clf()
        return text if color else plt.uncolorize(text)
    plt.xlabel(xlabel)
    return _finish(plt, width, height, color)


def key_points_table(
    name: str, points: list[tuple[str, int, float]], steps_per_epoch: int | None = None
) -> Table:
    """``(point, step, lr)`` rows: start, peak, lowest and end of a schedule (and the epoch,
    with ``steps_per_epoch``)."""
    table = Table(title=f"{escape(name)}: key points", title_justify="left")
    columns = ("point", "step", "epoch", "lr") if steps_per_epoch else ("point", "step", "lr")
    for col in columns:
        table.add_column(col, justify="right" if col != "point" else "left")
    for point, step, lr in points:
        epoch = [f"{step / steps_per_epoch:.4g}"] if steps_per_epoch else []
        table.add_row(point, str(step), *epoch, fmt_lr(lr))
    return table


def schedules_table(specs: Sequence[Any]) -> Table:
    table = Table(title="Schedules", title_justify="left", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("parameters (default)")
    table.add_column("formula")
    table.add_column("matches")
    for spec in specs:
        params = ", ".join(f"{p.name}={p.shown_default()}" for p in spec.params)
        # escape: "values[i]" in a formula is text, not rich markup
        table.add_row(spec.name, escape(params), escape(spec.formula), escape(spec.matches))
    return table


def schedule_detail_table(spec: Any) -> Table:
    table = Table(title=escape(f"{spec.name}: {spec.formula}"), title_justify="left")
    table.add_column("parameter")
    table.add_column("type")
    table.add_column("default")
    table.add_column("valid")
    table.add_column("meaning")
    for p in list(spec.params) + [spec.param(n) for n in ("warmup_steps", "warmup_start_lr")]:
        kind = p.kind + (f" ({'|'.join(p.choices)})" if p.choices else "")
        cells = (p.name, kind, p.shown_default(), spec.valid(p.name) or "-", p.help)
        table.add_row(*(escape(str(c)) for c in cells))
    return table


# --------------------------------------------------------------------------------------------
# Training and comparison
# --------------------------------------------------------------------------------------------


def eval_table(rows: list[dict[str, Any]], max_rows: int = 20) -> Table:
    table = Table(title="Evaluations", title_justify="left")
    for col in ("step", "lr", "train loss (smoothed)", "val loss", "val accuracy"):
        table.add_column(col, justify="right")
    for i in evenly_spaced(len(rows), max_rows):
        r = rows[i]
        acc = r.get("val_accuracy")
        table.add_row(
            str(r["step"]),
            fmt_lr(r["lr"]),
            fmt_loss(r.get("train_loss_smoothed")),
            fmt_loss(r.get("val_loss")),
            "-" if acc is None or (isinstance(acc, float) and math.isnan(acc)) else f"{acc:.3f}",
        )
    return table


def train_plot(
    steps: list[int],
    train_loss: list[float],
    eval_steps: list[int],
    val_loss: list[float],
    lrs: list[float],
    width: int = 90,
    height: int = 24,
    color: bool = False,
) -> str:
    import plotext as plt

    _new_figure(plt)
    plt.subplots(2, 1)
    plt.subplot(1, 1)
    idx = evenly_spaced(len(steps), PLOT_POINTS)
    ok = [i for i in idx if math.isfinite(train_loss[i])]
    plt.plot(
        [steps[i] for i in ok],
        [train_loss[i] for i in ok],
        label="train (smoothed)",
        color="blue",
        marker="braille",
    )
    vs = [
        (s, v)
        for s, v in zip(eval_steps, val_loss, strict=True)
        if v is not None and math.isfinite(v)
    ]
    if vs:
        plt.plot([p[0] for p in vs], [p[1] for p in vs], label="val", color="red", marker="dot")
    plt.title("Loss")
    top, bottom = panel_heights(height)
    plt.plotsize(width, top)
    plt.subplot(2, 1)
    plt.plot(
        [steps[i] for i in idx], [lrs[i] for i in idx], label="lr", color="green", marker="braille"
    )
    plt.title("Learning rate")
    plt.xlabel("step")
    plt.plotsize(width, bottom)
    plt.theme("pro" if color else "clear")
    text = plt.build()
    _new_figure(plt)
    return text if color else plt.uncolorize(text)


def overlay_plot(
    curves: dict[str, tuple[list[int], list[float]]],
    title: str,
    ylabel: str,
    log_y: bool = False,
    width: int = 90,
    height: int = 20,
    color: bool = False,
) -> str:
    import plotext as plt

    _new_figure(plt)
    palette = ["blue", "red", "green", "orange", "magenta", "cyan", "gray"]
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and math.isfinite(y)]
        if log_y:
            pts = [(x, y) for x, y in pts if y > 0]
        # Without colour each series needs its own marker to be told apart.
        marker = "braille" if color else SERIES_MARKERS[i % len(SERIES_MARKERS)]
        if pts:
            plt.plot(
                [p[0] for p in pts], [p[1] for p in pts], label=name,
                color=palette[i % len(palette)], marker=marker,
            )  # fmt: skip
    if log_y:
        plt.yscale("log")
    plt.title(title)
    plt.xlabel("step")
    plt.ylabel(ylabel)
    return _finish(plt, width, height, color)


def compare_table(rows: list[dict[str, Any]], target: float | None, label: str) -> Table:
    """One row a run: its LR, final and best validation loss, final accuracy, the steps it took
    to reach the target, and how it stopped. Sized to fit 80 columns: short headers, the run's
    name wraps rather than being cut, the stop reason in a word (in full in summary.json)."""
    table = Table(
        title=f"Comparison: validation loss ({label}; target {fmt_loss(target)})",
        title_justify="left",
    )
    for col in ("run", "lr", "final", "best", "accuracy", "to target", "stop"):
        table.add_column(
            col,
            justify="left" if col in ("run", "stop") else "right",
            overflow="fold",
            min_width=9 if col == "run" else None,
        )
    for r in rows:
        acc = r.get("final_accuracy")
        reach = r.get("steps_to_target")
        table.add_row(
            r["run"] + (" (winner)" if r.get("winner") else ""),
            fmt_lr(r.get("lr")),
            fmt_loss(r.get("final_val_loss")),
            fmt_loss(r.get("best_val_loss")),
            "-" if acc is None else f"{acc:.3f}",
            "not reached" if reach is None else str(reach),
            _stop_word(r.get("stop_reason", "")),
        )
    return table


def _stop_word(reason: str) -> str:
    """How a run stopped, in a word: done, diverged, failed, interrupted."""
    if reason == "completed":
        return "done"
    if reason.startswith("non-finite"):
        return "diverged"
    if reason.startswith("interrupted"):
        return "interrupted"
    return "failed" if reason.startswith("failed") else reason.split(" ")[0]


def train_line(summary: dict[str, Any]) -> str:
    """The one line that states a training's outcome (the terminal's last line, and
    ``message`` in summary.json and --json)."""
    acc = summary.get("final_accuracy")
    reached = ""
    if "steps_to_target" in summary:
        steps = summary["steps_to_target"]
        target = fmt_loss(summary["target_val_loss"])
        reached = f", target {target} " + (f"at step {steps}" if steps else "not reached")
    return (
        f"{summary['schedule']}: final val loss {fmt_loss(summary['final_val_loss'])}, "
        f"best {fmt_loss(summary['best_val_loss'])}"
        + (f", accuracy {acc:.3f}" if acc is not None else "")
        + reached
        + f" after {summary['steps_run']} steps"
    )


def compare_line(summary: dict[str, Any]) -> str:
    """The one line that states a comparison's outcome."""
    return f"winner: {summary['winner'] or 'none reached the target'}"
