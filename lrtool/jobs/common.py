"""What every job shares: the config with the command's flags applied, the run folder, and
the setup built from the config. No torch at import time."""

from __future__ import annotations

import copy
import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtool import distributed
from lrtool.config import (
    Config,
    TrainConfig,
    default_config_data,
    parse_config,
    read_yaml,
    section_kind,
)
from lrtool.errors import LrtoolError, usage_error
from lrtool.settings import DEVICES, one_of

if TYPE_CHECKING:
    from lrtool.build import Setup

# (step, total, lr, loss) after each step; phase(label) when a new stage starts.
Progress = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class LoadedConfig:
    """A config as read, with the command's overrides applied, validated once: when it is
    first read (:attr:`config`), after every flag and ``--set`` is in. A mistake is reported
    with where it came from: the file, or the flag that set the key.

    ``data`` is the mapping read from the file (or an already validated :class:`Config`);
    ``set_by`` maps each dotted key a flag changed to that flag; ``loaded_data`` holds the
    data when it was loaded already (to count the steps of an epoch), for the first run built
    from this config to take (:meth:`take_data`) instead of loading it again.
    """

    data: dict[str, Any] | Config
    source: str  # the file as given, or "quickstart" for the embedded default
    base_dir: Path | None
    set_by: tuple[tuple[str, str], ...] = ()
    loaded_data: list[Any] = field(default_factory=list, compare=False, repr=False)

    @functools.cached_property
    def config(self) -> Config:
        """The validated config (validated on first use, once)."""
        if isinstance(self.data, Config):
            return self.data
        return parse_config(self.data, self.source, dict(self.set_by))

    @property
    def name(self) -> str:
        """The name run folders carry: the config file's stem."""
        return Path(self.source).stem if self.source != "quickstart" else "quickstart"

    def _mapping(self) -> dict[str, Any]:
        """A copy of the config as a mapping to change (a validated one: its keys as set)."""
        if isinstance(self.data, Config):
            return self.data.model_dump(exclude_unset=True)
        return copy.deepcopy(self.data)

    def _changed(self, data: dict[str, Any], flags: dict[str, str]) -> LoadedConfig:
        set_by = tuple({**dict(self.set_by), **flags}.items())
        return LoadedConfig(data, self.source, self.base_dir, set_by)

    def with_values(
        self, section: str, values: dict[str, Any], drop: tuple[str, ...] = ()
    ) -> LoadedConfig:
        """The config with flag values (those not None) set in ``section`` (``""``: the top
        level) and the keys ``drop`` removed from it; not validated yet. Each key's flag is
        ``--key-name``."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given and not drop:
            return self
        data = self._mapping()
        target = data if section == "" else _section(data, [section], section)
        if target is None:  # the section is not a mapping: validation names it
            return self
        flags = {}
        for key, value in given.items():
            target[key] = value
            flags[f"{section}.{key}".strip(".")] = "--" + key.replace("_", "-")
        for key in drop:
            target.pop(key, None)
        return self._changed(data, flags)

    def with_sets(self, sets: list[str]) -> LoadedConfig:
        """``--set section.key=value`` for any config key (``find --set``): each value read
        as ``--set`` reads schedule values; not validated yet."""
        if not sets:
            return self
        from lrtool.schedules import parse_sets

        data = self._mapping()
        flags = {}
        for key, value in parse_sets(sets).items():
            *sections, name = key.split(".")
            if not sections and (name not in Config.model_fields or section_kind([name])):
                raise usage_error(f"--set {key}: give section.key=value (e.g. data.batch_size=32)")
            node = _section(data, sections, key)
            if node is None:
                raise usage_error(f"--set {key}: '{'.'.join(sections)}' is not a mapping")
            node[name] = value
            flags[key] = "--set"
        return self._changed(data, flags)

    def with_train_length(self, steps: int, bundle: Any = None) -> LoadedConfig:
        """The validated config with ``train.steps`` counted from its epochs (``epochs``
        cleared, ``eval_every`` at most ``steps``): derived values, not validated again."""
        config = self.config
        train = config.train.model_copy(
            update={
                "steps": steps,
                "epochs": None,
                "eval_every": min(config.train.eval_every, steps),
            }
        )
        counted = config.model_copy(update={"train": train})
        return LoadedConfig(
            counted, self.source, self.base_dir, self.set_by, [] if bundle is None else [bundle]
        )

    def take_data(self) -> Any:
        """The data loaded while counting an epoch's steps, once (a second run of the same
        config, as in compare, loads its own: a user's loader may keep state), else None."""
        return self.loaded_data.pop() if self.loaded_data else None


def _section(data: dict[str, Any], sections: list[str], key: str) -> dict[str, Any] | None:
    """The mapping at ``sections`` inside ``data``, made when the file left it out (it is a
    section of the config); None when the file put something other than a mapping there."""
    node = data
    for depth, name in enumerate(sections):
        if node.get(name) is None:
            if section_kind(sections[: depth + 1]) is None:
                raise usage_error(f"--set {key}: the config has no section '{name}'")
            node[name] = {}
        if not isinstance(node[name], dict):
            return None
        node = node[name]
    return node


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
    """The config file (or the embedded quickstart) as read, with ``--seed``, ``--device`` and
    the loop flags set in it; validated once the command has set its own flags too
    (:func:`ready`)."""
    if path is None:
        loaded = LoadedConfig(default_config_data(), "quickstart", None)
    else:
        loaded = LoadedConfig(read_yaml(path), str(path), path.resolve().parent)
    if device is not None and device not in DEVICES:
        raise usage_error(f"--device: must be {one_of(DEVICES)}, got {device!r}")
    loaded = loaded.with_values("", {"seed": seed, "device": device})
    if loop is not None:
        loaded = loaded.with_values("loop", loop.values())
    return loaded


def ready(loaded: LoadedConfig) -> Config:
    """The config validated (once, with every override in), and what needs the whole config
    and the launch: under torchrun, the global batch against the world size (before any
    folder is made)."""
    config = loaded.config
    if distributed.launched_by_torchrun():
        distributed.shard_batch_size(config.data.batch_size, int(os.environ["WORLD_SIZE"]))
    return config


def with_length_flags(
    loaded: LoadedConfig, steps: int | None, epochs: float | None
) -> LoadedConfig:
    """``--steps`` or ``--epochs`` set in ``train`` (the other length dropped: a flag wins
    over the file); ``--steps`` also shrinks ``eval_every`` to fit, so a short run still
    evaluates."""
    if steps is not None and epochs is not None:
        raise usage_error("give --epochs or --steps, not both")
    if epochs is not None:
        if not (epochs > 0 and epochs < float("inf")):
            raise usage_error(f"--epochs: must be > 0, got {epochs}")
        return loaded.with_values("train", {"epochs": epochs}, drop=("steps",))
    if steps is None:
        return loaded
    every = None
    if steps >= 1:
        train = loaded._mapping().get("train")
        given = train.get("eval_every") if isinstance(train, dict) else None
        every = given if given is not None else TrainConfig.model_fields["eval_every"].default
        every = (
            min(every, steps) if isinstance(every, int) and not isinstance(every, bool) else None
        )
    changed = loaded.with_values("train", {"steps": steps}, drop=("epochs",))
    if every is not None:
        changed = changed.with_values("train", {"eval_every": every})
        changed = replace(
            changed, set_by=tuple({**dict(changed.set_by), "train.eval_every": "--steps"}.items())
        )
    return changed


@dataclass(frozen=True)
class RunLength:
    """A training command's length once epochs are counted: the config with ``train.steps``
    set, and the steps per epoch and epochs it came from (None: given in steps)."""

    loaded: LoadedConfig
    steps_per_epoch: int | None = None
    epochs: float | None = None

    def summary(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch}


def steps_per_epoch(loaded: LoadedConfig) -> tuple[int, Any]:
    """``train.steps_per_epoch``, or the optimizer steps one pass over the training data takes:
    its batches divided by ``loop.accumulation_steps`` (at least 1); and the data when it had
    to be loaded to count them (the run then uses it: loaded once)."""
    config = loaded.config
    if config.train.steps_per_epoch is not None:
        return config.train.steps_per_epoch, None
    from lrtool.data import load_data

    bundle = load_data(config.data, config.seed, config.loss, loaded.base_dir)
    try:
        batches = len(bundle.train)
    except TypeError:
        raise usage_error(
            "epochs: the training data has no length (an iterable dataset); "
            "set train.steps_per_epoch"
        ) from None
    return max(1, round(batches / config.loop.accumulation_steps)), bundle


def run_length(loaded: LoadedConfig, counts_epochs: bool = False) -> RunLength:
    """The run's length in steps: ``train.epochs`` (the flags already set in the config by
    :func:`with_length_flags`) counted as ``train.steps``; the steps per epoch are counted
    when the length or a schedule (``counts_epochs``) is in epochs."""
    epochs = ready(loaded).train.epochs
    if epochs is None and not counts_epochs:
        return RunLength(loaded)
    per_epoch, bundle = steps_per_epoch(loaded)
    from lrtool.schedules import epochs_to_steps

    steps = epochs_to_steps(epochs, per_epoch) if epochs is not None else loaded.config.train.steps
    return RunLength(loaded.with_train_length(steps, bundle), per_epoch, epochs)


def with_run_length(
    loaded: LoadedConfig, steps: int | None, epochs: float | None, counts_epochs: bool = False
) -> RunLength:
    """``--steps``/``--epochs`` (else ``train.steps``/``train.epochs``) as ``train.steps``."""
    return run_length(with_length_flags(loaded, steps, epochs), counts_epochs)


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
        setup = build(loaded.config, loaded.base_dir, data=loaded.take_data(), dist=dist)
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
