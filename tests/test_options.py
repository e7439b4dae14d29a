"""Every option works in every command: the ``loop:`` section and its flags in find, train and
compare, ``find.monitor``, ``train.target``, and the LR plan of train and compare."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import TINY, invoke, write_config


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _train_losses(folder: Path) -> list[float]:
    return [float(r["train_loss"]) for r in csv.DictReader((folder / "train.csv").open())]


LOOP_FLAGS = ["--accumulation-steps", "2", "--grad-clip", "0.5", "--amp", "bf16"]


@pytest.mark.parametrize("command", ["find", "train", "compare"])
def test_loop_flags_reach_every_command(command, tiny_config, tmp_path):
    extra = ["--schedules", "constant,onecycle"] if command == "compare" else []
    plain = invoke(command, tiny_config, "--out", tmp_path / "a", "-q", "--no-plot", *extra)
    shaped = invoke(
        command, tiny_config, "--out", tmp_path / "b", "-q", "--no-plot", *extra, *LOOP_FLAGS
    )
    assert plain.exit_code == 0 and shaped.exit_code == 0, shaped.output
    loop = _summary(tmp_path / "b")["config_echo"]["loop"]
    assert loop == {"accumulation_steps": 2, "amp": "bf16", "grad_clip": 0.5}
    name = {"find": "range_test.csv", "train": "train.csv", "compare": "compare.csv"}[command]
    assert (tmp_path / "a" / name).read_text() != (tmp_path / "b" / name).read_text()


def test_loop_section_in_yaml_equals_the_flags(tmp_path):
    cfg = write_config(
        tmp_path, TINY + "loop: {accumulation_steps: 2, grad_clip: 0.5, amp: bf16}\n"
    )
    from_yaml = invoke("train", cfg, "--out", tmp_path / "y", "-q", "--no-plot")
    assert from_yaml.exit_code == 0
    plain = write_config(tmp_path, TINY, "plain.yaml")
    flagged = invoke("train", plain, "--out", tmp_path / "g", "-q", "--no-plot", *LOOP_FLAGS)
    assert flagged.exit_code == 0
    assert _train_losses(tmp_path / "y") == _train_losses(tmp_path / "g")


def test_accumulation_reads_more_batches_per_step(tiny_config, tmp_path):
    """Two micro-batches of 32 per step: the loss logged is their mean, a different curve."""
    one = invoke("train", tiny_config, "--out", tmp_path / "a", "-q", "--no-plot")
    two = invoke("train", tiny_config, "--out", tmp_path / "b", "-q", "--accumulation-steps", "2")
    assert one.exit_code == 0 and two.exit_code == 0
    assert _train_losses(tmp_path / "a") != _train_losses(tmp_path / "b")


def test_train_grad_clip_key_moved_to_loop(tmp_path):
    old = write_config(tmp_path, TINY.replace("train: {", "train: {grad_clip: 0.5, "), "old.yaml")
    new = write_config(tmp_path, TINY + "loop: {grad_clip: 0.5}\n", "new.yaml")
    a = invoke("train", old, "--out", tmp_path / "a", "-q", "--no-plot")
    b = invoke("train", new, "--out", tmp_path / "b", "-q", "--no-plot")
    assert a.exit_code == 0 and b.exit_code == 0
    assert _train_losses(tmp_path / "a") == _train_losses(tmp_path / "b")
    both = write_config(
        tmp_path,
        TINY.replace("train: {", "train: {grad_clip: 0.5, ") + "loop: {grad_clip: 1.0}\n",
        "both.yaml",
    )
    clash = invoke("train", both, "--out", tmp_path / "c")
    assert clash.exit_code == 2 and "loop.grad_clip" in clash.stderr


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--amp", "fp16"], "fp16"),
        (["--amp", "fp8"], "loop.amp"),
        (["--accumulation-steps", "0"], "loop.accumulation_steps"),
        (["--grad-clip", "-1"], "loop.grad_clip"),
        (["--monitor", "loss"], "find.monitor"),
    ],
)
def test_bad_loop_flags_are_one_line(flags, fragment, tiny_config, tmp_path):
    result = invoke("find", tiny_config, "--out", tmp_path / "o", *flags)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_find_monitor_val_reads_fixed_validation_batches(tiny_config, tmp_path):
    result = invoke(
        "find", tiny_config, "--out", tmp_path / "v", "-q", "--monitor", "val",
        "--val-batches", "2", "--budget", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = _summary(tmp_path / "v")
    assert summary["monitor"] == "val (2 batches)"
    train = invoke(
        "find", tiny_config, "--out", tmp_path / "t", "-q", "--budget", "0", "--monitor", "train"
    )
    assert train.exit_code == 0 and _summary(tmp_path / "t")["monitor"] == "train"
    # auto (the default): the val batches whenever there are some, with or without a search
    alone = invoke("find", tiny_config, "--out", tmp_path / "a", "-q", "--budget", "0")
    assert alone.exit_code == 0 and _summary(tmp_path / "a")["monitor"] == "val (4 batches)"
    searched = invoke("find", tiny_config, "--out", tmp_path / "s", "-q", "--budget", "0.5")
    assert searched.exit_code == 0 and _summary(tmp_path / "s")["monitor"] == "val (4 batches)"
    no_val = write_config(
        tmp_path, TINY.replace("batch_size: 32}", "batch_size: 32, val_fraction: 0.0}"), "n.yaml"
    )
    plain = invoke("find", no_val, "--out", tmp_path / "p", "-q", "--budget", "0")
    assert plain.exit_code == 0 and _summary(tmp_path / "p")["monitor"] == "train"
    refused = invoke("find", no_val, "--out", tmp_path / "n", "--monitor", "val")
    assert refused.exit_code == 2 and "val_fraction" in refused.stderr


def test_train_target_is_honoured_by_compare_and_train(tmp_path):
    cfg = write_config(tmp_path, TINY.replace("train: {", "train: {target: 0.9, "))
    compared = invoke(
        "compare", cfg, "--schedules", "constant,onecycle", "--out", tmp_path / "c", "-q"
    )
    assert compared.exit_code == 0, compared.output
    summary = _summary(tmp_path / "c")
    assert summary["target_val_loss"] == 0.9
    flag = invoke(
        "compare", cfg, "--schedules", "constant", "--target", "0.5", "--out", tmp_path / "f"
    )
    assert flag.exit_code == 0 and _summary(tmp_path / "f")["target_val_loss"] == 0.5
    trained = invoke("train", cfg, "--out", tmp_path / "t", "-q", "--no-plot")
    assert trained.exit_code == 0
    summary = _summary(tmp_path / "t")
    evals = list(csv.DictReader((tmp_path / "t" / "eval.csv").open()))
    first = next((int(e["step"]) for e in evals if float(e["val_loss"]) <= 0.9), None)
    assert summary["target_val_loss"] == 0.9 and summary["steps_to_target"] == first


def test_train_without_a_schedule_lr_uses_optimizer_lr(tiny_config, tmp_path):
    result = invoke("train", tiny_config, "--schedule", "cosine", "--out", tmp_path / "o", "-q")
    assert result.exit_code == 0, result.output
    summary = _summary(tmp_path / "o")
    assert summary["params"]["lr"] == 0.05 and summary["lr_source"] == "optimizer.lr"
    explicit = invoke(
        "train", tiny_config, "--schedule", "cosine", "--lr", "0.2", "--out", tmp_path / "e"
    )
    assert explicit.exit_code == 0
    assert _summary(tmp_path / "e")["lr_source"] == "--lr"
    assert _summary(tmp_path / "e")["params"]["lr"] == 0.2


def _csv_with_categories_and_gaps(path: Path) -> None:
    rows = ["size,colour,weight,label"]
    for i in range(240):
        colour = ("red", "green", "blue")[i % 3]
        weight = "" if i % 17 == 0 else f"{(i % 11) / 3:.3f}"
        rows.append(f"{i % 7},{colour},{weight},{int(colour == 'red' or i % 7 > 4)}")
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("missing", ["drop", "mean", "median"])
def test_csv_categorical_onehot_and_missing_values(tmp_path, missing):
    _csv_with_categories_and_gaps(tmp_path / "d.csv")
    text = f"""
    seed: 0
    device: cpu
    data: {{source: csv, path: d.csv, target: label, batch_size: 16, categorical: onehot,
           missing: {missing}}}
    find: {{steps: 20}}
    """
    cfg = write_config(tmp_path, text)
    result = invoke("find", cfg, "--out", tmp_path / "o", "-q", "--budget", "0")
    assert result.exit_code == 0, result.output
    data = _summary(tmp_path / "o")["data"]
    assert data["onehot"] == {"colour": ["blue", "green", "red"]}
    assert data["n_features"] == 5  # size, weight, and one column per colour
    gaps = sum(1 for i in range(240) if i % 17 == 0)
    if missing == "drop":
        assert data["rows_dropped"] == gaps and data["n_train"] + data["n_val"] == 240 - gaps
    else:
        assert data["rows_dropped"] == 0 and "weight" in data["filled"]
    plain = write_config(tmp_path, text.replace("categorical: onehot,", ""), "plain.yaml")
    refused = invoke("find", plain, "--out", tmp_path / "p")
    assert refused.exit_code == 1 and "data.categorical: onehot" in refused.stderr
