"""Each fact once (issue 27 item 4): the config validated once, after every flag and --set is
in, with a mistake naming where it came from; the data loaded once; the values a setting may
take declared once (lrtool.settings) and read from there by the config, the flags and the
engines."""

from __future__ import annotations

import json
import typing

import pytest
from conftest import TINY, invoke, write_config

from lrtool import config as config_module
from lrtool import settings


def _counting(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_find_validates_the_config_once_with_every_override_in(tiny_config, tmp_path, monkeypatch):
    calls = _counting(monkeypatch, config_module.Config, "model_validate")
    done = invoke(
        "find", tiny_config, "--out", tmp_path / "a", "--steps", "20", "--budget", "0",
        "--seed", "3", "--amp", "none", "--set", "data.batch_size=16", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert len(calls) == 1
    echo = json.loads(done.stdout)["config_echo"]
    assert (echo["find"]["steps"], echo["seed"], echo["data"]["batch_size"]) == (20, 3, 16)


def test_a_set_can_fix_what_the_file_has_wrong(tmp_path):
    """The file is validated with the overrides in, not before: --set repairs a bad key."""
    bad = write_config(tmp_path, TINY.replace("steps: 30}", "steps: 3}"))
    refused = invoke("find", bad, "--out", tmp_path / "a", "--budget", "0")
    assert refused.exit_code == 2 and f"{bad}: find.steps" in refused.stderr
    fixed = invoke(
        "find", bad, "--out", tmp_path / "b", "--budget", "0", "--set", "find.steps=20", "-q"
    )
    assert fixed.exit_code == 0, fixed.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--steps", "3"], "--steps: find.steps: "),
        (["--set", "find.steps=3"], "--set: find.steps: "),
        (["--val-batches", "0"], "--val-batches: find.val_batches: "),
        (["--start-lr", "100"], "with --start-lr: find.end_lr: must be greater"),
    ],
)
def test_a_bad_flag_value_is_named_by_its_flag(tiny_config, tmp_path, args, named):
    done = invoke("find", tiny_config, "--out", tmp_path / "a", *args)
    assert done.exit_code == 2 and named in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "a").exists()


def test_a_length_flag_wins_over_the_length_in_the_file(tmp_path):
    """train.epochs in the file and --steps on the command line: the flag's length is run
    (they were refused as 'not both' when the flag was set on top of the file)."""
    cfg = write_config(tmp_path, TINY.replace("train: {steps: 40,", "train: {epochs: 2,"))
    done = invoke("train", cfg, "--out", tmp_path / "a", "--steps", "12", "-q", "--no-plot")
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["steps_run"] == 12 and summary["epochs"] is None
    by_epochs = invoke("train", cfg, "--out", tmp_path / "b", "-q", "--no-plot")
    assert by_epochs.exit_code == 0, by_epochs.output
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["steps_run"] == 2 * summary["steps_per_epoch"]


@pytest.mark.parametrize("command", ["train", "find"])
def test_data_in_epochs_is_loaded_once(tmp_path, monkeypatch, command):
    """Counting an epoch's steps loads the data; the run then uses that data."""
    import lrtool.build
    import lrtool.data

    loads = _counting(monkeypatch, lrtool.data, "load_data")
    monkeypatch.setattr(lrtool.build, "load_data", lrtool.data.load_data)
    cfg = write_config(tmp_path, TINY.replace("train: {steps: 40,", "train: {epochs: 1,"))
    extra = ["--budget", "0.5"] if command == "find" else ["--no-plot"]
    done = invoke(command, cfg, "--out", tmp_path / "a", "-q", *extra)
    assert done.exit_code == 0, done.output
    assert len(loads) == 1


def test_compare_runs_after_the_first_load_their_own_data(tmp_path, monkeypatch):
    """A second run of one config does not reuse the first run's data: a user's loader may
    keep state. The count: one load for the epoch count (used by the first run), one for the
    second run."""
    import lrtool.build
    import lrtool.data

    loads = _counting(monkeypatch, lrtool.data, "load_data")
    monkeypatch.setattr(lrtool.build, "load_data", lrtool.data.load_data)
    cfg = write_config(tmp_path, TINY.replace("train: {steps: 40,", "train: {epochs: 1,"))
    done = invoke(
        "compare", cfg, "--schedules", "constant,cosine", "--lr", "0.1", "--out", tmp_path / "a",
        "-q", "--no-plot",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert len(loads) == 2


def test_the_config_reads_its_choices_from_settings():
    hints = typing.get_type_hints(config_module.Config)
    assert typing.get_args(hints["device"]) == settings.DEVICES
    loop = typing.get_type_hints(config_module.LoopConfig)
    assert typing.get_args(loop["amp"]) == settings.AMP_MODES
    find = typing.get_type_hints(config_module.FindConfig)
    assert typing.get_args(find["snapshot"]) == settings.SNAPSHOT_MODES


def test_the_engines_and_flags_read_their_choices_from_settings():
    from lrtool import loop, snapshot

    assert loop.AMP_CHOICES == ("bf16", "fp16") == settings.AUTOCAST_DTYPES
    assert snapshot.SNAPSHOT_MODES is settings.SNAPSHOT_MODES
    helped = invoke("find", "--help").stdout
    assert settings.one_of(settings.SNAPSHOT_MODES) in " ".join(helped.split())


@pytest.mark.parametrize(
    ("snapshot", "budget", "repeats", "refused"),
    [("none", 0.0, 1, False), ("none", 0.5, 1, True), ("none", 0.0, 2, True), ("cpu", 1, 3, False)],
)
def test_one_rule_for_a_snapshot_the_restarts_need(tmp_path, snapshot, budget, repeats, refused):
    """The rule (lrtool.settings) refuses the CLI and the API alike."""
    import torch
    from torch import nn

    from lrtool import find_lr
    from lrtool.errors import LrtoolError

    assert settings.restarts_need_a_snapshot(snapshot, budget, repeats) is refused
    cli = invoke(
        "find", write_config(tmp_path, TINY), "--out", tmp_path / "a", "--snapshot", snapshot,
        "--budget", str(budget), "--repeats", str(repeats), "--steps", "10", "-q",
    )  # fmt: skip
    assert (
        (cli.exit_code == 2 and "find.snapshot: none" in cli.stderr)
        if refused
        else (cli.exit_code == 0)
    ), cli.output
    model = nn.Linear(4, 2)
    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(4)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    call = {"steps": 10, "snapshot": snapshot, "budget": budget, "repeats": repeats}
    call |= {"refine": False, "target_steps": 20}
    if refused:
        with pytest.raises(LrtoolError, match="snapshot: none"):
            find_lr(model, opt, data, nn.CrossEntropyLoss(), **call)
    else:
        find_lr(model, opt, data, nn.CrossEntropyLoss(), **call)


def test_json_is_written_in_one_place():
    """Only lrtool.outputs.json_text turns results into JSON: strict JSON (NaN as null,
    an infinity as the text "inf"), which every JSON reader accepts."""
    import ast
    import math
    from pathlib import Path

    from lrtool.outputs import json_text

    package = Path(config_module.__file__).parent
    writers = [
        f"{path.relative_to(package)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr in ("dump", "dumps")
        and isinstance(node.value, ast.Name)
        and node.value.id == "json"
    ]
    assert len(writers) == 1 and writers[0].startswith("outputs.py:"), writers
    text = json_text({"a": math.nan, "b": [math.inf, 1.5]})
    assert json.loads(text, parse_constant=pytest.fail) == {"a": None, "b": ["inf", 1.5]}
