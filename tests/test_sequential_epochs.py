"""Issue 19, items 1 and 2: ``sequential`` (a schedule of schedules) against torch
``SequentialLR`` and optax ``join_schedules`` (written out: optax is not installed), and
lengths in epochs everywhere a length in steps goes."""

from __future__ import annotations

import json

import pytest
import torch

from lrtool import build_schedule
from lrtool.errors import LrtoolError
from lrtool.schedules import in_steps, route_sets, uses_epochs
from tests.conftest import invoke, torch_values, write_config

S = torch.optim.lr_scheduler


@pytest.mark.parametrize(
    ("parts", "milestones", "torch_parts"),
    [
        (  # warm-up then cosine: the case every transformer recipe writes
            [
                {"name": "linear", "start_factor": 0.1, "end_factor": 1.0, "total_steps": 10},
                {"name": "cosine", "total_steps": 90, "eta_min": 0.001},
            ],
            [10],
            lambda o: [
                S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=10),
                S.CosineAnnealingLR(o, T_max=90, eta_min=0.001),
            ],
        ),
        (  # three parts: constant, exponential, step
            [
                {"name": "constant"},
                {"name": "exponential", "s": 1, "base": 0.9},
                {"name": "step", "step_size": 7, "factor": 0.5},
            ],
            [15, 40],
            lambda o: [
                S.ConstantLR(o, factor=1.0, total_iters=0),
                S.ExponentialLR(o, gamma=0.9),
                S.StepLR(o, step_size=7, gamma=0.5),
            ],
        ),
    ],
)
def test_sequential_equals_torch_sequential_lr(parts, milestones, torch_parts):
    sched = build_schedule(
        "sequential", {"lr": 0.2, "schedules": parts, "boundaries": milestones, "total_steps": 100}
    )
    expected = torch_values(lambda o: S.SequentialLR(o, torch_parts(o), milestones), 100, lr=0.2)
    assert [sched(t) for t in range(100)] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_sequential_equals_optax_join_schedules():
    # optax.join_schedules, written out: index = sum(step >= boundaries), and schedule i is
    # called with step - boundaries[i-1].
    def join_schedules(schedules, boundaries):
        def schedule(step):
            index = sum(step >= b for b in boundaries)
            start = boundaries[index - 1] if index else 0
            return schedules[index](step - start)

        return schedule

    boundaries = [20, 50]
    optax_like = join_schedules(
        [
            lambda n: 0.1 * n / 20,  # optax.linear_schedule(0, 0.1, 20)
            lambda n: 0.1,
            lambda n: 0.1 * 0.5 ** (n / 10),  # optax.exponential_decay(0.1, 10, 0.5)
        ],
        boundaries,
    )
    sched = build_schedule(
        "sequential",
        {
            "lr": 0.1,
            "boundaries": boundaries,
            "schedules": [
                {"name": "linear", "start_factor": 0.0, "end_factor": 1.0, "total_steps": 20},
                {"name": "constant"},
                {"name": "exponential", "s": 10, "base": 0.5},
            ],
        },
    )
    for t in [0, 1, 19, 20, 21, 49, 50, 51, 80, 500]:
        assert sched(t) == pytest.approx(optax_like(t), rel=1e-12)


def test_parts_fill_their_segment_and_boundaries_come_from_lengths():
    sched = build_schedule(
        "sequential",
        {"lr": 1.0, "total_steps": 100, "schedules": [
            {"name": "constant", "total_steps": 30}, {"name": "linear"}]},
    )  # fmt: skip
    # boundaries = [30]; the linear part runs 100 - 30 = 70 steps down to 0
    assert sched(29) == 1.0 and sched(30) == 1.0
    assert sched(65) == pytest.approx(0.5)
    assert sched(100) == pytest.approx(0.0)


def test_momentum_follows_the_parts_when_every_part_cycles_it():
    sched = build_schedule(
        "sequential",
        {"total_steps": 40, "boundaries": [20], "schedules": [
            {"name": "onecycle", "max_lr": 1.0}, {"name": "onecycle", "max_lr": 0.5}]},
    )  # fmt: skip
    first = build_schedule("onecycle", {"max_lr": 1.0, "total_steps": 20})
    assert sched.momentum(25) == first.momentum(5)
    assert max(sched(t) for t in range(20, 40)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"schedules": [{"name": "constant"}, {"name": "cosine"}]}, "set boundaries"),
        ({"schedules": [{"name": "constant"}], "boundaries": [5]}, "one boundary fewer"),
        ({"schedules": [{"name": "constant"}, {"name": "constant"}], "boundaries": [5, 3]},
         "one boundary fewer"),
        ({"schedules": [{"name": "constant"}] * 3, "boundaries": [5, 3]}, "strictly increasing"),
        ({"schedules": [{"name": "plateau"}, {"name": "constant"}], "boundaries": [5]},
         "validation metric"),
        ({"schedules": [{"name": "cosin"}, {"name": "constant"}], "boundaries": [5]}, "cosine"),
        ({"schedules": [{"name": "exponential", "base": 3}, {"name": "constant"}],
          "boundaries": [5]}, "part 0 (exponential): base must be in"),
        ({"schedules": [{"lr": 0.1}], "boundaries": []}, "each part must be a schedule"),
        ({"schedules": [{"name": "constant"}, {"name": "constant"}], "boundaries": [200]},
         "below total_steps"),
    ],
)  # fmt: skip
def test_bad_parts_are_one_line_naming_the_part(params, fragment):
    with pytest.raises(LrtoolError) as err:
        build_schedule("sequential", {"lr": 0.1, "total_steps": 100, **params})
    assert fragment in err.value.message and "\n" not in err.value.message


def test_set_reaches_one_part_and_compare_routes_it():
    base = {"lr": 0.1, "total_steps": 100}
    plain = build_schedule("sequential", base)
    floor = build_schedule("sequential", {**base, "schedules.1.eta_min": 0.01})
    assert plain(99) < 0.001 and floor(99) == pytest.approx(0.01, rel=0.01)
    routed = route_sets(
        ["sequential", "cosine"],
        {"schedules.1.eta_min": 0.01, "sequential.schedules.0.start_factor": 0.5},
        "compared",
    )
    assert routed == {
        "sequential": {"schedules.1.eta_min": 0.01, "schedules.0.start_factor": 0.5},
        "cosine": {},
    }
    with pytest.raises(LrtoolError, match="I from 0 to 1"):
        build_schedule("sequential", {**base, "schedules.5.lr": 0.1})


# ---- epochs -------------------------------------------------------------------------------


def test_epoch_lengths_become_steps():
    assert in_steps("cosine", {"lr": 0.1, "epochs": 2.5}, 40) == {"lr": 0.1, "total_steps": 100}
    assert in_steps("exponential", {"lr": 0.1, "s": "0.5ep"}, 25) == {"lr": 0.1, "s": 12.5}
    assert in_steps("piecewise", {"lr": 1, "milestones": ["1ep", "2 epochs", 150]}, 60) == {
        "lr": 1,
        "milestones": [60, 120, 150],
    }
    assert in_steps("onecycle", {"max_lr": 1, "total_steps": "3ep", "warmup_steps": "1ep"}, 10) == {
        "max_lr": 1, "total_steps": 30, "warmup_steps": 10}  # fmt: skip
    by_epoch = build_schedule("step", {"lr": 1.0, "step_size": "1ep"}, steps_per_epoch=30)
    by_step = build_schedule("step", {"lr": 1.0, "step_size": 30})
    assert [by_epoch(t) for t in range(100)] == [by_step(t) for t in range(100)]
    assert not uses_epochs("cosine", {"lr": 0.1, "total_steps": 100})


def test_epochs_without_steps_per_epoch_or_with_total_steps_are_one_line():
    with pytest.raises(LrtoolError, match="steps_per_epoch"):
        build_schedule("cosine", {"lr": 0.1, "epochs": 3})
    with pytest.raises(LrtoolError, match="epochs or total_steps, not both"):
        build_schedule("cosine", {"lr": 0.1, "epochs": 3, "total_steps": 9}, steps_per_epoch=3)
    with pytest.raises(LrtoolError, match="must be a number"):
        build_schedule("exponential", {"lr": 0.1, "s": "3 weeks"}, steps_per_epoch=3)


def test_sequential_parts_in_epochs():
    sched = build_schedule(
        "sequential",
        {"lr": 0.1, "epochs": 10, "boundaries": ["1ep"], "schedules": [
            {"name": "linear", "start_factor": 0.1, "end_factor": 1.0}, {"name": "cosine"}]},
        steps_per_epoch=20,
    )  # fmt: skip
    assert sched.total_steps == 200
    assert sched(0) == pytest.approx(0.01) and sched(20) == pytest.approx(0.1)
    assert sched(199) < 1e-4


# ---- end to end ---------------------------------------------------------------------------


def test_plot_sequential_from_the_command_line(tmp_path):
    out = tmp_path / "seq.csv"
    result = invoke(
        "plot", "--schedule", "sequential", "--steps", "100", "--lr", "0.2",
        "--set", "schedules=[{name: constant, total_steps: 40}, {name: exponential, base: 0.5}]",
        "--set", "schedules.1.s=20", "--csv", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()[1:]
    lrs = [float(r.split(",")[2]) for r in rows]
    assert lrs[39] == pytest.approx(0.2) and lrs[60] == pytest.approx(0.1)


def test_plot_with_steps_per_epoch_converts_and_shows_epochs(tmp_path):
    out = tmp_path / "ep.csv"
    result = invoke(
        "plot", "--schedule", "step", "--steps-per-epoch", "25", "--steps", "100",
        "--set", "step_size=2ep", "--lr", "1", "--csv", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "epoch" in result.output
    lines = out.read_text().splitlines()
    assert lines[0].split(",")[:3] == ["schedule", "step", "epoch"]
    row = dict(zip(lines[0].split(","), lines[51].split(","), strict=True))
    assert float(row["epoch"]) == pytest.approx(2.0) and float(row["lr"]) == pytest.approx(0.1)
    missing = invoke("plot", "--schedule", "step", "--set", "step_size=2ep")
    assert missing.exit_code == 2 and "--steps-per-epoch" in missing.output


def test_train_in_epochs_derives_steps_per_epoch_from_the_data(tmp_path):
    config = write_config(
        tmp_path,
        "data: {source: synthetic, n_samples: 400, val_fraction: 0.2, batch_size: 32}\n"
        "train:\n  epochs: 3\n  eval_every: 5\n"
        "  schedule: {name: step, lr: 0.05, step_size: 1ep}\n",
        "epochs.yaml",
    )
    out = tmp_path / "run"
    result = invoke("train", str(config), "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    # 320 training rows in batches of 32: 10 steps per epoch, 3 epochs = 30 steps
    assert summary["steps_per_epoch"] == 10
    assert summary["steps_requested"] == 30 and summary["epochs"] == 3
    lrs = [float(line.split(",")[1]) for line in (out / "train.csv").read_text().splitlines()[1:]]
    assert len(lrs) == 30
    assert lrs[9] == pytest.approx(0.05) and lrs[10] == pytest.approx(0.005)


def test_steps_per_epoch_given_and_epochs_flag(tmp_path):
    config = write_config(
        tmp_path,
        "data: {source: synthetic, n_samples: 400, batch_size: 32}\n"
        "train: {steps_per_epoch: 4, eval_every: 2, schedule: {name: cosine, lr: 0.05}}\n",
        "given.yaml",
    )
    out = tmp_path / "run"
    result = invoke("train", str(config), "--epochs", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_requested"] == 8 and summary["steps_per_epoch"] == 4
    both = invoke("train", str(config), "--epochs", "2", "--steps", "5")
    assert both.exit_code == 2 and "--epochs or --steps" in both.output


def test_compare_in_epochs_and_plot_of_a_config_in_epochs(tmp_path):
    config = write_config(
        tmp_path,
        "data: {source: synthetic, n_samples: 400, val_fraction: 0.2, batch_size: 32}\n"
        "train: {epochs: 2, eval_every: 5, schedule: {name: exponential, lr: 0.05, s: 1ep}}\n",
        "cmp.yaml",
    )
    out = tmp_path / "cmp"
    result = invoke(
        "compare", str(config), "--schedules", "constant,exponential", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["steps_per_epoch"] == 10
    assert summary["params"]["exponential"]["s"] == 10.0
    need = invoke("plot", "--config", str(config))
    assert need.exit_code == 2 and "--steps-per-epoch" in need.output
    shown = invoke("plot", "--config", str(config), "--steps-per-epoch", "10")
    assert shown.exit_code == 0, shown.output
    assert "epoch (10 steps)" in shown.output
    assert "│ end    │   19 │   1.9 │" in shown.output


def test_a_sequential_scheduler_checkpoints_and_resumes(tmp_path):
    from lrtool import LrtoolScheduler

    params = {"lr": 0.1, "total_steps": 50, "schedules.1.eta_min": 0.01}

    def make():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        return opt, LrtoolScheduler(opt, build_schedule("sequential", params))

    opt, sched = make()
    for _ in range(20):
        opt.step()
        sched.step()
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    expected = []
    for _ in range(10):
        opt.step()
        sched.step()
        expected.append(opt.param_groups[0]["lr"])
    opt2, resumed = make()
    resumed.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    got = []
    for _ in range(10):
        opt2.step()
        resumed.step()
        got.append(opt2.param_groups[0]["lr"])
    assert got == expected


@pytest.mark.parametrize("total", [1, 2, 3, 10, 97])
@pytest.mark.parametrize("warmup", [0, 1, "half"])
def test_the_default_parts_fit_any_run_length_and_warm_up(total, warmup):
    steps = total // 2 if warmup == "half" else warmup
    if steps >= total:
        pytest.skip("the warm-up must be shorter than the run")
    sched = build_schedule("sequential", {"lr": 0.5, "total_steps": total, "warmup_steps": steps})
    values = [sched(t) for t in range(total + 3)]
    assert all(0 <= v <= 0.5 for v in values)
    assert max(values) == pytest.approx(0.5)


def test_find_counts_train_epochs_for_the_search_length(tmp_path):
    config = write_config(
        tmp_path,
        "data: {source: synthetic, n_samples: 400, val_fraction: 0.2, batch_size: 32}\n"
        "find: {steps: 30, budget: 1}\ntrain: {epochs: 2}\n",
        "find.yaml",
    )
    out = tmp_path / "f"
    result = invoke("find", str(config), "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    # 2 epochs of 10 steps: the search chooses for 20-step trainings, within a budget of 1 x 20
    assert summary["config_echo"]["train"]["steps"] == 20
    assert summary["verify"]["target_steps"] == 20
    assert 0 < summary["verify"]["steps_spent"] <= 20
