"""``LRTOOL_HEARTBEAT=PATH``: a file that appears once a run has finished its first step
(and ``PATH.<phase>`` when a later phase starts, e.g. ``PATH.search``).

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


def phase_started(name: str) -> None:
    """Create ``<LRTOOL_HEARTBEAT>.<name>`` (if the variable is set): a phase such as the
    budgeted search (``search``) has started."""
    path = os.environ.get("LRTOOL_HEARTBEAT")
    if path:
        try:
            with open(f"{path}.{name}", "a", encoding="utf-8"):
                pass
        except OSError:
            pass
