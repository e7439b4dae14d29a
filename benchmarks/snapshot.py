"""Snapshot and restore of the range test's start state: time and host memory of each mode.

    python benchmarks/snapshot.py                        # 302M parameters with Adam (3.6 GB)
    python benchmarks/snapshot.py --layers 2 --width 1024   # a quick run

Each mode (``cpu``, ``disk``, ``none``; see ``lrtool/snapshot.py``) runs in its own fresh
process: build a model of ``--layers`` square linear layers (``--width``), take one Adam step
(its state is two more copies of the weights), then time ``StateSnapshot.take``, three more
training steps, and ``restore`` (checked exact), while a thread samples the process's
anonymous resident memory (``RssAnon``: what must fit in RAM; a disk snapshot's pages are
file-backed and the kernel can drop them). The extra memory is shown in copies of the state
(weights + optimizer state) and in GB; the times in seconds and per GB of state.
Target: ``cpu`` adds one copy, ``disk`` and ``none`` add (almost) none.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

MODES = ("cpu", "disk", "none")

CHILD = r"""
import json, sys, threading, time
import torch
from torch import nn
sys.path.insert(0, sys.argv[5])
from lrtool.snapshot import StateSnapshot

mode, layers, width, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
model = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
x = torch.randn(8, width)

def step():
    model(x).square().mean().backward()
    opt.step()
    opt.zero_grad(set_to_none=False)  # gradients stay allocated: the baseline holds them

step()
state_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
state_bytes += sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                   if torch.is_tensor(t))

def anon():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0

# Sampled only while the snapshot is taken and restored, not during the training steps
# between them (their gradients and temporaries are the training's memory, not the snapshot's).
peak, running, active = [anon()], [True], [False]
def sample():
    while running[0]:
        if active[0]:
            peak[0] = max(peak[0], anon())
        time.sleep(0.002)

first = next(model.parameters()).detach().clone()
time.sleep(0.05)
base = anon()
peak[0] = base
thread = threading.Thread(target=sample, daemon=True)
thread.start()
active[0] = True
t0 = time.perf_counter()
snap = StateSnapshot.take(model, opt, mode, folder)
take_s = time.perf_counter() - t0
peak[0] = max(peak[0], anon())
active[0] = False
take_extra = peak[0] - base  # what the snapshot holds (and its peak while it is taken)
for _ in range(3):
    step()
before_restore = peak[0] = anon()
active[0] = True
t0 = time.perf_counter()
if snap is not None:
    snap.restore(model, opt)
restore_s = time.perf_counter() - t0
peak[0] = max(peak[0], anon())
active[0] = False
restore_extra = peak[0] - before_restore  # what restoring adds on top
exact = snap is None or torch.equal(next(model.parameters()).detach(), first)
if snap is not None:
    snap.close()
running[0] = False
thread.join()
print(json.dumps({"mode": mode, "state_bytes": state_bytes,
                  "extra_bytes": take_extra + max(0, restore_extra),
                  "take_s": take_s, "restore_s": restore_s, "exact": bool(exact),
                  "params": sum(p.numel() for p in model.parameters())}))
"""


def run_mode(mode: str, layers: int, width: int, folder: str) -> dict:
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(layers), str(width), folder, root],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{mode}: the child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=18, help="square linear layers")
    parser.add_argument("--width", type=int, default=4096, help="width of each layer")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--dir", default=None, help="where disk snapshots go (default: /tmp)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for mode in args.modes.split(","):
            rows.append(run_mode(mode.strip(), args.layers, args.width, folder))
    state_gb = rows[0]["state_bytes"] / 1e9
    print(
        f"{rows[0]['params'] / 1e6:.0f}M parameters, Adam: weights + optimizer state = "
        f"{state_gb:.2f} GB"
    )
    print(f"{'mode':<6}{'extra host memory':>22}{'take s':>9}{'restore s':>11}"
          f"{'s per GB':>10}  exact")  # fmt: skip
    for row in rows:
        copies = row["extra_bytes"] / row["state_bytes"]
        per_gb = (row["take_s"] + row["restore_s"]) / state_gb
        print(
            f"{row['mode']:<6}{copies:>9.2f} copies {row['extra_bytes'] / 1e9:>5.2f} GB"
            f"{row['take_s']:>9.2f}{row['restore_s']:>11.2f}{per_gb:>10.2f}  {row['exact']}"
        )
    by = {row["mode"]: row for row in rows}
    if "cpu" in by and "disk" in by:
        cpu, disk = by["cpu"], by["disk"]
        print(
            f"disk / cpu: memory {disk['extra_bytes'] / max(cpu['extra_bytes'], 1):.3f}, "
            f"take {disk['take_s'] / cpu['take_s']:.2f}x, "
            f"restore {disk['restore_s'] / cpu['restore_s']:.2f}x"
        )
    return 0 if all(row["exact"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
