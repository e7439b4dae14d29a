"""lrtool under torchrun (2 CPU processes, gloo), and find_lr inside a user's own DDP script."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, invoke, write_config

CONFIG = """
seed: 0
device: cpu
data: {source: synthetic, n_samples: 512, n_features: 8, n_classes: 3, batch_size: 64,
       val_fraction: 0.25}
model: {name: mlp, hidden: [16]}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
find: {start_lr: 1.0e-4, end_lr: 10, steps: 40, refine: false}
train: {steps: 30, eval_every: 10, schedule: {name: onecycle, max_lr: 0.2}}
"""
TOLERANCE = 1e-4  # relative: the same global batch, summed in a different order


def torchrun(
    nproc: int, *args: str, cwd: Path, script: Path | None = None
) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=N -m lrtool ARGS`` (or ``SCRIPT ARGS``), with this checkout
    importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    target = [str(script)] if script is not None else ["-m", "lrtool"]
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", *target, *args],
        capture_output=True, text=True, timeout=240, cwd=cwd, env=env,
    )  # fmt: skip


def read_column(path: Path, column: str) -> list[float]:
    with path.open() as handle:
        return [float(row[column]) for row in csv.DictReader(handle)]


def test_find_under_torchrun_matches_one_process(tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    done = torchrun(2, "find", str(cfg), "--out", str(tmp_path / "ddp"), "--no-plot", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("suggested lr:") == 1  # only rank 0 prints
    assert "distributed: 2 ranks (gloo), global batch 64 = 2 x 32" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "ddp"]  # one result set
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["distributed"] == {
        "world_size": 2, "backend": "gloo", "global_batch": 64, "per_rank_batch": 32,
        "strategy": "ddp",
    }  # fmt: skip

    single = invoke("find", cfg, "--out", tmp_path / "one", "-q")
    assert single.exit_code == 0, single.output
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["steps_run"] == one["steps_run"]  # the same stop step
    ddp_losses = read_column(tmp_path / "ddp" / "range_test.csv", "loss")
    one_losses = read_column(tmp_path / "one" / "range_test.csv", "loss")
    assert ddp_losses == pytest.approx(one_losses, rel=TOLERANCE)
    assert summary["lr"] == pytest.approx(one["lr"], rel=TOLERANCE)


def test_train_under_torchrun_matches_one_process(tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    done = torchrun(2, "train", str(cfg), "--out", str(tmp_path / "ddp"), "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [
        "eval.csv", "summary.json", "train.csv",
    ]  # fmt: skip
    invoke("train", cfg, "--out", tmp_path / "one", "-q")
    ddp = read_column(tmp_path / "ddp" / "train.csv", "train_loss")
    one = read_column(tmp_path / "one" / "train.csv", "train_loss")
    assert len(ddp) == len(one) == 30
    assert ddp == pytest.approx(one, rel=TOLERANCE)
    ddp_val = read_column(tmp_path / "ddp" / "eval.csv", "val_loss")
    assert ddp_val == pytest.approx(
        read_column(tmp_path / "one" / "eval.csv", "val_loss"), rel=1e-4
    )


def test_a_batch_the_world_size_does_not_divide_is_one_clear_error(tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    done = torchrun(3, "find", str(cfg), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: data.batch_size: the global batch 64 is not divisible by the world size 3; "
        "use a multiple of 3"
    ]
    assert not (tmp_path / "r").exists()


RANK_DATA = """
import os

import torch
from torch.utils.data import TensorDataset


def make():
    if os.environ.get("RANK") == "1":
        raise RuntimeError("shard 1 is missing")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 8, generator=g), torch.randint(0, 3, (256,), generator=g)
    return TensorDataset(x[:192], y[:192]), TensorDataset(x[192:], y[192:])
"""


def test_an_error_on_one_rank_only_is_reported_by_that_rank(tmp_path):
    (tmp_path / "rank_data.py").write_text(RANK_DATA)
    cfg = write_config(
        tmp_path,
        CONFIG.replace(
            "data: {source: synthetic, n_samples: 512, n_features: 8, n_classes: 3, "
            "batch_size: 64,\n       val_fraction: 0.25}",
            "data: {source: import, function: 'rank_data:make', batch_size: 64}",
        ),
    )
    done = torchrun(2, "find", str(cfg), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        "error (rank 1): data.function: rank_data:make raised RuntimeError: shard 1 is missing"
    ], done.stderr[-2000:]


def test_an_unavailable_backend_is_a_clear_error(tmp_path, monkeypatch):
    from lrtool.distributed import choose_backend
    from lrtool.errors import LrtoolError

    with pytest.raises(LrtoolError, match="--backend"):
        choose_backend("mpi", torch.device("cpu"))
    with pytest.raises(LrtoolError, match="nccl"):
        choose_backend("nccl", torch.device("cpu"))
    assert choose_backend("auto", torch.device("cpu")) == "gloo"


def test_compare_refuses_torchrun(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, CONFIG)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    result = invoke("compare", cfg, "--out", tmp_path / "c")
    assert result.exit_code == 2 and "torchrun" in result.stderr


def _user_script(rank: int, world: int, store: str, folder: str) -> None:
    """What a user's own DDP script does: shard the data, wrap the model, call find_lr."""
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    import lrtool

    # A file store: no TCP port to pick, so no race with anything else on the machine.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = x[:, :3].argmax(dim=1)  # learnable labels: a curve with a real drop to read
    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = lrtool.TensorBatches(x, y, 64, seed=0, rank=rank, world_size=world)
    result = lrtool.find_lr(
        model, optimizer, loader, nn.CrossEntropyLoss(), start_lr=1e-4, steps=40
    )
    Path(folder, f"rank{rank}.json").write_text(
        json.dumps({"losses": result.losses, "lr": result.lr})
    )
    dist.destroy_process_group()


def test_find_lr_inside_a_users_ddp_script(tmp_path):
    import torch.multiprocessing as mp

    store = tmp_path / "store"
    mp.spawn(_user_script, args=(2, str(store), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank sees the same curve and the same answer
    assert len(ranks[0]["losses"]) >= 10 and ranks[0]["lr"] is not None


FSDP_CONFIG = CONFIG.replace("seed: 0\n", "seed: 0\ndistributed: fsdp\n").replace(
    "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}", "optimizer: {name: adam, lr: 0.01}"
)


def test_find_and_train_with_fsdp2_shards_match_one_process(tmp_path):
    """FSDP2 (fully_shard) on 2 CPU processes (gloo): the sweep, its second sweep from the
    restored shards, the budgeted search and train give the single process's numbers."""
    cfg = write_config(tmp_path, FSDP_CONFIG.replace("refine: false", "refine: true"))
    found = torchrun(
        2, "find", str(cfg), "--out", str(tmp_path / "fsdp"), "--no-plot", "--budget", "0.5",
        "--snapshot", "disk", cwd=tmp_path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr[-3000:]
    assert "2 ranks (gloo, FSDP2 shards)" in found.stdout
    sharded = json.loads((tmp_path / "fsdp" / "summary.json").read_text())
    assert sharded["distributed"]["strategy"] == "fsdp"
    single = invoke("find", cfg, "--out", tmp_path / "one", "-q", "--budget", "0.5")
    assert single.exit_code == 0, single.output
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert sharded["steps_run"] == one["steps_run"]
    # the refined sweep starts from the restored shards: its losses match too
    losses = read_column(tmp_path / "fsdp" / "range_test.csv", "loss")
    assert losses == pytest.approx(
        read_column(tmp_path / "one" / "range_test.csv", "loss"), rel=TOLERANCE
    )
    assert sharded["lr"] == pytest.approx(one["lr"], rel=TOLERANCE)

    trained = torchrun(2, "train", str(cfg), "--out", str(tmp_path / "t"), "-q", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    invoke("train", cfg, "--out", tmp_path / "t1", "-q")
    fsdp_loss = read_column(tmp_path / "t" / "train.csv", "train_loss")
    assert fsdp_loss == pytest.approx(
        read_column(tmp_path / "t1" / "train.csv", "train_loss"), rel=TOLERANCE
    )


def test_snapshot_keeps_and_restores_only_this_ranks_fsdp2_shards(tmp_path):
    script = tmp_path / "shards.py"
    script.write_text(
        "import torch, torch.distributed as dist, json, sys\n"
        "from lrtool.distributed import shard_fully\n"
        "from lrtool.snapshot import StateSnapshot\n"
        "dist.init_process_group('gloo')\n"
        "torch.manual_seed(0)\n"
        "model = shard_fully(torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(),"
        " torch.nn.Linear(32, 4)))\n"
        "opt = torch.optim.Adam(model.parameters(), lr=1e-2)\n"
        "x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))\n"
        "def step():\n"
        "    torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step(); opt.zero_grad()\n"
        "step()\n"
        "before = [p.to_local().clone() for p in model.parameters()]\n"
        "moment = [opt.state[p]['exp_avg'].to_local().clone() for p in model.parameters()]\n"
        "out = {}\n"
        "for mode in ('cpu', 'disk'):\n"
        "    snap = StateSnapshot.take(model, opt, mode, sys.argv[1])\n"
        "    for _ in range(3): step()\n"
        "    snap.restore(model, opt)\n"
        "    same = all(torch.equal(p.to_local(), b) for p, b in zip(model.parameters(), before))\n"
        "    same &= all(torch.equal(opt.state[p]['exp_avg'].to_local(), m)"
        " for p, m in zip(model.parameters(), moment))\n"
        "    kept = snap.tensors['params'] if snap.tensors else None\n"
        "    sizes = None if kept is None else sum(t.numel() for t in kept)\n"
        "    snap.close()\n"
        "    out[mode] = [bool(same), sizes]\n"
        "out['full'] = sum(p.numel() for p in model.parameters())\n"
        "out['local'] = sum(p.to_local().numel() for p in model.parameters())\n"
        # one file per rank: two ranks printing to one stdout can interleave their lines
        "open(f'{sys.argv[2]}/rank{dist.get_rank()}.json', 'w').write(json.dumps(out))\n"
        "dist.destroy_process_group()\n"
    )
    folder = tmp_path / "snaps"
    folder.mkdir()
    done = torchrun(2, str(folder), str(tmp_path), cwd=tmp_path, script=script)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        out = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert out["cpu"][0] and out["disk"][0]  # restored exactly, on each rank
        assert out["cpu"][1] == out["local"] < out["full"]  # this rank's shards, no gather
    assert list(folder.iterdir()) == []  # the disk snapshots' folders are gone


def test_torchrun_with_one_process_still_joins_the_group_and_shards(tmp_path):
    """``torchrun --nproc_per_node=1`` (the one-GPU check of NCCL and FSDP2) joins a process
    group with the chosen backend and wraps the model, and gives the single process's curve."""
    cfg = write_config(tmp_path, FSDP_CONFIG)
    done = torchrun(1, "find", str(cfg), "--out", str(tmp_path / "one-rank"), "--no-plot",
                    "--budget", "0", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed: 1 rank (gloo, FSDP2 shards)" in done.stdout
    summary = json.loads((tmp_path / "one-rank" / "summary.json").read_text())
    assert summary["distributed"]["strategy"] == "fsdp"
    plain = invoke("find", cfg, "--out", tmp_path / "plain", "-q", "--budget", "0")
    assert plain.exit_code == 0, plain.output
    assert read_column(tmp_path / "one-rank" / "range_test.csv", "loss") == pytest.approx(
        read_column(tmp_path / "plain" / "range_test.csv", "loss"), rel=TOLERANCE
    )


def test_a_rank_that_left_its_group_ends_without_finalization(monkeypatch, capsys):
    """After destroy_process_group the rank flushes and calls os._exit: objects the run kept
    (FSDP2's mesh holds its gloo group) are never freed while gloo's threads still run, which
    once aborted a finished rank with SIGABRT in CI."""
    from lrtool import distributed, entry

    class HardExit(BaseException):
        pass

    def hard_exit(code: int) -> None:
        raise HardExit(code)

    monkeypatch.setattr(entry.os, "_exit", hard_exit)
    with pytest.raises(SystemExit):  # no group left: the ordinary exit
        entry._quiet_exit(0)
    monkeypatch.setattr(distributed, "_left", [True])
    print("written before the exit")
    with pytest.raises(HardExit) as ended:
        entry._quiet_exit(3)
    assert ended.value.args == (3,)
    assert "written before the exit" in capsys.readouterr().out
