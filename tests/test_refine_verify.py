"""The second, denser sweep (refine) and the short trainings around a suggestion (verify)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lrtool.finder import find_lr, refine_range
from lrtool.suggest import refinement_reason
from lrtool.verify import candidate_lrs, verify_lr
from tests.conftest import invoke
from tests.test_finder import make_problem


def curve(drop: float, n: int = 100, noise: float = 0.0):
    """A range-test-like curve over 1e-6..1 whose loss falls by ``drop`` then shoots up."""
    lrs = np.logspace(-6, 0, n)
    x = np.linspace(0, 1, n)
    losses = 1 - drop * np.clip((x - 0.4) / 0.4, 0, 1) + 5 * np.clip(x - 0.85, 0, None) ** 2
    rng = np.random.default_rng(0)
    return list(lrs), list(losses + noise * rng.standard_normal(n))


def test_refinement_reason_for_weak_and_strong_curves(monkeypatch):
    from lrtool import suggest

    # the shipped threshold is above 1: every readable curve is refined, and says why
    assert suggest.REFINE_BELOW_DROP > 1
    assert "always read" in refinement_reason(*curve(0.6))
    assert refinement_reason(*curve(0.0)) is not None  # never decreased
    monkeypatch.setattr(suggest, "REFINE_BELOW_DROP", 0.3)  # a threshold below 1
    assert refinement_reason(*curve(0.6)) is None
    assert "fell by only" in refinement_reason(*curve(0.1))


def state(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_refine_runs_a_denser_second_sweep_below_the_divergence():
    model, loader = make_problem()
    before = state(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    r = find_lr(model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-7, steps=60, refine=True)
    first = r.coarse
    assert first is not None and r.refined_because
    assert r.steps_total == r.steps_run + first.steps_run
    low, high = refine_range(first)
    assert (r.start_lr, r.end_lr) == (low, high)
    assert math.log10(high / low) == pytest.approx(3.5) or low == first.start_lr
    assert high <= first.end_lr and r.lrs[0] == low
    # the second sweep is denser: more steps per decade than the first
    assert r.steps_requested / math.log10(high / low) > first.steps_requested / math.log10(
        first.end_lr / first.start_lr
    )
    assert all(torch.equal(a, b) for a, b in zip(before, state(model), strict=True))


def test_refine_false_never_refines_and_auto_refines_even_a_strong_curve():
    """refine=False: one sweep. "auto" with the shipped threshold (above 1, chosen on the
    suite): the second sweep is read even after a strong first curve, whose LRs it refines."""
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    never = find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=60, refine=False)
    assert never.coarse is None and never.steps_total == never.steps_run
    auto = find_lr(model, opt, loader, nn.CrossEntropyLoss(), steps=60)  # the loss falls ~60%
    assert auto.coarse is not None and auto.coarse.lrs == never.lrs
    assert auto.refined_because == refinement_reason(never.lrs, never.losses)
    assert auto.steps_total == auto.steps_run + never.steps_run


def test_auto_refines_a_slow_starter():
    """Plain SGD on a sigmoid MLP learns slowly: 40 steps over 8 decades show a shallow curve."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), nn.Linear(32, 2))
    loader = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 512, 32)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-7, end_lr=10, steps=40)
    assert r.coarse is not None
    assert r.refined_because == refinement_reason(r.coarse.lrs, r.coarse.losses)
    assert "fell by only" in r.refined_because or "noise" in r.refined_because


def test_refine_argument_is_checked():
    model, loader = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(Exception, match="refine"):
        find_lr(model, opt, loader, nn.CrossEntropyLoss(), refine="sometimes")


def test_candidates_are_decades_around_the_suggestion():
    assert candidate_lrs(0.1) == pytest.approx([0.1 / 10**0.5, 0.1, 0.1 * 10**0.5])
    assert candidate_lrs(1.0, (0.0, -1.0)) == pytest.approx([0.1, 1.0])


def test_verify_keeps_the_lowest_loss_and_restores_the_model():
    model, loader = make_problem()
    before = state(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    val = loader[:2]
    checked = verify_lr(
        model, opt, loader, nn.CrossEntropyLoss(), lr=0.05, onecycle_max_lr=0.2, steps=20,
        offsets=(-2.0, 0.0, 3.0), val_loader=val,
    )  # fmt: skip
    assert checked.steps_spent == sum(c.steps for c in checked.candidates)
    for use, kept in (("constant", checked.lr), ("onecycle", checked.onecycle_max_lr)):
        tried = [c for c in checked.candidates if c.use == use]
        assert len(tried) == 3
        finite = [c for c in tried if math.isfinite(c.score)]
        assert kept == min(finite, key=lambda c: c.score).lr
    # 0.05 * 1000 = 50 diverges with momentum 0.9: it is never kept
    huge = [c for c in checked.candidates if c.use == "constant" and c.lr > 10]
    assert huge and (math.isnan(huge[0].score) or huge[0].lr != checked.lr)
    assert all(torch.equal(a, b) for a, b in zip(before, state(model), strict=True))
    assert sum(r["kept"] for r in checked.rows()) == 2


def test_verify_scores_the_same_batches_for_every_candidate():
    from lrtool.data import TensorBatches

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 4, generator=g), torch.randint(0, 2, (128,), generator=g)
    batches = TensorBatches(x, y, 16, seed=3)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    twice = verify_lr(
        model, opt, batches, nn.CrossEntropyLoss(), lr=0.1, steps=10, offsets=(0.0, 0.0)
    )
    assert twice.candidates[0].score == twice.candidates[1].score
    again = verify_lr(model, opt, batches, nn.CrossEntropyLoss(), lr=0.1, steps=10, offsets=(0.0,))
    assert again.candidates[0].score == twice.candidates[0].score  # the loader is left as found


def test_cli_find_verify_and_refine_write_their_files(tiny_config, tmp_path):
    """--verify runs the budgeted search (budget at least 1) for --verify-steps steps."""
    out = tmp_path / "r"
    result = invoke(
        "find", tiny_config, "--out", out, "--refine", "--verify", "--verify-steps", "40",
        "--no-plot",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "refined:" in result.stdout and "Budgeted search" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rule"] == "lrtool --budget"
    assert summary["refined"]["first_sweep_steps"] > 0
    search = summary["verify"]
    assert search["budget"] == 1.0 and search["target_steps"] == 40
    assert 0 < search["steps_spent"] <= 40
    # One answer: the kept rows are exactly the suggested LRs of the summary line
    kept = {c["use"]: c["lr"] for c in search["candidates"] if c["kept"]}
    assert kept == {"constant": summary["lr"], "onecycle": summary["onecycle_max_lr"]}
    assert sum(c["kept"] for c in search["candidates"]) == 2
    assert summary["steps_total"] == (
        summary["steps_run"] + summary["refined"]["first_sweep_steps"] + search["steps_spent"]
    )
    lines = (out / "verify.csv").read_text().splitlines()
    assert lines[0] == "use,lr,score,steps,kept,rung,predicted,note"
    assert len(lines) == 1 + len(search["candidates"])
    assert (out / "range_test_first_sweep.csv").read_text().startswith("step,lr,loss")


def test_cli_no_refine_writes_no_first_sweep(tiny_config, tmp_path):
    out = tmp_path / "n"
    result = invoke("find", tiny_config, "--out", out, "--no-refine", "-q")
    assert result.exit_code == 0, result.output
    assert not (out / "range_test_first_sweep.csv").exists()
    assert json.loads((out / "summary.json").read_text())["refined"] is None


class PoisonedAfter(nn.Module):
    """A slow learner whose loss turns NaN after ``calls`` training forwards (the count
    survives the state restore, so the second sweep diverges at once)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), nn.Linear(32, 2))
        self.calls, self.limit = 0, calls

    def forward(self, x):
        self.calls += self.training
        out = self.net(x)
        return out * float("nan") if self.calls > self.limit else out


def test_an_unreadable_second_sweep_keeps_the_first_curve():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    torch.manual_seed(0)
    model = PoisonedAfter(calls=40)
    model.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    loader = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 512, 32)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    r = find_lr(
        model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-4, end_lr=10, steps=40,
        refine=True,
    )  # fmt: skip
    assert r.coarse is None and r.lrs[0] == 1e-4  # the first sweep
    assert r.discarded_steps >= 1 and r.steps_total == r.steps_run + r.discarded_steps
    assert "could not be read either" in r.refined_because
    assert r.lr is not None


WEAK = """
seed: 0
device: cpu
data: {source: synthetic, n_samples: 512, n_features: 8, n_classes: 2, batch_size: 32}
model: {name: mlp, hidden: [32], activation: sigmoid}
optimizer: {name: sgd, lr: 0.1, momentum: 0.0}
find: {start_lr: 1.0e-7, end_lr: 10, steps: 40}
train: {steps: 40, eval_every: 20}
"""


def test_find_searches_with_the_default_budget(tmp_path):
    """lrtool find spends lrtool.search.DEFAULT_BUDGET target trainings by default;
    --no-verify and --budget 0 turn the search off, and --smoke judges what find reports."""
    from lrtool.search import DEFAULT_BUDGET
    from tests.conftest import write_config

    assert DEFAULT_BUDGET > 0
    cfg = write_config(tmp_path, WEAK)
    data = json.loads(invoke("find", cfg, "--out", tmp_path / "a", "--json").stdout)
    search = data["verify"]
    assert search["budget"] == DEFAULT_BUDGET and search["target_steps"] == 40
    assert 0 < search["budget_spent"] <= DEFAULT_BUDGET
    assert (
        data["steps_total"]
        == data["steps_run"]
        + (data["refined"]["first_sweep_steps"] if data["refined"] else 0)
        + search["steps_spent"]
    )
    off = json.loads(invoke("find", cfg, "--out", tmp_path / "b", "--json", "--no-verify").stdout)
    assert off["verify"] is None
    zero = json.loads(
        invoke("find", cfg, "--out", tmp_path / "z", "--json", "--budget", "0").stdout
    )
    assert zero["verify"] is None
    smoke = invoke("find", cfg, "--out", tmp_path / "c", "--smoke")
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert smoke.exit_code in (0, 1) and summary["verify"]["budget"] == DEFAULT_BUDGET
    assert summary["lr"] == data["lr"]  # the same answer as lrtool find


def test_a_budget_of_zero_answers_from_the_curve(tiny_config, tmp_path):
    out = tmp_path / "s"
    data = json.loads(invoke("find", tiny_config, "--out", out, "--json", "--budget", "0").stdout)
    assert data["verify"] is None and data["rule"] == "lrtool"


def test_verify_lr_is_public():
    import lrtool

    assert lrtool.verify_lr is verify_lr
