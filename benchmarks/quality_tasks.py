"""The task suite of ``benchmarks/suggestion_quality.py``: small, public, CPU-sized problems.

Every task is generated (or read from lrtool's embedded digits), so the suite needs no network.
Each one fixes a model, an optimizer, a loss, a batch size and a step budget; ``held_out``
marks the tasks that were kept aside while lrtool's suggestion rules were tuned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # classification | regression
    model: str
    optimizer: str
    data: Callable[[int], Data]
    build: Callable[[Data], nn.Module]
    steps: int
    batch_size: int
    held_out: bool = False

    def loss_fn(self) -> nn.Module:
        return nn.CrossEntropyLoss() if self.kind == "classification" else nn.MSELoss()

    def make_optimizer(self, params: object, lr: float) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9)  # type: ignore[arg-type]
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)  # type: ignore[arg-type]
        if self.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)  # type: ignore[arg-type]
        raise ValueError(self.optimizer)


# --------------------------------------------------------------------------------------------
# Data (the split and the generated data depend only on the task, not on the seed: the seed
# changes the initial weights and the batch order)
# --------------------------------------------------------------------------------------------


def _split(x: torch.Tensor, y: torch.Tensor, n_val: int, seed: int) -> Data:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    xt, yt, xv, yv = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
    if xt.dim() == 2 and xt.dtype == torch.float32:
        mean, std = xt.mean(0), xt.std(0)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant pixels stay put
        xt, xv = (xt - mean) / std, (xv - mean) / std
    return xt, yt, xv, yv


def digits(_: int = 0) -> Data:
    import pandas as pd

    from lrtool.data import digits_path

    frame = pd.read_csv(digits_path())
    x = torch.tensor(frame.drop(columns="digit").to_numpy(), dtype=torch.float32)
    y = torch.tensor(frame["digit"].to_numpy(), dtype=torch.long)
    return _split(x, y, 400, 1)


def digits_images(_: int = 0) -> Data:
    xt, yt, xv, yv = digits()
    return xt.view(-1, 1, 8, 8), yt, xv.view(-1, 1, 8, 8), yv


def teacher_regression(_: int = 0) -> Data:
    """y = a random two-layer tanh network of 12 inputs, plus noise (SNR about 10)."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2400, 12, generator=g)
    w1, w2 = torch.randn(12, 24, generator=g) / math.sqrt(12), torch.randn(24, 1, generator=g)
    y = torch.tanh(x @ w1) @ w2 / math.sqrt(24)
    y = (y + 0.3 * y.std() * torch.randn(y.shape, generator=g)) * 3.0
    return _split(x, y, 600, 2)


def friedman_regression(_: int = 0) -> Data:
    """Friedman #1: 10 inputs in [0, 1], five of them used, plus unit noise."""
    g = torch.Generator().manual_seed(12)
    x = torch.rand(2400, 10, generator=g)
    y = (
        10 * torch.sin(math.pi * x[:, 0] * x[:, 1])
        + 20 * (x[:, 2] - 0.5) ** 2
        + 10 * x[:, 3]
        + 5 * x[:, 4]
        + torch.randn(2400, generator=g)
    )
    return _split(x, y.unsqueeze(1), 600, 3)


def blobs(_: int = 0) -> Data:
    """Six overlapping Gaussian classes in 20 dimensions, 3 informative."""
    g = torch.Generator().manual_seed(13)
    centres = torch.randn(6, 3, generator=g) * 2.0
    labels = torch.randint(0, 6, (3000,), generator=g)
    informative = centres[labels] + torch.randn(3000, 3, generator=g)
    noise = torch.randn(3000, 17, generator=g)
    x = (
        torch.cat([informative, noise], dim=1)
        @ torch.linalg.qr(torch.randn(20, 20, generator=g))[0]
    )
    return _split(x, labels, 600, 4)


def _majority(seed: int, length: int, vocab: int, classes: int, split_seed: int) -> Data:
    """Sequences of ``length`` tokens from ``vocab``; the label is the most frequent of the
    tokens 0..classes-1 (ties broken at random)."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, vocab, (3000, length), generator=g)
    counts = torch.stack([(seq == k).sum(1) for k in range(classes)], dim=1).float()
    labels = (counts + 0.1 * torch.rand(counts.shape, generator=g)).argmax(1)
    return _split(seq, labels, 600, split_seed)


def majority_tokens(_: int = 0) -> Data:
    """Sequences of 16 tokens from 6; the label is the most frequent of tokens 0..3."""
    return _majority(14, 16, 6, 4, 5)


def majority_of_five(_: int = 0) -> Data:
    """Sequences of 20 tokens from 10; the label is the most frequent of tokens 0..4."""
    return _majority(15, 20, 10, 5, 6)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def mlp(hidden: int, depth: int = 1) -> Callable[[Data], nn.Module]:
    def build(data: Data) -> nn.Module:
        xt, yt = data[0], data[1]
        n_out = int(yt.max()) + 1 if yt.dtype == torch.long else yt.shape[1]
        layers: list[nn.Module] = []
        width = xt.shape[1]
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        return nn.Sequential(*layers, nn.Linear(width, n_out))

    return build


def conv_net(in_channels: int = 1, classes: int = 10) -> nn.Module:
    """Two 3x3 conv layers (16, 32 channels), max-pool, global average pool, a linear head."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, classes),
    )


def small_cnn(data: Data) -> nn.Module:
    return conv_net(1, 10)


class GRUClassifier(nn.Module):
    def __init__(self, vocab: int, n_classes: int, dim: int = 24) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out[:, -1])


class TinyAttention(nn.Module):
    """One pre-norm transformer encoder layer over learned token and position embeddings."""

    def __init__(self, vocab: int, length: int, n_classes: int, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(length, dim) * 0.1)
        self.layer = nn.TransformerEncoderLayer(
            dim, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True
        )
        self.head = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.layer(self.embed(tokens) + self.position)
        return self.head(h.mean(dim=1))


def gru(data: Data) -> nn.Module:
    return GRUClassifier(int(data[0].max()) + 1, int(data[1].max()) + 1)


def attention(data: Data) -> nn.Module:
    return TinyAttention(int(data[0].max()) + 1, data[0].shape[1], int(data[1].max()) + 1)


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("digits-mlp-sgd", "classification", "mlp", "sgd", digits, mlp(64), 300, 64),
        Task("teacher-mlp-adam", "regression", "mlp", "adam", teacher_regression, mlp(64), 300, 32),
        Task("digits-cnn-rmsprop", "classification", "cnn", "rmsprop", digits_images, small_cnn, 200, 64),
        Task("majority-gru-adam", "classification", "gru", "adam", majority_tokens, gru, 300, 32),
        Task("blobs-mlp-rmsprop", "classification", "mlp", "rmsprop", blobs, mlp(48, 2), 300, 32),
        # Kept aside while tuning lrtool's rules:
        Task("majority-attention-sgd", "classification", "attention", "sgd", majority_of_five, attention, 300, 32, True),
        Task("friedman-mlp-sgd", "regression", "mlp", "sgd", friedman_regression, mlp(64, 2), 300, 32, True),
        Task("digits-cnn-adam", "classification", "cnn", "adam", digits_images, small_cnn, 200, 32, True),
    ]
}  # fmt: skip

QUICK = ("digits-mlp-sgd", "teacher-mlp-adam", "friedman-mlp-sgd")
