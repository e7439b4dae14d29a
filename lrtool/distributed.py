"""Running under ``torchrun``: process group, data shards, and agreement between ranks.

``torchrun --nproc_per_node=N -m lrtool find CONFIG`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables set. Each rank builds the same model
from the config's seed, wraps it in ``DistributedDataParallel`` and trains on its shard of every
global batch (``data.batch_size`` is the global batch; each rank takes ``batch_size / N`` of
it). The range test and the trainer average each step's loss over the ranks
(:func:`mean_over_ranks`), so every rank sees the same curve and stops at the same step. Only
rank 0 prints and writes files.

This module imports torch only inside the functions that need it: the CLI asks it about the
launch (``launched_by_torchrun``, ``is_main_rank``) on every command, plot and schedules
included, which must stay torch-free.

The same averaging is what makes :func:`lrtool.find_lr` work inside a user's own DDP script: it
all-reduces the loss whenever a process group with more than one rank is initialised.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrtool.errors import LrtoolError, usage_error

if TYPE_CHECKING:
    import torch

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by torchrun (or a similar launcher), or
    the one process of ``torchrun --nproc_per_node=1``: that one too joins a process group
    with the chosen backend and wraps the model (DDP or FSDP2), so a one-GPU check exercises
    NCCL and the sharding."""
    if "RANK" not in os.environ:
        return False
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def is_main_rank() -> bool:
    """Rank 0 under torchrun, or a single process (read from the environment)."""
    return not launched_by_torchrun() or int(os.environ["RANK"]) == 0


def check_backend(requested: str) -> None:
    if requested not in BACKENDS:
        raise usage_error(f"--backend: must be one of {', '.join(BACKENDS)}, got {requested!r}")


def choose_backend(requested: str, device: torch.device) -> str:
    """``auto``: nccl for CUDA devices, gloo otherwise; a named backend must be available."""
    import torch.distributed as dist

    check_backend(requested)
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
    import torch
    import torch.distributed as dist

    backend = choose_backend(requested, device)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return DistContext(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend
    )


def active_world_size() -> int:
    """The size of the initialised process group, 1 without one (torch is not imported here)."""
    dist = sys.modules.get("torch.distributed")
    return dist.get_world_size() if dist and dist.is_available() and dist.is_initialized() else 1


def mean_over_ranks(value: float, device: torch.device | None = None) -> float:
    """The mean of ``value`` over all ranks (the value itself in a single process).

    NaN or Inf on any rank makes the mean non-finite everywhere, so all ranks stop together.
    """
    world = active_world_size()
    if world == 1:
        return value
    import torch
    import torch.distributed as dist

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


def wrap_model(
    model: torch.nn.Module, ctx: DistContext, device: torch.device, strategy: str = "ddp"
) -> Any:
    """``ddp``: a DistributedDataParallel replica on every rank. ``fsdp``: FSDP2
    (``fully_shard``), each rank holding a shard of every weight, its gradient and its
    optimizer state (see :func:`shard_fully`)."""
    if strategy == "fsdp":
        return shard_fully(model)
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else ctx.local_rank]
    return DistributedDataParallel(model, device_ids=ids if device.type == "cuda" else None)


def shard_fully(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2 on ``model``: each block is its own unit (the children of the root and the
    members of every ``nn.ModuleList``, a transformer's layers), sharded before its parent so
    that only one block's full weights exist at a time in the forward pass; then the root."""
    import torch
    from torch.distributed.fsdp import fully_shard

    blocks: list[torch.nn.Module] = list(model.children())
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList):
            blocks += list(module)
    seen: set[int] = set()
    for block in reversed(blocks):  # innermost first: a unit is sharded before its parent
        if id(block) in seen or not any(True for _ in block.parameters()):
            continue
        seen.add(id(block))
        fully_shard(block)
    fully_shard(model)
    return model


def describe(global_batch: int, strategy: str = "ddp") -> dict[str, Any] | None:
    """World size, backend, strategy and batch sizes of a torchrun run (None for one process)."""
    if not launched_by_torchrun():
        return None
    dist = sys.modules.get("torch.distributed")
    world = int(os.environ["WORLD_SIZE"])
    return {
        "world_size": world,
        "backend": dist.get_backend() if dist and dist.is_initialized() else None,
        "global_batch": global_batch,
        "per_rank_batch": global_batch // world,
        "strategy": strategy,
    }


_left: list[bool] = []  # this process left a process group (see left_a_process_group)


def finish(finished: bool) -> None:
    """Leave the process group, if one was joined. After a run that finished, wait for every
    rank first, so that no rank tears its connections down while another still uses them."""
    dist = sys.modules.get("torch.distributed")
    if dist and dist.is_available() and dist.is_initialized():
        _left.append(True)
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def left_a_process_group() -> bool:
    """Whether this process joined and left a process group. Such a process should end
    without the interpreter's finalization: objects the run kept (FSDP2's device mesh holds
    its gloo group) are freed then, and gloo's worker threads, still running, can abort the
    process (``terminate called without an active exception``, SIGABRT, seen once in CI
    after a finished FSDP2 train; pytorch/pytorch#179291)."""
    return bool(_left)


PEER_FAILURES = ("Connection closed by peer", "Connection reset by peer", "Broken pipe")


def peer_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is this rank losing a collective because another rank went away (its
    own error is the one to report), under torchrun."""
    if not launched_by_torchrun():
        return False
    text = str(exc)
    return type(exc).__name__ == "DistBackendError" or any(p in text for p in PEER_FAILURES)
