"""``lrtool schedules`` and ``lrtool plot``: output, CSV, errors, and no torch import."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lrtool.schedules import SCHEDULES, build_schedule
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parents[1]


def test_schedules_lists_every_schedule():
    result = invoke("schedules")
    assert result.exit_code == 0
    for name in SCHEDULES:
        assert name in result.stdout


def test_schedule_detail():
    result = invoke("schedules", "onecycle")
    assert result.exit_code == 0 and "pct_start" in result.stdout and "example" in result.stdout


def test_plot_onecycle_with_momentum_and_csv(tmp_path):
    out = tmp_path / "s.csv"
    result = invoke("plot", "--schedule", "onecycle", "--steps", "200", "--lr", "0.5", "--csv", out)
    assert result.exit_code == 0, result.output
    assert "Momentum" in result.stdout and "peak" in result.stdout
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["schedule", "step", "lr", "momentum"] and len(rows) == 200
    ref = build_schedule("onecycle", {"max_lr": 0.5, "total_steps": 200})
    assert float(rows[60]["lr"]) == pytest.approx(ref(60), rel=1e-12)
    again = invoke("plot", "--schedule", "onecycle", "--csv", out)
    assert again.exit_code == 1 and "--force" in again.stderr


def test_overlay_and_set(tmp_path):
    result = invoke(
        "plot",
        "--schedule",
        "power",
        "--schedule",
        "exponential",
        "--set",
        "s=50",
        "--log-y",
        "--steps",
        "300",
    )
    assert result.exit_code == 0, result.output
    assert "power" in result.stdout and "exponential" in result.stdout


def test_plateau_plot_says_synthetic(tmp_path):
    result = invoke("plot", "--schedule", "plateau", "--steps", "100", "--set", "patience=5")
    assert result.exit_code == 0 and "synthetic" in result.stdout
    metric = tmp_path / "m.csv"
    metric.write_text("metric\n" + "\n".join(str(1.0) for _ in range(30)) + "\n")
    result = invoke("plot", "--schedule", "plateau", "--metric-csv", metric, "--set", "patience=2")
    assert result.exit_code == 0, result.output


def test_plot_from_config_train_section():
    result = invoke("plot", "--config", ROOT / "configs" / "quickstart.yaml")
    assert result.exit_code == 0, result.output
    assert "onecycle" in result.stdout and "299" in result.stdout  # the config's 300 steps


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--schedule", "onecylce"], "did you mean 'onecycle'"),
        (["--schedule", "onecycle", "--set", "pct_start=1.5"], "pct_start"),
        (["--schedule", "onecycle", "--set", "pct_start"], "key=value"),
        (["--schedule", "cosine", "--set", "bogus=1"], "bogus"),
        (
            ["--schedule", "piecewise", "--set", "boundaries=10,5", "--set", "values=1,2,3"],
            "increasing",
        ),
        (
            ["--schedule", "piecewise", "--set", "boundaries=10", "--set", "values=1,2,3"],
            "len(values)",
        ),
        (["--schedule", "step", "--set", "factor=2"], "factor"),
        (["--schedule", "constant", "--lr", "-1"], "--lr"),
        (["--schedule", "constant", "--steps", "0"], "--steps"),
        ([], "--schedule"),
    ],
)
def test_plot_bad_input(args, fragment):
    result = invoke("plot", *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["schedules"], ["plot", "--schedule", "onecycle", "--steps", "1000000"]],
)
def test_non_training_commands_do_not_import_torch(argv):
    code = (
        "import sys\n"
        "from lrtool.cli import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('NO_TORCH')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "NO_TORCH" in done.stdout, done.stderr


def test_plot_png(tmp_path):
    png = tmp_path / "s.png"
    result = invoke("plot", "--schedule", "onecycle", "--png", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_key_points_are_exact_steps_and_formulas_keep_their_brackets():
    result = invoke("plot", "--schedule", "onecycle", "--steps", "1000")
    assert result.exit_code == 0, result.output
    peak = re.search(r"│ peak\s+│\s+(\d+) │", result.stdout)
    assert peak and int(peak.group(1)) == 299  # torch OneCycleLR peaks at pct*T - 1
    detail = invoke("schedules", "piecewise")
    assert "values[i] for b[i-1] < t <= b[i]" in detail.stdout
