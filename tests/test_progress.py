"""Progress lines where no terminal draws a bar: each tenth, and a long phase says how long it
still needs (issue 26: a run of 10^7 steps used to run for a day without a word)."""

from __future__ import annotations

import io

from lrtool import progress


def test_a_long_phase_says_how_long_it_still_needs(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    update = progress.plain_progress(out, "training", every_s=30)
    total = 10_000_000
    for step in range(5):
        now[0] = step * 10.0  # 10 s a step: 10^7 steps take about 3 years
        update(step, total, 0.1, 1.0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "training: step 1/10000000, lr 1.00e-01, loss 1.0000"
    assert lines[-1].startswith("training: step 4/10000000") and "days to go" in lines[-1]


def test_each_tenth_and_each_phase_once():
    out = io.StringIO()
    update = progress.plain_progress(out, lambda: "range test")
    for _ in range(2):  # two sweeps of 40 steps
        for step in range(40):
            update(step, 40, 1e-3, 0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 * 11  # step 1, then every 4 steps to 40, for each sweep
    assert sum(line.startswith("range test: step 1/40,") for line in lines) == 2
