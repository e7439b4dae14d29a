"""Running under ``torchrun``: process group, data shards, and agreement between ranks.

``torchrun --nproc_per_node=N -m lrtool find CONFIG`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables set. Each rank builds the same model
from the config's seed, wraps it in ``DistributedDataParallel`` and trains on its shard of every
global batch (``data.batch_size`` is the global batch; each rank takes ``batch_size / N`` of
it). The range test and the trainer average each step's loss over the ranks
(:func:`mean_over_ranks`), so every rank sees the same curve and stops at the same step. Only
rank 0 prints and writes files.

The same averaging is what makes :func:`lrtool.find_lr` work inside a user's own DDP script: it
all-reduces the loss whenever a process group with more than one rank is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from lrtool.errors import LrtoolError, usage_error

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by torchrun (or a similar launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def choose_backend(requested: str, device: torch.device) -> str:
    """``auto``: nccl for CUDA devices, gloo otherwise; a named backend must be available."""
    if requested not in BACKENDS:
        raise usage_error(f"--backend: must be one of {', '.join(BACKENDS)}, got {requested!r}")
    backend = requested
    if requested == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    available = {"gloo": dist.is_gloo_available(), "nccl": dist.is_nccl_available()}
    if not available[backend]:
        raise LrtoolError(
            f"--backend: {backend} is not available in this torch build; "
            f"use --backend {'gloo' if backend == 'nccl' else 'nccl'} or --backend auto"
        )
    if backend == "nccl" and device.type != "cuda":
        raise usage_error("--backend: nccl needs CUDA devices; use gloo on the CPU (or auto)")
    return backend


def init_from_env(device: torch.device, requested: str = "auto") -> DistContext | None:
    """Join the process group torchrun set up; ``None`` when running as a single process."""
    if not launched_by_torchrun():
        return None
    backend = choose_backend(requested, device)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return DistContext(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend
    )


def active_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_over_ranks(value: float, device: torch.device | None = None) -> float:
    """The mean of ``value`` over all ranks (the value itself in a single process).

    NaN or Inf on any rank makes the mean non-finite everywhere, so all ranks stop together.
    """
    world = active_world_size()
    if world == 1:
        return value
    on = device if device is not None and dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.float64, device=on)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / world


def shard_batch_size(global_batch: int, world_size: int) -> int:
    if global_batch % world_size:
        raise usage_error(
            f"data.batch_size: the global batch {global_batch} is not divisible by the world "
            f"size {world_size}; use a multiple of {world_size}"
        )
    return global_batch // world_size


def wrap_model(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else ctx.local_rank]
    return DistributedDataParallel(model, device_ids=ids if device.type == "cuda" else None)


def finish(ctx: DistContext | None) -> None:
    if ctx is not None and dist.is_initialized():
        dist.destroy_process_group()
