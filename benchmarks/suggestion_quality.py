"""How good is a suggested LR on tasks it was not tuned on? Leave-one-family-out, from the cache.

    python benchmarks/suggestion_quality.py                # score the committed suite: seconds
    python benchmarks/suggestion_quality.py --write-docs   # and regenerate docs/suggestion-quality.md
    python benchmarks/suggestion_quality.py --quick        # train and score 3 tasks x 1 seed (CI)

The suite (``suite_tasks.py``, 48 tasks in 8 families, 3 seeds) is trained once by
``suggestion_suite.py`` into ``suggestion_suite.json``; this script only reads it.

Every constant and every choice of lrtool's rules is fitted by leave-one-family-out
cross-validation: for each family, the rule is chosen on the other seven families and scored
on the held-out one. The headline figures are these out-of-fold regrets. The constants lrtool
ships are the same procedure fitted on all eight families (their in-sample regret is shown
only for comparison, never as the headline).

What is fitted (each from a small grid, minimising the mean regret of the training runs):

* the curve rule (budget 0): the smoothing width, the threshold below which a weak first sweep
  is refined by a second one, and for each use (constant LR, 1cycle peak) the weights of the
  three anchors (minimum, steepest descent, where the sweep stopped) and the offset below them;
* the budgeted search at each budget: candidates, spacing, rungs, tolerance, shift and the
  1cycle step above the constant (``lrtool.search.SearchParams``), seeded by the curve rule of
  the same fold.

The peers' rules (fastai valley, minimum/10 and steep, torch-lr-finder, Lightning) have no
constants to fit; they read the same first sweep and their single LR is judged both ways.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_scoring import Run, load_runs, summary  # noqa: E402

from lrtool.search import SearchParams, choose, plan_search, run_search  # noqa: E402
from lrtool.suggest import RULES, AnchorRule, CurveFeatures, curve_features  # noqa: E402

USES = ("constant", "onecycle")
# The fit minimises the mean regret capped at 0.5, so that runs no setting can rescue (a
# curve that says nothing) do not steer it; caps of 1.0, 0.5 and 0.3 were tried and 0.5 kept.
FIT_CAP = 0.5
BUDGETS = (0.1, 0.25, 0.5, 1.0, 2.0)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "suggestion-quality.md"

# The grids the cross-validation chooses from.
WIDTHS = (1 / 20, 1 / 40, 1 / 80)
REFINE = (0.0, 0.1, 0.2, 0.3, 0.5, 1.01)  # 1.01: always read the second sweep
# (w_min, w_steep, w_half) in quarters; w_rise is the rest
WEIGHTS = [
    (a / 4, b / 4, c / 4) for a in range(5) for b in range(5) for c in range(5) if a + b + c <= 4
]
OFFSETS = np.round(np.arange(-0.5, 2.51, 0.05), 2)
SEARCH_SHAPES = [
    (n, spacing, rungs)
    for n in (2, 3, 4, 6, 8)
    for spacing in (0.25, 0.5, 0.75)
    for rungs in (1, 2, 3)
    if rungs == 1 or n >= 4
]
SHIFTS = np.round(np.arange(-0.75, 0.26, 0.125), 3)
TOLERANCES = (0.0, 0.05, 0.1)
# decades from the search's constant LR to the 1cycle peak; NaN: keep the curve's 1cycle peak
ONECYCLE_ABOVE = np.append(np.round(np.arange(-0.25, 0.76, 0.125), 3), np.nan)


# --------------------------------------------------------------------------------------------
# The curve rule, for every candidate setting at once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What a run's curve gives for one (width, refine) setting: the curve lrtool reads (the
    second sweep when the first is weak and the second can be read, as ``find_lr`` does), its
    features (None when unreadable), and the sweep steps spent."""

    curve: dict[str, list[float]]
    features: CurveFeatures | None
    steps: int


def read_run(run: Run, width: float, refine_below: float) -> Reading:
    first = curve_features(run.first["lrs"], run.first["losses"], width)
    steps = len(run.first["lrs"])
    curve = run.first
    weak = isinstance(first, str) or first.relative_drop < refine_below
    if weak and len(run.second["lrs"]) >= 8:
        second = curve_features(run.second["lrs"], run.second["losses"], width)
        steps += len(run.second["lrs"])
        if not isinstance(second, str) or isinstance(first, str):
            first, curve = second, run.second
    return Reading(curve, None if isinstance(first, str) else first, steps)


def anchor_lrs(reading: Reading, weights: tuple[float, float, float]) -> np.ndarray:
    """``AnchorRule.read`` for every offset in OFFSETS at once (NaN when unreadable)."""
    f = reading.features
    if f is None:
        return np.full(len(OFFSETS), np.nan)
    w_min, w_steep, w_half = weights
    anchor = AnchorRule(w_min=w_min, w_steep=w_steep, offset=0.0, w_half=w_half).log_anchor(f)
    log_lr = np.minimum(anchor - OFFSETS, f.log_stop)
    return np.maximum(10**log_lr, reading.curve["lrs"][0])


@dataclass
class CurveTable:
    """Regret of every (width, refine, weights, offset) setting on every run, per use."""

    settings: list[tuple[float, float]]  # (width, refine_below)
    regret: dict[str, np.ndarray]  # use -> [setting, weights, offset, run]
    lrs: np.ndarray  # [setting, weights, offset, run]
    steps: np.ndarray  # [setting, run]
    groups: np.ndarray  # per run: adaptive | sgd


def curve_table(runs: list[Run]) -> CurveTable:
    settings = list(itertools.product(WIDTHS, REFINE))
    shape = (len(settings), len(WEIGHTS), len(OFFSETS), len(runs))
    regret = {u: np.ones(shape) for u in USES}
    lrs = np.full(shape, np.nan)
    steps = np.zeros((len(settings), len(runs)))
    for si, (width, refine_below) in enumerate(settings):
        for ri, run in enumerate(runs):
            reading = read_run(run, width, refine_below)
            steps[si, ri] = reading.steps
            for wi, weights in enumerate(WEIGHTS):
                values = anchor_lrs(reading, weights)
                lrs[si, wi, :, ri] = values
                for use in USES:
                    regret[use][si, wi, :, ri] = run.grids[use].regret_of(np.log10(values))
    groups = np.array(["adaptive" if r.adaptive else "sgd" for r in runs])
    return CurveTable(settings, regret, lrs, steps, groups)


GROUPS = ("adaptive", "sgd")  # Adam, AdamW, RMSprop, Adagrad | SGD with or without momentum


@dataclass(frozen=True)
class CurveFit:
    setting: int
    picks: dict[tuple[str, str], tuple[int, int]]  # (use, group) -> (weights, offset) indices
    split: bool  # separate weights and offsets for adaptive and SGD-like optimizers

    def describe(self, table: CurveTable) -> str:
        width, refine = table.settings[self.setting]
        parts = [f"width 1/{round(1 / width)} of the sweep, refine below {refine:.0%}"]
        for (use, group), (wi, oi) in self.picks.items():
            wm, ws, wh = WEIGHTS[wi]
            who = use if group == "all" else f"{use} ({group})"
            parts.append(
                f"{who}: w_min {wm:.2f}, w_steep {ws:.2f}, w_half {wh:.2f}, "
                f"w_rise {1 - wm - ws - wh:.2f}, offset {OFFSETS[oi]:.2f}"
            )
        return "; ".join(parts)


def _members(groups: np.ndarray, group: str) -> np.ndarray:
    return np.ones(len(groups), dtype=bool) if group == "all" else groups == group


def fit_curve(table: CurveTable, train: np.ndarray, split: bool = False) -> CurveFit:
    """The setting, and per use (and optimizer group when ``split``) the weights and offset,
    with the lowest total regret on ``train``."""
    best: tuple[float, CurveFit] | None = None
    groups = GROUPS if split else ("all",)
    for si in range(len(table.settings)):
        picks, total = {}, 0.0
        for use in USES:
            for group in groups:
                mask = train & _members(table.groups, group)
                if not mask.any():
                    mask = train
                sums = np.minimum(table.regret[use][si][:, :, mask], FIT_CAP).sum(axis=2)
                wi, oi = np.unravel_index(int(np.argmin(sums)), sums.shape)
                picks[(use, group)] = (int(wi), int(oi))
                total += float(sums[wi, oi])
        if best is None or total < best[0] - 1e-12:
            best = (total, CurveFit(si, picks, split))
    assert best is not None
    return best[1]


def _pick(table: CurveTable, fit: CurveFit, use: str, values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape[-1])
    for (u, group), (wi, oi) in fit.picks.items():
        if u == use:
            mask = _members(table.groups, group)
            out[mask] = values[fit.setting, wi, oi][mask]
    return out


def curve_lrs(table: CurveTable, fit: CurveFit, use: str) -> np.ndarray:
    return _pick(table, fit, use, table.lrs)


def curve_regret(table: CurveTable, fit: CurveFit, use: str) -> np.ndarray:
    return _pick(table, fit, use, table.regret[use])


def choose_structure(table: CurveTable, fam: np.ndarray, train: np.ndarray) -> bool:
    """Split by optimizer group or not, by leave-one-family-out within ``train`` (nested; the
    held-out regret is capped like the fit's)."""
    scores = {}
    for split in (False, True):
        total = 0.0
        for f in sorted(set(fam[train])):
            inner = train & (fam != f)
            held = train & (fam == f)
            fit = fit_curve(table, inner, split)
            total += sum(
                float(np.minimum(curve_regret(table, fit, u)[held], FIT_CAP).sum()) for u in USES
            )
        scores[split] = total
    return scores[True] < scores[False] - 1e-12


# --------------------------------------------------------------------------------------------
# The budgeted search, simulated on the cached prefixes
# --------------------------------------------------------------------------------------------


_SIMULATED: dict[tuple, tuple[list, int]] = {}


def simulate(run: Run, centre: float, budget: float, params: SearchParams) -> tuple[list, int]:
    """(final-rung (lr, score) pairs, steps spent) of the search on one run; [] if no plan.
    Memoised: most folds fit the same curve rule, so most centres repeat."""
    key = (run.key, float(f"{centre:.12g}") if math.isfinite(centre) else None, budget, params)
    if key not in _SIMULATED:
        _SIMULATED[key] = _simulate(run, centre, budget, params)
    return _SIMULATED[key]


def _simulate(run: Run, centre: float, budget: float, params: SearchParams) -> tuple[list, int]:
    grid = run.grids["constant"]
    span = None
    if not math.isfinite(centre):  # no curve suggestion: spread over the second sweep's range
        span = (run.second["lrs"][0], run.second["lrs"][-1])
    plan = plan_search(centre, budget, run.steps, params, span)
    if plan is None:
        return [], 0

    def score(lr: float, steps: int) -> float:
        return grid.prefix_at(lr, grid.marks.index(steps))

    outcome = run_search(plan, score, run.untrained)
    last = max(t.rung for t in outcome.trials)
    return [(t.lr, t.score) for t in outcome.trials if t.rung == last], outcome.steps_spent


def search_regrets(
    runs: list[Run], centres: np.ndarray, budget: float, fallback: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Regret per use for every search setting: [shape, tolerance, shift, 1cycle, run].

    When the search keeps no candidate (none finished, or none beat the untrained model by
    1%), ``lrtool find`` keeps the curve's answer: ``fallback`` holds its regret per use.
    """
    dims = (len(SEARCH_SHAPES), len(TOLERANCES), len(SHIFTS), len(ONECYCLE_ABOVE), len(runs))
    out = {u: np.broadcast_to(fallback[u], dims).copy() for u in USES}
    spent = np.zeros((len(SEARCH_SHAPES), len(runs)))
    for hi, (n, spacing, rungs) in enumerate(SEARCH_SHAPES):
        base = SearchParams(n, spacing, rungs, 0.0, 0.0, 0.0)
        for ri, run in enumerate(runs):
            final, steps = simulate(run, float(centres[ri]), budget, base)
            spent[hi, ri] = steps
            if not final:
                continue
            scores = dict(final)
            for ti, tol in enumerate(TOLERANCES):
                winner = choose(list(scores), scores, run.untrained, tol)
                if winner is None:
                    continue
                log_c = math.log10(winner) + SHIFTS
                out["constant"][hi, ti, :, :, ri] = _interp(run, "constant", log_c)[:, None]
                log_1 = log_c[:, None] + ONECYCLE_ABOVE[None, :-1]
                out["onecycle"][hi, ti, :, :-1, ri] = _interp(run, "onecycle", log_1)
    return out, spent


def _interp(run: Run, use: str, log_lrs: np.ndarray) -> np.ndarray:
    return run.grids[use].regret_of(log_lrs)


def fit_search(
    table: dict[str, np.ndarray], train: np.ndarray
) -> tuple[SearchParams, tuple[int, ...]]:
    """The setting with the lowest mean regret (both uses) on ``train``."""
    const = np.minimum(table["constant"][..., train], FIT_CAP).mean(axis=-1)
    cycle = np.minimum(table["onecycle"][..., train], FIT_CAP).mean(axis=-1)
    best_cycle = cycle.min(axis=-1)  # the 1cycle step is free given the rest
    total = const[..., 0] + best_cycle
    hi, ti, si = np.unravel_index(int(np.argmin(total)), total.shape)
    oi = int(np.argmin(cycle[hi, ti, si]))
    n, spacing, rungs = SEARCH_SHAPES[hi]
    params = SearchParams(
        n,
        spacing,
        rungs,
        float(SHIFTS[si]),
        TOLERANCES[ti],
        None if math.isnan(ONECYCLE_ABOVE[oi]) else float(ONECYCLE_ABOVE[oi]),
    )
    return params, (int(hi), int(ti), int(si), oi)


# --------------------------------------------------------------------------------------------
# Cross-validation
# --------------------------------------------------------------------------------------------


@dataclass
class Scored:
    """Per-run regret of one rule for each use (out of fold for lrtool's), and its cost."""

    name: str
    regret: dict[str, np.ndarray]
    extra_steps: float = 0.0  # mean training steps beyond the range test, in target runs


def lofo(
    runs: list[Run], fit_runs: list[Run] | None = None
) -> tuple[list[Scored], dict[str, str], dict[str, object]]:
    """Out-of-fold regrets for lrtool's rules at every budget; the all-family fits.

    ``fit_runs`` (the same runs with other curves: the training-loss sweeps) are the curves
    the rule is fitted on when they are not the curves it reads (``--monitor val-train-rule``).
    """
    families = sorted({r.family for r in runs})
    fam = np.array([r.family for r in runs])
    table = curve_table(runs)
    fitted_on = table if fit_runs is None else curve_table(fit_runs)
    oof = {u: np.ones(len(runs)) for u in USES}
    fold_fits: dict[str, CurveFit] = {}
    for f in families:
        train, test = fam != f, fam == f
        fit = fit_curve(fitted_on, train, choose_structure(fitted_on, fam, train))
        fold_fits[f] = fit
        for use in USES:
            oof[use][test] = curve_regret(table, fit, use)[test]
    everything = np.ones(len(runs), dtype=bool)
    full_fit = fit_curve(fitted_on, everything, choose_structure(fitted_on, fam, everything))
    sweep_steps = table.steps[full_fit.setting].mean()
    scored = [Scored("lrtool (curve only, budget 0)", oof)]
    chosen: dict[str, str] = {"curve": full_fit.describe(table)}
    deployed: dict[str, object] = {"curve": (table, full_fit), "sweep_steps": sweep_steps}
    for budget in BUDGETS:
        oof_b = {u: np.ones(len(runs)) for u in USES}
        spent_b = np.zeros(len(runs))
        for f in families + ["(all)"]:
            fit = full_fit if f == "(all)" else fold_fits[f]
            centres = curve_lrs(table, fit, "constant")
            fallback = {u: curve_regret(table, fit, u) for u in USES}
            stable, spent = search_regrets(runs, centres, budget, fallback)
            train = np.ones(len(runs), dtype=bool) if f == "(all)" else fam != f
            params, index = fit_search(stable, train)
            if f == "(all)":
                chosen[f"budget {budget:g}"] = str(params)
                deployed[f"budget {budget:g}"] = params
                continue
            test = fam == f
            hi, ti, si, oi = index
            oof_b["constant"][test] = stable["constant"][hi, ti, si, 0][test]
            oof_b["onecycle"][test] = stable["onecycle"][hi, ti, si, oi][test]
            spent_b[test] = spent[hi][test] / np.array([r.steps for r in runs])[test]
        scored.append(
            Scored(f"lrtool --budget {budget:g}", oof_b, extra_steps=float(spent_b.mean()))
        )
    return scored, chosen, deployed


def shipped_constants(deployed: dict[str, object]) -> dict[str, object]:
    """The all-family fit as lrtool's constants (tests compare them with lrtool's own)."""
    from lrtool.suggest import OPTIMIZER_GROUPS, AnchorRule

    table, fit = deployed["curve"]  # type: ignore[misc]
    width, refine = table.settings[fit.setting]
    rules: dict[str, dict[str, AnchorRule]] = {}
    for use in USES:
        rules[use] = {}
        for group in OPTIMIZER_GROUPS:
            wi, oi = fit.picks.get((use, group)) or fit.picks[(use, "all")]
            w_min, w_steep, w_half = WEIGHTS[wi]
            rules[use][group] = AnchorRule(
                w_min=w_min, w_steep=w_steep, offset=float(OFFSETS[oi]), w_half=w_half
            )
    return {
        "SMOOTHING_WIDTH": width,
        "REFINE_BELOW_DROP": refine,
        "CONSTANT_RULES": rules["constant"],
        "ONECYCLE_RULES": rules["onecycle"],
        "SEARCH_PARAMS": {b: deployed[f"budget {b:g}"] for b in BUDGETS},
    }


def in_sample(runs: list[Run], deployed: dict[str, object]) -> Scored:
    table, fit = deployed["curve"]  # type: ignore[misc]
    return Scored(
        "lrtool curve rule, in sample (not a headline)",
        {u: curve_regret(table, fit, u) for u in USES},
    )


def peers(runs: list[Run]) -> list[Scored]:
    out = []
    for info in RULES.values():
        if not info.peer:
            continue
        regret = {u: np.ones(len(runs)) for u in USES}
        for i, run in enumerate(runs):
            lr = info.fn(run.first["lrs"], run.first["losses"])
            for use in USES:
                regret[use][i] = run.grids[use].regret_at(lr)
        out.append(Scored(info.note, regret))
    return out


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def table_rows(scored: Iterable[Scored], mask: np.ndarray | None = None) -> list[str]:
    rows = [
        "| rule | constant: median | p90 | worst | 1cycle: median | p90 | worst | extra training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scored:
        cells = []
        for use in USES:
            values = s.regret[use] if mask is None else s.regret[use][mask]
            cells += [f"{v:.3f}" for v in summary(list(values))]
        cost = f"{s.extra_steps:.2f} runs" if s.extra_steps else "0"
        rows.append(f"| {s.name} | " + " | ".join(cells) + f" | {cost} |")
    return rows


def family_rows(runs: list[Run], scored: list[Scored], names: list[str]) -> list[str]:
    families = sorted({r.family for r in runs})
    fam = np.array([r.family for r in runs])
    picked = [s for s in scored if s.name in names]
    head = "| family | runs | " + " | ".join(
        f"{s.name}: const / 1cycle (median, worst)" for s in picked
    )
    rows = [head + " |", "|---|---|" + "---|" * len(picked)]
    for f in families:
        m = fam == f
        cells = []
        for s in picked:
            c, o = s.regret["constant"][m], s.regret["onecycle"][m]
            cells.append(f"{np.median(c):.3f}, {c.max():.2f} / {np.median(o):.3f}, {o.max():.2f}")
        rows.append(f"| {f} | {int(m.sum())} | " + " | ".join(cells) + " |")
    return rows


def shipped_reading(run: Run) -> Reading:
    """The curve lrtool as shipped reads for a run."""
    from lrtool.suggest import REFINE_BELOW_DROP, SMOOTHING_WIDTH

    return read_run(run, SMOOTHING_WIDTH, REFINE_BELOW_DROP)


def confidence_rows(runs: list[Run], oof: Scored) -> list[str]:
    """Out-of-fold curve-only regret by the confidence ``lrtool find`` states for the curve
    it reads (the second sweep when the shipped threshold refines)."""
    from lrtool.suggest import recommend

    levels: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        curve = shipped_reading(run).curve
        level = recommend(curve["lrs"], curve["losses"]).confidence
        levels.setdefault(level, []).append(i)
    rows = [
        "| confidence | runs | constant: median | worst | 1cycle: median | worst |",
        "|---|---|---|---|---|---|",
    ]
    for level in ("high", "medium", "low", "none"):
        idx = levels.get(level, [])
        if not idx:
            continue
        c, o = oof.regret["constant"][idx], oof.regret["onecycle"][idx]
        rows.append(
            f"| {level} | {len(idx)} | {np.median(c):.3f} | {c.max():.3f} | "
            f"{np.median(o):.3f} | {o.max():.3f} |"
        )
    return rows


def onecycle_rows(runs: list[Run]) -> list[str]:
    """Does 1cycle at its best peak beat a constant LR at its best, in the same steps?"""
    families = sorted({r.family for r in runs})
    rows = [
        "| family | runs | 1cycle lower | median ratio 1cycle / constant (best final val loss) |",
        "|---|---|---|---|",
    ]
    for f in families + ["all"]:
        ratios = [
            r.grids["onecycle"].best / r.grids["constant"].best
            for r in runs
            if (f == "all" or r.family == f) and r.grids["constant"].best > 0
        ]
        wins = sum(x < 1 for x in ratios)
        rows.append(f"| {f} | {len(ratios)} | {wins} | {np.median(ratios):.2f} |")
    return rows


def family_medians(runs: list[Run], scored: list[Scored]) -> list[str]:
    """One row per rule and family: median and p90 for each use (constant / 1cycle)."""
    families = sorted({r.family for r in runs})
    fam = np.array([r.family for r in runs])
    rows = ["| rule | " + " | ".join(families) + " |", "|---|" + "---|" * len(families)]
    for s in scored:
        cells = []
        for f in families:
            m = fam == f
            c, o = s.regret["constant"][m], s.regret["onecycle"][m]
            cells.append(
                f"{np.median(c):.2f}, {np.percentile(c, 90):.2f} / "
                f"{np.median(o):.2f}, {np.percentile(o, 90):.2f}"
            )
        rows.append(f"| {s.name} | " + " | ".join(cells) + " |")
    return rows


def declined_rows(runs: list[Run], scored: list[Scored], others: list[Scored]) -> list[str]:
    """Where the curve gives no number (lrtool declines, counted as regret 1) and where it
    does: every rule on the two sets of runs."""
    gave = np.array([shipped_reading(run).features is not None for run in runs])
    rows = [f"Runs where lrtool's curve gives a number: {int(gave.sum())} of {len(runs)}", ""]
    rows += table_rows([scored[0], *scored[1:], *others], gave)
    rows += ["", f"Runs where it declines (no number: the curve is flat or noise): "
             f"{int((~gave).sum())}", ""]  # fmt: skip
    if (~gave).any():
        rows += table_rows([scored[0], *scored[1:], *others], ~gave)
    return rows


def readme_rows(scored: list[Scored], others: list[Scored]) -> list[str]:
    """The README's table: lrtool without and with its default budget, --budget 2, and
    fastai's two rules (tests/test_suggestion_quality.py checks the README holds these)."""
    from lrtool.search import DEFAULT_BUDGET

    by_name = {s.name: s for s in [*scored, *others]}
    picks = [
        ("lrtool, curve only (`--budget 0`)", "lrtool (curve only, budget 0)"),
        (f"lrtool, default (`--budget {DEFAULT_BUDGET:g}`)", f"lrtool --budget {DEFAULT_BUDGET:g}"),
        ("lrtool `--budget 2`", "lrtool --budget 2"),
        ("fastai minimum/10", "fastai minimum / 10"),
        ("fastai valley", "fastai valley (its default)"),
    ]
    rows = [
        "| rule (out of fold) | constant: median / p90 / worst | 1cycle: median / p90 / worst "
        "| extra training |",
        "|---|---|---|---|",
    ]
    for label, name in picks:
        s = by_name[name]
        cells = [" / ".join(f"{v:.3f}" for v in summary(list(s.regret[u]))) for u in USES]
        cost = f"{s.extra_steps:.2f} runs" if s.extra_steps else "none"
        rows.append(f"| {label} | {cells[0]} | {cells[1]} | {cost} |")
    return rows


def target_rows(scored: list[Scored], others: list[Scored]) -> list[str]:
    """Issue 15's targets against the out-of-fold figures: met or not, as measured."""
    rows = ["| target | use | measured | met |", "|---|---|---|---|"]
    curve = scored[0]
    budgets = {s.name: s for s in scored[1:]}

    def row(target: str, use: str, measured: str, met: bool) -> None:
        rows.append(f"| {target} | {use} | {measured} | {'yes' if met else 'no'} |")

    for use in USES:
        median, p90, worst = summary(list(curve.regret[use]))
        row("curve only: median <= 0.02", use, f"{median:.4f}", median <= 0.02)
        row("curve only: worst <= 0.15", use, f"{worst:.3f}", worst <= 0.15)
        for stat, index in (("median", 0), ("p90", 1)):
            mine = summary(list(curve.regret[use]))[index]
            best = min(summary(list(o.regret[use]))[index] for o in others)
            row(
                f"curve only: {stat} no worse than every peer",
                use,
                f"{mine:.3f} (best peer {best:.3f})",
                mine <= best + 1e-12,
            )
        for name, s in budgets.items():
            if s.extra_steps <= 1.0 + 1e-9:
                worst_b = summary(list(s.regret[use]))[2]
                row(f"{name[7:]}: worst <= 0.05", use, f"{worst_b:.3f}", worst_b <= 0.05)
    return rows


# What the sweep watches: the variants lrtool can ship with its constants (fitted on the
# training-loss sweeps), and, for comparison only, the val sweeps read by a rule refitted on them.
MONITORS = {
    "train": "training loss",
    "val-train-rule": "val batches, read by the shipped rule",
    "val": "val batches, rule refitted on them (not shipped)",
}
SHIPPABLE = ("train", "val-train-rule")


def monitor_runs(cache: dict[str, Any], variant: str) -> tuple[list[Run], list[Run] | None]:
    """(the runs whose curves are read, the runs the rule is fitted on; None: the same)."""
    runs = load_runs(cache, monitor=variant.removesuffix("-train-rule"))
    if variant != "val-train-rule":
        return runs, None
    by_key = {r.key: r for r in load_runs(cache)}
    return runs, [by_key[r.key] for r in runs]


def monitor_scores(cache: dict[str, Any]) -> dict[str, list[Scored]]:
    """Out-of-fold regrets of every variant of :data:`MONITORS` at every budget, on the runs
    that have both kinds of sweep."""
    return {v: lofo(*monitor_runs(cache, v))[0] for v in MONITORS}


def mean_figure(s: Scored) -> float:
    """What chooses the monitor: the mean of the median and the 90th percentile of both uses."""
    return float(np.mean([summary(list(s.regret[u]))[i] for u in USES for i in (0, 1)]))


def best_monitor(scores: dict[str, list[Scored]], budget: float) -> str:
    """The shippable variant with the lowest :func:`mean_figure` at ``budget``."""
    name = "lrtool (curve only, budget 0)" if budget == 0 else f"lrtool --budget {budget:g}"
    return min(SHIPPABLE, key=lambda v: mean_figure(next(s for s in scores[v] if s.name == name)))


def monitor_rows(scores: dict[str, list[Scored]]) -> list[str]:
    """The trade-off table: monitor x budget, with the extra training each costs."""
    rows = [
        "| sweep watches | budget | constant: median | p90 | 1cycle: median | p90 | mean | "
        "extra training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, label in MONITORS.items():
        for s in scores[variant]:
            budget = "0" if "budget 0)" in s.name else s.name.split()[-1]
            cells = [f"{summary(list(s.regret[u]))[i]:.3f}" for u in USES for i in (0, 1)]
            cost = f"{s.extra_steps:.2f} runs" if s.extra_steps else "0"
            rows.append(
                f"| {label} | {budget} | {' | '.join(cells)} | {mean_figure(s):.3f} | {cost} |"
            )
    return rows


def report(
    runs: list[Run], fit_runs: list[Run] | None = None, cache: dict[str, Any] | None = None
) -> tuple[str, dict[str, object]]:
    started = time.perf_counter()
    scored, chosen, deployed = lofo(runs, fit_runs)
    others = peers(runs)
    lines = ["**Out of fold (leave one family out), every run of the suite**", ""]
    lines += table_rows(scored[:1] + others)
    lines += ["", "**The targets of issue 15, out of fold**", ""]
    lines += target_rows(scored, others)
    lines += ["", "**Regret against budget (out of fold)**", ""]
    lines += table_rows(scored)
    lines += ["", "**Per family (out of fold)**", ""]
    lines += family_rows(
        runs, scored + others, [scored[0].name, "lrtool --budget 0.5", others[1].name]
    )
    lines += ["", "**Per family, every rule (out of fold)**", ""]
    lines += ["Each cell: constant median, p90 / 1cycle median, p90.", ""]
    lines += family_medians(runs, scored + others)
    lines += ["", "**Where the curve gives a number, and where it declines (out of fold)**", ""]
    lines += declined_rows(runs, scored, others)
    lines += ["", "**By the confidence lrtool states (curve only, out of fold)**", ""]
    lines += confidence_rows(runs, scored[0])
    lines += ["", "**1cycle against a constant LR, each at its best LR of the grid**", ""]
    lines += onecycle_rows(runs)
    lines += ["", "**In sample, for comparison only**", ""]
    lines += table_rows([in_sample(runs, deployed)])
    lines += ["", "**Chosen on all eight families (what lrtool ships)**", ""]
    lines += [f"- {k}: {v}" for k, v in chosen.items()]
    lines += [
        "",
        f"Range test: {deployed['sweep_steps']:.0f} sweep steps on average (first sweep "
        f"plus the second when it is triggered), over {len(runs)} runs.",
    ]
    if cache is not None:
        scores = monitor_scores(cache)
        picks = {b: best_monitor(scores, b) for b in (0.0, *BUDGETS)}
        deployed["monitor_picks"] = picks
        lines += ["", "**What the sweep watches (out of fold)**", ""]
        lines += monitor_rows(scores)
        lines += [
            "",
            "Best shippable monitor by the mean of the four figures: "
            + ", ".join(f"budget {b:g}: {MONITORS[v]}" for b, v in picks.items()),
        ]
    print(f"scored in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return "\n".join(lines), deployed


def main(argv: list[str] | None = None) -> int:
    import suggestion_suite

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="train and score 3 tasks x 1 seed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true", help="regenerate the docs page")
    parser.add_argument("--cache", type=Path, help="the cache file (default: the committed one)")
    parser.add_argument(
        "--monitor", choices=("train", "val", "val-train-rule"), default="train",
        help="score the sweeps that watched the training loss or the validation batches "
        "(val-train-rule: val sweeps read by the rule fitted on the training-loss sweeps)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        path = args.cache or suggestion_suite.QUICK_CACHE
        suggestion_suite.main(["--quick", "--jobs", str(args.jobs), "--cache", str(path)])
        cache = suggestion_suite.load(path)
    else:
        cache = suggestion_suite.load(args.cache or suggestion_suite.CACHE)
    runs, fit_runs = monitor_runs(cache, args.monitor)
    if len({r.family for r in runs}) < 2:
        print(f"{len(runs)} runs: need at least two families to cross-validate")
        return 1
    text, deployed = report(runs, fit_runs, cache if args.monitor == "train" else None)
    print(text)
    print("\nlrtool's constants from this fit:", file=sys.stderr)
    for name, value in shipped_constants(deployed).items():
        print(f"{name} = {value!r}", file=sys.stderr)
    if args.write_docs and not args.quick:
        write_docs(text, runs)
    return 0


def render_docs(text: str, runs: list[Run]) -> str:
    """docs/suggestion-quality.md: the template with the tables filled in."""
    template = (DOCS.parent / "suggestion-quality.template.md").read_text(encoding="utf-8")
    families = len({r.family for r in runs})
    tasks = len({r.task for r in runs})
    return template.replace("{{TABLES}}", text).replace(
        "{{SIZE}}", f"{tasks} tasks in {families} families x {len(runs) // max(tasks, 1)} seeds"
    )


def write_docs(text: str, runs: list[Run]) -> None:
    DOCS.write_text(render_docs(text, runs), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
