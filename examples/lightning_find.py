"""lrtool's range test on a LightningModule, then ``trainer.fit`` with the suggested LR.

    pip install 'lrtool[integrations]'   # Lightning
    python examples/lightning_find.py

The module logs with ``self.log`` in ``training_step``; the range test silences that (no
trainer is attached then) and ``fit`` logs as usual afterwards.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn

from lrtool.integrations.lightning import find_lr


class Classifier(pl.LightningModule):
    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


class Data(pl.LightningDataModule):
    def setup(self, stage: str) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2048, 20, generator=g)
        self.train = torch.utils.data.TensorDataset(x, x[:, :3].argmax(dim=1))

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.train, batch_size=64, shuffle=True)


def main() -> None:
    torch.manual_seed(0)
    module, data = Classifier(), Data()
    result = find_lr(module, datamodule=data, steps=100, start_lr=1e-5, end_lr=10)
    print(f"suggested lr {result.lr:.3g} (module.lr is now {module.lr:.3g})")
    trainer = pl.Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    x, y = data.train.tensors
    with torch.no_grad():
        accuracy = (module.net(x).argmax(dim=1) == y).float().mean().item()
    print(f"trained at lr {module.lr:.3g}: accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
