"""A small transformer-style model that computes its own loss, fed dict batches.

    python examples/own_loss_model.py

The model takes ``input_ids``, ``attention_mask`` and ``labels`` as keyword arguments and returns
an output with a ``.loss`` (the Hugging Face convention), so ``find_lr`` needs no loss function.
The range test uses gradient accumulation (2 micro-batches a step), gradient clipping and bf16
autocast, which works on the CPU; training then uses a warm-up followed by cosine decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import lrtool


@dataclass
class ClassifierOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor


class TinyTransformerClassifier(nn.Module):
    def __init__(self, vocab: int = 16, dim: int = 32, length: int = 12, n_labels: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.zeros(length, dim))
        self.encoder = nn.TransformerEncoderLayer(
            dim, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.head = nn.Linear(dim, n_labels)

    def forward(self, input_ids, attention_mask, labels=None) -> ClassifierOutput:
        h = self.encoder(
            self.embed(input_ids) + self.position, src_key_padding_mask=attention_mask == 0
        )
        mask = attention_mask.unsqueeze(-1).float()
        logits = self.head((h * mask).sum(1) / mask.sum(1))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return ClassifierOutput(loss, logits)


def make_batches(n_batches: int, batch_size: int = 32, seed: int = 0) -> list[dict]:
    """Does token 1 appear more often than token 2? Padded sequences of 6-12 tokens."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        ids = torch.randint(1, 16, (batch_size, 12), generator=g)
        lengths = torch.randint(6, 13, (batch_size,), generator=g)
        mask = (torch.arange(12)[None, :] < lengths[:, None]).long()
        ids = ids * mask
        labels = (((ids == 1).sum(1)) > ((ids == 2).sum(1))).long()
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return batches


def main(steps: int = 150) -> dict[str, float]:
    torch.manual_seed(0)
    train, val = make_batches(40), make_batches(8, seed=1)
    model = TinyTransformerClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)

    result = lrtool.find_lr(
        model,
        optimizer,
        train,  # dict batches: model(**batch)
        start_lr=1e-6,
        end_lr=1.0,
        steps=60,
        accumulation_steps=2,
        grad_clip=1.0,
        amp="bf16",
    )
    print(f"range test: {result.stop_reason}")
    print(f"suggested lr {result.lr:.3g}  ({result.recommendation.confidence} confidence)")

    schedule = lrtool.build_schedule(
        "cosine", {"lr": result.lr, "total_steps": steps, "warmup_steps": steps // 10}
    )
    scheduler = lrtool.LrtoolScheduler(optimizer, schedule)
    for step in range(steps):
        out = model(**train[step % len(train)])
        optimizer.zero_grad()
        out.loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        val_loss = sum(float(model(**b).loss) for b in val) / len(val)
    print(f"after {steps} steps of warm-up + cosine: val loss {val_loss:.4f}")
    return {"lr": result.lr, "val_loss": val_loss}


if __name__ == "__main__":
    main()
