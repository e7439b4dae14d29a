"""Every example config loads; the embedded default matches configs/quickstart.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrtool.config import default_config_text, load_config
from lrtool.errors import LrtoolError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load_and_are_commented(path):
    config = load_config(path)
    assert config.find.end_lr > config.find.start_lr
    assert "#" in path.read_text()


def test_embedded_default_is_the_quickstart():
    assert default_config_text() == (ROOT / "configs" / "quickstart.yaml").read_text()


def test_yaml_exponent_floats(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("find: {start_lr: 1e-6, end_lr: 1e-1}\n")
    assert load_config(p).find.start_lr == 1e-6


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("find: {end_lr: 1.0e-8}", "find.end_lr: must be greater"),
        ("find: {stpes: 10}", "did you mean 'steps'"),
        ("optimizr: {}", "did you mean 'optimizer'"),
        ("find: {steps: 3}", "find.steps"),
        ("find: {steps: 1000000000000}", "find.steps"),
        ("find: {start_lr: .nan}", "find.start_lr"),
        ("find: {end_lr: .inf}", "find.end_lr"),
        ("model: {name: resnet}", "model.name"),
        ("optimizer: {name: lion}", "optimizer.name"),
        ("data: {source: imagenet}", "data.source"),
        ("seed: abc", "seed"),
        ("data: {source: csv}", "data.path"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text, fragment):
    p = tmp_path / "c.yaml"
    p.write_text(text + "\n")
    with pytest.raises(LrtoolError) as err:
        load_config(p)
    assert fragment in str(err.value)
    assert err.value.exit_code == 2


def test_digits_fast_reader_equals_the_csv_path():
    import torch

    from lrtool.data import _read_csv, digits_path, read_digits

    fast, slow = read_digits(), _read_csv(digits_path(), "digit", None, "auto")
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
    assert fast[2] == slow[2] == "classification" and fast[0].shape == (1797, 64)
