"""The suggestion benchmark: the shipped constants are its cross-validated fit, the docs page is
generated from the committed cache, and --quick trains and scores end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


@pytest.fixture(scope="module")
def scored():
    import suggestion_quality
    import suggestion_suite
    from suite_scoring import load_runs

    cache = suggestion_suite.load()
    runs = load_runs(cache)
    text, deployed = suggestion_quality.report(runs, None, cache)
    return runs, text, deployed


def test_the_committed_suite_is_big_enough_to_choose_rules_on(scored):
    runs, _, _ = scored
    families = {r.family for r in runs}
    tasks = {r.task for r in runs}
    assert len(families) >= 8 and len(tasks) >= 48
    assert all(sum(r.task == t for r in runs) == 3 for t in tasks)  # 3 seeds each


def test_lrtool_ships_the_cross_validated_fit(scored):
    """Every constant of lrtool's rules is the benchmark's all-family fit: nothing hand-set."""
    import suggestion_quality

    from lrtool import search, suggest

    _, _, deployed = scored
    fit = suggestion_quality.shipped_constants(deployed)
    assert suggest.SMOOTHING_WIDTH == pytest.approx(fit["SMOOTHING_WIDTH"])
    assert suggest.REFINE_BELOW_DROP == pytest.approx(fit["REFINE_BELOW_DROP"])
    assert suggest.CONSTANT_RULES == fit["CONSTANT_RULES"]
    assert suggest.ONECYCLE_RULES == fit["ONECYCLE_RULES"]
    assert search.SEARCH_PARAMS == fit["SEARCH_PARAMS"]


def test_the_default_monitor_is_the_best_measured_one(scored):
    """find_lr's monitor=None (and find.monitor: auto) watches what the out-of-fold table
    says is best at that budget, among the variants lrtool's fitted constants can read."""
    from lrtool.finder import default_monitor
    from lrtool.search import DEFAULT_BUDGET

    _, _, deployed = scored
    picks = deployed["monitor_picks"]
    for budget in (0.0, DEFAULT_BUDGET):
        measured = "val" if picks[budget] == "val-train-rule" else "train"
        assert default_monitor(True, budget) == measured, (budget, picks)
        assert default_monitor(False, budget) == "train"


def test_docs_page_is_generated_from_the_cache(scored):
    import suggestion_quality

    runs, text, _ = scored
    page = suggestion_quality.render_docs(text, runs)
    assert suggestion_quality.DOCS.read_text(encoding="utf-8") == page, (
        "docs/suggestion-quality.md is stale: python benchmarks/suggestion_quality.py --write-docs"
    )


def test_headline_is_out_of_fold(scored):
    """The first table is the leave-one-family-out one; in-sample figures come last, marked."""
    _, text, _ = scored
    first = text.split("\n\n")[0]
    assert "Out of fold" in first
    assert text.index("In sample") > text.index("Regret against budget")


def test_quick_mode_trains_and_scores(tmp_path, capsys):
    import suggestion_quality

    cache = tmp_path / "quick.json"
    assert suggestion_quality.main(["--quick", "--jobs", "1", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "Out of fold" in out and "lrtool --budget 1" in out
    stored = json.loads(cache.read_text())
    assert sum(k.startswith("grid|") for k in stored) == 6  # 3 tasks x 1 seed x 2 schedules


def test_readme_quotes_the_generated_figures(scored):
    """Every figure of the README's suggestion-quality paragraph is the out-of-fold one."""
    import re

    import numpy as np
    import suggestion_quality
    from suite_scoring import summary

    from lrtool.search import DEFAULT_BUDGET

    runs, text, _ = scored
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    flat = " ".join(readme.split())
    lofo, _, _ = suggestion_quality.lofo(runs)
    others = suggestion_quality.peers(runs)
    assert "\n".join(suggestion_quality.readme_rows(lofo, others)) in readme

    curve = next(s for s in lofo if s.name == "lrtool (curve only, budget 0)")
    median = summary(list(curve.regret["constant"]))[0]
    best_peer = min(summary(list(o.regret["constant"]))[0] for o in others)
    assert (
        f"constant median ({median:.4f} against 0.02; fastai's minimum/10 has {best_peer:.3f})"
        in flat
    )

    reading = [suggestion_quality.shipped_reading(r).features is not None for r in runs]
    gave = np.array(reading)
    assert f"on {int((~gave).sum())} of {len(runs)} runs" in flat
    p90 = [np.percentile(curve.regret[u][gave], 90) for u in ("constant", "onecycle")]
    assert (
        f"on the other {int(gave.sum())} its 90th percentile, {p90[0]:.2f} and {p90[1]:.2f}" in flat
    )
    assert re.search(rf"curve gives a number: {int(gave.sum())} of", text)

    # the default budget is the smallest whose p90 is at most 0.15 for both uses
    fits = [
        float(s.name.split()[-1])
        for s in lofo[1:]
        if all(summary(list(s.regret[u]))[1] <= 0.15 for u in ("constant", "onecycle"))
    ]
    assert fits and min(fits) == DEFAULT_BUDGET
    assert f"`find.budget: {DEFAULT_BUDGET:g}`" in readme

    ratios = [r.grids["onecycle"].best / r.grids["constant"].best for r in runs]
    wins = sum(x < 1 for x in ratios)
    gain = round(100 * (1 - float(np.median(ratios))))
    assert f"in {wins} of {len(runs)} runs, by a median {gain}%" in flat
