"""The state a range test or a search restores: weights, buffers, optimizer state and
hyperparameters, train/eval modes and RNG, kept where ``snapshot`` says.

* ``"cpu"``: one host copy of the tensors (the default).
* ``"disk"``: the tensors streamed to a file in a temporary folder (``snapshot_dir``, else the
  system's), read back memory-mapped: for models whose weights and optimizer state do not fit
  twice in host memory. The folder is removed when the snapshot is closed.
* ``"none"``: nothing is kept; the caller reloads the model itself.

Each tensor is saved and restored where it lives, in place: a model sharded with FSDP2
(``fully_shard``) has DTensor parameters and optimizer state, and each rank keeps and
restores its own shards (``to_local()``), with no gather. A DDP model's tensors are its own.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrtool.errors import LrtoolError, usage_error
from lrtool.loop import map_tensors
from lrtool.settings import SNAPSHOT_MODES, one_of


def check_mode(mode: str) -> None:
    if mode not in SNAPSHOT_MODES:
        raise usage_error(f"snapshot: must be {one_of(SNAPSHOT_MODES)}, got {mode!r}")


def cpu_copy(obj: Any) -> Any:
    """A detached CPU copy of every tensor inside ``obj`` (dicts, lists and tuples)."""
    return map_tensors(lambda t: t.detach().to("cpu", copy=True), obj)


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a tensor: the local shard of a DTensor (FSDP2), else the tensor."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if callable(to_local) else tensor


def _own_storage(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, or a compact copy when it views a larger storage (torch.save writes a view's
    whole storage: an FSDP2 shard is a view of its padded buffer)."""
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        return tensor.clone()
    return tensor


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@dataclass
class StateSnapshot:
    """One rank's training state, to put back in place any number of times."""

    mode: str
    tensors: dict[str, Any] | None  # cpu: the copies; disk: None (they are in ``path``)
    groups: list[dict[str, Any]]  # the optimizer's hyperparameters, param group by group
    modes: dict[str, bool]
    cpu_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    path: Path | None = None
    _cleanup: Any = field(default=None, repr=False)

    @classmethod
    def take(
        cls,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        mode: str = "cpu",
        folder: str | Path | None = None,
    ) -> StateSnapshot | None:
        """Keep the state (``None`` for ``mode="none"``)."""
        check_mode(mode)
        if mode == "none":
            return None
        tensors = {
            "params": [local(p.detach()) for p in model.parameters()],
            "buffers": [local(b.detach()) for b in model.buffers()],
            "state": [_tensor_state(optimizer, p) for p in _optimizer_params(optimizer)],
        }
        groups = [
            cpu_copy({k: v for k, v in g.items() if k != "params"}) for g in optimizer.param_groups
        ]
        modes = {name: m.training for name, m in model.named_modules()}
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        if mode == "cpu":
            return cls(mode, cpu_copy(tensors), groups, modes, cpu_rng, cuda_rng)
        base = Path(folder).expanduser() if folder is not None else None
        if base is not None and not base.is_dir():
            raise usage_error(f"snapshot_dir: {base} is not a folder; create it or choose another")
        directory = Path(tempfile.mkdtemp(prefix="lrtool-snapshot-", dir=base))
        path = directory / "state.pt"
        try:
            torch.save(map_tensors(_own_storage, tensors), path)
        except (OSError, RuntimeError) as exc:  # a full disk reaches torch's zip writer too
            shutil.rmtree(directory, ignore_errors=True)
            reason = getattr(exc, "strerror", None) or _first_line(exc)
            raise LrtoolError(
                f"snapshot_dir: cannot keep the start state in {directory.parent} ({reason}); "
                f"free space there, choose another find.snapshot_dir, or use snapshot: cpu"
            ) from None
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        snapshot = cls(mode, None, groups, modes, cpu_rng, cuda_rng, path)
        # The folder goes with the snapshot, also when a caller forgets close().
        snapshot._cleanup = weakref.finalize(snapshot, shutil.rmtree, directory, True)
        return snapshot

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Put the state back, in place."""
        saved = self.tensors
        if saved is None:
            assert self.path is not None
            saved = torch.load(self.path, map_location="cpu", mmap=True, weights_only=True)
        with torch.no_grad():
            for live, value in zip(model.parameters(), saved["params"], strict=True):
                local(live.data).copy_(value)
            for buffer, value in zip(model.buffers(), saved["buffers"], strict=True):
                local(buffer).copy_(value)
        for param, state in zip(_optimizer_params(optimizer), saved["state"], strict=True):
            _put_state(optimizer, param, state)
        for group, values in zip(optimizer.param_groups, self.groups, strict=True):
            # Keys added since (a scheduler's 'initial_lr') go too: a warm-up scheduler
            # attached later reads 'initial_lr' if present, so a left-over one would make it
            # train at the LR from the range test's last candidate, not the one the user set.
            for key in [k for k in group if k != "params" and k not in values]:
                del group[key]
            for key, value in values.items():
                if isinstance(group.get(key), torch.Tensor) and isinstance(value, torch.Tensor):
                    group[key].copy_(value)  # a tensor LR (capturable optimizers) stays one
                else:
                    group[key] = value
        for name, module in model.named_modules():
            if name in self.modes:
                module.training = self.modes[name]
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)

    def close(self) -> None:
        """Free what the snapshot holds (a disk snapshot's folder)."""
        if self._cleanup is not None:
            self._cleanup()


def _optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _tensor_state(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, Any] | None:
    """A parameter's optimizer state (None: it has none yet), with local shards."""
    state = optimizer.state.get(param)
    if not state:
        return None
    return {k: local(v.detach()) if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _put_state(
    optimizer: torch.optim.Optimizer, param: torch.Tensor, saved: dict[str, Any] | None
) -> None:
    """Restore one parameter's optimizer state: none (the optimizer starts it afresh at its
    next step, as before the snapshot), or each tensor copied into place."""
    if saved is None:
        optimizer.state.pop(param, None)
        return
    current = optimizer.state.setdefault(param, {})
    for key in list(current):
        if key not in saved:
            del current[key]
    with torch.no_grad():
        for key, value in saved.items():
            live = current.get(key)
            if isinstance(value, torch.Tensor) and isinstance(live, torch.Tensor):
                local(live).copy_(value)
            else:
                current[key] = value.clone() if isinstance(value, torch.Tensor) else value
