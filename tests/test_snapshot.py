"""Issue 20: the snapshot the range test and the search restore, kept on the CPU, in a
temporary folder, or not at all (``snapshot: cpu|disk|none``)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import lrtool
from lrtool.errors import LrtoolError
from tests.conftest import invoke, write_config


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()  # Adam state exists before the test: it must come back exactly
    opt.zero_grad()
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    return model, opt, batches


def _state(model, opt):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {id_: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
         for id_, s in opt.state_dict()["state"].items()},
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
    )  # fmt: skip


def _same(a, b) -> bool:
    weights_a, state_a, groups_a = a
    weights_b, state_b, groups_b = b
    return (
        all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
        and all(
            torch.equal(v, state_b[i][k]) if torch.is_tensor(v) else v == state_b[i][k]
            for i, s in state_a.items()
            for k, v in s.items()
        )
        and groups_a == groups_b
    )


@pytest.mark.parametrize("mode", ["cpu", "disk"])
def test_every_mode_restores_weights_buffers_optimizer_and_rng(mode, tmp_path):
    model, opt, batches = _setup()
    before = _state(model, opt)
    rng = torch.get_rng_state()
    result = lrtool.find_lr(
        model, opt, batches * 10, nn.functional.cross_entropy, steps=30, refine=True,
        snapshot=mode, snapshot_dir=tmp_path,
    )  # fmt: skip
    assert result.coarse is not None  # a second sweep started from the snapshot
    assert _same(before, _state(model, opt))
    assert torch.equal(rng, torch.get_rng_state())
    assert list(tmp_path.iterdir()) == []  # a disk snapshot's folder is removed


def test_cpu_and_disk_give_the_same_curve_and_search():
    curves = []
    for mode in ("cpu", "disk"):
        model, opt, batches = _setup()
        found = lrtool.find_lr(
            model, opt, batches * 40, nn.functional.cross_entropy, steps=30, refine=True,
            budget=1.0, target_steps=20, snapshot=mode,
        )  # fmt: skip
        curves.append((found.losses, found.lr, found.verification.steps_spent))
    assert curves[0] == curves[1]


def test_disk_snapshot_folder_goes_when_the_sweep_fails(tmp_path):
    model, opt, batches = _setup()
    calls = {"n": 0}

    def failing_loss(logits, target):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(logits, target)

    before = _state(model, opt)
    from lrtool.finder import RangeTestFailed

    with pytest.raises(RangeTestFailed):
        lrtool.find_lr(model, opt, batches * 10, failing_loss, steps=20, snapshot="disk",
                       snapshot_dir=tmp_path)  # fmt: skip
    assert _same(before, _state(model, opt))
    assert list(tmp_path.iterdir()) == []


def test_none_keeps_nothing_and_leaves_the_model_as_the_sweep_left_it():
    model, opt, batches = _setup()
    before = _state(model, opt)
    result = lrtool.find_lr(
        model, opt, batches * 10, nn.functional.cross_entropy, steps=20, refine=True,
        snapshot="none",
    )  # fmt: skip
    assert result.coarse is None  # no snapshot, no second sweep
    assert not _same(before, _state(model, opt))
    for extra in ({"budget": 1.0, "target_steps": 20}, {"repeats": 2}):
        with pytest.raises(LrtoolError, match="snapshot='cpu' or 'disk'"):
            lrtool.find_lr(model, opt, batches, nn.functional.cross_entropy, snapshot="none",
                           **extra)  # fmt: skip
    with pytest.raises(LrtoolError, match="snapshot: must be cpu, disk or none"):
        lrtool.find_lr(model, opt, batches, nn.functional.cross_entropy, snapshot="gpu")
    with pytest.raises(LrtoolError, match="snapshot='cpu' or 'disk'"):
        lrtool.verify_lr(model, opt, batches, nn.functional.cross_entropy, lr=0.01,
                         snapshot="none")  # fmt: skip
    with pytest.raises(LrtoolError, match="snapshot_dir"):
        lrtool.find_lr(model, opt, batches, nn.functional.cross_entropy, snapshot="disk",
                       snapshot_dir="/no/such/folder")  # fmt: skip


CONFIG = """
data: {source: synthetic, n_samples: 300, batch_size: 30}
find: {steps: 30, snapshot_dir: SNAPS}
train: {steps: 20, eval_every: 10}
"""


def test_find_snapshot_in_the_config_and_the_flag(tmp_path):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    cfg = write_config(tmp_path, CONFIG.replace("SNAPS", str(snaps)))
    results = {}
    for mode in ("cpu", "disk"):
        out = tmp_path / mode
        done = invoke("find", cfg, "--snapshot", mode, "--out", out, "-q")
        assert done.exit_code == 0, done.output
        summary = json.loads((out / "summary.json").read_text())
        assert summary["config_echo"]["find"]["snapshot"] == mode
        results[mode] = (summary["lr"], (out / "range_test.csv").read_text())
    assert results["cpu"] == results["disk"]
    assert list(snaps.iterdir()) == []
    refused = invoke("find", cfg, "--snapshot", "none")
    assert refused.exit_code == 2 and "find.budget: 0" in refused.output
    alone = invoke("find", cfg, "--snapshot", "none", "--budget", "0", "--out", tmp_path / "n")
    assert alone.exit_code == 0, alone.output


@pytest.mark.parametrize("run", ["find_lr", "verify_lr"])
def test_param_groups_come_back_key_for_key_so_a_later_scheduler_uses_the_suggestion(run):
    """The search attaches LR schedulers, which add 'initial_lr' to every param group. Left
    there, a warm-up scheduler attached afterwards (LambdaLR, every HF get_*_schedule) starts
    from the LR of the range test's last candidate, not from the suggestion, and a second
    range test refuses the optimizer."""
    model, opt, batches = _setup()
    before = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    loss = nn.functional.cross_entropy
    if run == "find_lr":
        found = lrtool.find_lr(model, opt, batches, loss, steps=30, budget=0.5, target_steps=40)
        assert found.verification is not None
    else:
        lrtool.verify_lr(model, opt, batches, loss, lr=1e-2, steps=5)
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == before
    lrtool.find_lr(model, opt, batches, loss, steps=10)  # a second test takes the optimizer
    for group in opt.param_groups:
        group["lr"] = 0.0123  # the user applies a suggestion, then attaches a warm-up
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    assert warmup.get_last_lr() == [0.0123]
