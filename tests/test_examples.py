"""The scripts in examples/ run as a user runs them, and do what they say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def numbers(pattern: str, text: str) -> list[float]:
    match = re.search(pattern, text)
    assert match, text
    return [float(g) for g in match.groups()]


def test_plain_loop_finds_an_lr_and_trains():
    out = run_example("plain_loop.py")
    lr, peak = numbers(r"suggested lr ([\d.e-]+), onecycle max_lr ([\d.e-]+)", out)
    assert 1e-5 < lr < peak < 10
    (accuracy,) = numbers(r"accuracy ([\d.]+)", out)
    assert accuracy > 0.6  # 3 classes: chance is 0.33


def test_model_with_its_own_loss_and_dict_batches():
    out = run_example("own_loss_model.py")
    (lr,) = numbers(r"suggested lr ([\d.e-]+)", out)
    assert 1e-6 < lr < 1.0
    (val_loss,) = numbers(r"val loss ([\d.]+)", out)
    assert val_loss < 0.5  # ln 2 = 0.69 is chance for 2 labels


def test_schedules_in_a_loop():
    out = run_example("schedule_in_loop.py")
    start, peak, end = numbers(
        r"onecycle: lr ([\d.]+) -> ([\d.]+) \(step \d+\) -> ([\d.e+-]+)", out
    )
    assert start == pytest.approx(0.1 / 25, rel=1e-3) and peak == pytest.approx(0.1, rel=1e-3)
    assert end < start / 1000
    momentum = numbers(r"momentum ([\d.]+) -> ([\d.]+) -> ([\d.]+)", out)
    assert momentum == pytest.approx([0.95, 0.85, 0.95], abs=0.01)
    (cuts,) = numbers(r"after (\d+) cuts", out)
    assert cuts >= 1


def test_readme_plain_loop_example_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    api = readme[readme.index("## Python API") :]
    code = api[
        api.index("```python") + len("```python") : api.index("```", api.index("```python") + 9)
    ]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (our own README)
    result, driver = scope["result"], scope["driver"]
    assert result.lr is not None and result.lr < result.onecycle_max_lr
    assert driver.get_last_lr()[0] == pytest.approx(result.onecycle_max_lr / 25)
