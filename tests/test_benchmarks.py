"""The benchmarks stay runnable: a one-round run of the overhead benchmark, valid configs."""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def test_range_test_overhead_prints_ratios(capsys):
    import range_test_overhead
    import torch

    threads = torch.get_num_threads()  # the benchmark pins one thread; the suite keeps its own
    try:
        args = ["--pairs", "1", "--steps", "20", "--only", "MLP", "--default-malloc"]
        assert range_test_overhead.main(args) == 0
    finally:
        torch.set_num_threads(threads)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("MLP"))
    # lrtool / bare and the A/A ratio of one round: positive numbers, the interval on the point.
    ratios = re.findall(r"(\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\]", row)
    assert len(ratios) >= 2, row
    for point, low, high in ratios:
        assert 0 < float(low) == float(point) == float(high)


def test_bootstrap_interval_brackets_the_median():
    import range_test_overhead

    ratios = [0.9, 0.95, 1.0, 1.02, 1.05, 1.1, 1.3]
    low, high = range_test_overhead.interval(ratios)
    assert min(ratios) <= low <= statistics.median(ratios) <= high <= max(ratios)
    assert low < high


@pytest.mark.parametrize(("side", "batch_size"), [(16, 64), (32, 256)])
def test_freed_memory_configs_are_valid_lrtool_configs(side, batch_size):
    import freed_memory

    from lrtool.config import parse_config

    config = parse_config(freed_memory.cnn_config(side, batch_size))
    assert config.model.input_shape == [3, side, side]
    assert config.data.n_features == 3 * side * side


def test_snapshot_benchmark_measures_each_mode(capsys):
    import snapshot

    assert snapshot.main(["--layers", "2", "--width", "512"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line.split()[:1] in (["cpu"], ["disk"], ["none"]) and "copies" in line
    }
    assert set(rows) == {"cpu", "disk", "none"}
    copies = {mode: float(row.split()[1]) for mode, row in rows.items()}
    assert 0.9 < copies["cpu"] < 1.2  # one host copy of weights and optimizer state
    assert copies["disk"] < 0.2 and copies["none"] < 0.2
    assert all(row.rstrip().endswith("True") for row in rows.values())  # restored exactly
