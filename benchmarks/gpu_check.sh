#!/usr/bin/env bash
# The GPU check of issue 20, as one script for a lent GPU machine (CI has no GPU):
#   bash benchmarks/gpu_check.sh OUT_DIR
# 1. torchrun --nproc_per_node=1 with --backend nccl: find and train on cnn_digits.
# 2. FSDP2 on one GPU (distributed: fsdp): find (second sweep + search) and train.
# 3. Peak GPU memory of the range test over a bare loop on a model filling most of the GPU
#    (benchmarks/gpu_memory.py, target <= 1.02).
# Each step's output goes to OUT_DIR; the script stops at the first failure. The machine needs
# lrtool installed (pip install -e . --no-deps, plus wheels of pydantic, plotext, typer, rich).
set -euo pipefail
out=${1:-gpu-check}
mkdir -p "$out"
run() { echo "+ $*"; "$@"; }
nccl() { run torchrun --standalone --nproc_per_node=1 -m lrtool "$@" --backend nccl --device cuda; }

nccl find configs/cnn_digits.yaml --out "$out/find-nccl" --no-plot --force | tee "$out/find-nccl.txt"
nccl train configs/cnn_digits.yaml --lr-from-find --out "$out/train-nccl" --no-plot --force \
    | tee "$out/train-nccl.txt"
python - "$out" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open("configs/cnn_digits.yaml"))
cfg["distributed"] = "fsdp"
yaml.safe_dump(cfg, open(f"{sys.argv[1]}/fsdp.yaml", "w"))
PY
nccl find "$out/fsdp.yaml" --refine --budget 0.5 --out "$out/find-fsdp" --no-plot --force \
    | tee "$out/find-fsdp.txt"
nccl train "$out/fsdp.yaml" --out "$out/train-fsdp" --no-plot --force | tee "$out/train-fsdp.txt"
grep -q '"strategy": "fsdp"' "$out/find-fsdp/summary.json"
run python benchmarks/gpu_memory.py | tee "$out/gpu-memory.txt"
echo "gpu check passed: $out"
