"""Built-in models (linear, mlp, cnn) and models from an import path."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from lrtool.config import ModelConfig
from lrtool.data import DataBundle
from lrtool.errors import LrtoolError, usage_error
from lrtool.imports import load_object

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(
    n_inputs: int, n_outputs: int, hidden: list[int], activation: str, dropout: float
) -> nn.Module:
    """Fully connected layers ``n_inputs -> hidden... -> n_outputs``; no hidden layers = linear."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = n_inputs
    for size in hidden:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def cnn(
    input_shape: tuple[int, ...],
    n_outputs: int,
    channels: list[int],
    activation: str,
    dropout: float,
) -> nn.Module:
    """Small CNN: 3x3 conv + activation per entry of ``channels``, 2x2 max-pool while the map
    is at least 4 pixels wide, then global average pooling and a linear head."""
    if len(input_shape) != 3:
        raise usage_error(
            f"model.input_shape: cnn needs image-shaped inputs (C, H, W); these have "
            f"{input_shape[0]} features, which is not a square (set model.input_shape)"
        )
    c, h, w = input_shape
    layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
    size = min(h, w)
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), ACTIVATIONS[activation]()]
        if size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(c, n_outputs))
    return nn.Sequential(*layers)


def build_model(cfg: ModelConfig, data: DataBundle, base_dir: Path | None = None) -> nn.Module:
    if cfg.name == "linear":
        return mlp(data.n_features, data.n_outputs, [], cfg.activation, 0.0)
    if cfg.name == "mlp":
        return mlp(data.n_features, data.n_outputs, cfg.hidden, cfg.activation, cfg.dropout)
    if cfg.name == "cnn":
        shape = tuple(cfg.input_shape) if cfg.input_shape else data.input_shape
        if len(shape) == 3 and shape[0] * shape[1] * shape[2] != data.n_features:
            raise usage_error(
                f"model.input_shape: {list(shape)} holds {shape[0] * shape[1] * shape[2]} "
                f"values but the data has {data.n_features} features"
            )
        return cnn(shape, data.n_outputs, cfg.channels, cfg.activation, cfg.dropout)
    return _from_import(cfg, data, base_dir)


def _from_import(cfg: ModelConfig, data: DataBundle, base_dir: Path | None) -> nn.Module:
    fn = load_object(cfg.function or "", "model.function", base_dir)
    kwargs = dict(cfg.kwargs)
    accepted: Mapping[str, inspect.Parameter]
    try:
        accepted = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        accepted = {}
    # Hand the data's sizes to functions that ask for them, unless the config sets them.
    for name, value in (("n_features", data.n_features), ("n_outputs", data.n_outputs)):
        if name in accepted and name not in kwargs:
            kwargs[name] = value
    try:
        model = fn(**kwargs)
    except Exception as exc:
        raise LrtoolError(
            f"model.function: {cfg.function} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, nn.Module):
        raise LrtoolError(
            f"model.function: {cfg.function} must return a torch.nn.Module, "
            f"got {type(model).__name__}"
        )
    return model
