"""What keeping freed memory (``lrtool.heap``) saves ``lrtool find`` on the CPU.

    python benchmarks/freed_memory.py               # 7 alternated rounds, about 4 minutes
    python benchmarks/freed_memory.py --rounds 11

The same ``lrtool find`` command runs as a fresh process with ``LRTOOL_RETAIN_FREED_MEMORY=0``
(glibc's default: the freed top of the heap goes back to the kernel) and with the default
(``1``: freed memory stays for the next step), alternating, the order swapped every round. Four
configs: the quickstart MLP on the digits, and a CNN (16 and 32 channels) on synthetic 3x16x16
and 3x32x32 images in batches of 64 and 256, 60 steps, one thread. Reported: the sweep time from ``summary.json``
(``elapsed_s``), the minor page faults of the whole process, and the median of the per-round
ratios retained / default. Peak memory (max RSS of the process) is shown too: keeping freed
memory must not raise it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def cnn_config(side: int, batch_size: int) -> dict:
    return {
        "seed": 0,
        "device": "cpu",
        "data": {
            "source": "synthetic",
            "n_samples": 10 * batch_size,
            "n_features": 3 * side * side,
            "n_classes": 10,
            "batch_size": batch_size,
        },
        "model": {"name": "cnn", "channels": [16, 32], "input_shape": [3, side, side]},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "find": {"start_lr": 1e-5, "end_lr": 1e-2, "steps": 60, "refine": False, "verify": False},
    }


def run(config: Path, out: Path, retain: bool) -> tuple[float, int, int]:
    """One ``lrtool find`` process: (sweep seconds, minor page faults, peak RSS in MiB)."""
    env = {**os.environ, "LRTOOL_RETAIN_FREED_MEMORY": "1" if retain else "0"}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "lrtool", "find", str(config), "--out", str(out), "--json"]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own usage, not all children's
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    sweep = json.loads((out / "summary.json").read_text())["elapsed_s"]
    return sweep, usage.ru_minflt, usage.ru_maxrss // 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    configs = {"quickstart MLP (digits)": ROOT / "configs" / "quickstart.yaml"}
    for side, batch_size in ((16, 64), (32, 64), (32, 256)):
        path = tmp / f"cnn{side}-{batch_size}.yaml"
        path.write_text(yaml.safe_dump(cnn_config(side, batch_size)))
        configs[f"CNN 3x{side}x{side}, batch {batch_size}"] = path
    print(
        f"lrtool find, fresh process each, median of {args.rounds} alternated rounds\n"
        f"{'config':26} {'sweep s (default)':>17} {'(retained)':>10} {'ratio':>6} "
        f"{'page faults (default)':>21} {'(retained)':>10} {'peak MiB (default)':>18} "
        f"{'(retained)':>10}"
    )
    for name, config in configs.items():
        sweeps: dict[bool, list[float]] = {False: [], True: []}
        faults: dict[bool, list[int]] = {False: [], True: []}
        peaks: dict[bool, list[int]] = {False: [], True: []}
        for i in range(args.rounds + 1):  # round 0 warms the file cache and is dropped
            for retain in (False, True) if i % 2 else (True, False):
                sweep, minflt, peak = run(config, tmp / f"{config.stem}-{i}-{retain}", retain)
                if i:
                    sweeps[retain].append(sweep)
                    faults[retain].append(minflt)
                    peaks[retain].append(peak)
        ratio = statistics.median(a / b for a, b in zip(sweeps[True], sweeps[False], strict=True))
        print(
            f"{name:26} {statistics.median(sweeps[False]):17.3f} "
            f"{statistics.median(sweeps[True]):10.3f} {ratio:6.3f} "
            f"{statistics.median(faults[False]):21,.0f} {statistics.median(faults[True]):10,.0f} "
            f"{statistics.median(peaks[False]):18.0f} {statistics.median(peaks[True]):10.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
