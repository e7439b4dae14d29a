"""Shared test helpers: a tiny fast config and a CLI runner with a fixed terminal width."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
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


def torch_values(make, steps: int, momentum: bool = False, opt: str = "sgd", lr: float = 1.0):
    """The LR (and momentum or beta1) a torch scheduler ``make(optimizer)`` gives at steps
    0..steps-1, on SGD with momentum 0.9 (or Adam) starting at ``lr``: the reference every
    schedule test compares lrtool with."""
    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    if opt == "sgd":
        o = torch.optim.SGD([p], lr=lr, momentum=0.9)
    else:
        o = torch.optim.Adam([p], lr=lr)
    sched = make(o)
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(o.param_groups[0]["lr"])
        g = o.param_groups[0]
        moms.append(g["momentum"] if "momentum" in g and opt == "sgd" else g["betas"][0])
        o.step()
        sched.step()
    return (lrs, moms) if momentum else lrs


ROOT = Path(__file__).resolve().parents[1]


def interrupt_run(
    command: str,
    config: Path,
    out: Path,
    cwd: Path,
    *extra: str,
    sig: int = signal.SIGINT,
    phase: str = "",
    twice: bool = False,
) -> tuple[int, str]:
    """Start `python -m lrtool COMMAND CONFIG --out OUT` in a real process, wait for the
    observable event that training is under way (the LRTOOL_HEARTBEAT file appears after the
    first step; with ``phase``, the ``HEARTBEAT.<phase>`` file, e.g. ``search``), send ``sig``
    (``twice``: a second one right after); (exit code, stderr). No guessed sleep: on a
    loaded machine the wait for the event simply takes longer."""
    proc, beat = start_run(command, config, out, cwd, *extra)
    wait_for(beat if not phase else Path(f"{beat}.{phase}"), proc)
    proc.send_signal(sig)
    if twice:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def start_run(
    command: str, config: Path, out: Path, cwd: Path, *extra: str, env: dict | None = None
) -> tuple[subprocess.Popen, Path]:
    """``python -m lrtool COMMAND CONFIG --out OUT -q ...`` in a real process, with its
    heartbeat file (see :func:`interrupt_run`)."""
    beat = cwd / f"heartbeat-{out.name}"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "LRTOOL_HEARTBEAT": str(beat), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrtool", command, str(config), "--out", str(out), "-q", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
        cwd=cwd,
    )
    return proc, beat


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Poll (50 ms) until ``path`` exists; fail if the process ends first or it never does."""
    deadline = time.time() + timeout
    while time.time() < deadline and not path.exists() and proc.poll() is None:
        time.sleep(0.05)
    if not path.exists():
        out, err = proc.communicate(timeout=60) if proc.poll() is not None else (b"", b"")
        raise AssertionError(f"{path.name} never appeared; stderr: {err.decode()[-2000:]}")
