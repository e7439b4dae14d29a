"""Shared test helpers: a tiny fast config and a CLI runner with a fixed terminal width."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrtool.cli import app

TINY = """
seed: 0
device: cpu
data: {source: synthetic, n_samples: 256, n_features: 8, n_classes: 3, batch_size: 32}
model: {name: mlp, hidden: [16]}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
find: {start_lr: 1.0e-4, end_lr: 10, steps: 30}
train: {steps: 40, eval_every: 10, schedule: {name: onecycle, max_lr: 0.2}}
"""


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def write_config(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def invoke(*args: str):
    runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "100", "NO_COLOR": "1"})
