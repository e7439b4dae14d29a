"""The public API passes loop options one way everywhere, exports what users catch, and keeps
the old names working."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lrtool
from lrtool.errors import LrtoolError


def _task(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]


def test_the_partial_result_exceptions_and_loop_options_are_exported():
    for name in ("LoopOptions", "RangeTestFailed", "RangeTestInterrupted", "TrainInterrupted",
                 "TrainFailed"):  # fmt: skip
        assert name in lrtool.__all__
        assert getattr(lrtool, name).__name__ == name
    assert "retain_freed_memory" not in lrtool.__all__
    assert callable(lrtool.retain_freed_memory)  # still reachable: nothing users call breaks


def test_loop_options_and_their_shortcuts_train_the_same_in_find_lr():
    """``options=LoopOptions(grad_clip=...)`` and ``grad_clip=...`` are one thing."""
    model, opt, batches = _task()
    loss = nn.CrossEntropyLoss()
    one = lrtool.find_lr(model, opt, batches, loss, steps=20, budget=0,
                         options=lrtool.LoopOptions(grad_clip=0.05))  # fmt: skip
    two = lrtool.find_lr(model, opt, batches, loss, steps=20, budget=0, grad_clip=0.05)
    plain = lrtool.find_lr(model, opt, batches, loss, steps=20, budget=0)
    assert one.losses == two.losses
    assert one.losses != plain.losses  # the clipping took effect


@pytest.mark.parametrize("call", ["find_lr", "verify_lr", "train"])
def test_options_and_a_shortcut_together_are_refused(call):
    model, opt, batches = _task()
    loss = nn.CrossEntropyLoss()
    both = {"options": lrtool.LoopOptions(grad_clip=1.0), "grad_clip": 2.0}
    with pytest.raises(LrtoolError, match="not both"):
        if call == "find_lr":
            lrtool.find_lr(model, opt, batches, loss, steps=5, **both)
        elif call == "verify_lr":
            lrtool.verify_lr(model, opt, batches, loss, lr=0.1, steps=5, **both)
        else:
            schedule = lrtool.build_schedule("constant", {"lr": 0.1})
            lrtool.train(model, opt, batches, loss, schedule, 5, **both)


def test_verify_lr_and_train_take_loop_options():
    model, opt, batches = _task()
    loss = nn.CrossEntropyLoss()
    checked = lrtool.verify_lr(
        model, opt, batches, loss, lr=0.1, steps=5, offsets=(0.0,),
        options=lrtool.LoopOptions(accumulation_steps=2),
    )  # fmt: skip
    assert checked.lr == pytest.approx(0.1)
    schedule = lrtool.build_schedule("constant", {"lr": 0.1})
    accumulated = lrtool.train(model, opt, batches, loss, schedule, 4, accumulation_steps=2)
    model2, opt2, _ = _task()
    same = lrtool.train(model2, opt2, batches, loss, schedule, 4,
                        options=lrtool.LoopOptions(accumulation_steps=2))  # fmt: skip
    assert accumulated.train_losses == same.train_losses


def test_train_val_loader_is_the_new_name_and_val_batches_still_works_with_a_warning():
    model, opt, batches = _task()
    loss = nn.CrossEntropyLoss()
    schedule = lrtool.build_schedule("constant", {"lr": 0.1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = lrtool.train(model, opt, batches, loss, schedule, 3, val_loader=batches[:1])
    model2, opt2, _ = _task()
    with pytest.warns(DeprecationWarning, match="val_loader"):
        old = lrtool.train(model2, opt2, batches, loss, schedule, 3, val_batches=batches[:1])
    assert new.evals == old.evals and new.evals[0]["val_loss"] > 0
    with pytest.raises(LrtoolError, match="not both"):
        lrtool.train(
            model, opt, batches, loss, schedule, 3, val_loader=batches, val_batches=batches
        )


@pytest.mark.parametrize("lr", [float("nan"), -1.0, 0.0, None, "0.1"])
def test_verify_lr_refuses_an_lr_it_cannot_verify(lr):
    """It used to return an empty result without a word."""
    model, opt, batches = _task()
    with pytest.raises(LrtoolError, match="lr"):
        lrtool.verify_lr(model, opt, batches, nn.CrossEntropyLoss(), lr=lr, steps=5)


@pytest.mark.parametrize("call", ["find_lr", "verify_lr", "train"])
def test_an_optimizer_over_another_models_parameters_is_named(call):
    """It used to train nothing and call the curve noise."""
    model, _, batches = _task()
    other, opt, _ = _task(1)
    loss = nn.CrossEntropyLoss()
    with pytest.raises(LrtoolError, match="none of the model's parameters"):
        if call == "find_lr":
            lrtool.find_lr(model, opt, batches, loss, steps=5)
        elif call == "verify_lr":
            lrtool.verify_lr(model, opt, batches, loss, lr=0.1, steps=5)
        else:
            lrtool.train(
                model, opt, batches, loss, lrtool.build_schedule("constant", {"lr": 0.1}), 3
            )


class NoLrOptimizer(torch.optim.Optimizer):
    """A custom optimizer whose groups keep a step size under another name."""

    def __init__(self, params):
        super().__init__(params, {"step_size": 0.1})

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.data.add_(p.grad, alpha=-group["step_size"])


def test_a_custom_optimizer_without_lr_is_one_line():
    model, _, batches = _task()
    with pytest.raises(LrtoolError, match="has no 'lr'.*step_size"):
        lrtool.find_lr(model, NoLrOptimizer(model.parameters()), batches, nn.CrossEntropyLoss())


def test_a_generator_that_runs_out_is_named_as_one():
    model, opt, batches = _task()
    once = (b for b in batches)  # 8 batches, for a 20-step sweep
    with pytest.raises(LrtoolError, match="one-shot iterator.*after 8 batches"):
        lrtool.find_lr(model, opt, once, nn.CrossEntropyLoss(), steps=20)
