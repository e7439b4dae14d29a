"""The suggestion benchmark: the shipped constants and defaults are its cross-validated fit,
the docs page and the README's figures are generated from the committed cache, and --quick
trains and scores end to end."""

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

    curves = suggestion_quality.load_curves(suggestion_suite.load())
    text, deployed = suggestion_quality.report(curves)
    return curves, text, deployed


def test_the_committed_suite_covers_what_moves_the_lr(scored):
    """11 families (embeddings, fine-tuning and budgets of 10-20 sweeps among them), 66 tasks,
    3 seeds each, eleven torch optimizers, and every LR-free peer cached for every run."""
    from suite_tasks import TASKS

    curves, _, _ = scored
    runs = curves.runs["train"]
    families = {r.family for r in runs}
    assert len(families) >= 11 and {"embedding", "finetune", "long"} <= families
    tasks = {r.task for r in runs}
    assert len(tasks) >= 66 and all(sum(r.task == t for r in runs) == 3 for t in tasks)
    assert len({TASKS[t].optimizer for t in tasks}) >= 11
    long = [TASKS[t] for t in tasks if TASKS[t].family == "long"]
    assert all(10 * 100 <= t.steps <= 20 * 100 for t in long)  # 10-20 sweeps of 100 steps
    assert all(set(r.peers) >= {"prodigy", "schedulefree", "dadapt"} for r in runs)


def test_lrtool_ships_the_cross_validated_fit(scored):
    """Every constant of lrtool's rules and its default budget is the benchmark's fit on all
    families: nothing hand-set."""
    import numpy as np
    import suggestion_quality

    from lrtool import search, suggest

    curves, _, deployed = scored
    fit = suggestion_quality.shipped_constants(deployed)
    assert suggest.SMOOTHING_WIDTH == pytest.approx(fit["SMOOTHING_WIDTH"])
    assert suggest.REFINE_BELOW_DROP == pytest.approx(fit["REFINE_BELOW_DROP"])
    assert suggest.CONSTANT_RULES == fit["CONSTANT_RULES"]
    assert suggest.ONECYCLE_RULES == fit["ONECYCLE_RULES"]
    assert search.SEARCH_PARAMS == fit["SEARCH_PARAMS"]
    assert search.FALLBACK_PARAMS == fit["FALLBACK_PARAMS"]
    assert search.DEFAULT_BUDGET == deployed["default_budget"]
    ratios = suggestion_quality.measured_gain_ratios(curves.runs["train"])
    assert search.GAIN_RATIO == pytest.approx(round(float(np.median(ratios)) / 0.05) * 0.05)


def test_the_default_monitor_is_the_pipeline_measured(scored):
    """find_lr's monitor=None (find.monitor: auto) is what the benchmark scores as the
    default: validation batches when there are some (their training loss read where their
    curve cannot be), the training loss when there are none."""
    import suggestion_quality

    from lrtool.finder import default_monitor

    assert suggestion_quality.PIPELINES == {"train": ("train",), "val": ("val", "train")}
    for budget in (0.0, 0.5, 2.0):
        assert default_monitor(True, budget) == "val"
        assert default_monitor(False, budget) == "train"


def test_docs_page_is_generated_from_the_cache(scored):
    import suggestion_quality

    curves, text, _ = scored
    page = suggestion_quality.render_docs(text, curves.runs["train"])
    assert suggestion_quality.DOCS.read_text(encoding="utf-8") == page, (
        "docs/suggestion-quality.md is stale: python benchmarks/suggestion_quality.py --write-docs"
    )


def test_headline_is_out_of_fold(scored):
    """The first table is the leave-one-family-out one; in-sample figures come last, marked."""
    _, text, _ = scored
    first = text.split("\n\n")[0]
    assert "out of fold" in first
    assert text.index("In sample") > text.index("What the sweep watches")


def test_the_readme_quotes_the_generated_table(scored):
    """The README's table is the generated one, out of fold: the default beside the peers and
    the LR-free optimizers."""
    _, _, deployed = scored
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "\n".join(deployed["readme"]) in readme


def test_quick_mode_trains_and_scores(tmp_path, capsys):
    import suggestion_quality

    cache = tmp_path / "quick.json"
    assert suggestion_quality.main(["--quick", "--jobs", "1", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "out of fold" in out and "lrtool default (budget" in out
    stored = json.loads(cache.read_text())
    assert sum(k.startswith("grid|") for k in stored) == 6  # 3 tasks x 1 seed x 2 schedules
    assert sum(k.startswith("peers|") for k in stored) == 3
