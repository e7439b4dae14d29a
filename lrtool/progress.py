"""Progress where no terminal draws a bar (a CI log, a file): a plain line at every tenth of a
phase, on the stream given (stderr). Torch-free; the CLI's bar and ``find_lr(progress=True)``
both fall back to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

PlainProgress = Callable[[int, int, float, float], None]


def plain_progress(stream: TextIO, label: Callable[[], str] | str = "range test") -> PlainProgress:
    """``update(step, total, lr, loss)`` writing ``<label>: step 40/100, lr 1.20e-03, loss
    0.5310`` at each tenth of the steps and at the last; a step 0 starts a new phase (a second
    sweep, a repeat, a training)."""
    shown = [-1]

    def update(step: int, total: int, lr: float, loss: float) -> None:
        if step == 0:
            shown[0] = -1
        tenth = (step + 1) * 10 // max(total, 1)
        if tenth > shown[0] or step + 1 == total:
            shown[0] = tenth
            name = label() if callable(label) else label
            stream.write(f"{name}: step {step + 1}/{total}, lr {lr:.2e}, loss {loss:.4f}\n")
            stream.flush()

    return update
