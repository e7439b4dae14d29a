"""Datasets: the embedded digits data, any CSV file, synthetic data, or an import path.

In-memory datasets are held as tensors and batched by index (:class:`TensorBatches`), which
skips the per-sample ``__getitem__`` and collate work of a ``DataLoader``. Nothing is ever
downloaded.

The embedded default is the UCI "Optical Recognition of Handwritten Digits" test set (1,797
8x8 images, 10 classes; E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), as shipped by
scikit-learn (BSD-3-Clause), stored as ``lrtool/datasets/digits.csv.gz`` and read through the
same CSV path as a user's file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from lrtool.config import DataConfig
from lrtool.errors import LrtoolError, check_input_file, usage_error
from lrtool.imports import load_object

MAX_CLASSES_AUTO = 50  # an integer target with more distinct values is treated as regression


class TensorBatches:
    """Mini-batches of in-memory tensors, taken by index; one fresh order per pass.

    The order of pass k depends only on ``seed`` and k, so two instances with the same seed
    yield the same batches (what ``lrtool compare`` relies on).
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.passes = 0
        # Under torchrun, batch_size is the global batch and this rank yields its slice of each
        # one; a last, incomplete global batch is dropped so that every rank has as many rows.
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        if self.world_size > 1:
            return len(self.inputs) // self.batch_size
        return math.ceil(len(self.inputs) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, bs = len(self.inputs), self.batch_size
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.passes)
            self.passes += 1
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size == 1:
            for i in range(0, n, bs):
                idx = order[i : i + bs]
                yield self.inputs[idx], self.targets[idx]
            return
        per_rank = bs // self.world_size
        for i in range(0, n - bs + 1, bs):
            idx = order[i + self.rank * per_rank : i + (self.rank + 1) * per_rank]
            yield self.inputs[idx], self.targets[idx]

    def to(self, device: torch.device) -> TensorBatches:
        """The same batches with the tensors moved once to ``device``."""
        return TensorBatches(
            self.inputs.to(device),
            self.targets.to(device),
            self.batch_size,
            self.shuffle,
            self.seed,
            self.rank,
            self.world_size,
        )


@dataclass
class DataBundle:
    """The training and validation batches and what a model needs to know about them."""

    train: Any  # an iterable of batches: TensorBatches or a DataLoader
    val: Any | None
    task: str  # classification | regression
    n_features: int
    n_outputs: int
    input_shape: tuple[int, ...]
    n_train: int
    n_val: int
    description: str
    # How CSV columns were handled (one-hot columns, rows dropped, values filled): echoed in
    # summary.json as "data".
    notes: dict[str, Any] = field(default_factory=dict)


def digits_path() -> Path:
    return Path(str(resources.files("lrtool").joinpath("datasets/digits.csv.gz")))


def load_data(
    cfg: DataConfig, seed: int, loss: str = "auto", base_dir: Path | None = None
) -> DataBundle:
    """Build the dataset a config describes."""
    if cfg.source == "import":
        return _from_import(cfg, seed, base_dir)
    if cfg.source == "synthetic":
        inputs, targets, task = _synthetic(cfg, seed)
        name = f"synthetic {task} ({cfg.n_samples} rows, {cfg.n_features} features)"
    elif cfg.source == "digits" and cfg.features is None and cfg.task in ("auto", "classification"):
        inputs, targets, task = read_digits()
        name = "digits (UCI, 8x8 images)"
    else:
        path = digits_path() if cfg.source == "digits" else _resolve(cfg.path or "", base_dir)
        target = cfg.target if cfg.source == "csv" else "digit"
        notes: dict[str, Any] = {}
        inputs, targets, task = _read_csv(
            path, target, cfg.features, cfg.task, cfg.categorical, cfg.missing, notes
        )
        name = "digits (UCI, 8x8 images)" if cfg.source == "digits" else path.name
        bundle = _split(inputs, targets, task, cfg, seed, loss, name)
        bundle.notes = notes
        return bundle
    return _split(inputs, targets, task, cfg, seed, loss, name)


def read_digits() -> tuple[torch.Tensor, torch.Tensor, str]:
    """The embedded digits with numpy alone: the default config does not pay for pandas.

    Same tensors as reading the file through the CSV path (64 pixel columns, then the digit).
    """
    import gzip

    import numpy as np

    with gzip.open(digits_path(), "rt", encoding="utf-8") as handle:
        table = np.loadtxt(handle, delimiter=",", skiprows=1, dtype=np.float64)
    inputs = torch.tensor(table[:, :-1], dtype=torch.float32)
    targets = torch.tensor(table[:, -1].astype(np.int64), dtype=torch.long)
    return inputs, targets, "classification"


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and base_dir is not None:
        p = base_dir / p
    return p


def _read_csv(
    path: Path,
    target: str | None,
    features: list[str] | None,
    task: str,
    categorical: str = "error",
    missing: str = "error",
    notes: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A CSV file as (inputs, targets, task). ``categorical: onehot`` turns non-numeric
    feature columns into one 0/1 column per value; ``missing`` drops rows with empty cells
    (``drop``) or fills numeric features with the column's ``mean``/``median`` (rows without
    a target are dropped). What was done goes into ``notes``."""
    notes = {} if notes is None else notes
    import pandas as pd

    check_input_file(path, "data.path")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise LrtoolError(f"data.path: the CSV file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LrtoolError(f"data.path: cannot read {path} as CSV: {reason}") from None
    if frame.empty:
        raise LrtoolError(f"data.path: the CSV file {path} has a header but no rows")
    columns = [str(c) for c in frame.columns]
    target = target or columns[-1]
    if target not in columns:
        from lrtool.errors import closest

        raise LrtoolError(
            f"data.target: column '{target}' is not in {path.name}{closest(target, columns)}; "
            f"columns: {', '.join(columns[:12])}{' ...' if len(columns) > 12 else ''}"
        )
    feature_cols = features or [c for c in columns if c != target]
    absent = [c for c in feature_cols if c not in columns]
    if absent:
        raise LrtoolError(f"data.features: columns not in {path.name}: {', '.join(absent)}")
    if not feature_cols:
        raise LrtoolError(f"data.features: {path.name} has no feature columns besides the target")
    notes["rows_read"] = len(frame)
    if missing != "error":
        frame = _handle_missing(frame, feature_cols, target, missing, notes)
        if frame.empty:
            raise LrtoolError(f"data.missing: no rows of {path.name} are left after '{missing}'")
    x = frame[feature_cols]
    non_numeric = [c for c in feature_cols if not pd.api.types.is_numeric_dtype(x[c])]
    if non_numeric and categorical == "onehot":
        encoded = pd.get_dummies(
            x,
            columns=non_numeric,
            dtype="float64",
            dummy_na=bool(x[non_numeric].isna().any().any()),
        )
        notes["onehot"] = {c: sorted(str(v) for v in x[c].dropna().unique()) for c in non_numeric}
        frame = pd.concat([encoded, frame[[target]]], axis=1)
        feature_cols = [str(c) for c in encoded.columns]
        x = frame[feature_cols]
        non_numeric = []
    if non_numeric:
        raise LrtoolError(
            f"data.features: non-numeric feature columns in {path.name}: "
            f"{', '.join(repr(c) for c in non_numeric[:5])} (set data.categorical: onehot, "
            f"encode them as numbers, or leave them out with data.features)"
        )
    nan_cols = [c for c in feature_cols + [target] if frame[c].isna().any()]
    if nan_cols:
        bad_rows = frame[nan_cols].isna().any(axis=1)
        count, first = int(bad_rows.sum()), int(bad_rows.to_numpy().argmax()) + 2  # 1 = header
        raise LrtoolError(
            f"data.path: {count} row(s) of {path.name} have empty or NaN cells (first at line "
            f"{first}) in column(s) {', '.join(repr(c) for c in nan_cols[:5])}; set "
            f"data.missing: drop, mean or median, or fill them first"
        )
    inputs = torch.tensor(x.to_numpy(dtype="float64"), dtype=torch.float32)
    y = frame[target]
    numeric_target = pd.api.types.is_numeric_dtype(y)
    if task == "auto":
        integral = numeric_target and bool((y == y.round()).all())
        task = (
            "classification"
            if not numeric_target or (integral and y.nunique() <= MAX_CLASSES_AUTO)
            else "regression"
        )
    if task == "classification":
        codes, _ = pd.factorize(y, sort=True)
        targets = torch.tensor(codes, dtype=torch.long)
    else:
        if not numeric_target:
            raise LrtoolError(
                f"data.target: column '{target}' is not numeric; regression needs numbers"
            )
        targets = torch.tensor(y.to_numpy(dtype="float64"), dtype=torch.float32).unsqueeze(1)
    if not torch.isfinite(inputs).all():
        raise LrtoolError(f"data.path: {path.name} has infinite feature values")
    return inputs, targets, task


def _handle_missing(
    frame: Any, feature_cols: list[str], target: str, how: str, notes: dict[str, Any]
) -> Any:
    """``data.missing``: drop the rows with an empty cell, or fill numeric features."""
    import pandas as pd

    before = len(frame)
    if how == "drop":
        frame = frame.dropna(subset=[*feature_cols, target])
    else:
        frame = frame.dropna(subset=[target])
        filled = {}
        for column in feature_cols:
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values) and values.isna().any():
                fill = float(values.mean() if how == "mean" else values.median())
                frame = frame.assign(**{column: values.fillna(fill)})
                filled[column] = fill
        notes["filled"] = filled
    notes["rows_dropped"] = before - len(frame)
    notes["missing"] = how
    return frame.reset_index(drop=True)


def _synthetic(cfg: DataConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A teacher network's labels on Gaussian inputs: learnable, not trivially linear."""
    g = torch.Generator().manual_seed(seed + 7919)
    n, d = cfg.n_samples, cfg.n_features
    inputs = torch.randn(n, d, generator=g)
    hidden = torch.tanh(inputs @ torch.randn(d, 32, generator=g) / math.sqrt(d))
    if cfg.task == "regression":
        y = hidden @ torch.randn(32, 1, generator=g) / math.sqrt(32)
        y = y + cfg.noise * torch.randn(n, 1, generator=g)
        return inputs, y, "regression"
    logits = hidden @ torch.randn(32, cfg.n_classes, generator=g) * 2
    logits = logits + cfg.noise * torch.randn(n, cfg.n_classes, generator=g)
    return inputs, logits.argmax(dim=1), "classification"


def _split(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    cfg: DataConfig,
    seed: int,
    loss: str,
    name: str,
) -> DataBundle:
    n = len(inputs)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * cfg.val_fraction))
    if cfg.val_fraction > 0 and n_val == 0:
        n_val = 1
    train_idx, val_idx = order[n_val:], order[:n_val]
    n_train = len(train_idx)
    if n_train < 2:
        raise LrtoolError(
            f"data: the training split has {n_train} row{'s' if n_train != 1 else ''}; a range "
            f"test needs at least 2 (lower data.val_fraction, or give more data)"
        )
    if n_train < cfg.batch_size:
        raise LrtoolError(
            f"data.batch_size: {cfg.batch_size} is larger than the training split "
            f"({n_train} rows); lower data.batch_size or data.val_fraction"
        )
    x_train, x_val = inputs[train_idx], inputs[val_idx]
    y_train, y_val = targets[train_idx], targets[val_idx]
    if cfg.standardize:
        mean = x_train.mean(dim=0)
        std = x_train.std(dim=0)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))  # constant columns stay put
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
        if task == "regression":
            y_mean, y_std = y_train.mean(dim=0), y_train.std(dim=0)
            y_std = torch.where(y_std > 1e-8, y_std, torch.ones_like(y_std))
            y_train, y_val = (y_train - y_mean) / y_std, (y_val - y_mean) / y_std
    if task == "classification" and loss in ("mse", "l1"):
        raise usage_error(
            f"loss: {loss} needs a regression target and this data is classification; use "
            f"loss: cross_entropy (or auto), or data.task: regression for a numeric target"
        )
    if task == "regression" and not torch.isfinite(targets).all():
        raise LrtoolError(f"data ({name}): the regression target has NaN or infinite values")
    if task == "classification":
        classes = int(targets.max().item()) + 1
        if int(torch.unique(y_train).numel()) < 2:
            raise LrtoolError(
                "data: the training split has only one class; a classifier needs at least two"
            )
        n_outputs = classes
        if loss == "bce_with_logits":
            if classes != 2:
                raise usage_error(
                    f"loss: bce_with_logits needs a binary target, this one has {classes} classes"
                )
            n_outputs = 1
            y_train, y_val = y_train.float().unsqueeze(1), y_val.float().unsqueeze(1)
    else:
        if loss in ("cross_entropy", "bce_with_logits"):
            raise usage_error(f"loss: {loss} needs a classification target; use mse or l1")
        n_outputs = targets.shape[1]
    d = inputs.shape[1]
    side = int(math.isqrt(d))
    shape = (1, side, side) if side * side == d else (d,)
    train = TensorBatches(x_train, y_train, cfg.batch_size, cfg.shuffle, seed)
    val = TensorBatches(x_val, y_val, max(cfg.batch_size, 256), False, seed) if n_val else None
    return DataBundle(train, val, task, d, n_outputs, shape, n_train, n_val, name)


def _dict_items(
    cfg: DataConfig, seed: int, train_ds: Any, val_ds: Any, first: Mapping, n_train: int
) -> DataBundle:
    """Datasets of dicts (Hugging Face style): batches are dicts passed as ``model(**batch)``,
    and the model computes its own loss (``.loss`` or ``"loss"``), or lrtool does from
    ``labels`` and the logits. Integer ``labels`` make it classification (accuracy reported)."""

    if n_train < cfg.batch_size:
        raise LrtoolError(
            f"data.batch_size: {cfg.batch_size} is larger than the training dataset "
            f"({n_train} rows); lower data.batch_size"
        )
    tensors = {k: torch.as_tensor(v) for k, v in first.items() if _numeric(v)}
    if not tensors:
        raise LrtoolError(
            f"data.function: the first item has no numeric values (keys: "
            f"{', '.join(map(str, first))}); items must be tensors or numbers"
        )
    labels = next((tensors[k] for k in ("labels", "label", "targets", "y") if k in tensors), None)
    inputs = next(t for k, t in tensors.items() if t is not labels)
    is_class = labels is not None and not labels.is_floating_point()
    if cfg.task != "auto":
        is_class = cfg.task == "classification"
    n_outputs = 1
    if is_class and labels is not None:
        key = next(k for k in ("labels", "label", "targets", "y") if k in tensors)
        values = [int(torch.as_tensor(train_ds[i][key]).max()) for i in range(min(n_train, 10_000))]
        n_outputs = max(values) + 1
    return _dataset_bundle(cfg, seed, train_ds, val_ds, is_class, inputs, n_outputs, n_train)


def _dataset_bundle(
    cfg: DataConfig,
    seed: int,
    train_ds: Any,
    val_ds: Any,
    is_class: bool,
    example: torch.Tensor,
    n_outputs: int,
    n_train: int,
) -> DataBundle:
    """The batches of imported datasets (seeded shuffling) and what a model needs to know,
    ``example`` being one item's input."""
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(seed)
    train = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=cfg.shuffle, generator=g)
    val = DataLoader(val_ds, batch_size=max(cfg.batch_size, 256)) if val_ds is not None else None
    return DataBundle(
        train,
        val,
        "classification" if is_class else "regression",
        int(example.numel()),
        n_outputs,
        tuple(example.shape),
        n_train,
        len(val_ds) if val_ds is not None else 0,
        f"{cfg.function}",
    )


def _numeric(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, bool | int | float):
        return True
    if isinstance(value, list | tuple) and value and isinstance(value[0], int | float):
        return True
    return False


def _from_import(cfg: DataConfig, seed: int, base_dir: Path | None) -> DataBundle:
    """``package.module:function`` returning ``(train_dataset, val_dataset)``."""
    from torch.utils.data import Dataset

    fn = load_object(cfg.function or "", "data.function", base_dir)
    try:
        result = fn(**cfg.kwargs)
    except LrtoolError:
        raise
    except Exception as exc:  # the user's code: report it, don't crash
        raise LrtoolError(
            f"data.function: {cfg.function} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise LrtoolError(
            f"data.function: {cfg.function} must return (train_dataset, val_dataset), "
            f"got {type(result).__name__}"
        )
    train_ds, val_ds = result
    for label, ds in (("train", train_ds), ("val", val_ds)):
        if ds is not None and not (isinstance(ds, Dataset) or hasattr(ds, "__getitem__")):
            raise LrtoolError(
                f"data.function: the {label} dataset must be a torch Dataset, "
                f"got {type(ds).__name__}"
            )
    try:
        n_train = len(train_ds)
        first = train_ds[0]
    except Exception as exc:
        raise LrtoolError(
            f"data.function: cannot read the first item of the train dataset: {exc}"
        ) from None
    if isinstance(first, Mapping):
        return _dict_items(cfg, seed, train_ds, val_ds, first, n_train)
    try:
        x0, y0 = first[0], first[1]
    except Exception as exc:
        raise LrtoolError(
            f"data.function: cannot read (input, target) from the train dataset: {exc}"
        ) from None
    if n_train < cfg.batch_size:
        raise LrtoolError(
            f"data.batch_size: {cfg.batch_size} is larger than the training dataset "
            f"({n_train} rows); lower data.batch_size"
        )
    try:
        x0 = torch.as_tensor(x0)
        y0 = torch.as_tensor(y0)
    except (TypeError, ValueError, RuntimeError):
        raise LrtoolError(
            f"data.function: the train dataset's items must be (input, target) of numbers or "
            f"tensors, got ({type(x0).__name__}, {type(y0).__name__}); encode string labels as "
            f"integers"
        ) from None
    is_class = not y0.is_floating_point() if cfg.task == "auto" else cfg.task == "classification"
    if is_class:
        try:
            labels = [int(torch.as_tensor(train_ds[i][1])) for i in range(min(n_train, 100_000))]
        except (TypeError, ValueError, RuntimeError) as exc:
            raise LrtoolError(
                f"data.function: every target must be one integer class label ({exc})"
            ) from None
        if min(labels) < 0:
            raise LrtoolError("data.function: class labels must be 0, 1, 2, ...; found a negative")
        n_outputs = max(labels) + 1
    elif not torch.isfinite(y0.float()).all():
        raise LrtoolError("data.function: the regression target has NaN or infinite values")
    else:
        n_outputs = max(1, int(y0.numel()))
    return _dataset_bundle(cfg, seed, train_ds, val_ds, is_class, x0, n_outputs, n_train)
