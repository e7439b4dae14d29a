"""Results pinned byte for byte: a refactor of the engines must not change what users get.

``lrtool find``, ``train`` and ``compare`` on the quickstart and ``cnn_digits`` configs are run
in process and their result files compared with ``tests/golden/``: every CSV byte for byte,
and the result fields of ``summary.json`` (timings, versions, paths and the config echo left
out). One column is compared to 1e-14 instead of byte for byte: the range test's
``smoothed_loss`` (the divergence monitor's EMA), which the one EMA of lrtool debiases with
``beta**n`` where the sweep used to keep a running product of beta (one ulp apart; never the
step the sweep stops at, in these runs). The golden files were written with torch 2.13.0 on the CPU; float results of another
torch build may differ in the last bits, so the test runs only there.

To rewrite them after a change that is meant to change results (say why in the commit):
``LRTOOL_WRITE_GOLDEN=1 pytest tests/test_golden.py``.
"""

from __future__ import annotations

import csv
import io
import json
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


def _without_ema(text: str) -> tuple[str, list[float]]:
    """The CSV without its ``smoothed_loss`` column (byte for byte), and that column rounded
    to 14 significant digits."""
    rows = list(csv.reader(io.StringIO(text)))
    col = rows[0].index("smoothed_loss")
    kept = io.StringIO()
    csv.writer(kept, lineterminator="\n").writerows([r[:col] + r[col + 1 :] for r in rows])
    return kept.getvalue(), [float(f"{float(r[col]):.14g}") for r in rows[1:]]


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
        if csv_name.startswith("range_test"):
            got, want = _without_ema(got), _without_ema(want)
        assert got == want, f"{name}/{csv_name} differs from the golden file"
    pinned = json.loads((expected_dir / "summary.json").read_text())
    # Every pinned field is unchanged; fields added since (say "failed", or a run's "lr") are
    # not results.
    assert _only_pinned(summary, pinned) == pinned
