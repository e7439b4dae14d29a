"""How the suggested LR grows with the global batch, on several tasks, against the linear and
square-root rules of thumb.

    python benchmarks/lr_scaling.py                                  # 3 configs x 4 batches
    python benchmarks/lr_scaling.py --configs configs/quickstart.yaml --batches 32,128

For each config, ``lrtool find`` runs with only ``data.batch_size`` changed (one process: under
torchrun the same global batch gives the same curve, ``tests/test_distributed.py``), with
lrtool's defaults otherwise (the budgeted search included). Each row prints the suggested
constant LR per batch, then the growth with the batch as the exponent ``a`` of ``lr ~ batch^a``
(the least-squares slope in log-log): 0.5 is square-root scaling, 1 is linear scaling.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    "configs/quickstart.yaml",
    "configs/cnn_digits.yaml",
    "configs/regression_synthetic.yaml",
]


def suggested_lr(config: str, batch: int, folder: Path) -> float | None:
    out = folder / f"{Path(config).stem}-{batch}"
    done = subprocess.run(
        [sys.executable, "-m", "lrtool", "find", str(ROOT / config), "--set",
         f"data.batch_size={batch}", "--out", str(out), "--json"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"{config} batch {batch}: {done.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        return None
    return json.loads(done.stdout)["lr"]


def slope(points: list[tuple[int, float]]) -> float | None:
    """The least-squares slope of log(lr) against log(batch): ``a`` in ``lr ~ batch^a``."""
    if len({b for b, _ in points}) < 2:
        return None
    xs = [math.log(b) for b, _ in points]
    ys = [math.log(lr) for _, lr in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--batches", default="16,64,256,512")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{'config':<28}" + "".join(f"{'b=' + str(b):>10}" for b in batches) + "   exponent a")
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            lrs = [suggested_lr(config, b, Path(tmp)) for b in batches]
            cells = "".join(f"{lr:>10.3g}" if lr else f"{'-':>10}" for lr in lrs)
            known = [(b, lr) for b, lr in zip(batches, lrs, strict=True) if lr]
            a = slope(known)
            exponent = "-" if a is None else f"{a:.2f}"
            print(f"{Path(config).stem:<28}{cells}   {exponent}")
    print("a = 0.5: square-root scaling; a = 1: linear scaling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
