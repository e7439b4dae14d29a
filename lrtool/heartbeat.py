"""``LRTOOL_HEARTBEAT=PATH``: a file that appears once a run has finished its first step.

For watchdogs, CI scripts and tests that must act once training is under way (send Ctrl-C,
start a timer) instead of sleeping for a guessed time. Each training loop (the range test and
``train``/``compare`` runs, also in compare's worker processes) calls :func:`first_step_done`
after its first optimizer step; it costs one branch per step.
"""

from __future__ import annotations

import os


def first_step_done() -> None:
    """Create the file named by ``LRTOOL_HEARTBEAT`` (if set); later calls do nothing new."""
    path = os.environ.get("LRTOOL_HEARTBEAT")
    if path:
        try:
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError:
            pass  # a monitor's file is never a reason to stop training
