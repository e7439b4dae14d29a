"""The budgeted search: successive halving over constant-LR trainings seeded by the range test.

Pure planning and choosing; the trainings are supplied by the caller as a ``score(lr, steps)``
function (``lrtool.verify`` trains; ``benchmarks/suggestion_quality.py`` reads the cached
suite). Everything here is a small function of numbers, so the benchmark scores exactly the
rule that ``lrtool find --budget`` runs.

The plan for budget ``B`` (in units of the target training length ``T``): ``n`` candidates
spaced ``spacing`` decades apart, centred on the range test's constant LR; rung ``r`` trains
the best ``ceil(n / 2^r)`` of them for ``T * 2^(r - k)`` steps each, every one from the same
initial state and batches (a constant-LR run of m steps is the first m steps of a longer one),
with the largest such lengths whose total stays within ``B * T`` steps. The winner is the
lowest LR scoring within ``tolerance`` of the best final-rung score (as a fraction of the
improvement over the untrained model), moved ``shift`` decades; a candidate whose loss turned
NaN/Inf never wins. The 1cycle peak is the winner times ``10**onecycle_above``, or, with
``onecycle_above`` None, the range test's own 1cycle peak (kept as it is).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from lrtool.errors import usage_error

MAX_HALVINGS = 6  # the shortest rung is at least T / 64
MIN_IMPROVEMENT = 0.01  # a winner must beat the untrained model's loss by this fraction


@dataclass(frozen=True)
class SearchParams:
    """The knobs of one budget level (chosen by cross-validation on the suggestion suite)."""

    candidates: int
    spacing: float  # decades between neighbouring candidates
    rungs: int
    shift: float  # decades added to the winner (negative: lower)
    tolerance: float  # fraction of the improvement within which the lowest LR wins
    onecycle_above: float | None  # decades from the constant LR to the 1cycle peak (None: keep
    # the curve's 1cycle peak)


@dataclass(frozen=True)
class SearchPlan:
    lrs: list[float]  # candidates, ascending
    rung_steps: list[int]  # steps per candidate at each rung
    rung_sizes: list[int]  # candidates trained at each rung
    params: SearchParams

    @property
    def steps_total(self) -> int:
        return sum(n * s for n, s in zip(self.rung_sizes, self.rung_steps, strict=True))


@dataclass
class Trial:
    lr: float
    rung: int
    steps: int
    score: float  # loss after ``steps`` steps; inf when it diverged


@dataclass
class SearchOutcome:
    lr: float | None
    onecycle_max_lr: float | None
    trials: list[Trial] = field(default_factory=list)
    steps_spent: int = 0
    winner: float | None = None  # the candidate that won, before the shift


def check_budget(budget: float, target_steps: int | None, require_target: bool = False) -> None:
    """One line for a budget that is not a number >= 0, or that is > 0 (or ``require_target``)
    without the length of the training the LR is for."""
    if not (isinstance(budget, int | float) and math.isfinite(budget) and budget >= 0):
        raise usage_error(f"budget: must be a number >= 0, got {budget!r}")
    if (budget > 0 or require_target) and (target_steps is None or target_steps < 1):
        raise usage_error(
            "budget: needs target_steps, the length of the training the LR is for "
            f"(got {target_steps}); pass target_steps=N"
        )


def plan_search(
    centre: float,
    budget: float,
    target_steps: int,
    params: SearchParams,
    span: tuple[float, float] | None = None,
) -> SearchPlan | None:
    """The candidates and rung lengths for ``budget`` target trainings; None when the budget
    cannot pay for two candidates of at least one step each.

    With ``span`` (a curve that gave no suggestion), the candidates are spread evenly in log LR
    over ``span`` instead of around ``centre``: the search is then the only judge.
    """
    n = params.candidates
    if span is not None:
        low, high = span
        if not (0 < low < high and math.isfinite(high)):
            return None
        step = math.log10(high / low) / (n - 1)
        lrs = [low * 10 ** (step * i) for i in range(n)]
    elif centre > 0 and math.isfinite(centre):
        lrs = [centre * 10 ** (params.spacing * (i - (n - 1) / 2)) for i in range(n)]
    else:
        return None
    if not (budget > 0 and target_steps >= 1):
        return None
    sizes = [math.ceil(n / 2**r) for r in range(params.rungs)]
    for k in range(params.rungs - 1, MAX_HALVINGS + 1):
        steps = [max(1, round(target_steps * 2.0 ** (r - k))) for r in range(params.rungs)]
        if sum(a * b for a, b in zip(sizes, steps, strict=True)) <= budget * target_steps:
            return SearchPlan(lrs, steps, sizes, params)
    return None


def run_search(
    plan: SearchPlan, score: Callable[[float, int], float], untrained: float
) -> SearchOutcome:
    """Successive halving over ``plan``; ``score(lr, steps)`` trains from the initial state."""
    alive = list(plan.lrs)
    trials: list[Trial] = []
    scores: dict[float, float] = {}
    for rung, (size, steps) in enumerate(zip(plan.rung_sizes, plan.rung_steps, strict=True)):
        alive = sorted(alive, key=lambda lr: scores.get(lr, 0.0))[:size]  # inf: diverged
        for lr in sorted(alive):
            value = score(lr, steps)
            scores[lr] = value if math.isfinite(value) else math.inf
            trials.append(Trial(lr, rung, steps, scores[lr]))
    spent = sum(t.steps for t in trials)
    winner = choose(alive, scores, untrained, plan.params.tolerance)
    if winner is None:
        return SearchOutcome(None, None, trials, spent)
    p = plan.params
    peak = None if p.onecycle_above is None else winner * 10 ** (p.shift + p.onecycle_above)
    return SearchOutcome(winner * 10**p.shift, peak, trials, spent, winner)


def choose(
    lrs: list[float], scores: dict[float, float], untrained: float, tolerance: float
) -> float | None:
    """The lowest LR whose score is within ``tolerance * (untrained - best)`` of the best;
    None when no candidate finished, or none improved on the untrained model by 1%."""
    finite = [lr for lr in lrs if math.isfinite(scores[lr])]
    if not finite:
        return None
    best = min(scores[lr] for lr in finite)
    if math.isfinite(untrained) and best >= untrained - MIN_IMPROVEMENT * abs(untrained):
        return None
    slack = tolerance * max(untrained - best, 0.0) if math.isfinite(untrained) else 0.0
    return min(lr for lr in finite if scores[lr] <= best + slack)


# Chosen by leave-one-family-out cross-validation on the suggestion suite
# (benchmarks/suggestion_quality.py prints them; docs/suggestion-quality.md).
SEARCH_PARAMS: dict[float, SearchParams] = {
    0.1: SearchParams(4, 0.25, 1, shift=-0.375, tolerance=0.0, onecycle_above=0.5),
    0.25: SearchParams(4, 0.25, 1, shift=-0.125, tolerance=0.05, onecycle_above=0.375),
    0.5: SearchParams(4, 0.25, 1, shift=-0.125, tolerance=0.0, onecycle_above=0.375),
    1.0: SearchParams(4, 0.25, 1, shift=0.0, tolerance=0.05, onecycle_above=0.375),
    2.0: SearchParams(8, 0.25, 1, shift=0.0, tolerance=0.05, onecycle_above=0.375),
}
# lrtool find's default: the smallest budget whose out-of-fold 90th-percentile regret is at
# most 0.15 for both uses (docs/suggestion-quality.md, "Regret against budget").
DEFAULT_BUDGET = 0.5


def default_budget(target_steps: int | None) -> float:
    """The budget of ``find_lr(budget=None)`` and of ``lrtool find`` without ``find.budget``:
    :data:`DEFAULT_BUDGET` when the length of the training the LR is for is known, else 0
    (the curve alone)."""
    return DEFAULT_BUDGET if target_steps is not None else 0.0


def params_for_budget(budget: float) -> SearchParams | None:
    """The settings of the largest tabled budget not above ``budget`` (the smallest for a
    budget below every level); None for budget 0."""
    if budget <= 0:
        return None
    levels = sorted(SEARCH_PARAMS)
    fitting = [b for b in levels if b <= budget + 1e-12]
    return SEARCH_PARAMS[fitting[-1] if fitting else levels[0]]
