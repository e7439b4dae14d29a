"""What every job shares: the config with the command's flags applied, the run folder, and
the setup built from the config. No torch at import time."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtool import distributed
from lrtool.config import Config, apply_overrides, default_config, load_config
from lrtool.errors import LrtoolError, usage_error

if TYPE_CHECKING:
    from lrtool.build import Setup

DEVICES = ("auto", "cpu", "cuda", "mps")
# (step, total, lr, loss) after each step; phase(label) when a new stage starts.
Progress = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, where it came from, and the folder its relative paths start at."""

    config: Config
    source: str  # the file as given, or "quickstart" for the embedded default
    base_dir: Path | None

    @property
    def name(self) -> str:
        """The name run folders carry: the config file's stem."""
        return Path(self.source).stem if self.source != "quickstart" else "quickstart"

    def with_sets(self, sets: list[str]) -> LoadedConfig:
        """``--set section.key=value`` for any config key (``find --set``): each value read
        as ``--set`` reads schedule values, the whole config validated again."""
        if not sets:
            return self
        from lrtool.config import parse_config
        from lrtool.schedules import parse_sets

        data = self.config.model_dump()
        for key, value in parse_sets(sets).items():
            *sections, name = key.split(".")
            if not sections and (name not in data or isinstance(data[name], dict)):
                raise usage_error(f"--set {key}: give section.key=value (e.g. data.batch_size=32)")
            node = data
            for section in sections:
                if not isinstance(node.get(section), dict):
                    raise usage_error(f"--set {key}: the config has no section '{section}'")
                node = node[section]
            node[name] = value
        return LoadedConfig(
            parse_config(data, f"{self.source} (--set)"), self.source, self.base_dir
        )

    def with_values(self, section: str, values: dict[str, Any]) -> LoadedConfig:
        """The config with flag values (those not None) set in ``section``, re-validated."""
        changed = apply_overrides(self.config, section, values, self.source)
        return LoadedConfig(changed, self.source, self.base_dir)


@dataclass(frozen=True)
class LoopFlags:
    """The ``loop:`` settings every training command takes as flags (None: from the config)."""

    accumulation_steps: int | None = None
    amp: str | None = None
    grad_clip: float | None = None

    def values(self) -> dict[str, Any]:
        return {
            "accumulation_steps": self.accumulation_steps,
            "amp": self.amp,
            "grad_clip": self.grad_clip,
        }


def load(
    path: Path | None,
    seed: int | None = None,
    device: str | None = None,
    loop: LoopFlags | None = None,
) -> LoadedConfig:
    """The config file (or the embedded quickstart) with ``--seed``, ``--device`` and the loop
    flags applied; under torchrun, the global batch is checked against the world size."""
    if path is None:
        loaded = LoadedConfig(default_config(), "quickstart", None)
    else:
        loaded = LoadedConfig(load_config(path), str(path), path.resolve().parent)
    if device is not None and device not in DEVICES:
        raise usage_error(f"--device: must be auto, cpu, cuda or mps, got {device!r}")
    loaded = loaded.with_values("", {"seed": seed, "device": device})
    if loop is not None:
        loaded = loaded.with_values("loop", loop.values())
    if distributed.launched_by_torchrun():  # before any folder is made
        distributed.shard_batch_size(loaded.config.data.batch_size, int(os.environ["WORLD_SIZE"]))
    return loaded


def with_train_steps(loaded: LoadedConfig, steps: int | None) -> LoadedConfig:
    """``--steps`` for train and compare; eval_every shrinks with it so a short run still
    evaluates."""
    if steps is None:
        return loaded
    every = min(loaded.config.train.eval_every, steps) if steps >= 1 else None
    return loaded.with_values("train", {"steps": steps, "eval_every": every})


@dataclass(frozen=True)
class RunLength:
    """A training command's length once epochs are counted: the config with ``train.steps``
    set, and the steps per epoch and epochs it came from (None: given in steps)."""

    loaded: LoadedConfig
    steps_per_epoch: int | None = None
    epochs: float | None = None

    def summary(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch}


def steps_per_epoch(loaded: LoadedConfig) -> int:
    """``train.steps_per_epoch``, or the optimizer steps one pass over the training data takes:
    its batches divided by ``loop.accumulation_steps`` (at least 1)."""
    config = loaded.config
    if config.train.steps_per_epoch is not None:
        return config.train.steps_per_epoch
    from lrtool.data import load_data

    bundle = load_data(config.data, config.seed, config.loss, loaded.base_dir)
    try:
        batches = len(bundle.train)
    except TypeError:
        raise usage_error(
            "epochs: the training data has no length (an iterable dataset); "
            "set train.steps_per_epoch"
        ) from None
    return max(1, round(batches / config.loop.accumulation_steps))


def with_run_length(
    loaded: LoadedConfig, steps: int | None, epochs: float | None, counts_epochs: bool = False
) -> RunLength:
    """``--steps``/``--epochs`` (else ``train.steps``/``train.epochs``) as ``train.steps``;
    the steps per epoch are counted when the length or a schedule (``counts_epochs``) is in
    epochs."""
    if steps is not None and epochs is not None:
        raise usage_error("give --epochs or --steps, not both")
    if epochs is not None and not (epochs > 0 and epochs < float("inf")):
        raise usage_error(f"--epochs: must be > 0, got {epochs}")
    if epochs is None and steps is None:
        epochs = loaded.config.train.epochs
    if epochs is None and not counts_epochs:
        return RunLength(with_train_steps(loaded, steps))
    per_epoch = steps_per_epoch(loaded)
    if epochs is not None:
        from lrtool.schedules import epochs_to_steps

        steps = epochs_to_steps(epochs, per_epoch)
        loaded = loaded.with_sets(["train.epochs=none"])
    return RunLength(with_train_steps(loaded, steps), per_epoch, epochs)


def run_folders(out: Path | None, config_name: str, command: str) -> tuple[Path, Iterator[Path]]:
    """The run folder and the ones to try if it is taken: ``--out DIR`` alone, or
    ``runs/<config-name>-<command>-<timestamp>/`` then the same with ``-2``, ``-3``, ... (runs
    started in the same second each get their own folder; the claim settles who gets which)."""
    if out is not None:
        return out.expanduser(), iter(())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^\w.-]+", "_", config_name) or "run"
    base = Path("runs") / f"{safe}-{command}-{stamp}"
    return base, (base.with_name(f"{base.name}-{k}") for k in range(2, 1000))


def png_after_results(kind: str, png: Path, force: bool, folder: Path, **data: Any) -> Path:
    """The ``--png`` of a run whose result files are already in place: if it cannot be written
    (a full disk, ``ulimit -f``), the line says so and that the results are complete."""
    from lrtool.png import write_png

    try:
        return write_png(kind, png, force, **data)
    except LrtoolError as exc:
        raise LrtoolError(f"{exc.message}; the results are complete in {folder}") from None


def check_png(png: Path | None, force: bool) -> None:
    """Fail before any work when ``--png`` cannot be honoured (checked once, up front)."""
    if png is not None:
        from lrtool.png import check_png_target

        check_png_target(png, force)


def prepare(loaded: LoadedConfig, backend: str = "auto") -> Setup:
    """Build a config's setup; under torchrun, join the process group first.

    The run owns its process (a CLI command or a compare worker), so it also keeps freed CPU
    memory for the next step instead of page-faulting it back in (:mod:`lrtool.heap`).
    """
    from lrtool.build import build, check_batch, resolve_device
    from lrtool.heap import retain_freed_memory

    retain_freed_memory()
    dist = distributed.init_from_env(resolve_device(loaded.config.device), backend)
    try:
        setup = build(loaded.config, loaded.base_dir, dist=dist)
        check_batch(setup)
    except SystemExit as exc:  # user code (a model or data function) must not end lrtool
        raise LrtoolError(
            f"user code called sys.exit({exc.code!r}) while the data and model were built"
        ) from None
    return setup


def common_summary(loaded: LoadedConfig, folder: Path) -> dict[str, Any]:
    """The fields every summary.json ends with."""
    from lrtool.outputs import versions

    return {
        "output_folder": str(folder),
        "config_echo": loaded.config.model_dump(mode="json"),
        "versions": versions(),
    }


def run_context(setup: Setup) -> dict[str, Any]:
    """What the run read and where it ran, for summary.json: ``data`` (the data, its split,
    how CSV columns were handled) and ``device`` (the configured one, the one used, and the
    GPU's name)."""
    return {"data": data_summary(setup), "device": device_summary(setup)}


def device_summary(setup: Setup) -> dict[str, Any]:
    import torch

    used = setup.device
    name = None
    if used.type == "cuda":
        name = torch.cuda.get_device_name(used.index if used.index is not None else 0)
    return {"configured": setup.config.device, "used": str(used), "name": name}


def data_summary(setup: Setup) -> dict[str, Any]:
    """The data a run read, its split, and how CSV columns were handled."""
    data = setup.data
    return {
        "description": data.description,
        "task": data.task,
        "n_train": data.n_train,
        "n_val": data.n_val,
        "n_features": data.n_features,
        "n_outputs": data.n_outputs,
        **data.notes,
    }
