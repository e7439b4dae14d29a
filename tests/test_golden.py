"""Results pinned: a refactor of the engines must not change what users get.

``lrtool find``, ``train`` and ``compare`` on the quickstart and ``cnn_digits`` configs are run
in process and their result files compared with ``tests/golden/``: every CSV cell and every
result field of ``summary.json`` (timings, versions, paths and the config echo left out);
strings and integers exactly, floats to a relative 1e-3 (``REL``). Byte for byte held only on
the CPU that wrote the files: float32 kernels differ in their last bits between CPUs (AVX2 and
AVX-512) and torch builds, and a sweep amplifies that to about 2e-4 where the loss shoots up. A
refactor that changes results changes them far more. The golden files were written with torch
2.13.0 on the CPU, so the test runs only there.

To rewrite them after a change that is meant to change results (say why in the commit):
``LRTOOL_WRITE_GOLDEN=1 pytest tests/test_golden.py``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, invoke

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("LRTOOL_WRITE_GOLDEN") == "1"
# Not results: how long it took, where it was written, what ran it, and the config echoed.
UNPINNED = {"elapsed_s", "wall_s", "versions", "output_folder", "config_echo", "config"}

RUNS = {
    "quickstart-find": ["find", "configs/quickstart.yaml"],
    "cnn_digits-find": ["find", "configs/cnn_digits.yaml"],
    "quickstart-train": ["train", "configs/quickstart.yaml"],
    "cnn_digits-train": ["train", "configs/cnn_digits.yaml"],
    "quickstart-compare": ["compare", "configs/quickstart.yaml"],
}

pytestmark = pytest.mark.skipif(
    torch.__version__.split("+")[0] != "2.13.0" and not WRITE,
    reason="golden results were written with torch 2.13.0 (CPU)",
)


def _pinned(value: object) -> object:
    if isinstance(value, dict):
        return {k: _pinned(v) for k, v in value.items() if k not in UNPINNED}
    if isinstance(value, list):
        return [_pinned(v) for v in value]
    return value


def _only_pinned(value: object, pinned: object) -> object:
    """``value`` cut down to the keys ``pinned`` has, recursively (lists element by element)."""
    if isinstance(pinned, dict) and isinstance(value, dict):
        return {k: _only_pinned(value.get(k, "<missing>"), v) for k, v in pinned.items()}
    if isinstance(pinned, list) and isinstance(value, list) and len(value) == len(pinned):
        return [_only_pinned(v, p) for v, p in zip(value, pinned, strict=True)]
    return value


# float32 kernels differ in their last bits between CPUs (AVX2, AVX-512) and builds; training
# amplifies that to about 2e-4 near the end of a sweep, where the loss shoots up.
REL = 1e-3


def _same(got: object, want: object) -> bool:
    """Equal, with floats within ``REL`` of each other (NaN equals NaN); the same structure,
    strings, integers and booleans exactly."""
    if isinstance(want, float) or isinstance(got, float):
        if isinstance(got, bool) or isinstance(want, bool):
            return got == want
        if not isinstance(got, int | float) or not isinstance(want, int | float):
            return False
        if math.isnan(got) or math.isnan(want):
            return math.isnan(got) and math.isnan(want)
        return math.isclose(got, want, rel_tol=REL, abs_tol=1e-9)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(map(_same, got, want))
    return got == want


def _cells(text: str) -> list[list[object]]:
    """A CSV's rows, each cell a float where it reads as one."""

    def cell(value: str) -> object:
        try:
            return value if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            return value

    return [[cell(v) for v in row] for row in csv.reader(io.StringIO(text))]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_results_match_golden(name: str, tmp_path: Path) -> None:
    command, config = RUNS[name]
    out = tmp_path / "out"
    result = invoke(command, ROOT / config, "--out", out, "--device", "cpu", "-q", "--no-plot")
    assert result.exit_code == 0, result.output
    expected_dir = GOLDEN / name
    produced = sorted(p.name for p in out.iterdir() if p.suffix == ".csv")
    summary = _pinned(json.loads((out / "summary.json").read_text()))
    if WRITE:
        expected_dir.mkdir(parents=True, exist_ok=True)
        for old in expected_dir.iterdir():
            old.unlink()
        for csv_name in produced:
            (expected_dir / csv_name).write_bytes((out / csv_name).read_bytes())
        (expected_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        return
    expected_csvs = sorted(p.name for p in expected_dir.iterdir() if p.suffix == ".csv")
    assert produced == expected_csvs
    for csv_name in produced:
        got, want = (out / csv_name).read_text(), (expected_dir / csv_name).read_text()
        assert _same(_cells(got), _cells(want)), f"{name}/{csv_name} differs from the golden file"
    pinned = json.loads((expected_dir / "summary.json").read_text())
    # Every pinned field is unchanged; fields added since (say "failed", or a run's "lr") are
    # not results.
    assert _same(_only_pinned(summary, pinned), pinned)
