"""The budgeted search: its plan stays in budget, it never keeps a diverged candidate, and the
API and CLI run it end to end."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrtool.data import TensorBatches
from lrtool.errors import LrtoolError
from lrtool.finder import find_lr
from lrtool.jobs.find import VERIFY_COLUMNS
from lrtool.search import (
    SEARCH_PARAMS,
    SearchParams,
    choose,
    params_for_budget,
    plan_search,
    run_search,
)
from lrtool.verify import verify_lr
from tests.conftest import invoke


@settings(max_examples=200, deadline=None)
@given(
    budget=st.floats(0.01, 4.0),
    target=st.integers(1, 5000),
    level=st.sampled_from(sorted(SEARCH_PARAMS)),
)
def test_plan_never_spends_more_than_the_budget(budget, target, level):
    plan = plan_search(1e-3, budget, target, SEARCH_PARAMS[level])
    if plan is not None:
        assert plan.steps_total <= budget * target
        assert plan.lrs == sorted(plan.lrs) and len(plan.lrs) == SEARCH_PARAMS[level].candidates
        assert all(s <= target for s in plan.rung_steps)


def test_plan_centres_the_candidates_on_the_curve_suggestion():
    plan = plan_search(1e-2, 1.0, 400, SearchParams(4, 0.5, 2, 0.0, 0.0, 0.0))
    assert plan is not None
    logs = [math.log10(lr) for lr in plan.lrs]
    assert sum(logs) / len(logs) == pytest.approx(-2.0)
    assert logs[1] - logs[0] == pytest.approx(0.5)
    assert plan.rung_sizes == [4, 2] and plan.rung_steps[1] == 2 * plan.rung_steps[0]


def test_a_budget_too_small_for_two_candidates_plans_nothing():
    assert plan_search(1e-3, 0.001, 100, SearchParams(4, 0.25, 2, 0.0, 0.0, 0.0)) is None
    assert params_for_budget(0.0) is None


def test_a_diverged_candidate_never_wins():
    """The highest LR scores best at the first rung but diverges at the second."""
    plan = plan_search(1.0, 1.0, 64, SearchParams(4, 0.5, 2, 0.0, 0.0, 0.5))
    assert plan is not None
    top = plan.lrs[-1]

    def score(lr: float, steps: int) -> float:
        if lr == top:
            return 0.1 if steps == plan.rung_steps[0] else math.inf
        return 1.0 / (1 + lr)

    outcome = run_search(plan, score, untrained=2.0)
    assert outcome.winner is not None and outcome.winner < top
    assert outcome.onecycle_max_lr == pytest.approx(outcome.winner * 10**0.5)
    assert outcome.steps_spent == plan.steps_total


def test_choose_takes_the_lowest_lr_within_the_tolerance():
    scores = {0.01: 0.50, 0.1: 0.45, 1.0: math.inf}
    assert choose(list(scores), scores, untrained=1.0, tolerance=0.0) == 0.1
    assert choose(list(scores), scores, untrained=1.0, tolerance=0.2) == 0.01
    assert choose([1.0], {1.0: math.inf}, untrained=1.0, tolerance=0.0) is None
    # nothing that beats the untrained model by 1% is a winner
    assert choose([0.1, 1.0], {0.1: 0.999, 1.0: 1.001}, untrained=1.0, tolerance=0.0) is None


def test_a_curve_without_a_number_is_searched_over_the_bracket_below_the_stop():
    """A model whose curve gives no number: with a budget, the search over the bracket below
    where the sweep stopped (search.fallback_span) chooses the LR, and says so."""
    from lrtool.finder import sweep_stop
    from lrtool.search import fallback_span

    model, opt, batches, val = _task(2)
    r = find_lr(
        model, opt, batches, nn.CrossEntropyLoss(), start_lr=1e-3, end_lr=1.0, steps=6,
        budget=1.0, target_steps=200, val_loader=[val],
    )  # fmt: skip
    assert r.verification is not None and r.verification.candidates
    low, high = fallback_span(sweep_stop(r), 1.0)
    assert high <= sweep_stop(r) * (1 + 1e-9) and sweep_stop(r) <= 1.0
    tried = sorted({c.lr for c in r.verification.candidates if not c.explored})
    assert tried[0] == pytest.approx(low) and tried[-1] == pytest.approx(high)
    assert r.lr is not None and r.recommendation is not None
    assert "the curve gave no number" in r.recommendation.reason
    assert r.recommendation.confidence == "low"


def _task(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 10, generator=g)
    y = (x[:, :3].sum(1) > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, TensorBatches(x, y, 32, seed=seed), (x[:128], y[:128])


def test_find_lr_budget_spends_at_most_the_budget_and_restores_the_model():
    model, opt, batches, _ = _task()
    before = [p.detach().clone() for p in model.parameters()]
    r = find_lr(model, opt, batches, nn.CrossEntropyLoss(), budget=0.5, target_steps=200)
    check = r.verification
    assert check is not None and check.budget == 0.5 and check.target_steps == 200
    assert 0 < check.steps_spent <= 100
    assert r.recommendation is not None and r.recommendation.rule == "lrtool --budget"
    assert r.lr is not None and r.onecycle_max_lr is not None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    rungs = {c.rung for c in check.candidates}
    assert rungs == set(range(len(rungs)))


def test_budget_with_validation_batches_scores_on_them():
    model, opt, batches, val = _task(1)
    checked = verify_lr(
        model, opt, batches, nn.CrossEntropyLoss(), lr=0.05, budget=1.0, target_steps=100,
        val_loader=[val],
    )  # fmt: skip
    assert checked.monitor.startswith("val") and checked.lr is not None
    assert checked.steps_spent <= 100


def test_budget_needs_target_steps():
    model, opt, batches, _ = _task()
    with pytest.raises(LrtoolError, match="target_steps"):
        find_lr(model, opt, batches, nn.CrossEntropyLoss(), budget=1.0)
    with pytest.raises(LrtoolError, match="budget"):
        find_lr(model, opt, batches, nn.CrossEntropyLoss(), budget=-1.0, target_steps=10)


def test_cli_find_budget_reports_what_it_spent(tiny_config, tmp_path):
    out = tmp_path / "b"
    result = invoke("find", tiny_config, "--out", out, "--budget", "0.5", "--no-plot")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    spent = summary["verify"]
    assert spent["budget"] == 0.5 and 0 < spent["budget_spent"] <= 0.5
    assert summary["rule"] == "lrtool --budget"
    rows = list(csv.DictReader((out / "verify.csv").open()))
    assert rows and list(rows[0]) == VERIFY_COLUMNS
    assert sum(int(r["steps"]) for r in rows) == spent["steps_spent"]
    assert "budgeted search" in result.stdout


def test_cli_find_budget_zero_runs_no_search(tiny_config, tmp_path):
    out = tmp_path / "z"
    result = invoke("find", tiny_config, "--out", out, "--budget", "0", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["verify"] is None
    assert not (out / "verify.csv").exists()


def test_cli_find_noise_only_sweep_fails_smoke(tiny_config, tmp_path):
    """The issue's case: find.start_lr 1e-9, end_lr 1e-6 trains nothing; --smoke must fail."""
    result = invoke(
        "find", tiny_config, "--out", tmp_path / "n", "--start-lr", "1e-9", "--end-lr", "1e-6",
        "--smoke",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "smoke: FAIL" in result.stderr
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["lr"] is None


def test_search_params_are_valid():
    for budget, params in SEARCH_PARAMS.items():
        assert params.candidates >= 2 and params.rungs >= 1 and params.spacing > 0
        assert plan_search(1e-3, budget, 1000, params) is not None


def _noisy_task():
    """Logistic regression with 30% of the labels flipped and batches of 2: a 30-step sweep's
    curve is noise (no number), yet 400 steps at a fair LR learn the rule."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 10, generator=g)
    w = torch.randn(10, generator=g)
    clean = ((x @ w) > 0).long()
    y = torch.where(torch.rand(4000, generator=g) < 0.3, 1 - clean, clean)
    torch.manual_seed(0)
    model = nn.Linear(10, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, TensorBatches(x[500:], y[500:], 2, seed=0), (x[:500], clean[:500])


def test_an_unreadable_curve_with_a_budget_still_gives_a_number_that_trains():
    """Issue 25: the curve alone declines (noise); with a budget the search starts from the
    bracket below where the sweep stopped, and its LR trains the task."""
    model, opt, batches, (xv, yv) = _noisy_task()
    loss = nn.CrossEntropyLoss()
    alone = find_lr(model, opt, batches, loss, steps=30, budget=0)
    assert alone.lr is None and "noise" in alone.recommendation.warnings[0]
    searched = find_lr(model, opt, batches, loss, steps=30, budget=0.5, target_steps=400)
    assert searched.lr is not None and searched.verification.candidates
    assert "the curve gave no number" in searched.recommendation.reason
    with torch.no_grad():
        untrained = float(loss(model(xv), yv))
    from lrtool import build_schedule, train

    schedule = build_schedule("constant", {"lr": searched.lr})
    trained = train(model, opt, batches, loss, schedule, 400, val_loader=[(xv, yv)])
    assert trained.evals[-1]["val_loss"] < 0.8 * untrained
