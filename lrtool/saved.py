"""A suggestion measured once and used many times: the LRs of an earlier ``lrtool find`` (its
output folder or ``summary.json``) or of ``RangeTestResult.save()`` in Python.

``lrtool train|compare --lr-from-find runs/quickstart-find-.../`` reads one instead of running
a range test; ``lrtool.read_suggestion(path)`` gives the same in Python. Torch-free.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError, check_input_file


@dataclass(frozen=True)
class SavedSuggestion:
    """The LRs a finished range test suggested, and the file they were read from."""

    lr: float | None
    onecycle_max_lr: float | None
    source: str
    recommendation: Any = None  # the shape of RangeTestResult that train's LR plan reads

    @property
    def label(self) -> str:
        return f"find result {self.source}"


def read_suggestion(path: str | Path, what: str = "--lr-from-find") -> SavedSuggestion:
    """The suggestion stored at ``path``: a ``lrtool find`` output folder, its
    ``summary.json``, or a file of ``RangeTestResult.save()``. A run that was interrupted or
    failed, or that gave no number, is one line saying so."""
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "summary.json"
        if not file.exists():
            raise LrtoolError(
                f"{what}: {path} holds no summary.json; give a lrtool find output folder, its "
                f"summary.json, or a RangeTestResult.save() file"
            )
    check_input_file(file, what)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LrtoolError(f"{what}: cannot read {file} as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LrtoolError(f"{what}: {file} is not a lrtool result (a JSON object expected)")
    if "command" in data:
        if data["command"] != "find":
            raise LrtoolError(
                f"{what}: {file} is the summary of lrtool {data['command']}, not of lrtool find"
            )
        lr, peak = data.get("lr"), data.get("onecycle_max_lr")
    elif "lrs" in data and "recommendation" in data:  # RangeTestResult.save()
        rec = data["recommendation"] or {}
        lr, peak = rec.get("lr"), rec.get("onecycle_max_lr")
    else:
        raise LrtoolError(
            f"{what}: {file} is neither a lrtool find summary.json nor a RangeTestResult.save() "
            f"file"
        )
    if data.get("interrupted") or data.get("failed"):
        raise LrtoolError(
            f"{what}: the range test in {file} was {'interrupted' if data.get('interrupted') else 'a failure'}; "
            f"its suggestion is partial: run lrtool find again"
        )
    for name, value in (("lr", lr), ("onecycle_max_lr", peak)):
        if value is not None and not (
            isinstance(value, int | float) and math.isfinite(value) and value > 0
        ):
            raise LrtoolError(f"{what}: {file} holds {name} = {value!r}, not a positive number")
    if lr is None and peak is None:
        raise LrtoolError(
            f"{what}: the range test in {file} gave no suggestion; widen its sweep or pass --lr"
        )
    return SavedSuggestion(lr, peak, str(file))
