"""lrtool's range test for a Hugging Face ``Trainer``, then a 1cycle run at the suggested peak.

    pip install 'lrtool[integrations]'   # transformers, accelerate
    python examples/hf_find.py

The model takes dict batches and returns its own loss, as transformers models do; the
range test uses the Trainer's data collator, batch size and optimizer settings.
"""

from __future__ import annotations

import tempfile

import torch
import transformers
from torch import nn

from lrtool.integrations.hf import find_lr, use_suggestion


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, features, labels=None):  # noqa: ANN001, ANN201
        logits = self.net(features)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


class Items(torch.utils.data.Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(2048, 20, generator=g)
        self.y = self.x[:, :3].argmax(dim=1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.x[i], "labels": self.y[i]}


def main() -> None:
    torch.manual_seed(0)
    data = Items()
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, max_steps=200, per_device_train_batch_size=64, report_to=[],
            use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0,
        )  # fmt: skip
        trainer = transformers.Trainer(model=Model(), args=args, train_dataset=data)
        result = find_lr(trainer, steps=100, start_lr=1e-6, end_lr=1)
        peak = use_suggestion(trainer, result, "onecycle")
        print(f"suggested lr {result.lr:.3g}, onecycle max_lr {peak:.3g}")
        trainer.train()
        with torch.no_grad():
            logits = trainer.model(data.x)["logits"]
        accuracy = (logits.argmax(dim=1) == data.y).float().mean().item()
        print(f"1cycle over {trainer.lr_scheduler.last_epoch} steps: accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
