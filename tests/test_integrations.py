"""lrtool.integrations against the real libraries (pip install 'lrtool[integrations]'):
Lightning's module/datamodule and the Hugging Face Trainer, and the examples that
docs/integrations.md shows."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tests.test_examples import run_example


def test_lightning_find_lr_sets_the_attribute_and_fit_logs_again(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from lrtool.integrations.lightning import find_lr

    logged: list[str] = []

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters({"learning_rate": 1e-3})
            self.net = nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("loss", loss)
            logged.append("x")
            return {"loss": loss}

        def configure_optimizers(self):  # noqa: ANN201
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate)
            return {"optimizer": opt}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=32, shuffle=True
    )
    module = Module()
    before = module.net.weight.detach().clone()
    result = find_lr(module, train_dataloaders=loader, steps=60, start_lr=1e-4, end_lr=100)
    assert result.lr is not None and module.hparams.learning_rate == result.lr
    assert torch.equal(module.net.weight, before)  # restored
    assert "log" not in vars(module)  # self.log is Lightning's again
    trainer = pl.Trainer(
        max_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, loader)
    assert trainer.optimizers[0].param_groups[0]["lr"] == result.lr
    assert trainer.callback_metrics["loss"] is not None  # self.log worked inside fit


def test_hf_find_lr_and_use_suggestion_drive_the_trainer(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrtool import build_schedule
    from lrtool.integrations.hf import find_lr, use_suggestion

    g = torch.Generator().manual_seed(0)
    xs = torch.randn(512, 4, generator=g)
    items = [{"x": xs[i], "labels": int(xs[i, 0] > 0)} for i in range(len(xs))]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=20, per_device_train_batch_size=32, report_to=[],
        use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = transformers.Trainer(model=_HfModel(), args=args, train_dataset=items)
    before = trainer.model.net.weight.detach().clone()
    result = find_lr(trainer, steps=60, start_lr=1e-5, end_lr=10)
    assert torch.equal(trainer.model.net.weight, before) and trainer.optimizer is None
    assert result.optimizer_group == "adaptive"  # the Trainer's AdamW
    peak = use_suggestion(trainer, result, "onecycle")
    assert peak == result.onecycle_max_lr
    seen = []
    trainer.add_callback(_Record(seen))
    trainer.train()
    schedule = build_schedule("onecycle", {"max_lr": peak, "total_steps": 20})
    assert seen == pytest.approx([schedule(t) for t in range(1, 21)], rel=1e-9)


class _Record:
    """A TrainerCallback (duck-typed) that records the LR after each optimizer step."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def __getattr__(self, name: str):  # noqa: ANN204 (every other hook: nothing to do)
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):  # noqa: ANN001, ANN201
        self.seen.append(optimizer.param_groups[0]["lr"])


def test_the_lightning_example_runs():
    pytest.importorskip("lightning.pytorch")
    out = run_example("lightning_find.py")
    lr = float(re.search(r"suggested lr ([\d.e-]+)", out).group(1))
    accuracy = float(re.search(r"accuracy ([\d.]+)", out).group(1))
    assert 1e-5 < lr < 10 and accuracy > 0.8  # 3 classes: chance is 0.33


def test_the_hf_example_runs():
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    out = run_example("hf_find.py")
    lr, peak = (
        float(v)
        for v in re.search(r"suggested lr ([\d.e-]+), onecycle max_lr ([\d.e-]+)", out).groups()
    )
    accuracy = float(re.search(r"accuracy ([\d.]+)", out).group(1))
    assert 1e-6 < lr < peak < 1 and accuracy > 0.8


HF_STYLE = """
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Output:
    loss: torch.Tensor
    logits: torch.Tensor


class Items(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 12, generator=g)
        self.y = self.x[:, :3].argmax(dim=1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_values": self.x[i], "labels": int(self.y[i])}


def make():
    return Items(512, 0), Items(128, 1)


class Model(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, n_outputs))

    def forward(self, input_values, labels=None):
        logits = self.net(input_values)
        return Output(nn.functional.cross_entropy(logits, labels), logits)


def build(n_features, n_outputs):
    return Model(n_features, n_outputs)
"""


@pytest.mark.parametrize("command", ["find", "train", "compare"])
def test_the_cli_runs_dict_datasets_and_models_that_compute_their_loss(tmp_path, command):
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, write_config

    (tmp_path / "hf_style.py").write_text(HF_STYLE)
    cfg = write_config(
        tmp_path,
        """
        seed: 0
        device: cpu
        data: {source: import, function: 'hf_style:make', batch_size: 32}
        model: {name: import, function: 'hf_style:build'}
        optimizer: {name: adam, lr: 0.001}
        find: {start_lr: 1.0e-5, end_lr: 10, steps: 40}
        train: {steps: 30, eval_every: 10, schedule: {name: onecycle, max_lr: 0.01}}
        """,
    )
    extra = {
        "find": ["--budget", "0"],
        "train": [],
        "compare": ["--schedules", "constant,onecycle"],
    }
    done = subprocess.run(
        [sys.executable, "-m", "lrtool", command, str(cfg), "--out", str(tmp_path / "o"), "-q",
         *extra[command]],
        capture_output=True, text=True, cwd=tmp_path, timeout=180,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    if command == "find":
        assert summary["steps_run"] >= 10 and summary["lr"] is not None
    elif command == "train":
        assert summary["final_accuracy"] is not None and summary["final_accuracy"] > 0.5
    else:
        assert all(r["final_accuracy"] is not None for r in summary["runs"])


# ------------------------------------------------------------------------------------------
# Issue 29: the integrations train what was measured
# ------------------------------------------------------------------------------------------


def _hf_items(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, 4, generator=g)
    return [{"x": xs[i], "labels": int(xs[i, 0] > 0)} for i in range(n)]


class _HfModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)

    def forward(self, x, labels=None):  # noqa: ANN001, ANN201
        out = self.net(x)
        return {"loss": nn.functional.cross_entropy(out, labels), "logits": out}


def _hf_args(transformers, tmp_path, **extra):  # noqa: ANN001, ANN202
    values = {
        "output_dir": str(tmp_path), "per_device_train_batch_size": 32, "report_to": [],
        "use_cpu": True, "save_strategy": "no", "logging_strategy": "no", "disable_tqdm": True,
    }  # fmt: skip
    return transformers.TrainingArguments(**{**values, **extra})


def test_hf_range_test_runs_the_trainers_own_step_clipping_and_accumulation(tmp_path):
    """A Trainer subclass's compute_loss is what the sweep trains on, and max_grad_norm and
    gradient_accumulation_steps shape its steps as they shape train()'s."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrtool.integrations.hf import find_lr

    calls = []

    class Counting(transformers.Trainer):
        def compute_loss(self, model, inputs, *args, **kwargs):  # noqa: ANN001, ANN201
            calls.append(len(inputs["labels"]))
            return super().compute_loss(model, inputs, *args, **kwargs)

    def sweep(**extra):  # noqa: ANN003, ANN202
        args = _hf_args(transformers, tmp_path, max_steps=20, **extra)
        torch.manual_seed(0)
        trainer = Counting(model=_HfModel(), args=args, train_dataset=_hf_items(512))
        calls.clear()
        return find_lr(trainer, steps=30, start_lr=1e-4, end_lr=10, refine=False, budget=0)

    plain = sweep()
    assert len(calls) == plain.steps_run  # one compute_loss per optimizer step
    accumulated = sweep(gradient_accumulation_steps=3)
    assert len(calls) == 3 * accumulated.steps_run  # three micro-batches per step
    clipped = sweep(max_grad_norm=1e-4)
    assert clipped.losses[:5] == pytest.approx(plain.losses[:5], rel=1e-4)  # same start
    assert clipped.losses[15:25] != pytest.approx(plain.losses[15:25], rel=1e-3)  # clipped


def test_hf_keeps_the_users_optimizer_and_counts_the_trainers_real_steps(tmp_path):
    """optimizers=(my_adam, None): the range test measures my_adam, use_suggestion keeps it
    (both modes), and 1cycle spans exactly the optimizer steps train() takes: 2 epochs with
    accumulation 3 over 11 batches (a partial last step each epoch)."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrtool import build_schedule
    from lrtool.integrations.hf import find_lr, total_steps, use_suggestion

    for mode in ("constant", "onecycle"):
        args = _hf_args(
            transformers, tmp_path, num_train_epochs=2, gradient_accumulation_steps=3,
            lr_scheduler_type="cosine", warmup_steps=2,
        )  # fmt: skip
        torch.manual_seed(0)
        model = _HfModel()
        mine = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.98, 0.999))
        trainer = transformers.Trainer(
            model=model, args=args, train_dataset=_hf_items(352), optimizers=(mine, None)
        )
        result = find_lr(trainer, steps=40, start_lr=1e-4, end_lr=10, budget=0)
        assert trainer.optimizer is mine and result.optimizer_group == "adaptive"
        if mode == "onecycle":
            with pytest.warns(UserWarning, match="lr_scheduler_type='cosine', warmup_steps=2"):
                value = use_suggestion(trainer, result, mode)
        else:
            value = use_suggestion(trainer, result, mode)
        assert trainer.optimizer is mine
        if mode == "constant":
            assert mine.param_groups[0]["lr"] == value
        else:  # 1cycle starts at its peak / 25 and cycles beta1 as momentum
            assert trainer.lr_scheduler.base_lrs == [value]
        steps = total_steps(trainer)
        seen: list[float] = []
        trainer.add_callback(_Record(seen))
        trainer.train()
        assert trainer.state.global_step == steps == 8  # ceil(11 / 3) = 4 a epoch, 2 epochs
        beta1, beta2 = mine.param_groups[0]["betas"]  # the user's Adam trained
        assert beta2 == 0.999 and (beta1 == 0.98 if mode == "constant" else beta1 > 0.9)
        if mode == "onecycle":
            schedule = build_schedule("onecycle", {"max_lr": value, "total_steps": steps})
            # every step the Trainer takes is one of the schedule's: none runs past its end
            assert seen == pytest.approx([schedule(t) for t in range(1, steps + 1)], rel=1e-9)


def test_hf_budget_reads_the_trainers_length_and_scores_on_its_eval_dataset(tmp_path):
    """find_lr(trainer) at its defaults knows the run's length (max_steps) and its eval
    split: the sweep watches the eval batches and the default search runs, scored on them."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrtool.integrations.hf import find_lr
    from lrtool.search import DEFAULT_BUDGET

    args = _hf_args(transformers, tmp_path, max_steps=40, per_device_eval_batch_size=64)
    torch.manual_seed(0)
    trainer = transformers.Trainer(
        model=_HfModel(), args=args, train_dataset=_hf_items(512), eval_dataset=_hf_items(256, 1)
    )
    result = find_lr(trainer, steps=40, start_lr=1e-4, end_lr=10)
    assert result.monitor.startswith("val")
    checked = result.verification
    assert checked is not None and checked.budget == DEFAULT_BUDGET
    assert checked.target_steps == 40 and checked.monitor.startswith("val")


def _lightning_module(pl, total_steps=None):  # noqa: ANN001, ANN202
    """The documented recipe: configure_optimizers returns an LrtoolScheduler, over a fixed
    length or the trainer's estimated_stepping_batches."""
    import lrtool

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.lr = 0.01
            self.net = nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):  # noqa: ANN201
            opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
            steps = total_steps or self.trainer.estimated_stepping_batches
            schedule = lrtool.build_schedule("onecycle", {"max_lr": self.lr, "total_steps": steps})
            sched = lrtool.LrtoolScheduler(opt, schedule)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return Module()


@pytest.mark.parametrize("length", ["fixed", "estimated_stepping_batches"])
def test_lightning_range_tests_and_fits_the_documented_lrtool_scheduler_recipe(tmp_path, length):
    """No change to the module: find_lr works with the scheduler it returns, and fit then
    trains with the suggestion under that schedule."""
    pl = pytest.importorskip("lightning.pytorch")
    from lrtool.integrations.lightning import find_lr

    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=32
    )
    module = _lightning_module(pl, 30 if length == "fixed" else None)
    trainer = pl.Trainer(
        max_steps=30, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path,
    )  # fmt: skip
    result = find_lr(
        module, train_dataloaders=loader, steps=50, start_lr=1e-4, end_lr=10,
        use="onecycle_max_lr", trainer=trainer,
    )  # fmt: skip
    assert result.onecycle_max_lr is not None and module.lr == result.onecycle_max_lr
    assert result.verification is not None and result.verification.target_steps == 30
    assert module._trainer is None  # the stand-in is gone before fit
    trainer.fit(module, loader)
    assert trainer.global_step == 30
    assert max(trainer.lr_scheduler_configs[0].scheduler.schedule(t) for t in range(30)) == (
        pytest.approx(result.onecycle_max_lr)
    )
