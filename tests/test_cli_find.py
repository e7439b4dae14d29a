"""``lrtool find`` end to end through the CLI: outputs, overwrites, JSON, smoke and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import interrupt_run, invoke, write_config

ROOT = Path(__file__).resolve().parents[1]


def test_find_writes_csv_and_summary(tiny_config, tmp_path):
    out = tmp_path / "run"
    result = invoke("find", tiny_config, "--out", out, "--no-plot")
    assert result.exit_code == 0, result.output
    assert "suggested lr" in result.stdout and "Suggestions" in result.stdout
    rows = list(csv.DictReader((out / "range_test.csv").open()))
    assert list(rows[0]) == ["step", "lr", "loss", "smoothed_loss", "lagfree_loss"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_run"] == len(rows)
    first = out / "range_test_first_sweep.csv"  # the second sweep is always read by default
    assert summary["refined"] is not None and first.exists()
    assert float(next(csv.DictReader(first.open()))["lr"]) == 1e-4  # find.start_lr
    assert summary["lr"] is None or summary["lr"] > 0
    assert {"lrtool", "valley", "minimum_div10", "steepest"} <= set(summary["suggestions"])
    assert summary["versions"]["torch"]


def test_find_plot_and_flags_override_config(tiny_config, tmp_path):
    result = invoke(
        "find",
        tiny_config,
        "--out",
        tmp_path / "r",
        "--steps",
        "12",
        "--start-lr",
        "1e-3",
        "--end-lr",
        "1",
        "--mode",
        "linear",
    )
    assert result.exit_code == 0, result.output
    assert "Loss vs learning rate" in result.stdout
    rows = list(csv.DictReader((tmp_path / "r" / "range_test.csv").open()))
    assert float(rows[0]["lr"]) == 1e-3 and len(rows) <= 12


def test_never_overwrites_without_force(tiny_config, tmp_path):
    out = tmp_path / "run"
    assert invoke("find", tiny_config, "--out", out, "-q").exit_code == 0
    before = (out / "range_test.csv").read_text()
    again = invoke("find", tiny_config, "--out", out, "-q", "--seed", "5")
    assert again.exit_code == 1 and "--force" in again.stderr
    assert (out / "range_test.csv").read_text() == before
    assert invoke("find", tiny_config, "--out", out, "-q", "--force").exit_code == 0


def test_same_seed_gives_byte_identical_csv(tiny_config, tmp_path):
    for name in ("a", "b"):
        assert invoke("find", tiny_config, "--out", tmp_path / name, "-q").exit_code == 0
    a = (tmp_path / "a" / "range_test.csv").read_bytes()
    assert a == (tmp_path / "b" / "range_test.csv").read_bytes()


def test_json_prints_only_the_summary(tiny_config, tmp_path):
    result = invoke("find", tiny_config, "--out", tmp_path / "r", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["command"] == "find" and "stop_reason" in data


def test_repeats_report_spread(tiny_config, tmp_path):
    result = invoke("find", tiny_config, "--out", tmp_path / "r", "--repeats", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["repeat_lrs"]) == 2 and data["stop_reason"].startswith("median of 2")


def test_smoke_pass_and_fail(tiny_config, tmp_path):
    ok = invoke("find", tiny_config, "--out", tmp_path / "a", "--smoke")
    assert ok.exit_code == 0, ok.output
    assert ok.stderr.splitlines()[-1].startswith("smoke: ok")  # after the progress lines
    # it judges exactly what lrtool find reports with the same config: the searched answer
    found = invoke("find", tiny_config, "--out", tmp_path / "f", "-q")
    smoked, plain = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "af")
    assert smoked["lr"] == plain["lr"] and smoked["rule"] == plain["rule"] == "lrtool --budget"
    assert found.exit_code == 0 and f"{plain['lr']:.3g}" in ok.stderr
    bad = invoke(
        "find", tiny_config, "--out", tmp_path / "b", "--smoke", "--expect-lr", "1e-9:1e-8"
    )
    assert bad.exit_code == 1 and "outside the expected range" in bad.stderr
    assert bad.stdout == ""  # verdicts go to stderr, like errors
    flat = write_config(
        tmp_path,
        """
        data: {source: synthetic, n_samples: 128, n_features: 4, batch_size: 32}
        find: {start_lr: 1.0e-9, end_lr: 1.0e-8, steps: 20}
        """,
    )
    never = invoke("find", flat, "--out", tmp_path / "c", "--smoke")
    assert never.exit_code == 1 and "FAIL" in never.stderr


def test_png_is_written(tiny_config, tmp_path):
    png = tmp_path / "curve.png"
    result = invoke("find", tiny_config, "--out", tmp_path / "r", "-q", "--png", png)
    assert result.exit_code == 0, result.output
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 500)


def test_custom_model_example_config(tmp_path):
    config = ROOT / "configs" / "custom_model.yaml"
    result = invoke("find", config, "--out", tmp_path / "r", "-q", "--steps", "20")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["config_echo"]["model"]["name"] == "import" and summary["steps_run"] >= 5
    assert "suggested lr" in result.stdout or "no suggestion" in result.stdout


def test_csv_data_config(tmp_path):
    rows = ["a,b,c,label"] + [f"{i % 7},{(i * 3) % 5},{i % 2},{int(i % 7 > 3)}" for i in range(200)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    cfg = write_config(
        tmp_path,
        """
        data: {source: csv, path: d.csv, target: label, batch_size: 16}
        find: {steps: 15}
        """,
    )
    result = invoke("find", cfg, "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["config_echo"]["data"]["source"] == "csv" and summary["steps_run"] >= 5
    rows = (tmp_path / "r" / "range_test.csv").read_text().splitlines()
    assert len(rows) == summary["steps_run"] + 1


def test_sigint_writes_partial_results_and_exits_130(tmp_path):
    cfg = write_config(
        tmp_path,
        """
        data: {source: synthetic, n_samples: 20000, n_features: 200, batch_size: 2000}
        model: {name: mlp, hidden: [512, 512]}
        find: {start_lr: 1.0e-6, end_lr: 1.0e-5, steps: 100000}
        """,
    )
    out = tmp_path / "run"
    code, err = interrupt_run("find", cfg, out, tmp_path)
    assert code == 130, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["steps_run"] >= 1
    lines = (out / "range_test.csv").read_text().splitlines()
    assert len(lines) == summary["steps_run"] + 1


BAD = [
    # (config text or None, extra args, exit code, message fragment)
    ("find: {end_lr: 1.0e-9}", [], 2, "find.end_lr"),
    ("find: {stepz: 10}", [], 2, "did you mean 'steps'"),
    ("- a\n- b", [], 2, "must be a mapping"),
    ("find: [unclosed", [], 2, "invalid YAML"),
    ("", [], 2, "empty"),
    ("model: {name: transformer}", [], 2, "model.name"),
    ("optimizer: {name: lamb}", [], 2, "optimizer.name"),
    ("loss: hinge", [], 2, "loss"),
    ("data: {source: mnist}", [], 2, "data.source"),
    ("find: {steps: 2}", [], 2, "find.steps"),
    ("find: {steps: 10000000000000}", [], 2, "find.steps"),
    ("find: {start_lr: .nan}", [], 2, "find.start_lr"),
    ("seed: [1]", [], 2, "seed"),
    ("data: {source: csv, path: missing.csv}", [], 1, "data.path"),
    ("data: {source: import, function: no_such_module_xyz:make}", [], 1, "data.function"),
    ("data: {source: import, function: 'os.path:nope_attr'}", [], 1, "no attribute"),
    ("model: {name: import, function: 'no_mod_abc:build'}", [], 1, "model.function"),
    ("model: {name: cnn}\ndata: {source: synthetic, n_features: 7}", [], 2, "model.input_shape"),
    (None, ["--steps", "3"], 2, "find.steps"),
    (None, ["--start-lr", "5", "--end-lr", "1"], 2, "find.end_lr"),
    (None, ["--mode", "cubic"], 2, "find.mode"),
    (None, ["--device", "tpu"], 2, "--device"),
    (None, ["--expect-lr", "1:2"], 2, "--smoke"),
    (None, ["--smoke", "--expect-lr", "abc"], 2, "--expect-lr"),
    (None, ["--png", "x.jpg"], 2, ".png"),
]


@pytest.mark.parametrize(("text", "args", "code", "fragment"), BAD)
def test_bad_input_is_one_clear_line(tmp_path, text, args, code, fragment):
    cfg = write_config(tmp_path, text if text is not None else "find: {steps: 10}")
    out = tmp_path / "out"
    result = invoke("find", cfg, "--out", out, *args)
    assert result.exit_code == code, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (out / "range_test.csv").exists()


def test_missing_and_directory_config(tmp_path):
    for path, fragment in ((tmp_path / "nope.yaml", "not found"), (tmp_path, "directory")):
        result = invoke("find", path)
        assert result.exit_code == 2 and fragment in result.stderr


def test_binary_config(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\x00\xff\xfe\x00binary")
    result = invoke("find", p)
    assert result.exit_code == 2 and "not" in result.stderr


def test_out_is_a_file(tiny_config, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    result = invoke("find", tiny_config, "--out", f)
    assert result.exit_code == 1 and "is a file" in result.stderr


def test_debug_shows_traceback(tmp_path):
    cfg = write_config(tmp_path, "find: {end_lr: 1.0e-9}")
    result = invoke("--debug", "find", cfg)
    assert result.exit_code != 0 and result.exception is not None


@pytest.mark.parametrize("budget", [None, 0])
def test_find_lr_at_its_defaults_gives_what_lrtool_find_gives(tmp_path, budget):
    """One find path (issue 25): on the quickstart config, with its validation split and
    train.steps as the training length, ``find_lr`` at its own defaults runs the same sweeps,
    monitor and search as ``lrtool find`` with no find settings (budget None: the default
    search; budget 0: the curve alone) and gives the same LR."""
    from lrtool import find_lr
    from lrtool.config import load_config
    from lrtool.jobs.common import LoadedConfig, prepare

    config_path = ROOT / "configs" / "quickstart.yaml"
    out = tmp_path / "run"
    extra = [] if budget is None else ["--budget", str(budget)]
    cli = invoke("find", config_path, "--out", out, "--no-plot", "--json", *extra)
    assert cli.exit_code == 0, cli.output
    summary = json.loads((out / "summary.json").read_text())

    loaded = load_config(config_path)
    setup = prepare(LoadedConfig(loaded, str(config_path), config_path.parent))
    kwargs = {} if budget is None else {"budget": budget}
    api = find_lr(
        setup.model, setup.optimizer, setup.fresh_train_batches(), setup.loss_fn,
        val_loader=setup.data.val, target_steps=loaded.train.steps, **kwargs,
    )  # fmt: skip
    rows = list(csv.DictReader((out / "range_test.csv").open()))
    assert [float(r["loss"]) for r in rows] == pytest.approx(api.losses, rel=1e-6)
    assert summary["monitor"] == api.monitor == "val (4 batches)"
    assert summary["lr"] == pytest.approx(api.lr, rel=1e-6)
    assert summary["onecycle_max_lr"] == pytest.approx(api.onecycle_max_lr, rel=1e-6)
    searched = summary.get("verify")
    assert (searched is None) == (api.verification is None) == (budget == 0)
    if searched:
        tried = [c["lr"] for c in searched["candidates"] if c["steps"]]
        assert tried == pytest.approx([c.lr for c in api.verification.candidates], rel=1e-9)
        assert searched["monitor"] == api.verification.monitor


def test_progress_is_plain_lines_on_a_log_and_nothing_with_quiet(tmp_path):
    """Where stderr is no terminal (a CI log), the progress is a plain line at every tenth of
    each sweep, on stderr (issue 29); -q and --json keep stderr to warnings and errors."""
    import os
    import subprocess
    import sys

    cfg = ROOT / "configs" / "smoke.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "lrtool", "find", str(cfg), "--no-plot", "--budget", "0"]
    shown = subprocess.run([*run, "--out", str(tmp_path / "a")], capture_output=True,
                           text=True, env=env, timeout=300)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = [x for x in shown.stderr.splitlines() if x.startswith("range test: step")]
    assert lines[0].startswith("range test: step 1/40, lr 1.00e-05")
    assert 9 <= len(lines) <= 2 * 11  # about a tenth of each of the two sweeps
    quiet = subprocess.run([*run, "--out", str(tmp_path / "b"), "-q"], capture_output=True,
                           text=True, env=env, timeout=300)  # fmt: skip
    assert quiet.returncode == 0 and "range test: step" not in quiet.stderr
