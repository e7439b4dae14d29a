"""The range-test engine: ladder, smoothing, stops, state restore, batches and determinism."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lrtool.errors import LrtoolError
from lrtool.finder import RangeTestFailed, RangeTestInterrupted, find_lr, lr_ladder
from lrtool.loop import grad_resetter
from lrtool.suggest import debiased_ema


def make_problem(seed: int = 0, n: int = 256):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    loader = [(x[i : i + 32], y[i : i + 32]) for i in range(0, n, 32)]
    return model, loader


def test_ladder_exact_ends_and_formula():
    lrs = lr_ladder(1e-7, 10, 100)
    assert lrs[0] == 1e-7 and lrs[-1] == 10
    for i in (1, 37, 98):
        assert lrs[i] == pytest.approx(1e-7 * (10 / 1e-7) ** (i / 99), rel=1e-12)
    lin = lr_ladder(0.1, 1.0, 10, "linear")
    assert lin[0] == 0.1 and lin[-1] == 1.0 and lin[3] == pytest.approx(0.1 + 0.9 * 3 / 9)


def test_smoothing_is_debiased_ema():
    values = [3.0, 1.0, 4.0, 1.0, 5.0]
    beta = 0.7
    expected = []
    for i in range(len(values)):
        num = sum((1 - beta) * beta ** (i - j) * values[j] for j in range(i + 1))
        expected.append(num / (1 - beta ** (i + 1)))
    assert debiased_ema(values, beta) == pytest.approx(expected)


def test_result_records_smoothed_losses_and_ladder():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(
        model,
        opt,
        loader,
        nn.CrossEntropyLoss(),
        start_lr=1e-4,
        end_lr=1e-1,
        steps=20,
        smoothing=0.8,
    )
    assert r.steps_run == 20 and r.stop_reason == "completed"
    assert r.lrs == lr_ladder(1e-4, 1e-1, 20)
    assert r.smoothed == pytest.approx(debiased_ema(r.losses, 0.8))
    frame = r.to_frame()
    columns = ["step", "lr", "loss", "smoothed_loss", "lagfree_loss"]
    assert list(frame.columns) == columns and len(frame) == 20


def test_stops_on_divergence():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(
        model,
        opt,
        loader,
        nn.CrossEntropyLoss(),
        start_lr=1e-3,
        end_lr=1e4,
        steps=200,
        smoothing=0.5,
    )
    assert r.steps_run < 200
    assert r.stop_reason.startswith(("diverged", "non-finite"))


class NaNAfter(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 2)
        self.calls = 0
        self.k = k

    def forward(self, x):
        self.calls += 1
        out = self.lin(x)
        return out * float("nan") if self.calls > self.k else out


@pytest.mark.parametrize("k", [0, 7])
def test_stops_on_nan_loss(k):
    _, loader = make_problem()
    model = NaNAfter(k)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=50)
    assert r.steps_run == k + 1
    assert "non-finite" in r.stop_reason
    assert math.isnan(r.losses[-1]) and all(math.isfinite(v) for v in r.losses[:-1])


def snapshot(model, opt):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [dict(g) for g in opt.param_groups],
    )


def assert_restored(model, before):
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[0][key]), key


def test_restores_weights_optimizer_mode_and_rng():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.eval()
    before = snapshot(model, opt)
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=15)
    assert_restored(model, before)
    assert opt.state_dict()["state"] == {}
    assert opt.param_groups[0]["lr"] == 0.1
    assert not model.training
    assert torch.equal(torch.rand(3), expected_draw)


def test_restores_on_exception_and_interrupt():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = snapshot(model, opt)
    calls = {"n": 0}

    def failing(model, batch):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    with pytest.raises(RangeTestFailed) as failed:  # the curve up to the error is kept
        find_lr(model, opt, loader, step_fn=failing, steps=20)
    assert failed.value.result.steps_run == 5 and "RuntimeError: boom" in failed.value.message
    assert_restored(model, before)
    calls["n"] = -100

    def failing_at_once(model, batch):
        raise RuntimeError("at once")

    with pytest.raises(RuntimeError, match="at once"):  # nothing trained: the error itself
        find_lr(model, opt, loader, step_fn=failing_at_once, steps=20)
    assert_restored(model, before)
    calls["n"] = 0

    def interrupting(model, batch):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    with pytest.raises(RangeTestInterrupted) as stop:
        find_lr(model, opt, loader, step_fn=interrupting, steps=20)
    assert stop.value.result.steps_run == 5 and stop.value.result.interrupted
    assert_restored(model, before)


def test_same_seed_same_curve():
    curves = []
    for _ in range(2):
        model, loader = make_problem(seed=3)
        torch.manual_seed(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        curves.append(find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=25).losses)
    assert curves[0] == curves[1]


def test_cycles_a_short_loader():
    model, loader = make_problem(n=64)  # two batches
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-5, end_lr=1e-3, steps=11)
    assert r.steps_run == 11


class DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 2)

    def forward(self, features, labels=None):
        logits = self.lin(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def test_dict_batches_and_model_computed_loss():
    _, loader = make_problem()
    batches = [{"features": x, "labels": y} for x, y in loader]
    model = DictModel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    r = find_lr(model, opt, batches, start_lr=1e-5, end_lr=1e-1, steps=12)
    assert r.steps_run == 12 and all(math.isfinite(v) for v in r.losses)


def test_unpackable_batch_is_a_clear_error():
    model, _ = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LrtoolError, match="step_fn"):
        find_lr(model, opt, [[torch.randn(4, 6)]] * 3, nn.CrossEntropyLoss(), steps=5)


def test_missing_loss_is_a_clear_error():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LrtoolError, match="no loss"):
        find_lr(model, opt, loader, steps=5)


def test_accumulation_gives_big_batch_gradients():
    torch.manual_seed(0)
    x, y = torch.randn(32, 6), torch.randint(0, 2, (32,))
    grads = []
    for micro in (1, 4):
        torch.manual_seed(1)
        model = nn.Linear(6, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        size = 32 // micro
        loader = [(x[i : i + size], y[i : i + size]) for i in range(0, 32, size)]
        seen = {}

        def capture(model, batch, seen=seen):
            return nn.functional.cross_entropy(model(batch[0]), batch[1])

        orig_step = opt.step

        def step_and_keep(*a, model=model, seen=seen, orig_step=orig_step, **k):
            seen.setdefault("g", model.weight.grad.clone())
            return orig_step(*a, **k)

        opt.step = step_and_keep
        r = find_lr(
            model,
            opt,
            loader,
            step_fn=capture,
            start_lr=1e-6,
            end_lr=1e-5,
            steps=5,
            accumulation_steps=micro,
            restore=False,
        )
        grads.append((seen["g"], r.losses[0]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    assert grads[0][1] == pytest.approx(grads[1][1], rel=1e-5)


def test_param_groups_keep_their_ratio():
    model, loader = make_problem()
    opt = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 1.0}, {"params": model[3].parameters(), "lr": 0.1}]
    )
    r = find_lr(model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-4, end_lr=1e-2, steps=6)
    assert r.group_lrs[1] == pytest.approx([v * 0.1 for v in r.group_lrs[0]])


def test_bf16_autocast_on_cpu_and_fp16_refused():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=6, amp="bf16")
    assert r.steps_run == 6 and all(math.isfinite(v) for v in r.losses)
    with pytest.raises(LrtoolError, match="fp16"):
        find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=6, amp="fp16")


def test_attached_scheduler_and_bad_accumulation_are_errors():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LrtoolError, match="accumulation_steps"):
        find_lr(model, opt, loader, nn.CrossEntropyLoss(), accumulation_steps=0)
    torch.optim.lr_scheduler.StepLR(opt, 10)
    with pytest.raises(LrtoolError, match="scheduler"):
        find_lr(model, opt, loader, nn.CrossEntropyLoss())


def test_validation_loss_monitoring():
    """With a validation split the curve is the mean loss on its first val_batches batches
    after each step (replayed here by hand), and the training losses are kept beside it."""
    model, loader = make_problem()
    model[2].p = 0.0  # no dropout: the replay below must see the same forward passes
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    replay = copy.deepcopy(model)
    loss_fn = nn.CrossEntropyLoss()
    r = find_lr(
        model, opt, loader, loss_fn, steps=8, val_loader=loader[:3], val_batches=2, refine=False
    )
    assert r.monitor == "val (2 batches)" and len(r.losses) == len(r.train_losses) == 8
    replay_opt = torch.optim.SGD(replay.parameters(), lr=0.1)
    val_losses, train_losses = [], []
    for lr, (x, y) in zip(r.lrs, loader, strict=True):
        replay_opt.param_groups[0]["lr"] = lr
        replay.train()
        loss = loss_fn(replay(x), y)
        train_losses.append(loss.item())
        replay_opt.zero_grad()
        loss.backward()
        replay_opt.step()
        replay.eval()
        with torch.no_grad():
            val_losses.append(sum(loss_fn(replay(vx), vy).item() for vx, vy in loader[:2]) / 2)
    assert r.losses == pytest.approx(val_losses, rel=1e-5)
    assert r.train_losses == pytest.approx(train_losses, rel=1e-5)


def test_grad_resetter_clears_every_grad_like_zero_grad():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    frozen_head = nn.Linear(2, 2)  # a second group, as with per-layer LRs
    opt = torch.optim.SGD(
        [{"params": model.parameters()}, {"params": frozen_head.parameters(), "lr": 0.01}],
        lr=0.1,
    )
    reset = grad_resetter(opt)
    frozen_head(model(torch.randn(5, 4))).sum().backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    assert all(p.grad is not None for p in params)
    reset()
    assert all(p.grad is None for p in params)


def test_grad_resetter_keeps_an_overridden_zero_grad_and_profiler_labels():
    calls = []

    class Counting(torch.optim.SGD):
        def zero_grad(self, set_to_none: bool = True) -> None:
            calls.append(set_to_none)
            super().zero_grad(set_to_none)

    model = nn.Linear(3, 1)
    grad_resetter(Counting(model.parameters(), lr=0.1))()
    assert calls == [True]

    # Under the profiler the real zero_grad runs, so the trace keeps its label.
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reset = grad_resetter(opt)
    model(torch.randn(2, 3)).sum().backward()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        reset()
    assert model.weight.grad is None
    assert any("zero_grad" in e.name for e in prof.events())


def test_snapshot_is_one_cpu_copy_of_weights_and_optimizer_state():
    from lrtool.snapshot import StateSnapshot

    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 6)).sum().backward()
    opt.step()  # Adam now holds exp_avg and exp_avg_sq for every parameter

    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for value in obj.values():
                yield from tensors(value)
        elif isinstance(obj, list | tuple):
            for value in obj:
                yield from tensors(value)

    snap = StateSnapshot.take(model, opt)
    kept = list(tensors(snap.tensors))
    live = list(tensors(model.state_dict())) + list(tensors(opt.state_dict()))
    assert sum(t.nbytes for t in kept) == sum(t.nbytes for t in live)  # exactly one copy
    assert all(t.device.type == "cpu" for t in kept)
    live_storage = {t.untyped_storage().data_ptr() for t in live}
    assert not any(t.untyped_storage().data_ptr() in live_storage for t in kept)  # copies


def test_an_unreadable_validation_curve_is_read_from_the_same_sweeps_training_loss():
    """monitor="val" records the training loss too; where the validation curve gives no
    number (here it is flat: a bias-free network outputs 0 on all-zero validation inputs,
    whatever it learns), the rules read the training loss of that same sweep, and say so."""
    from lrtool.data import TensorBatches

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    noise = (torch.zeros(64, 8), torch.randint(0, 2, (64,), generator=g))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32, bias=False), nn.ReLU(), nn.Linear(32, 2, bias=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = TensorBatches(x, y, 32, seed=0)
    r = find_lr(model, opt, batches, nn.CrossEntropyLoss(), val_loader=[noise], steps=60,
                refine=False, budget=0)  # fmt: skip
    assert r.monitor == "val (4 batches)"
    assert r.read_curve == "train" and r.lr is not None
    assert "the val (4 batches) curve gave no number" in r.recommendation.reason
    assert len(r.train_losses) == len(r.losses)
