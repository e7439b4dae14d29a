"""The suggestion suite: 48 small tasks in 8 families, generated offline, to choose rules on.

Every task fixes data, a model, an optimizer, a loss, a batch size and a step budget. They vary
what moves the right LR: model (linear; MLPs of depth 1-4 with and without BatchNorm/dropout;
small CNNs with and without BatchNorm; GRU and LSTM; a tiny pre-norm transformer), optimizer
(plain SGD, momentum, Nesterov, Adam, AdamW with weight decay, RMSprop, Adagrad), batch size
(8 to 512), budget (100 to 2,000 steps), loss (cross-entropy, MSE, BCE), input scaling and label
noise. The family is what leave-one-family-out cross-validation holds out.

The data of a task depends only on the task; the seed of a run sets the initial weights and the
batch order. Nothing is downloaded: the data are generated, or read from lrtool's embedded
digits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
N_TRAIN, N_VAL = 2000, 400


# --------------------------------------------------------------------------------------------
# Data: each generator returns (x, y) for N_TRAIN + N_VAL rows; `prepare` splits, standardises
# flat float inputs, scales them and flips labels.
# --------------------------------------------------------------------------------------------


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(classes: int = 6, dim: int = 20, informative: int = 3, spread: float = 2.0):
    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        n = N_TRAIN + N_VAL
        centres = torch.randn(classes, informative, generator=g) * spread
        labels = torch.randint(0, classes, (n,), generator=g)
        signal = centres[labels] + torch.randn(n, informative, generator=g)
        noise = torch.randn(n, dim - informative, generator=g)
        rotation = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0]
        return torch.cat([signal, noise], dim=1) @ rotation, labels

    return make


def binary_blobs(dim: int = 12):
    """Two overlapping classes; the target is a float column for BCE."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = blobs(2, dim, 4, 1.2)(seed)
        return x, y.float().unsqueeze(1)

    return make


def spirals(turns: float = 1.5, classes: int = 3):
    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        n = N_TRAIN + N_VAL
        labels = torch.randint(0, classes, (n,), generator=g)
        r = torch.rand(n, generator=g)
        angle = 2 * math.pi * (turns * r + labels / classes) + 0.25 * torch.randn(n, generator=g)
        x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
        return x, labels

    return make


def teacher(dim: int = 12, outputs: int = 1, linear: bool = False, target_scale: float = 3.0):
    """y = a random tanh network (or a linear map) of the inputs plus noise (SNR about 10)."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        n = N_TRAIN + N_VAL
        x = torch.randn(n, dim, generator=g)
        if linear:
            y = x @ torch.randn(dim, outputs, generator=g) / math.sqrt(dim)
        else:
            w1 = torch.randn(dim, 32, generator=g) / math.sqrt(dim)
            y = torch.tanh(x @ w1) @ torch.randn(32, outputs, generator=g) / math.sqrt(32)
        y = y / y.std() + 0.3 * torch.randn(y.shape, generator=g)
        return x, y * target_scale

    return make


def multilabel(dim: int = 16, labels: int = 5):
    """Five binary labels, each a thresholded random tanh feature of the inputs (BCE)."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = teacher(dim, labels, target_scale=1.0)(seed)
        return x, (y > 0).float()

    return make


def friedman(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Friedman #1: 10 inputs in [0, 1], five of them used, plus unit noise."""
    g = _gen(seed)
    n = N_TRAIN + N_VAL
    x = torch.rand(n, 10, generator=g)
    y = (
        10 * torch.sin(math.pi * x[:, 0] * x[:, 1])
        + 20 * (x[:, 2] - 0.5) ** 2
        + 10 * x[:, 3]
        + 5 * x[:, 4]
        + torch.randn(n, generator=g)
    )
    return x, y.unsqueeze(1)


def sine(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """y = sin(3x) + x/2 on [-2, 2] plus noise: a 1-D regression that needs curvature."""
    g = _gen(seed)
    x = torch.rand(N_TRAIN + N_VAL, 1, generator=g) * 4 - 2
    y = torch.sin(3 * x) + x / 2 + 0.1 * torch.randn(x.shape, generator=g)
    return x, y


@functools.cache
def _digits_frame() -> tuple[torch.Tensor, torch.Tensor]:
    import pandas as pd

    from lrtool.data import digits_path

    frame = pd.read_csv(digits_path())
    x = torch.tensor(frame.drop(columns="digit").to_numpy(), dtype=torch.float32)
    y = torch.tensor(frame["digit"].to_numpy(), dtype=torch.long)
    return x, y


def digits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """lrtool's embedded 8x8 digits (1,797 rows), repeated with pixel noise to fill the split."""
    x, y = _digits_frame()
    g = _gen(seed)
    order = torch.randperm(len(x), generator=g)
    index = torch.cat([order, order])[: N_TRAIN + N_VAL]
    return x[index] + 0.5 * torch.randn(len(index), 64, generator=g), y[index]


def shapes(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """12x12 images of four noisy shapes (bar, column, square, cross) at random places."""
    g = _gen(seed)
    n = N_TRAIN + N_VAL
    labels = torch.randint(0, 4, (n,), generator=g)
    images = 0.6 * torch.randn(n, 1, 12, 12, generator=g)
    rows = torch.randint(0, 7, (n,), generator=g)
    cols = torch.randint(0, 7, (n,), generator=g)
    for i in range(n):
        r, c, k = int(rows[i]), int(cols[i]), int(labels[i])
        patch = images[i, 0, r : r + 6, c : c + 6]
        if k == 0:
            patch[2:4, :] += 1.5
        elif k == 1:
            patch[:, 2:4] += 1.5
        elif k == 2:
            patch[1:5, 1:5] += 1.0
        else:
            patch[2:4, :] += 1.0
            patch[:, 2:4] += 1.0
    return images, labels


def majority(length: int = 16, vocab: int = 6, classes: int = 4):
    """Token sequences; the label is the most frequent of tokens 0..classes-1."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        seq = torch.randint(0, vocab, (N_TRAIN + N_VAL, length), generator=g)
        counts = torch.stack([(seq == k).sum(1) for k in range(classes)], dim=1).float()
        return seq, (counts + 0.1 * torch.rand(counts.shape, generator=g)).argmax(1)

    return make


def first_marker(length: int = 12, vocab: int = 8):
    """Token sequences; the label is which of tokens 0, 1, 2 comes first (3 if none)."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        seq = torch.randint(0, vocab, (N_TRAIN + N_VAL, length), generator=g)
        marker = seq < 3
        first = torch.where(marker.any(1), marker.float().argmax(1), torch.full_like(seq[:, 0], -1))
        picked = seq.gather(1, first.clamp(min=0).unsqueeze(1)).squeeze(1)
        return seq, torch.where(first >= 0, picked, torch.full_like(picked, 3))

    return make


def token_sum(length: int = 10, vocab: int = 10):
    """Token sequences; the target is the mean token value weighted by position (MSE)."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        seq = torch.randint(0, vocab, (N_TRAIN + N_VAL, length), generator=g)
        weights = torch.linspace(0.5, 1.5, length)
        y = (seq.float() * weights).sum(1, keepdim=True) / length
        return seq, (y - y.mean()) / y.std()

    return make


def ratings(users: int = 300, items: int = 200, rank: int = 6, implicit: bool = False):
    """(user, item) pairs and a rating from a rank-``rank`` model with user and item biases plus
    noise (MSE), or whether the rating is above its median (implicit feedback, BCE)."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        n = N_TRAIN + N_VAL
        u = torch.randn(users, rank, generator=g) / math.sqrt(rank)
        v = torch.randn(items, rank, generator=g)
        bias_u, bias_i = (
            0.5 * torch.randn(users, generator=g),
            0.5 * torch.randn(items, generator=g),
        )
        pairs = torch.stack(
            [
                torch.randint(0, users, (n,), generator=g),
                torch.randint(0, items, (n,), generator=g),
            ],
            dim=1,
        )
        r = (u[pairs[:, 0]] * v[pairs[:, 1]]).sum(1) + bias_u[pairs[:, 0]] + bias_i[pairs[:, 1]]
        r = r + 0.3 * torch.randn(n, generator=g)
        if implicit:
            return pairs, (r > r.median()).float().unsqueeze(1)
        return pairs, (3.0 + r).unsqueeze(1)

    return make


def categorical(columns: tuple[int, ...] = (12, 30, 50, 8, 20), numeric: int = 4, classes: int = 3):
    """Tabular rows: categorical columns (their level as an integer) then numeric ones, all in
    one float tensor; the class is the argmax of per-level scores summed over the columns plus
    a linear term of the numeric columns (a model needs an embedding per column)."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = _gen(seed)
        n = N_TRAIN + N_VAL
        levels = [torch.randint(0, c, (n,), generator=g) for c in columns]
        scores = sum(
            torch.randn(c, classes, generator=g)[lv] for c, lv in zip(columns, levels, strict=True)
        )
        nums = torch.randn(n, numeric, generator=g)
        scores = scores + nums @ torch.randn(numeric, classes, generator=g)
        x = torch.cat([torch.stack(levels, 1).float(), nums], dim=1)
        return x, scores.argmax(1)

    return make


def digits_subset(keep: tuple[int, ...]):
    """The embedded digits restricted to the classes in ``keep``, relabelled 0..len-1."""

    def make(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = digits(seed)
        mask = torch.isin(y, torch.tensor(keep))
        x, y = x[mask], y[mask]
        while len(x) < N_TRAIN + N_VAL:
            x, y = torch.cat([x, x]), torch.cat([y, y])
        relabel = torch.full((10,), -1, dtype=torch.long)
        relabel[torch.tensor(keep)] = torch.arange(len(keep))
        return x[: N_TRAIN + N_VAL], relabel[y[: N_TRAIN + N_VAL]]

    return make


def parity(make: Callable[[int], tuple]):
    """The same inputs, labelled by the parity of the class (two classes)."""

    def relabel(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = make(seed)
        return x, y % 2

    return relabel


def shapes_binary(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The shapes images, labelled by whether the shape has a horizontal bar (bar or cross)."""
    x, y = shapes(seed)
    return x, ((y == 0) | (y == 3)).float().unsqueeze(1)


def prepare(
    make: Callable[[int], tuple], data_seed: int, scale: float, noise: float, raw: int = 0
) -> Data:
    """Split, standardise float inputs (all but the first ``raw`` columns: category levels),
    scale them and flip a fraction ``noise`` of the training labels."""
    x, y = make(data_seed)
    xt, yt, xv, yv = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]
    if raw:
        head_t, head_v = xt[:, :raw], xv[:, :raw]
        xt, xv = prepare_floats(xt[:, raw:], xv[:, raw:], scale)
        xt, xv = torch.cat([head_t, xt], 1), torch.cat([head_v, xv], 1)
    elif xt.dtype == torch.float32:
        xt, xv = prepare_floats(xt, xv, scale)
    if noise > 0 and yt.dtype == torch.long:  # flip a fraction of the training labels only
        g = _gen(data_seed + 7)
        flip = torch.rand(len(yt), generator=g) < noise
        yt = torch.where(flip, torch.randint(0, int(yt.max()) + 1, yt.shape, generator=g), yt)
    return xt, yt, xv, yv


def prepare_floats(xt: torch.Tensor, xv: torch.Tensor, scale: float) -> tuple[torch.Tensor, ...]:
    """Standardised by the training split's statistics, then times ``scale``."""
    dims = (0,) if xt.dim() == 2 else (0, 2, 3)
    mean, std = xt.mean(dims, keepdim=True), xt.std(dims, keepdim=True)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return (xt - mean) / std * scale, (xv - mean) / std * scale


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _outputs(y: torch.Tensor) -> int:
    return int(y.max()) + 1 if y.dtype == torch.long else y.shape[1]


def linear(data: Data) -> nn.Module:
    return nn.Linear(data[0].shape[1], _outputs(data[1]))


def mlp(hidden: int, depth: int = 1, batchnorm: bool = False, dropout: float = 0.0):
    def build(data: Data) -> nn.Module:
        layers: list[nn.Module] = []
        width = data[0].shape[1]
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if batchnorm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        return nn.Sequential(*layers, nn.Linear(width, _outputs(data[1])))

    return build


def cnn(batchnorm: bool = False, channels: int = 8):
    def build(data: Data) -> nn.Module:
        def block(cin: int, cout: int) -> list[nn.Module]:
            conv = [nn.Conv2d(cin, cout, 3, padding=1)]
            return conv + ([nn.BatchNorm2d(cout)] if batchnorm else []) + [nn.ReLU()]

        return nn.Sequential(
            *block(1, channels),
            nn.MaxPool2d(2),
            *block(channels, 2 * channels),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * channels, _outputs(data[1])),
        )

    return build


class Recurrent(nn.Module):
    def __init__(self, cell: str, vocab: int, outputs: int, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out[:, -1])


class TinyTransformer(nn.Module):
    """One pre-norm encoder layer (LayerNorm) over token and learned position embeddings."""

    def __init__(self, vocab: int, length: int, outputs: int, dim: int = 24) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(length, dim) * 0.1)
        self.layer = nn.TransformerEncoderLayer(
            dim, nhead=2, dim_feedforward=48, dropout=0.0, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.layer(self.embed(tokens) + self.position)
        return self.head(self.norm(h.mean(dim=1)))


def recurrent(cell: str):
    def build(data: Data) -> nn.Module:
        return Recurrent(cell, int(data[0].max()) + 1, _outputs(data[1]))

    return build


def transformer(data: Data) -> nn.Module:
    return TinyTransformer(int(data[0].max()) + 1, data[0].shape[1], _outputs(data[1]))


class MatrixFactorization(nn.Module):
    """rating = <user vector, item vector> + user bias + item bias + global bias."""

    def __init__(self, users: int, items: int, dim: int, outputs: int = 1) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(users, dim), nn.Embedding(items, dim)
        self.user_bias, self.item_bias = nn.Embedding(users, 1), nn.Embedding(items, 1)
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=0.1)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)
        self.bias = nn.Parameter(torch.zeros(outputs))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        u, i = pairs[:, 0], pairs[:, 1]
        dot = (self.user(u) * self.item(i)).sum(1, keepdim=True)
        return dot + self.user_bias(u) + self.item_bias(i) + self.bias


def factorization(users: int = 300, items: int = 200, dim: int = 16):
    def build(data: Data) -> nn.Module:
        return MatrixFactorization(users, items, dim)

    return build


class BagOfEmbeddings(nn.Module):
    """The mean of the tokens' embeddings (EmbeddingBag), then a linear layer."""

    def __init__(self, vocab: int, outputs: int, dim: int = 32) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.head = nn.Linear(dim, outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(tokens))


def bag_of_embeddings(data: Data) -> nn.Module:
    return BagOfEmbeddings(int(data[0].max()) + 1, _outputs(data[1]))


class TabularEmbeddings(nn.Module):
    """One embedding table per categorical column (fastai's tabular model), concatenated with
    the numeric columns, then an MLP."""

    def __init__(self, levels: tuple[int, ...], numeric: int, outputs: int, hidden: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, min(16, (n + 1) // 2)) for n in levels)
        width = sum(t.embedding_dim for t in self.tables) + numeric
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = len(self.tables)
        levels = x[:, :k].long()
        parts = [t(levels[:, j]) for j, t in enumerate(self.tables)]
        return self.mlp(torch.cat([*parts, x[:, k:]], dim=1))


def tabular(levels: tuple[int, ...], numeric: int, hidden: int = 64):
    def build(data: Data) -> nn.Module:
        return TabularEmbeddings(levels, numeric, _outputs(data[1]), hidden)

    return build


# Fine-tuning: a body pretrained on a source task (the same weights for every seed of a task),
# a fresh head for the target task, and the whole network trained at one LR.
PRETRAIN_STEPS = 400


@functools.cache
def _pretrained(source: str) -> dict[str, torch.Tensor]:
    """The state of a model trained on task ``source`` (Adam 1e-3, PRETRAIN_STEPS steps of
    batch 64), computed once per process from fixed seeds without touching the global RNG."""
    task = SOURCES[source]
    xt, yt, _, _ = task.load()
    with torch.random.fork_rng():
        torch.manual_seed(12345)
        model = task.model(task.load())
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = _gen(54321)
        loss_fn = task.loss_fn()
        for _ in range(PRETRAIN_STEPS):
            idx = torch.randint(0, len(xt), (64,), generator=g)
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def finetuned(source: str, build: Callable[[Data], nn.Module]):
    """``build`` for the target task, with every weight but the head's (the module that owns
    the last parameter) taken from a model pretrained on the ``source`` task; the head keeps
    its fresh initialisation."""

    def make(data: Data) -> nn.Module:
        model = build(data)
        head = list(model.state_dict())[-1].rsplit(".", 1)[0]
        body = {k: v for k, v in _pretrained(source).items() if not k.startswith(head + ".")}
        missing, unexpected = model.load_state_dict(body, strict=False)
        assert not unexpected and all(k.startswith(head + ".") for k in missing), (
            missing,
            unexpected,
        )
        return model

    return make


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------

OPTIMIZERS = (
    "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
    "nadam", "radam", "adamax", "adadelta",
)  # fmt: skip


def make_optimizer(name: str, params: object, lr: float) -> torch.optim.Optimizer:
    opt = torch.optim
    if name == "sgd":
        return opt.SGD(params, lr=lr)  # type: ignore[arg-type]
    if name == "momentum":
        return opt.SGD(params, lr=lr, momentum=0.9)  # type: ignore[arg-type]
    if name == "nesterov":
        return opt.SGD(params, lr=lr, momentum=0.9, nesterov=True)  # type: ignore[arg-type]
    if name == "adam":
        return opt.Adam(params, lr=lr)  # type: ignore[arg-type]
    if name == "adamw":
        return opt.AdamW(params, lr=lr, weight_decay=0.05)  # type: ignore[arg-type]
    if name == "rmsprop":
        return opt.RMSprop(params, lr=lr)  # type: ignore[arg-type]
    if name == "adagrad":
        return opt.Adagrad(params, lr=lr)  # type: ignore[arg-type]
    if name == "nadam":
        return opt.NAdam(params, lr=lr)  # type: ignore[arg-type]
    if name == "radam":
        return opt.RAdam(params, lr=lr)  # type: ignore[arg-type]
    if name == "adamax":
        return opt.Adamax(params, lr=lr)  # type: ignore[arg-type]
    if name == "adadelta":
        return opt.Adadelta(params, lr=lr)  # type: ignore[arg-type]
    raise ValueError(name)


# torch's default LR of each optimizer (the "optimizer's own default" row of the benchmark)
DEFAULT_LRS = {
    "sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adam": 1e-3, "adamw": 1e-3,
    "rmsprop": 1e-2, "adagrad": 1e-2, "nadam": 2e-3, "radam": 1e-3, "adamax": 2e-3,
    "adadelta": 1.0,
}  # fmt: skip


@dataclass(frozen=True)
class Task:
    name: str
    family: str
    data: Callable[[int], tuple]
    model: Callable[[Data], nn.Module]
    optimizer: str
    loss: str  # ce | mse | bce
    batch_size: int
    steps: int
    scale: float = 1.0
    label_noise: float = 0.0
    data_seed: int = 0
    raw_columns: int = 0  # leading input columns that are category levels (not standardised)
    tags: dict = field(default_factory=dict, compare=False)

    def load(self) -> Data:
        return _load(self.name)

    def loss_fn(self) -> nn.Module:
        return {"ce": nn.CrossEntropyLoss, "mse": nn.MSELoss, "bce": nn.BCEWithLogitsLoss}[
            self.loss
        ]()

    def make_optimizer(self, params: object, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer, params, lr)


@functools.cache
def _load(name: str) -> Data:
    t = TASKS[name] if name in TASKS else SOURCES[name]
    return prepare(t.data, t.data_seed, t.scale, t.label_noise, t.raw_columns)


def _tasks() -> list[Task]:
    T = Task
    return [
        # linear models
        T("linear-blobs-sgd", "linear", blobs(), linear, "sgd", "ce", 32, 300, data_seed=1),
        T("linear-digits-adagrad", "linear", digits, linear, "adagrad", "ce", 64, 500, data_seed=2),
        T("linear-teacher-momentum-x10", "linear", teacher(linear=True), linear, "momentum", "mse", 16, 400, scale=10.0, data_seed=3),
        T("linear-multilabel-adam", "linear", multilabel(), linear, "adam", "bce", 128, 600, data_seed=4),
        T("linear-blobs-rmsprop-noisy", "linear", blobs(4, 10), linear, "rmsprop", "ce", 8, 1000, label_noise=0.2, data_seed=5),
        T("linear-friedman-nesterov", "linear", friedman, linear, "nesterov", "mse", 256, 200, data_seed=6),
        # MLPs of depth 1-2, no normalisation
        T("mlp1-spirals-adam", "mlp", spirals(), mlp(64), "adam", "ce", 32, 1500, data_seed=11),
        T("mlp2-digits-sgd", "mlp", digits, mlp(64, 2), "sgd", "ce", 64, 800, data_seed=12),
        T("mlp1-blobs-momentum-x0.1", "mlp", blobs(), mlp(48), "momentum", "ce", 16, 400, scale=0.1, data_seed=13),
        T("mlp2-binary-adamw", "mlp", binary_blobs(), mlp(32, 2), "adamw", "bce", 128, 300, data_seed=14),
        T("mlp1-teacher-rmsprop", "mlp", teacher(), mlp(64), "rmsprop", "mse", 32, 2000, data_seed=15),
        T("mlp2-blobs-adagrad-noisy", "mlp", blobs(8, 16, 4), mlp(64, 2), "adagrad", "ce", 512, 150, label_noise=0.3, data_seed=16),
        # deeper MLPs with BatchNorm and/or dropout
        T("mlp3bn-digits-momentum", "mlp_norm", digits, mlp(64, 3, batchnorm=True), "momentum", "ce", 64, 400, data_seed=21),
        T("mlp4bn-spirals-adam", "mlp_norm", spirals(2.0), mlp(48, 4, batchnorm=True), "adam", "ce", 32, 1000, data_seed=22),
        T("mlp3drop-blobs-adamw", "mlp_norm", blobs(), mlp(64, 3, dropout=0.2), "adamw", "ce", 128, 500, data_seed=23),
        T("mlp4bndrop-multilabel-nesterov", "mlp_norm", multilabel(), mlp(48, 4, True, 0.1), "nesterov", "bce", 64, 300, data_seed=24),
        T("mlp3bn-friedman-sgd", "mlp_norm", friedman, mlp(64, 3, batchnorm=True), "sgd", "mse", 32, 800, data_seed=25),
        T("mlp4drop-digits-rmsprop-noisy", "mlp_norm", digits, mlp(64, 4, dropout=0.2), "rmsprop", "ce", 256, 200, label_noise=0.2, data_seed=26),
        # small CNNs without BatchNorm
        T("cnn-digits-momentum", "cnn", lambda s: _images(digits(s)), cnn(), "momentum", "ce", 64, 300, data_seed=31),
        T("cnn-shapes-adam", "cnn", shapes, cnn(), "adam", "ce", 32, 400, data_seed=32),
        T("cnn-digits-adagrad", "cnn", lambda s: _images(digits(s)), cnn(), "adagrad", "ce", 16, 500, data_seed=33),
        T("cnn-shapes-sgd", "cnn", shapes, cnn(), "sgd", "ce", 128, 200, data_seed=34),
        T("cnn-digits-rmsprop-noisy", "cnn", lambda s: _images(digits(s)), cnn(), "rmsprop", "ce", 32, 200, label_noise=0.2, data_seed=35),
        T("cnn-shapes-adamw-b8", "cnn", shapes, cnn(), "adamw", "ce", 8, 800, data_seed=36),
        # small CNNs with BatchNorm
        T("cnnbn-digits-momentum", "cnn_bn", lambda s: _images(digits(s)), cnn(True), "momentum", "ce", 64, 300, data_seed=41),
        T("cnnbn-shapes-adam", "cnn_bn", shapes, cnn(True), "adam", "ce", 32, 300, data_seed=42),
        T("cnnbn-digits-nesterov", "cnn_bn", lambda s: _images(digits(s)), cnn(True), "nesterov", "ce", 128, 200, data_seed=43),
        T("cnnbn-shapes-rmsprop", "cnn_bn", shapes, cnn(True), "rmsprop", "ce", 16, 400, data_seed=44),
        T("cnnbn-digits-adamw-x10", "cnn_bn", lambda s: _images(digits(s)), cnn(True), "adamw", "ce", 256, 100, scale=10.0, data_seed=45),
        T("cnnbn-shapes-momentum-noisy", "cnn_bn", shapes, cnn(True, 6), "momentum", "ce", 64, 500, label_noise=0.2, data_seed=46),
        # recurrent networks
        T("gru-majority-adam", "rnn", majority(), recurrent("gru"), "adam", "ce", 32, 400, data_seed=51),
        T("lstm-majority-rmsprop", "rnn", majority(12, 5, 3), recurrent("lstm"), "rmsprop", "ce", 64, 300, data_seed=52),
        T("gru-tokensum-momentum", "rnn", token_sum(), recurrent("gru"), "momentum", "mse", 32, 400, data_seed=53),
        T("lstm-first-adam", "rnn", first_marker(), recurrent("lstm"), "adam", "ce", 16, 600, data_seed=54),
        T("gru-majority-adamw-noisy", "rnn", majority(), recurrent("gru"), "adamw", "ce", 128, 200, label_noise=0.2, data_seed=55),
        T("lstm-tokensum-adagrad", "rnn", token_sum(8), recurrent("lstm"), "adagrad", "mse", 64, 300, data_seed=56),
        # a tiny transformer with LayerNorm
        T("tf-majority-adam", "transformer", majority(), transformer, "adam", "ce", 32, 300, data_seed=61),
        T("tf-majority-adamw", "transformer", majority(20, 10, 5), transformer, "adamw", "ce", 64, 400, data_seed=62),
        T("tf-first-momentum", "transformer", first_marker(), transformer, "momentum", "ce", 32, 400, data_seed=63),
        T("tf-tokensum-adam", "transformer", token_sum(), transformer, "adam", "mse", 16, 300, data_seed=64),
        T("tf-majority-sgd", "transformer", majority(), transformer, "sgd", "ce", 128, 200, data_seed=65),
        T("tf-first-rmsprop", "transformer", first_marker(10, 6), transformer, "rmsprop", "ce", 64, 300, data_seed=66),
        # regression MLPs over target and input scales
        T("reg-friedman-adam", "regression", friedman, mlp(64, 2), "adam", "mse", 32, 600, data_seed=71),
        T("reg-teacher-momentum", "regression", teacher(), mlp(64), "momentum", "mse", 64, 1000, data_seed=72),
        T("reg-teacher-nesterov-y10", "regression", teacher(target_scale=30.0), mlp(64, 2), "nesterov", "mse", 32, 400, data_seed=73),
        T("reg-friedman-rmsprop-bn", "regression", friedman, mlp(64, 3, batchnorm=True), "rmsprop", "mse", 128, 300, data_seed=74),
        T("reg-sine-adam-b16", "regression", sine, mlp(32, 2), "adam", "mse", 16, 2000, data_seed=75),
        T("reg-friedman-adagrad-x10", "regression", friedman, mlp(32, 2), "adagrad", "mse", 8, 800, scale=10.0, data_seed=76),
        # models with embedding tables: matrix factorisation, a bag of embeddings, tabular
        T("mf-ratings-adam", "embedding", ratings(100, 80, 4), factorization(100, 80), "adam", "mse", 64, 600, data_seed=81),
        T("mf-ratings-momentum", "embedding", ratings(80, 60, 4), factorization(80, 60, 8), "momentum", "mse", 32, 800, data_seed=82),
        T("mf-implicit-adagrad", "embedding", ratings(60, 40, 4, implicit=True), factorization(60, 40), "adagrad", "bce", 128, 400, data_seed=83),
        T("bag-majority-nadam", "embedding", majority(24, 12, 5), bag_of_embeddings, "nadam", "ce", 32, 500, data_seed=84),
        T("tabular-embed-adamw", "embedding", categorical(), tabular((12, 30, 50, 8, 20), 4), "adamw", "ce", 64, 500, raw_columns=5, data_seed=85),
        T("mf-ratings-rmsprop-b16", "embedding", ratings(120, 100, 6), factorization(120, 100, 32), "rmsprop", "mse", 16, 1000, data_seed=86),
        # fine-tuning a pretrained body with a fresh head (sources: SOURCES below)
        T("ft-teacher-mlp-adam", "finetune", teacher(16, 1), finetuned("src-teacher", mlp(64, 2)), "adam", "mse", 32, 300, data_seed=191),
        T("ft-digits-cnn-momentum", "finetune", lambda s: _images(digits(s)), finetuned("src-digits04", cnn()), "momentum", "ce", 64, 300, data_seed=92),
        T("ft-first-tf-adamw", "finetune", first_marker(16, 6), finetuned("src-majority", transformer), "adamw", "ce", 32, 400, data_seed=93),
        T("ft-tokensum-gru-radam", "finetune", token_sum(16, 6), finetuned("src-majority-gru", recurrent("gru")), "radam", "mse", 32, 300, data_seed=94),
        T("ft-blobs-mlpbn-nesterov", "finetune", parity(blobs(4, 20, 3, 2.0)), finetuned("src-blobs", mlp(64, 2, batchnorm=True)), "nesterov", "ce", 64, 200, data_seed=95),
        T("ft-shapes-cnnbn-adamax", "finetune", shapes_binary, finetuned("src-shapes", cnn(True)), "adamax", "bce", 32, 300, data_seed=96),
        # long trainings: budgets of 10 to 20 sweeps of 100 steps
        T("long-mlp2-digits-adam", "long", digits, mlp(64, 2), "adam", "ce", 32, 2000, data_seed=101),
        T("long-cnn-shapes-momentum", "long", shapes, cnn(), "momentum", "ce", 32, 1500, data_seed=102),
        T("long-gru-majority-nadam", "long", majority(), recurrent("gru"), "nadam", "ce", 32, 1500, data_seed=103),
        T("long-reg-friedman-adadelta", "long", friedman, mlp(64, 2), "adadelta", "mse", 16, 2000, data_seed=104),
        T("long-mlp3bn-blobs-radam", "long", blobs(8, 16, 4), mlp(64, 3, batchnorm=True), "radam", "ce", 64, 1000, label_noise=0.1, data_seed=105),
        T("long-linear-multilabel-adamax", "long", multilabel(), linear, "adamax", "bce", 32, 2000, data_seed=106),
    ]  # fmt: skip


def _sources() -> list[Task]:
    """The source tasks the fine-tuning family's bodies are pretrained on (not scored)."""
    T = Task
    return [
        T("src-teacher", "source", teacher(16, 4), mlp(64, 2), "adam", "mse", 64, PRETRAIN_STEPS, data_seed=191),
        T("src-digits04", "source", lambda s: _images(digits_subset((0, 1, 2, 3, 4))(s)), cnn(), "adam", "ce", 64, PRETRAIN_STEPS, data_seed=192),
        T("src-majority", "source", majority(16, 6), transformer, "adam", "ce", 64, PRETRAIN_STEPS, data_seed=193),
        T("src-majority-gru", "source", majority(16, 6), recurrent("gru"), "adam", "ce", 64, PRETRAIN_STEPS, data_seed=194),
        T("src-blobs", "source", blobs(4, 20, 3, 2.0), mlp(64, 2, batchnorm=True), "adam", "ce", 64, PRETRAIN_STEPS, data_seed=95),
        T("src-shapes", "source", shapes, cnn(True), "adam", "ce", 64, PRETRAIN_STEPS, data_seed=196),
    ]  # fmt: skip


def _images(xy: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return xy[0].view(-1, 1, 8, 8), xy[1]


TASKS: dict[str, Task] = {t.name: t for t in _tasks()}
SOURCES: dict[str, Task] = {t.name: t for t in _sources()}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(t.family for t in TASKS.values()))
SEEDS = (0, 1, 2)
# --quick: one task of each of three families, one seed (seconds, for CI)
QUICK = ("linear-blobs-sgd", "mlp2-binary-adamw", "reg-friedman-adam")
