"""Output that survives CI logs and small terminals: two-panel plots at 80x24 and piped,
compare's LRs and markers, find --set, and the device in summary.json."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from lrtool import render
from lrtool.jobs.plot import PlotRequest, plot
from tests.conftest import TINY, invoke, write_config


def _console(width: int, height: int, terminal: bool) -> Console:
    return Console(
        file=io.StringIO(), width=width, height=height, force_terminal=terminal,
        color_system=None, highlight=False,
    )  # fmt: skip


def _panels(text: str) -> list[list[str]]:
    """The frames of each plot panel: the lines from one ┌ to its └."""
    panels, current = [], None
    for line in text.splitlines():
        if "┌" in line:
            current = []
        if current is not None:
            current.append(line)
        if "└" in line and current is not None:
            panels.append(current)
            current = None
    return panels


@pytest.mark.parametrize(("width", "height", "terminal"), [(80, 24, True), (100, 25, False)])
def test_two_panel_schedule_plot_fits_and_keeps_both_panels(width, height, terminal):
    out = _console(width, height, terminal)
    outcome = plot(PlotRequest(["onecycle"], steps=200))
    render.plot(out, outcome, log_y=False, width=90, color=False)
    text = out.file.getvalue()
    figure = text.split("key points")[0]
    assert all(len(line) <= width for line in text.splitlines())
    panels = _panels(figure)
    assert len(panels) == 2 and all(len(p) >= 5 for p in panels)  # momentum is a real panel
    assert "Momentum" in figure and "Learning rate schedule" in figure
    if terminal:
        assert len(figure.strip("\n").splitlines()) <= height


def test_two_panel_train_plot_piped(tiny_config, tmp_path):
    result = invoke("train", tiny_config, "--out", tmp_path / "t")  # CliRunner: piped output
    assert result.exit_code == 0, result.output
    panels = _panels(result.stdout)
    assert len(panels) == 2 and all(len(p) >= 5 for p in panels)
    assert "Learning rate" in result.stdout and "Loss" in result.stdout


def test_compare_prints_each_runs_lr_and_marks_series_without_colour(tmp_path):
    cfg = write_config(tmp_path, TINY)
    result = invoke(
        "compare", cfg, "--schedule", "constant", "--lrs", "0.01,0.1", "--out", tmp_path / "c",
        "--log-y",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert [r["lr"] for r in summary["runs"]] == [0.01, 0.1]
    assert re.search(r"constant lr=0\.01\s+│\s+0\.01 │", result.stdout)  # the lr column
    assert "(log scale)" in result.stdout
    val_plot = result.stdout.split("Validation loss")[1].split("Learning rate")[0]
    assert "*" in val_plot and "o" in val_plot  # one marker per series, no colour needed


def test_find_set_reaches_any_config_key_and_summary_says_the_device(tiny_config, tmp_path):
    result = invoke(
        "find", tiny_config, "--out", tmp_path / "f", "-q", "--budget", "0",
        "--set", "data.batch_size=16", "--set", "optimizer.momentum=0.5", "--set", "seed=3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    echo = summary["config_echo"]
    assert echo["data"]["batch_size"] == 16 and echo["optimizer"]["momentum"] == 0.5
    assert echo["seed"] == 3
    assert summary["device"] == {"configured": "cpu", "used": "cpu", "name": None}
    bad = invoke("find", tiny_config, "--out", tmp_path / "g", "--set", "data.batchsize=3")
    assert bad.exit_code == 2 and "data.batchsize" in bad.stderr


def test_two_panel_train_plot_fits_an_80x24_terminal():
    import torch
    from torch import nn

    from lrtool import build_schedule, train

    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(128, 4)
    batches = [(x[i : i + 32], (x[i : i + 32, 0] > 0).long()) for i in range(0, 128, 32)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = build_schedule("onecycle", {"max_lr": 0.5, "total_steps": 60})
    result = train(model, opt, batches, nn.CrossEntropyLoss(), schedule, 60, val_loader=batches)
    summary = {
        "schedule": "onecycle", "final_accuracy": result.final_accuracy,
        "final_val_loss": result.final_val_loss, "best_val_loss": result.best_val_loss,
        "steps_run": 60, "output_folder": "x",
    }  # fmt: skip
    out = _console(80, 24, True)
    render.train(out, out, result, summary, quiet=False, no_plot=False, color=False)
    text = out.file.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    figure = text[text.index("Loss") - 100 if text.index("Loss") > 100 else 0 :]
    panels = _panels(figure)
    assert len(panels) == 2 and all(len(p) >= 5 for p in panels)
    start = min(i for i, line in enumerate(text.splitlines()) if "Loss" in line)
    end = max(i for i, line in enumerate(text.splitlines()) if "└" in line)
    assert end - start + 2 <= 24  # the whole figure fits the screen


def test_the_compare_and_search_tables_fit_80_columns_and_cut_no_name():
    """Issue 29: in an 80-column terminal the compare table wraps long schedule names instead
    of cutting them ("exponenti..."), and neither table runs past the edge."""
    from lrtool import report
    from lrtool.verify import Candidate, VerifyResult

    names = ["constant", "exponential", "piecewise_interpolate", "cosine_restarts", "onecycle"]
    rows = [
        {"run": n, "lr": 0.162, "final_val_loss": 0.1, "best_val_loss": 0.09,
         "final_accuracy": 0.97, "steps_to_target": None, "wall_s": 0.15,
         "stop_reason": "non-finite loss (nan) at step 3, lr 1" if n == "onecycle" else "completed",
         "winner": n == "constant"}
        for n in names
    ]  # fmt: skip
    checked = VerifyResult(
        candidates=[Candidate("constant", 0.05 * 10**k, 0.5, 19, 0, 0.6, 0.4) for k in range(3)],
        lr=0.21, onecycle_max_lr=0.4, steps_spent=57, budget=0.5, target_steps=300,
        winner=0.5, monitor="val (8 batches)",
    )  # fmt: skip
    for table in (
        report.compare_table(rows, 0.0979, "each run's LR"),
        report.verify_table(checked),
    ):
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(table)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= 80
        assert "…" not in text
    compared = Console(width=80, record=True, file=io.StringIO())
    compared.print(report.compare_table(rows, 0.0979, "each run's LR"))
    flat = compared.export_text().replace("│", " ")
    assert "diverged" in flat and "piecewise_inte" in flat and "rpolate" in flat
