"""Turn a validated config into the objects a run needs: data, model, loss, optimizer, device."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lrtool.config import Config, OptimizerConfig
from lrtool.data import DataBundle, TensorBatches, load_data
from lrtool.distributed import DistContext
from lrtool.errors import LrtoolError, usage_error
from lrtool.models import build_model


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for a missing device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise usage_error(
            "device: cuda was asked for but no CUDA GPU is available; use cpu or auto"
        )
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise usage_error("device: mps was asked for but is not available; use cpu or auto")
    return torch.device(name)


def build_loss(name: str, task: str) -> nn.Module:
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    return {
        "cross_entropy": nn.CrossEntropyLoss,
        "mse": nn.MSELoss,
        "l1": nn.L1Loss,
        "bce_with_logits": nn.BCEWithLogitsLoss,
    }[name]()


def build_optimizer(
    cfg: OptimizerConfig, params: Iterable[nn.Parameter], lr: float | None = None
) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    if cfg.name in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        return cls(
            params,
            lr=lr,
            betas=(cfg.betas[0], cfg.betas[1]),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
        )
    return torch.optim.RMSprop(
        params,
        lr=lr,
        alpha=cfg.alpha,
        eps=cfg.eps,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )


@dataclass
class Setup:
    """Everything one run needs, built from a config with its seed."""

    config: Config
    data: DataBundle
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    dist: DistContext | None = None  # set under torchrun

    def fresh_train_batches(self) -> Iterable:
        """Training batches in the config's seeded order, from the first pass."""
        train = self.data.train
        if isinstance(train, TensorBatches):
            return TensorBatches(
                train.inputs,
                train.targets,
                train.batch_size,
                train.shuffle,
                train.seed,
                train.rank,
                train.world_size,
            )
        return train

    def new_optimizer(self, lr: float | None = None) -> torch.optim.Optimizer:
        return build_optimizer(self.config.optimizer, self.model.parameters(), lr)


def build(
    config: Config,
    base_dir: Path | None = None,
    data: DataBundle | None = None,
    dist: DistContext | None = None,
) -> Setup:
    """Seed, then build data (unless given), model, loss and optimizer on the chosen device.

    Under torchrun (``dist``), every rank builds the same model from the seed, wraps it in
    DistributedDataParallel and reads its shard of each global batch.
    """
    device = resolve_device(config.device)
    if dist is not None and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    torch.manual_seed(config.seed)
    data = data or load_data(config.data, config.seed, config.loss, base_dir)
    if dist is not None:
        data.train = shard(data.train, dist, config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config.model, data, base_dir).to(device)
    if isinstance(data.train, TensorBatches) and device.type != "cpu":
        data.train = data.train.to(device)
        data.val = data.val.to(device) if data.val is not None else None
    if dist is not None:
        from lrtool.distributed import wrap_model

        model = wrap_model(model, dist, device)
    loss_fn = build_loss(config.loss, data.task)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    return Setup(config, data, model, loss_fn, optimizer, device, dist)


def shard(train: Iterable, dist: DistContext, seed: int) -> Iterable:
    """This rank's share of every global batch (``data.batch_size`` is the global batch)."""
    from torch.utils.data import DataLoader, DistributedSampler

    from lrtool.distributed import shard_batch_size

    if isinstance(train, TensorBatches):
        shard_batch_size(train.batch_size, dist.world_size)
        train.rank, train.world_size = dist.rank, dist.world_size
        return train
    if isinstance(train, DataLoader) and train.batch_size is not None:
        per_rank = shard_batch_size(train.batch_size, dist.world_size)
        sampler: DistributedSampler = DistributedSampler(
            train.dataset, dist.world_size, dist.rank, shuffle=True, seed=seed, drop_last=True
        )
        return DataLoader(train.dataset, batch_size=per_rank, sampler=sampler, drop_last=True)
    raise LrtoolError("under torchrun, the training data must be a batched dataset")


def check_batch(setup: Setup) -> None:
    """Run one forward pass so a model/data mismatch is one clear error before the run."""
    batch = next(iter(setup.fresh_train_batches()))
    inputs = batch[0] if isinstance(batch, tuple | list) else batch
    try:
        with torch.no_grad():
            setup.model.eval()
            out = setup.model(
                inputs.to(setup.device) if isinstance(inputs, torch.Tensor) else inputs
            )
            setup.model.train()
            if isinstance(batch, tuple | list) and isinstance(out, torch.Tensor):
                setup.loss_fn(out, batch[1].to(setup.device))
    except Exception as exc:
        setup.model.train()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LrtoolError(
            f"model: a forward pass on one batch failed ({type(exc).__name__}: {first}); "
            f"check that the model's input and output sizes match the data "
            f"({setup.data.n_features} features, {setup.data.n_outputs} outputs)"
        ) from exc
