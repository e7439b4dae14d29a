"""The one training loop (lrtool/loop.py): what an optimizer step is, for every engine."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lrtool.errors import LrtoolError
from lrtool.finder import find_lr
from lrtool.loop import LoopOptions, TrainingLoop, cycle
from lrtool.schedules import build_schedule
from lrtool.trainer import train
from lrtool.verify import verify_lr


def _model_and_data(seed: int = 0) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(64, 6, dtype=torch.float64)
    y = x[:, :3].argmax(dim=1)
    return model, [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]


def _setter(opt: torch.optim.Optimizer, lr_of_step) -> object:
    """An ``lr_at`` that sets ``lr_of_step(t)`` on every param group."""

    def lr_at(t: int) -> float:
        lr = lr_of_step(t)
        for group in opt.param_groups:
            group["lr"] = lr
        return lr

    return lr_at


def _step_once(options: LoopOptions, batches: list) -> list[torch.Tensor]:
    model, _ = _model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loop = TrainingLoop(model, opt, nn.CrossEntropyLoss(), options=options)
    loop.run(cycle(batches), 1, lambda t: 0.5)
    return [p.detach().clone() for p in model.parameters()]


def test_accumulation_of_halves_equals_one_step_on_the_whole_batch():
    _, data = _model_and_data()
    whole = [(torch.cat([data[0][0], data[1][0]]), torch.cat([data[0][1], data[1][1]]))]
    one = _step_once(LoopOptions(), whole)
    two = _step_once(LoopOptions(accumulation_steps=2), data[:2])
    first_half_only = _step_once(LoopOptions(), data[:1])
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(one, two, strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(one, first_half_only, strict=True))


def test_grad_clip_caps_the_update():
    model, data = _model_and_data()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loop = TrainingLoop(model, opt, nn.CrossEntropyLoss(), options=LoopOptions(grad_clip=1e-3))
    loop.run(cycle(data), 1, lambda t: 1.0)
    with torch.no_grad():
        moved = sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), before, strict=True))
    assert float(moved) ** 0.5 == pytest.approx(1e-3, rel=1e-3)  # lr * clip: the norm was capped


def test_bf16_autocast_runs_on_the_cpu_and_changes_the_numbers():
    model, data = _model_and_data()
    model = model.float()
    data = [(x.float(), y) for x, y in data]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    loop = TrainingLoop(model, opt, nn.CrossEntropyLoss(), options=LoopOptions(amp="bf16"))
    loop.run(cycle(data), 3, lambda t: 0.1, lambda t, lr, loss, value: seen.append(loss))
    assert len(seen) == 3 and all(math.isfinite(v) for v in seen)
    with pytest.raises(LrtoolError, match="fp16"):
        TrainingLoop(model, opt, nn.CrossEntropyLoss(), options=LoopOptions(amp="fp16"))


@pytest.mark.parametrize(
    "options",
    [{"accumulation_steps": 0}, {"amp": "fp8"}, {"grad_clip": -1.0}, {"grad_clip": math.inf}],
)
def test_bad_options_are_one_clear_error(options):
    with pytest.raises(LrtoolError):
        LoopOptions(**options)


def test_a_non_finite_loss_stops_the_run_and_the_observer_sees_it():
    model, data = _model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    calls = []

    def step_fn(m: nn.Module, batch: tuple) -> torch.Tensor:  # NaN from the fourth step on
        calls.append(1)
        loss = nn.functional.cross_entropy(m(batch[0]), batch[1])
        return loss * math.nan if len(calls) > 3 else loss

    loop = TrainingLoop(model, opt, step_fn=step_fn)
    seen = []

    def observe(t: int, lr: float, loss: float, value: float) -> None:
        seen.append((t, value))

    reason = loop.run(cycle(data), 50, _setter(opt, lambda t: 0.1), observe)
    assert reason == "non-finite loss (nan) at step 3, lr 0.1"
    assert reason.startswith("non-finite loss") and "step" in reason
    assert not math.isfinite(seen[-1][1]) and all(math.isfinite(v) for _, v in seen[:-1])


def test_the_observer_can_stop_the_run():
    model, data = _model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loop = TrainingLoop(model, opt, nn.CrossEntropyLoss())
    reason = loop.run(cycle(data), 50, lambda t: 0.1, lambda t, *_: "enough" if t == 4 else None)
    assert reason == "enough"


def test_evaluate_fixed_batches_and_whole_split():
    model, data = _model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loop = TrainingLoop(model, opt, nn.CrossEntropyLoss())
    uneven = [data[0], (data[1][0][:4], data[1][1][:4])]  # 16 and 4 samples
    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        per_batch = [float(loss_fn(model(x), y)) for x, y in uneven]
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in uneven)
    fixed = loop.evaluate(uneven, max_batches=2)
    whole = loop.evaluate(uneven, accuracy=True)
    assert fixed.loss == pytest.approx(sum(per_batch) / 2)  # the mean of batch means
    assert whole.loss == pytest.approx((16 * per_batch[0] + 4 * per_batch[1]) / 20)  # per sample
    assert whole.accuracy == pytest.approx(correct / 20)
    assert loop.evaluate(uneven, max_batches=1).loss == pytest.approx(per_batch[0])
    assert model.training  # evaluation leaves the mode as it found it


def test_every_engine_takes_the_loop_options():
    """find_lr (sweep and search), verify_lr and train apply accumulation, clipping and AMP:
    a clip of 1e-9 freezes the model in each of them."""
    clip = LoopOptions(grad_clip=1e-9)
    model, data = _model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    swept = find_lr(model, opt, data, loss_fn, start_lr=1e-3, end_lr=1e4, steps=40, refine=False)
    frozen = find_lr(
        model, opt, data, loss_fn, start_lr=1e-3, end_lr=1e4, steps=40, refine=False, grad_clip=1e-9
    )
    assert swept.steps_run < 40  # diverged
    assert frozen.steps_run == 40  # the clipped sweep cannot move the weights far
    spread = max(frozen.losses[4:]) - min(frozen.losses[4:])
    assert spread < 0.2 * (max(swept.losses) - min(swept.losses))

    checked = verify_lr(model, opt, data, loss_fn, lr=1.0, steps=10, options=clip)
    assert all(math.isfinite(c.score) for c in checked.candidates)
    free = verify_lr(model, opt, data, loss_fn, lr=1.0, steps=10)
    assert [c.score for c in checked.candidates] != [c.score for c in free.candidates]

    schedule = build_schedule("constant", {"lr": 1.0, "total_steps": 20})
    held = train(model, opt, data, loss_fn, schedule, 20, val_loader=data[:1], options=clip)
    moved = train(model, opt, data, loss_fn, schedule, 20, val_loader=data[:1])
    assert abs(held.train_losses[-4] - held.train_losses[0]) < 1e-3
    assert abs(moved.train_losses[-4] - moved.train_losses[0]) > 1e-2
