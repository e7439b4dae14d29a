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

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 2)

        def forward(self, x, labels=None):  # noqa: ANN001, ANN201
            out = self.net(x)
            return {"loss": nn.functional.cross_entropy(out, labels), "logits": out}

    g = torch.Generator().manual_seed(0)
    xs = torch.randn(512, 4, generator=g)
    items = [{"x": xs[i], "labels": int(xs[i, 0] > 0)} for i in range(len(xs))]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=20, per_device_train_batch_size=32, report_to=[],
        use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = transformers.Trainer(model=Model(), args=args, train_dataset=items)
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
