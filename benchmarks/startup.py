"""Start-up of the non-training commands against `python -c "import torch"`, and of a CI smoke
run against a bare torch script that trains the same steps.

Measured side by side in one run: A (an lrtool command) and B (import torch) alternate, the
median of N pairs is taken, and the ratio A/B is printed. Targets: lrtool plot --schedule
onecycle at most 0.2 of the torch import; a 1,000,000-step plot at most 2x a 1,000-step one;
`lrtool find configs/smoke.yaml --smoke` at most 1.3x `benchmarks/bare_smoke.py` running the
same number of optimizer steps (its summary's steps_total) with the same validation passes.

lrtool's bytecode is compiled first (``benchmarks/bytecode.py``), as ``pip install`` does.

Rerun: python benchmarks/startup.py [--pairs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bytecode import compile_package  # noqa: E402

COMMANDS = {
    "lrtool --help": ["-m", "lrtool", "--help"],
    "lrtool schedules": ["-m", "lrtool", "schedules"],
    "lrtool plot --schedule onecycle": ["-m", "lrtool", "plot", "--schedule", "onecycle"],
    "lrtool plot ... --steps 1000000": [
        "-m",
        "lrtool",
        "plot",
        "--schedule",
        "onecycle",
        "--steps",
        "1000000",
    ],
}
TORCH = ["-c", "import torch"]


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - start


ROOT = Path(__file__).resolve().parents[1]


def smoke_pair(pairs: int) -> tuple[float, float]:
    """Medians of `lrtool find configs/smoke.yaml --smoke` and of the bare script running the
    steps that run took."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        find = ["-m", "lrtool", "find", str(ROOT / "configs" / "smoke.yaml"), "--smoke",
                "--out", tmp, "--force"]  # fmt: skip
        wall(find)
        steps = json.loads((Path(tmp) / "summary.json").read_text())["steps_total"]
        bare = [str(ROOT / "benchmarks" / "bare_smoke.py"), str(steps)]
        a, b = [], []
        for _ in range(pairs):
            a.append(wall(find))
            b.append(wall(bare))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args()
    compile_package()  # as an installed lrtool: bytecode, not source, at start-up
    wall(TORCH)  # warm the file cache for both sides
    results = {}
    for label, argv in COMMANDS.items():
        wall(argv)
        a, b = [], []
        for _ in range(args.pairs):
            a.append(wall(argv))
            b.append(wall(TORCH))
        results[label] = (statistics.median(a), statistics.median(b))
    print(f"{'command':36} {'median s':>9} {'torch s':>9} {'ratio':>7}")
    for label, (ta, tb) in results.items():
        print(f"{label:36} {ta:9.3f} {tb:9.3f} {ta / tb:7.3f}")
    smoke, bare = smoke_pair(args.pairs)
    print(
        f"{'lrtool find --smoke (smoke.yaml)':36} {smoke:9.3f} {bare:9.3f} {smoke / bare:7.3f}"
        f"   (against bare_smoke.py, the same steps; target <= 1.3)"
    )
    short = results["lrtool plot --schedule onecycle"][0]
    long = results["lrtool plot ... --steps 1000000"][0]
    print(f"1,000,000-step plot / 1,000-step plot: {long / short:.2f} (target <= 2)")
    print(
        f"plot / import torch: {short / results['lrtool plot --schedule onecycle'][1]:.3f} "
        f"(target <= 0.2)"
    )


if __name__ == "__main__":
    main()
