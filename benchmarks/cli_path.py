"""Where the time of ``lrtool find configs/quickstart.yaml`` goes: start-up, sweep, rendering.

    python benchmarks/cli_path.py [--pairs 5] [--config configs/quickstart.yaml]

Three commands alternate (rotating their order), each a fresh process, median of ``--pairs``:
``python -c "import torch"`` (the floor any torch tool pays), ``lrtool find CONFIG --json``
(everything but the rendering), and ``lrtool find CONFIG`` (tables and the plotext plot). The
sweep's own time comes from ``summary.json`` (``elapsed_s``). Then:

* start-up = (find --json) - sweep: imports, config, data, model, writing the results;
* rendering = (find) - (find --json);
* target: start-up + rendering at most 1.5 s beyond ``import torch``.

lrtool's bytecode is compiled first (``benchmarks/bytecode.py``), as ``pip install`` does.
A fourth command, ``import torch`` plus creating one optimizer, shows the floor of any training
script: in torch 2.x the first optimizer imports ``torch._dynamo`` (about 0.8 s here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bytecode import compile_package  # noqa: E402

OPTIMIZER_FLOOR = "import torch; torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)"


def wall(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    return time.perf_counter() - started, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    args = parser.parse_args(argv)
    py = sys.executable
    compile_package()  # as an installed lrtool: bytecode, not source, at start-up
    tmp = Path(tempfile.mkdtemp())
    kinds = ["torch", "optim", "json", "full"]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    sweeps: list[float] = []
    for i in range(args.pairs + 1):  # the first round warms the file cache and is dropped
        for kind in kinds[i % 4 :] + kinds[: i % 4]:
            out = tmp / f"{kind}{i}"
            if kind == "torch":
                elapsed, _ = wall([py, "-c", "import torch"])
            elif kind == "optim":  # any training script: torch 2.x imports dynamo here
                elapsed, _ = wall([py, "-c", OPTIMIZER_FLOOR])
            elif kind == "json":
                elapsed, text = wall(
                    [py, "-m", "lrtool", "find", args.config, "--out", str(out), "--json"]
                )
                if i:
                    sweeps.append(json.loads(text)["elapsed_s"])
            else:
                elapsed, _ = wall([py, "-m", "lrtool", "find", args.config, "--out", str(out)])
            if i:
                times[kind].append(elapsed)
    med = {k: statistics.median(v) for k, v in times.items()}
    sweep = statistics.median(sweeps)
    startup = med["json"] - sweep
    render = med["full"] - med["json"]
    beyond = startup + render - med["torch"]
    print(f"lrtool find {args.config}: median of {args.pairs} runs (seconds)")
    print(f"  python -c 'import torch'    {med['torch']:6.2f}")
    print(f"  whole command               {med['full']:6.2f}")
    print(f"    start-up (incl. torch)    {startup:6.2f}")
    print(f"    sweep + suggestions       {sweep:6.2f}")
    print(f"    rendering                 {render:6.2f}")
    print(
        f"  python -c 'import torch; torch.optim.SGD(...)' {med['optim']:6.2f}"
        "   (the first optimizer imports torch._dynamo: every training script pays it)"
    )
    print(f"  start-up + rendering beyond import torch: {beyond:.2f} s (target <= 1.5 s)")
    print(
        f"  start-up + rendering beyond the optimizer floor: "
        f"{startup + render - med['optim']:.2f} s"
    )
    print(
        f"  ratios: whole / import torch {med['full'] / med['torch']:.2f}, "
        f"sweep / whole {sweep / med['full']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
