"""Config files: YAML read with a safe loader into strict pydantic models.

Unknown keys, wrong types and out-of-range values are errors that name the field path
(``find.end_lr: must be greater than find.start_lr``) and, for a misspelt key, the closest valid
one. Import paths (``package.module:function``) in ``data`` and ``model`` are the only way a
config runs code.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lrtool.errors import closest, usage_error
from lrtool.settings import Amp, Device, SnapshotMode

IMPORT_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
MAX_STEPS = 10_000_000  # a range test or a short training run, not a year of compute


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


PositiveFloat = Annotated[float, Field(gt=0)]
ImportPath = Annotated[str, Field(pattern=IMPORT_PATH)]


class DataConfig(Strict):
    """Where the data comes from and how it is batched."""

    source: Literal["digits", "csv", "synthetic", "import"] = "digits"
    path: str | None = None  # csv: file to read
    target: str | None = None  # csv: target column (default: the last column)
    features: list[str] | None = None  # csv: feature columns (default: all but the target)
    task: Literal["auto", "classification", "regression"] = "auto"
    # csv: non-numeric feature columns are an error, or one-hot encoded (one 0/1 column each)
    categorical: Literal["error", "onehot"] = "error"
    # csv: empty cells are an error, or their rows are dropped, or numeric features are filled
    # with the column's mean/median (rows without a target are dropped)
    missing: Literal["error", "drop", "mean", "median"] = "error"
    standardize: bool = True
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    batch_size: int = Field(64, ge=1, le=1_000_000)
    shuffle: bool = True
    # synthetic
    n_samples: int = Field(2000, ge=2, le=10_000_000)
    n_features: int = Field(20, ge=1, le=100_000)
    n_classes: int = Field(3, ge=2, le=10_000)
    noise: float = Field(0.1, ge=0.0)
    # import
    function: ImportPath | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source_fields(self) -> DataConfig:
        if self.source == "csv" and not self.path:
            raise ValueError("data.path: required when data.source is csv")
        if self.source == "import" and not self.function:
            raise ValueError("data.function: required when data.source is import")
        if self.source == "synthetic" and self.task == "auto":
            self.task = "classification"
        return self


class ModelConfig(Strict):
    """A built-in model or an import path to a function that returns an ``nn.Module``."""

    name: Literal["linear", "mlp", "cnn", "import"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(default_factory=lambda: [64])
    activation: Literal["relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    channels: list[Annotated[int, Field(ge=1, le=4096)]] = Field(default_factory=lambda: [8, 16])
    input_shape: list[Annotated[int, Field(ge=1)]] | None = None  # cnn: (C, H, W)
    function: ImportPath | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _import_needs_function(self) -> ModelConfig:
        if self.name == "import" and not self.function:
            raise ValueError("model.function: required when model.name is import")
        return self


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: PositiveFloat = 0.01  # the LR `train` uses when no schedule gives one
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    eps: PositiveFloat = 1e-8
    alpha: float = Field(0.99, gt=0.0, lt=1.0)  # rmsprop smoothing

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: list[float]) -> list[float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError(f"each beta must be in [0, 1), got {list(value)}")
        return value

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("optimizer.nesterov: needs name sgd and momentum > 0")
        return self


class LoopConfig(Strict):
    """How every optimizer step is taken, in find (sweep and search), train and compare."""

    accumulation_steps: int = Field(1, ge=1, le=4096)  # micro-batches per optimizer step
    amp: Amp = "none"  # autocast; fp16 needs a GPU
    grad_clip: PositiveFloat | None = None  # cap on the global gradient norm

    def options(self) -> Any:
        """The :class:`lrtool.loop.LoopOptions` these settings describe."""
        from lrtool.loop import LoopOptions

        return LoopOptions(
            self.accumulation_steps, None if self.amp == "none" else self.amp, self.grad_clip
        )


class FindConfig(Strict):
    start_lr: PositiveFloat = 1e-7
    end_lr: PositiveFloat = 10.0
    steps: int = Field(100, ge=5, le=MAX_STEPS)
    mode: Literal["exp", "linear"] = "exp"
    smoothing: float = Field(0.95, ge=0.0, lt=1.0)  # EMA beta; 0 turns smoothing off
    diverge_threshold: float = Field(4.0, gt=1.0)  # stop when smoothed > threshold * best
    repeats: int = Field(1, ge=1, le=100)
    # A second, denser sweep below the divergence point when the first curve is too weak.
    refine: bool | Literal["auto"] = "auto"
    # The budgeted search: at most budget x verify_steps steps of constant-LR trainings seeded
    # by the curve (None: lrtool.search.DEFAULT_BUDGET). verify: false turns it off, true
    # makes the budget at least 1; verify_steps is the training length the LR is chosen for
    # (default train.steps).
    budget: float | None = Field(None, ge=0.0, le=100.0)
    verify: bool | Literal["auto"] = "auto"
    verify_steps: int | None = Field(None, ge=5, le=MAX_STEPS)
    # What the sweep watches: the training loss of each step, or the mean loss over the first
    # val_batches validation batches after each step (torch-lr-finder's val mode; the training
    # loss is recorded too and read where the validation curve cannot be); auto:
    # lrtool.finder.default_monitor (val with a validation split, else train). The search
    # scores each candidate on lrtool.verify.SEARCH_VAL_BATCHES batches.
    monitor: Literal["auto", "train", "val"] = "auto"
    val_batches: int = Field(4, ge=1, le=100_000)
    # Where the state the second sweep and the search start from is kept: one host copy,
    # a file in a temporary folder (under snapshot_dir; for models that do not fit twice in
    # host memory), or nowhere (no second sweep, no search).
    snapshot: SnapshotMode = "cpu"
    snapshot_dir: str | None = None

    @model_validator(mode="after")
    def _range(self) -> FindConfig:
        if self.end_lr <= self.start_lr:
            raise ValueError(
                f"find.end_lr: must be greater than find.start_lr "
                f"(got start_lr={self.start_lr:g}, end_lr={self.end_lr:g})"
            )
        return self


class ScheduleConfig(BaseModel):
    """``{name: onecycle, max_lr: 0.1, ...}``: the name plus that schedule's parameters."""

    model_config = ConfigDict(extra="allow")
    name: str = "constant"

    @model_validator(mode="after")
    def _known(self) -> ScheduleConfig:
        from lrtool.errors import LrtoolError, closest
        from lrtool.schedules import get_spec

        try:
            spec = get_spec(self.name)
        except LrtoolError as exc:
            raise ValueError(f"train.schedule.name: {exc.message}") from None
        known = spec.param_names
        for key in self.model_extra or {}:
            if key not in known:
                raise ValueError(
                    f"train.schedule.{key}: schedule '{self.name}' has no parameter "
                    f"'{key}'{closest(key, known)}"
                )
        return self

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainConfig(Strict):
    steps: int = Field(300, ge=1, le=MAX_STEPS)
    # The run length in epochs instead (steps = round(epochs x steps_per_epoch)), and the
    # optimizer steps one pass over the training data takes: given, or counted from the data
    # (batches / loop.accumulation_steps). Schedule lengths may be in epochs too ("2ep").
    epochs: PositiveFloat | None = None
    steps_per_epoch: int | None = Field(None, ge=1, le=MAX_STEPS)
    eval_every: int = Field(25, ge=1)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    # The val loss to reach: compare's steps-to-target (default: the constant run's best),
    # and train's steps_to_target. --target overrides it.
    target: PositiveFloat | None = None

    @model_validator(mode="after")
    def _eval_fits(self) -> TrainConfig:
        if self.epochs is not None and "steps" in self.model_fields_set:
            raise ValueError(
                f"train.epochs: give train.steps or train.epochs, not both "
                f"(got steps={self.steps}, epochs={self.epochs:g})"
            )
        if self.eval_every > self.steps and self.epochs is None:
            raise ValueError(
                f"train.eval_every: must be at most train.steps "
                f"(got eval_every={self.eval_every}, steps={self.steps})"
            )
        return self


class Config(Strict):
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: Device = "auto"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: Literal["auto", "cross_entropy", "mse", "l1", "bce_with_logits"] = "auto"
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    # Under torchrun: a DDP replica on every rank, or FSDP2 (fully_shard) shards.
    distributed: Literal["ddp", "fsdp"] = "ddp"
    find: FindConfig = Field(default_factory=FindConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="before")
    @classmethod
    def _grad_clip_moved(cls, data: Any) -> Any:
        """``train.grad_clip`` (the first version's place) is read as ``loop.grad_clip``."""
        if not isinstance(data, dict):
            return data
        train = data.get("train")
        if isinstance(train, dict) and "grad_clip" in train:
            train = dict(train)
            clip = train.pop("grad_clip")
            loop = (
                dict(data.get("loop") or {}) if isinstance(data.get("loop"), dict | None) else None
            )
            if loop is None:
                return data  # loop is not a mapping: its own error follows
            if loop.get("grad_clip") not in (None, clip):
                raise ValueError(
                    "train.grad_clip: moved to loop.grad_clip; set it there only "
                    f"(got train.grad_clip={clip!r}, loop.grad_clip={loop['grad_clip']!r})"
                )
            if clip is not None:
                loop["grad_clip"] = clip
            data = {**data, "train": train, "loop": loop}
        return data


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """The safe loader, also reading ``1e-7`` as a float (YAML 1.1 wants ``1.0e-7``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


MAX_CONFIG_BYTES = 1_000_000  # a config is a page of YAML, not a dataset
MAX_EXPANDED_NODES = 100_000  # a config that expands past this through aliases is a bomb


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (line {mark.line + 1})", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def expanded_size(node: yaml.Node | None) -> int:
    """How many nodes the YAML holds once every alias (``*name``) is expanded, counted on the
    composed graph with each shared node counted once per use, without expanding anything
    (a "billion laughs" file expands to billions from a few lines)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        known = sizes.get(id(n))
        if known is not None:
            return known
        sizes[id(n)] = 1  # a cycle counts once
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(child) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        total = min(total, 10 * MAX_EXPANDED_NODES)
        sizes[id(n)] = total
        return total

    return 0 if node is None else size(node)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a config file into a mapping, with one clear error for each way it can fail."""
    if not path.exists():
        raise usage_error(f"config file not found: {path} (check the path)")
    if path.is_dir():
        raise usage_error(f"config path is a directory, not a file: {path}")
    if not path.is_file():  # a FIFO or a device (/dev/zero) would block or never end
        raise usage_error(f"config path is not a regular file: {path}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise usage_error(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise usage_error(
            f"config file {path} is larger than {MAX_CONFIG_BYTES // 1000} kB; a config is a "
            f"short YAML file (data goes in data.path)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise usage_error(f"config file {path} is not UTF-8 text (is it a binary file?)") from None
    if "\x00" in text:
        raise usage_error(f"config file {path} is not text (it contains NUL bytes)")
    try:
        if expanded_size(yaml.compose(text, Loader=_Loader)) > MAX_EXPANDED_NODES:
            raise usage_error(
                f"config file {path}: its YAML aliases (*name) expand to more than "
                f"{MAX_EXPANDED_NODES:,} values; write the values out"
            )
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise usage_error(f"config file {path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise usage_error(f"config file {path}: nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        text = str(exc).splitlines()[0] if str(exc) else "unreadable value"
        if "digits" in text:
            text = "a number with thousands of digits; write a float (1e30) instead"
        raise usage_error(f"config file {path}: {text[:200]}") from None
    if data is None:
        raise usage_error(f"config file {path} is empty; start from configs/quickstart.yaml")
    if not isinstance(data, dict):
        raise usage_error(
            f"config file {path} must be a mapping of sections (seed, data, model, ...), "
            f"got a {type(data).__name__}"
        )
    return data


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys at ``loc`` inside ``model`` (for 'did you mean' hints)."""
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            return []
    return list(current.model_fields)


def section_kind(path: list[str]) -> str | None:
    """``"model"`` when ``path`` (e.g. ``["train", "schedule"]``) names a section of the
    config, ``"mapping"`` when it names a free mapping (``model.kwargs``), else None."""
    current: Any = Config
    for depth, name in enumerate(path):
        fields = getattr(current, "model_fields", None)
        if fields is None or name not in fields:
            return None
        annotation = fields[name].annotation
        options = [annotation, *get_args(annotation)]
        model = next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is not None:
            current = model
            continue
        is_mapping = any(a is dict or get_origin(a) is dict for a in options)
        return "mapping" if is_mapping and depth == len(path) - 1 else None
    return "model"


def format_validation_error(
    exc: ValidationError, source: str, set_by: dict[str, str] | None = None
) -> str:
    """One line for the first problem, naming the field path, the value and how to fix it,
    and where the value came from: the file, or the flag that set it (``set_by``: dotted key
    -> flag)."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    path = ".".join(str(p) for p in loc)
    source = _source_of(path, source, set_by or {})
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _field_names(Config, loc[:-1])
        key = str(loc[-1])
        hint = closest(key, valid)
        where = ".".join(str(p) for p in loc[:-1]) or "top level"
        return f"{source}: unknown key '{path}'{hint}; valid keys in {where}: {', '.join(valid)}"
    msg = err["msg"]
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        return f"{source}: {text}" if re.match(r"^[\w.]+: ", text) else f"{source}: {path}: {text}"
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    if kind in ("finite_number",):
        msg = "must be a finite number, not NaN or infinity"
    if kind == "string_pattern_mismatch" and (err.get("ctx") or {}).get("pattern") == IMPORT_PATH:
        msg = "must be an import path like package.module:function"
    # lower-cased as a sentence after the field; a pattern or a value quoted in it stays as is
    first, rest = msg[:1], msg[1:]
    return f"{source}: {path}: {first.lower()}{rest}{shown}"


def _source_of(path: str, source: str, set_by: dict[str, str]) -> str:
    """The flag that set the key at ``path``; for a problem of a whole section, the file
    and the flags that changed keys inside it."""
    if path in set_by:
        return set_by[path]
    inside = sorted(
        {flag for key, flag in set_by.items() if key.startswith(f"{path}.") or not path}
    )
    return f"{source} with {', '.join(inside)}" if inside else source


def parse_config(
    data: dict[str, Any], source: str = "config", set_by: dict[str, str] | None = None
) -> Config:
    """Validate a config mapping; a problem is one line naming where it came from."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise usage_error(format_validation_error(exc, source, set_by)) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    return parse_config(read_yaml(p), str(p))


def default_config_text() -> str:
    """The embedded default config (the quickstart), shipped inside the package."""
    return resources.files("lrtool").joinpath("quickstart.yaml").read_text(encoding="utf-8")


def default_config_data() -> dict[str, Any]:
    """The embedded default config as a mapping, read like any file (safe loader)."""
    return yaml.load(default_config_text(), Loader=_Loader)  # noqa: S506


def default_config() -> Config:
    """The embedded default config, validated."""
    return parse_config(default_config_data(), "quickstart (embedded)")
