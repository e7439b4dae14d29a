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
from lrtool.errors import LrtoolError, describe_exception, usage_error
from lrtool.loop import check_scalar, to_device
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
    check_memory(config)
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

        model = wrap_model(model, dist, device, config.distributed)
    loss_fn = build_loss(config.loss, data.task)
    if not any(p.requires_grad for p in model.parameters()):
        raise LrtoolError(
            "model: it has no trainable parameters (none, or all with requires_grad=False); "
            "an LR needs something to train"
        )
    optimizer = build_optimizer(config.optimizer, model.parameters())
    return Setup(config, data, model, loss_fn, optimizer, device, dist)


def physical_memory() -> int | None:
    """Bytes of RAM on this machine (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def estimated_bytes(config: Config) -> int:
    """A lower bound on the memory a config's data and built-in model take (float32): the
    synthetic dataset (inputs, and their standardized train/val copies), and the MLP's
    weights with their gradient, optimizer state and snapshot (six copies)."""
    data = config.data
    total = 0
    n_inputs = 64  # the digits' features: small either way
    if data.source == "synthetic":
        n_inputs = data.n_features
        total += 3 * data.n_samples * data.n_features * 4
    model = config.model
    if model.name in ("mlp", "linear"):
        sizes = [n_inputs, *(model.hidden if model.name == "mlp" else [])]
        weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
        total += 6 * weights * 4
    return total


def check_memory(config: Config) -> None:
    """Refuse, with one line and before allocating, a config that cannot fit in RAM."""
    need = estimated_bytes(config)
    have = physical_memory()
    if have is not None and need > have:
        raise LrtoolError(
            f"data/model: this config needs at least {need / 1e9:.1f} GB of memory and the "
            f"machine has {have / 1e9:.1f} GB; lower data.n_samples, data.n_features or "
            f"model.hidden"
        )


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
    """Run one forward pass (and the loss) so a model/data mismatch is one clear error before
    the run: a batch that cannot be formed, sizes that do not match, an output that is not a
    prediction."""
    from lrtool.loop import forward

    try:
        batch = next(iter(setup.fresh_train_batches()))
    except LrtoolError:
        raise
    except Exception as exc:
        raise LrtoolError(
            f"data: the first training batch cannot be formed ({describe_exception(exc)}); "
            f"every item must have the same shape"
        ) from None
    try:
        with torch.no_grad():
            setup.model.eval()
            loss, _, _ = forward(setup.model, to_device(batch, setup.device), setup.loss_fn)
            check_scalar(loss)
    except LrtoolError as exc:
        raise LrtoolError(f"model: {exc.message}") from None
    except Exception as exc:
        raise LrtoolError(
            f"model: a forward pass on one batch failed ({describe_exception(exc)}); "
            f"check that the model's input and output sizes match the data "
            f"({setup.data.n_features} features, {setup.data.n_outputs} outputs)"
        ) from exc
    finally:
        setup.model.train()
