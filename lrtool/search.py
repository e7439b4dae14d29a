"""The budgeted search: successive halving over constant-LR trainings seeded by the range test.

Pure planning and choosing; the trainings are supplied by the caller as a ``score(lr, steps)``
function (``lrtool.verify`` trains; ``benchmarks/suggestion_quality.py`` reads the cached
suite). Everything here is a small function of numbers, so the benchmark scores exactly the
rule that ``lrtool find --budget`` runs.

The plan for budget ``B`` (in units of the target training length ``T``): ``n`` candidates
spaced ``spacing`` decades apart, centred on the range test's constant LR; rung ``r`` trains
the best ``ceil(n / 2^r)`` of them for ``T * 2^(r - k)`` steps each, every one from the same
initial state and batches (a constant-LR run of m steps is the first m steps of a longer one),
with the largest such lengths whose total stays within ``B * T`` steps (one more final-rung
training kept in reserve when ``explore`` is on). A candidate is ranked by its predicted loss
at the full length (:func:`horizon_corrected`): short trainings favour LRs that are fast early
and worse later, so a candidate still improving quickly gains ``horizon`` doublings of its
last trend. With ``explore``, a winner at the edge of the candidates gets one more neighbour
beyond it. The winner is the lowest LR ranking within ``tolerance`` of the best (as a
fraction of the improvement over the untrained model), moved ``shift`` decades; a candidate
whose loss turned NaN/Inf never wins. With ``margin``, the curve's own LR (the middle of an odd
number of candidates) stands unless the winner beats it by that fraction of the improvement:
then the range test's answers are kept as they are. The 1cycle peak is the winner times
``10**onecycle_above``, or, with ``onecycle_above`` None, the range test's own 1cycle peak.

A curve that gave no number seeds no centre: the search then looks over a bracket centred a
fitted number of decades below where the sweep stopped (diverged, or ended), with its own
settings (:data:`FALLBACK_PARAMS`, :func:`fallback_span`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lrtool.errors import usage_error

MAX_HALVINGS = 6  # the shortest rung is at least T / 64
MIN_IMPROVEMENT = 0.01  # a winner must beat the untrained model's loss by this fraction
# The predicted full-length loss (reported, never used to rank unless ``horizon`` says so):
# each doubling of the training gains GAIN_RATIO times what the last one gained. Measured on
# the suggestion suite as the median ratio of successive gains of constant-LR runs within 0.2
# of their best (benchmarks/suggestion_quality.py prints it with the prediction's accuracy).
GAIN_RATIO = 0.7


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
    explore: bool = False  # a winner at an edge gets one more neighbour beyond it
    horizon: float = 0.0  # doublings of the final rung's last trend added to its score
    margin: float = 0.0  # the curve's own LR (the middle of an odd number of candidates) is
    # kept unless the winner ranks better by this fraction of the improvement


@dataclass(frozen=True)
class Bracket:
    """Where the search looks when the curve gave no number: candidates shaped by ``params``
    (``spacing`` decades apart), centred ``below_stop`` decades below where the sweep stopped
    (diverged, or ended)."""

    params: SearchParams
    below_stop: float


@dataclass(frozen=True)
class SearchPlan:
    lrs: list[float]  # candidates, ascending
    rung_steps: list[int]  # steps per candidate at each rung
    rung_sizes: list[int]  # candidates trained at each rung
    params: SearchParams
    target_steps: int  # the length of the training the LR is for
    centre: float | None = None  # the curve's constant LR the candidates are centred on

    @property
    def steps_total(self) -> int:
        """The steps the plan may spend, the explore reserve included."""
        planned = sum(n * s for n, s in zip(self.rung_sizes, self.rung_steps, strict=True))
        return planned + (self.rung_steps[-1] if self.params.explore else 0)


@dataclass
class Trial:
    lr: float
    rung: int
    steps: int
    score: float  # loss after ``steps`` steps; inf when it diverged
    halfway: float = math.nan  # loss after ``steps // 2`` steps (NaN: not measured)
    explored: bool = False  # the extra neighbour of an edge winner


@dataclass
class SearchOutcome:
    lr: float | None
    onecycle_max_lr: float | None
    trials: list[Trial] = field(default_factory=list)
    steps_spent: int = 0
    winner: float | None = None  # the candidate that won, before the shift
    predicted: float | None = None  # the winner's predicted loss at the full length
    kept_curve: bool = False  # the curve's own LR held within the margin: it stands as it is


# ``score(lr, steps)``: (the loss after ``steps`` steps, the loss after ``steps // 2``; NaN
# when not measured), trained from the initial state at a constant ``lr``; a float alone is
# the loss after ``steps``.
Score = Callable[[float, int], "tuple[float, float] | float"]


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
    cannot pay for them at one step each.

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
        seeded = centre if span is None and n % 2 == 1 else None
        plan = SearchPlan(lrs, steps, sizes, params, target_steps, seeded)
        if plan.steps_total <= budget * target_steps:
            return plan
    return None


def horizon_corrected(score: float, halfway: float, horizon: float) -> float:
    """The rank of a candidate: ``score - horizon * (halfway - score)``, its loss with
    ``horizon`` more doublings of its last gain (a candidate still improving fast is
    favoured); the score itself when ``horizon`` is 0 or the halfway loss is unknown."""
    if horizon == 0 or not (math.isfinite(score) and math.isfinite(halfway)):
        return score
    return score - horizon * (halfway - score)


def predicted_full_length(score: float, halfway: float, steps: int, target_steps: int) -> float:
    """The loss predicted at ``target_steps`` from the losses after ``steps // 2`` and ``steps``
    steps: ``score - g * (r + r^2 + ... + r^D)`` with ``g = halfway - score`` the last gain,
    ``r`` = :data:`GAIN_RATIO` and ``D = log2(target_steps / steps)`` more doublings (a
    geometric learning curve), never below 0 for a loss that stayed >= 0. NaN when either loss
    is unknown. A rough guide: its error on the suite is in docs/suggestion-quality.md.

    >>> predicted_full_length(1.0, 1.2, 100, 400)  # two doublings: 1 - 0.2 * (0.7 + 0.49)
    0.762
    """
    if not (math.isfinite(score) and math.isfinite(halfway)):
        return math.nan
    doublings = max(0.0, math.log2(target_steps / steps))
    r = GAIN_RATIO
    total = r * (1 - r**doublings) / (1 - r)
    predicted = score - (halfway - score) * total
    if score >= 0 and halfway >= 0:
        predicted = max(predicted, 0.0)  # a loss that stayed >= 0 is not predicted below 0
    return round(predicted, 12)


def run_search(plan: SearchPlan, score: Score, untrained: float) -> SearchOutcome:
    """Successive halving over ``plan``; ``score(lr, steps)`` trains from the initial state."""
    p = plan.params
    alive = list(plan.lrs)
    trials: list[Trial] = []
    ranks: dict[float, float] = {}
    for rung, (size, steps) in enumerate(zip(plan.rung_sizes, plan.rung_steps, strict=True)):
        alive = sorted(alive, key=lambda lr: ranks.get(lr, 0.0))[:size]  # inf: diverged
        for lr in sorted(alive):
            trials.append(_trial(score, lr, rung, steps))
            ranks[lr] = horizon_corrected(trials[-1].score, trials[-1].halfway, p.horizon)
    final_rung = len(plan.rung_sizes) - 1
    if p.explore:
        beyond = _beyond_the_edge(alive, ranks, plan)
        if beyond is not None:
            trials.append(_trial(score, beyond, final_rung, plan.rung_steps[-1]))
            trials[-1].explored = True
            ranks[beyond] = horizon_corrected(trials[-1].score, trials[-1].halfway, p.horizon)
            alive.append(beyond)
    spent = sum(t.steps for t in trials)
    winner = choose(alive, ranks, untrained, p.tolerance)
    if winner is None:
        return SearchOutcome(None, None, trials, spent)
    last = next(t for t in reversed(trials) if t.lr == winner)
    predicted = predicted_full_length(last.score, last.halfway, last.steps, plan.target_steps)
    predicted_or_none = None if math.isnan(predicted) else predicted
    if keeps_the_curve(plan, alive, ranks, winner, untrained):
        centre = plan.centre
        assert centre is not None
        kept = next(t for t in reversed(trials) if t.lr == centre)
        guess = predicted_full_length(kept.score, kept.halfway, kept.steps, plan.target_steps)
        return SearchOutcome(
            centre, None, trials, spent, centre, None if math.isnan(guess) else guess, True
        )
    peak = None if p.onecycle_above is None else winner * 10 ** (p.shift + p.onecycle_above)
    return SearchOutcome(winner * 10**p.shift, peak, trials, spent, winner, predicted_or_none)


def keeps_the_curve(
    plan: SearchPlan, alive: list[float], ranks: dict[float, float], winner: float,
    untrained: float,
) -> bool:  # fmt: skip
    """Whether the curve's own LR stands: it reached the last rung and ranks within ``margin``
    times the improvement over the untrained model of the winner (a short training does not
    overrule the curve on a small difference)."""
    centre, margin = plan.centre, plan.params.margin
    if margin <= 0 or centre is None or centre not in alive or not math.isfinite(ranks[centre]):
        return False
    gain = untrained - ranks[winner] if math.isfinite(untrained) else 0.0
    return ranks[centre] <= ranks[winner] + margin * max(gain, 0.0)


def _trial(score: Score, lr: float, rung: int, steps: int) -> Trial:
    value = score(lr, steps)
    final, halfway = value if isinstance(value, tuple) else (value, math.nan)
    final = final if math.isfinite(final) else math.inf
    return Trial(lr, rung, steps, final, halfway)


def _beyond_the_edge(
    alive: list[float], ranks: dict[float, float], plan: SearchPlan
) -> float | None:
    """One spacing above the best final-rung candidate when it is the highest LR planned, or
    below it when it is the lowest; None when the best is inside, or nothing finished."""
    finite = [lr for lr in alive if math.isfinite(ranks[lr])]
    if not finite:
        return None
    best = min(finite, key=lambda lr: ranks[lr])
    step = 10**plan.params.spacing if len(plan.lrs) < 2 else plan.lrs[1] / plan.lrs[0]
    if best >= plan.lrs[-1]:
        return best * step
    if best <= plan.lrs[0]:
        return best / step
    return None


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
    0.1: SearchParams(2, 0.25, 1, -0.25, 0.0, None, explore=True),
    0.25: SearchParams(2, 0.5, 1, -0.25, 0.05, None, explore=True, horizon=0.5),
    0.5: SearchParams(3, 0.5, 1, -0.375, 0.05, 0.25, explore=True, margin=0.05),
    1.0: SearchParams(3, 0.5, 1, 0.0, 0.05, 0.25, explore=True),
    2.0: SearchParams(2, 0.5, 1, -0.125, 0.0, 0.25, explore=True),
}
# When the curve gave no number: the bracket per budget (chosen by the same cross-validation).
FALLBACK_PARAMS: dict[float, Bracket] = {
    0.1: Bracket(SearchParams(4, 0.5, 1, -0.5, 0.0, 0.5, explore=True), below_stop=2.0),
    0.25: Bracket(
        SearchParams(3, 0.5, 1, -0.375, 0.05, 0.375, explore=True, horizon=0.5), below_stop=2.0
    ),
    0.5: Bracket(SearchParams(3, 0.5, 1, -0.25, 0.05, 0.375, explore=True), below_stop=2.0),
    1.0: Bracket(SearchParams(4, 0.5, 1, 0.0, 0.0, 0.375, explore=True), below_stop=2.5),
    2.0: Bracket(SearchParams(4, 0.75, 1, 0.125, 0.05, 0.375, explore=True), below_stop=2.5),
}
# The default of lrtool find and find_lr(target_steps=...): the budget with the best mean of
# the out-of-fold median and 90th percentile of both uses, averaged over the runs with and
# without a validation split, among those that spend at most 0.5 runs of extra training
# (docs/suggestion-quality.md, "What the sweep watches and what the search spends").
DEFAULT_BUDGET = 0.5


def default_budget(target_steps: int | None) -> float:
    """The budget of ``find_lr(budget=None)`` and of ``lrtool find`` without ``find.budget``:
    :data:`DEFAULT_BUDGET` when the length of the training the LR is for is known, else 0
    (the curve alone)."""
    return DEFAULT_BUDGET if target_steps is not None else 0.0


def _level(table: dict[float, Any], budget: float) -> Any:
    if budget <= 0:
        return None
    levels = sorted(table)
    fitting = [b for b in levels if b <= budget + 1e-12]
    return table[fitting[-1] if fitting else levels[0]]


def params_for_budget(budget: float) -> SearchParams | None:
    """The settings of the largest tabled budget not above ``budget`` (the smallest for a
    budget below every level); None for budget 0."""
    return _level(SEARCH_PARAMS, budget)


def fallback_params_for_budget(budget: float) -> SearchParams | None:
    """The bracket's search settings for ``budget`` (as :func:`params_for_budget`)."""
    bracket = _level(FALLBACK_PARAMS, budget)
    return None if bracket is None else bracket.params


def fallback_span(stop_lr: float, budget: float) -> tuple[float, float] | None:
    """Where the search looks when the curve gave no number: the lowest and highest of the
    bracket's candidates, centred ``below_stop`` decades below ``stop_lr`` (where the sweep
    diverged or ended); None for budget 0 or an unusable stop.

    >>> low, high = fallback_span(10.0, 0.5)
    >>> round(math.log10(high / low) / (params_for_budget(0.5).candidates - 1), 3) > 0
    True
    """
    bracket = _level(FALLBACK_PARAMS, budget)
    if bracket is None or not (stop_lr > 0 and math.isfinite(stop_lr)):
        return None
    p = bracket.params
    centre, half = stop_lr / 10**bracket.below_stop, p.spacing * (p.candidates - 1) / 2
    return centre / 10**half, centre * 10**half
