"""``lrtool train`` and ``lrtool compare`` end to end, and the trainer engine."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from lrtool.config import load_config
from lrtool.jobs.train import train_schedule
from lrtool.schedules import build_schedule
from tests.conftest import interrupt_run, invoke


def test_train_records_schedule_values(tiny_config, tmp_path):
    out = tmp_path / "t"
    result = invoke("train", tiny_config, "--out", out, "--no-plot")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "train.csv").open()))
    assert list(rows[0]) == ["step", "lr", "momentum", "train_loss"] and len(rows) == 40
    ref = build_schedule("onecycle", {"max_lr": 0.2, "total_steps": 40})
    for row in rows:
        assert float(row["lr"]) == pytest.approx(ref(int(row["step"])), rel=1e-12)
        assert float(row["momentum"]) == pytest.approx(ref.momentum(int(row["step"])), rel=1e-12)
    evals = list(csv.DictReader((out / "eval.csv").open()))
    assert [int(e["step"]) for e in evals] == [0, 10, 20, 30, 40]
    assert "val_accuracy" in evals[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_run"] == 40 and summary["final_accuracy"] is not None


def test_train_schedule_flags_and_lr_from_find(tiny_config, tmp_path):
    result = invoke(
        "train",
        tiny_config,
        "--out",
        tmp_path / "a",
        "--schedule",
        "cosine",
        "--lr",
        "0.1",
        "--steps",
        "20",
        "-q",
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "a" / "train.csv").open()))
    assert float(rows[0]["lr"]) == pytest.approx(0.1) and len(rows) == 20
    found = invoke("train", tiny_config, "--out", tmp_path / "b", "--lr-from-find", "--json")
    assert found.exit_code == 0, found.output
    data = json.loads(found.stdout)
    assert data["lr_source"] == "range test"
    assert data["params"]["max_lr"] == pytest.approx(data["range_test"]["onecycle_max_lr"])


def test_plateau_is_driven_by_val_loss(tiny_config, tmp_path):
    result = invoke(
        "train",
        tiny_config,
        "--out",
        tmp_path / "p",
        "--schedule",
        "plateau",
        "--lr",
        "0.5",
        "--set",
        "patience=0",
        "--set",
        "threshold=0.5",
        "-q",
    )
    assert result.exit_code == 0, result.output
    lrs = [float(r["lr"]) for r in csv.DictReader((tmp_path / "p" / "train.csv").open())]
    assert lrs[0] == 0.5 and min(lrs) < 0.5


def test_nan_loss_stops_training_with_partial_results(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {source: synthetic, n_samples: 256, batch_size: 32}\n"
        "train: {steps: 50, eval_every: 10, schedule: {name: constant, lr: 1.0e+6}}\n"
    )
    result = invoke("train", cfg, "--out", tmp_path / "n", "-q")
    assert result.exit_code == 1
    assert "non-finite" in result.stderr
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["steps_run"] < 50


def test_compare_same_initial_weights(tiny_config):
    from lrtool.jobs.common import LoadedConfig, prepare

    config = LoadedConfig(load_config(tiny_config), str(tiny_config), None)
    first = {}
    for name in ("constant", "onecycle"):
        setup = prepare(config)
        first[name] = [p.clone() for p in setup.model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(first["constant"], first["onecycle"], strict=True))
    a = train_schedule(config, "constant", {"lr": 0.1, "total_steps": 40})
    b = train_schedule(config, "constant", {"lr": 0.1, "total_steps": 40})
    assert a.train_losses == b.train_losses


def test_compare_table_csv_and_jobs_identical(tiny_config, tmp_path):
    args = ["--schedules", "constant,exponential,onecycle", "--set", "onecycle.max_lr=0.3", "-q"]
    one = invoke("compare", tiny_config, "--out", tmp_path / "a", *args)
    assert one.exit_code == 0, one.output
    assert "winner" in one.stdout
    two = invoke("compare", tiny_config, "--out", tmp_path / "b", "--jobs", "2", *args)
    assert two.exit_code == 0, two.output
    a = (tmp_path / "a" / "compare.csv").read_bytes()
    assert a == (tmp_path / "b" / "compare.csv").read_bytes()
    rows = list(csv.DictReader((tmp_path / "a" / "compare.csv").open()))
    assert {r["schedule"] for r in rows} == {"constant", "exponential", "onecycle"}
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["params"]["onecycle"]["max_lr"] == 0.3


def test_compare_several_lrs(tiny_config, tmp_path):
    result = invoke(
        "compare",
        tiny_config,
        "--out",
        tmp_path / "l",
        "--schedule",
        "constant",
        "--lrs",
        "0.001,0.1,50",
        "--json",
    )
    assert result.exit_code == 0, result.output
    runs = {r["run"]: r for r in json.loads(result.stdout)["runs"]}
    assert len(runs) == 3
    low, high = runs["constant lr=0.001"], runs["constant lr=50"]
    assert low["best_val_loss"] > runs["constant lr=0.1"]["best_val_loss"]
    assert (
        high["stop_reason"].startswith("non-finite")
        or high["final_val_loss"] is None
        or (high["final_val_loss"] > runs["constant lr=0.1"]["final_val_loss"])
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--schedules", "constant,bogus"], "unknown schedule 'bogus'"),
        (["--schedules", "constant", "--set", "onecycle.max_lr=1"], "not in the compared list"),
        (["--target", "-1"], "--target"),
        (["--steps", "5", "--schedules", "constant", "--jobs", "0"], "--jobs"),
        (["--lrs", "0.1"], "--lrs needs --schedule"),
        (["--schedule", "constant", "--lrs", "a,b"], "--lrs"),
    ],
)
def test_compare_bad_input(tiny_config, tmp_path, args, fragment):
    result = invoke("compare", tiny_config, "--out", tmp_path / "x", *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
    assert not (tmp_path / "x" / "compare.csv").exists()


def test_train_bad_input(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {steps: 10, eval_every: 20}\n")
    result = invoke("train", cfg)
    assert result.exit_code == 2 and "train.eval_every" in result.stderr
    cfg.write_text("data: {source: synthetic, val_fraction: 0.0, n_samples: 128}\n")
    result = invoke("compare", cfg, "--schedules", "plateau", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "validation" in result.stderr
    result = invoke("train", cfg, "--schedule", "plateau", "--lr", "0.1", "--out", tmp_path / "q")
    assert result.exit_code == 2 and "validation" in result.stderr  # said up front, as compare
    assert not (tmp_path / "q").exists()


def test_train_sigint_writes_partial_results_and_exits_130(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {source: synthetic, n_samples: 20000, n_features: 200, batch_size: 2000}\n"
        "model: {name: mlp, hidden: [512, 512]}\n"
        "train: {steps: 1000000, eval_every: 1000000, schedule: {name: constant, lr: 1.0e-4}}\n"
    )
    out = tmp_path / "run"
    code, err = interrupt_run("train", cfg, out, tmp_path)
    assert code == 130, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["steps_run"] >= 1
    rows = (out / "train.csv").read_text().splitlines()
    assert len(rows) == summary["steps_run"] + 1


def test_plateau_patience_fits_the_budget_and_cuts(tmp_path):
    """Without a patience, plateau gets one its budget can use, and the LR is cut; a given
    patience that cannot fire is said."""
    from tests.conftest import TINY, write_config

    cfg = write_config(
        tmp_path, TINY.replace("steps: 40, eval_every: 10", "steps: 120, eval_every: 10")
    )
    result = invoke(
        "compare", cfg, "--schedules", "constant,plateau", "--lr", "0.5", "--out", tmp_path / "c"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["params"]["plateau"]["patience"] == 2  # 12 evaluations // 6
    assert any("derived from the budget" in n for n in summary["notes"])
    lrs = [
        float(r["lr"])
        for r in csv.DictReader((tmp_path / "c" / "compare.csv").open())
        if r["schedule"] == "plateau"
    ]
    assert min(lrs) < lrs[0]  # it cut
    stuck = invoke(
        "train",
        cfg,
        "--schedule",
        "plateau",
        "--set",
        "patience=20",
        "--lr",
        "0.5",
        "--out",
        tmp_path / "t",
    )
    assert stuck.exit_code == 0 and "cannot cut" in stuck.stdout


@pytest.mark.parametrize(
    ("monitor", "mode"), [("val_accuracy", "min"), ("val_loss", "max"), ("train_loss", "max")]
)
def test_plateau_mode_follows_its_monitor(monitor, mode):
    from lrtool.errors import LrtoolError

    assert build_schedule("plateau", {"lr": 1.0, "monitor": "val_accuracy"}).mode == "max"
    assert build_schedule("plateau", {"lr": 1.0}).mode == "min"
    with pytest.raises(LrtoolError, match="contradicts"):
        build_schedule("plateau", {"lr": 1.0, "monitor": monitor, "mode": mode})


def test_plateau_on_train_loss_needs_no_validation_data(tmp_path):
    from tests.conftest import TINY, write_config

    cfg = write_config(
        tmp_path, TINY.replace("batch_size: 32}", "batch_size: 32, val_fraction: 0.0}")
    )
    ok = invoke(
        "train",
        cfg,
        "--schedule",
        "plateau",
        "--set",
        "monitor=train_loss",
        "--lr",
        "0.3",
        "--out",
        tmp_path / "t",
        "-q",
    )
    assert ok.exit_code == 0, ok.output
    refused = invoke("train", cfg, "--schedule", "plateau", "--lr", "0.3", "--out", tmp_path / "u")
    assert refused.exit_code == 2 and "monitor=train_loss" in refused.stderr


def test_a_find_result_is_measured_once_and_used_many_times(tiny_config, tmp_path):
    """Issue 29: train and compare --lr-from-find PATH read an earlier find (its folder, its
    summary.json, or a RangeTestResult.save() file) instead of testing again."""
    import json

    import lrtool

    found = invoke("find", tiny_config, "--out", tmp_path / "f", "-q", "--budget", "0")
    assert found.exit_code == 0, found.output
    answer = json.loads((tmp_path / "f" / "summary.json").read_text())
    for i, given in enumerate([tmp_path / "f", tmp_path / "f" / "summary.json"]):
        out = tmp_path / f"t{i}"
        done = invoke("train", tiny_config, "--lr-from-find", given, "--schedule", "constant",
                      "--out", out, "-q")  # fmt: skip
        assert done.exit_code == 0, done.output
        summary = json.loads((out / "summary.json").read_text())
        assert summary["params"]["lr"] == answer["lr"]
        assert (
            summary["lr_source"].startswith("find result")
            and "summary.json" in summary["lr_source"]
        )
        assert not (out / "range_test.csv").exists()  # no second range test
    compared = invoke("compare", tiny_config, "--lr-from-find", tmp_path / "f", "--schedules",
                      "constant,onecycle", "--out", tmp_path / "c", "-q")  # fmt: skip
    assert compared.exit_code == 0, compared.output
    runs = json.loads((tmp_path / "c" / "summary.json").read_text())["runs"]
    assert [r["lr"] for r in runs] == [answer["lr"], answer["onecycle_max_lr"]]
    # the API: a RangeTestResult saved in a notebook is a find result too
    saved = tmp_path / "result.json"
    model, opt, batches = _api_problem()
    result = lrtool.find_lr(model, opt, batches, torch.nn.CrossEntropyLoss(), steps=40)
    result.save(saved)
    again = lrtool.read_suggestion(saved)
    assert (again.lr, again.onecycle_max_lr) == (result.lr, result.onecycle_max_lr)
    reused = invoke("train", tiny_config, "--lr-from-find", saved, "--out", tmp_path / "s", "-q")
    assert reused.exit_code == 0, reused.output


def test_lr_from_find_alone_still_runs_a_range_test_and_bad_paths_are_one_line(
    tiny_config, tmp_path
):
    import json

    done = invoke("train", "--lr-from-find", tiny_config, "--out", tmp_path / "a", "-q")
    assert done.exit_code == 0, done.output  # the flag, then the config: still the flag
    assert (tmp_path / "a" / "range_test.csv").exists()
    trained = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert trained["lr_source"] == "range test"
    cases = [
        (tmp_path / "a", "summary of lrtool train, not of lrtool find"),
        (tmp_path / "empty", "holds no summary.json"),
        (tmp_path / "missing.json", "file not found"),
    ]
    (tmp_path / "empty").mkdir()
    for given, fragment in cases:
        bad = invoke("train", tiny_config, "--lr-from-find", given, "--out", tmp_path / "b", "-q")
        assert bad.exit_code == 1 and fragment in bad.stderr, bad.output
        assert not (tmp_path / "b").exists()  # refused before anything was claimed


def _api_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 6, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, [(x[i : i + 32], y[i : i + 32]) for i in range(0, 512, 32)]


def test_compare_jobs_above_the_cores_are_capped_and_say_so(tiny_config, tmp_path):
    """More workers than cores only take turns (each trains on one thread): --jobs is capped
    at the cores this process may use, with a note (issue 26)."""
    import os

    cores = len(os.sched_getaffinity(0))
    done = invoke("compare", tiny_config, "--out", tmp_path / "c", "-q", "--steps", "5",
                  "--schedules", "constant,cosine,onecycle", "--jobs", "64")  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["jobs"] == min(cores, 3)
    assert f"--jobs 64 capped at the {cores} CPU cores this process may use" in summary["notes"]


@pytest.mark.parametrize("command", ["train", "compare"])
def test_json_carries_the_one_line_message_the_terminal_ends_with(tiny_config, tmp_path, command):
    """CI reads --json (issue 29): a message field holds the same line the terminal prints."""
    extra = ["--schedules", "constant,cosine"] if command == "compare" else []
    data = json.loads(
        invoke(command, tiny_config, "--out", tmp_path / "j", "--json", *extra).stdout
    )
    plain = invoke(command, tiny_config, "--out", tmp_path / "p", "--no-plot", *extra)
    assert data["message"] and data["message"] in plain.stdout
