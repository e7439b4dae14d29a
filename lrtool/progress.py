"""Progress where no terminal draws a bar (a CI log, a file): a plain line at every tenth of a
phase, on the stream given (stderr). Torch-free; the CLI's bar and ``find_lr(progress=True)``
both fall back to it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

PlainProgress = Callable[[int, int, float, float], None]


EVERY_S = 30.0  # a long phase still says something at least this often


def plain_progress(
    stream: TextIO, label: Callable[[], str] | str = "range test", every_s: float = EVERY_S
) -> PlainProgress:
    """``update(step, total, lr, loss)`` writing ``<label>: step 40/100, lr 1.20e-03, loss
    0.5310`` at each tenth of the steps, at the last, and at least every ``every_s`` seconds
    (with the time the phase still needs at its pace: a run of 10^7 steps says so early); a
    step 0 starts a new phase (a second sweep, a repeat, a training)."""
    shown = [-1]
    clock = {"start": time.monotonic(), "last": time.monotonic()}

    def update(step: int, total: int, lr: float, loss: float) -> None:
        now = time.monotonic()
        if step == 0:
            shown[0] = -1
            clock["start"] = clock["last"] = now
        tenth = (step + 1) * 10 // max(total, 1)
        late = now - clock["last"] >= every_s
        if tenth > shown[0] or step + 1 == total or late:
            shown[0] = max(shown[0], tenth)
            clock["last"] = now
            name = label() if callable(label) else label
            left = ""
            if late and step + 1 < total:
                rate = (now - clock["start"]) / (step + 1)
                left = f", about {_duration(rate * (total - step - 1))} to go"
            stream.write(f"{name}: step {step + 1}/{total}, lr {lr:.2e}, loss {loss:.4f}{left}\n")
            stream.flush()

    return update


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
