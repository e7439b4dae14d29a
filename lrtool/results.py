"""Result files: run folders, atomic writes, and no silent overwrites.

Every file is written to a temporary name in the same folder and renamed into place, so a
crash never leaves a truncated CSV; an existing file is only replaced with ``force``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError


def run_folder(out: str | None, config_name: str, command: str) -> Path:
    """``--out DIR`` as given, or ``runs/<config-name>-<command>-<timestamp>/``."""
    if out:
        return Path(out).expanduser()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^\w.-]+", "_", config_name) or "run"
    return Path("runs") / f"{safe}-{command}-{stamp}"


def prepare_folder(folder: Path, names: Sequence[str], force: bool) -> Path:
    """Create ``folder`` and check that none of ``names`` exists in it (unless ``force``).

    Names are plain file names: they are resolved inside the folder and may not escape it.
    Checked before any work starts, so a run never fails at the end for this.
    """
    if folder.exists() and not folder.is_dir():
        raise LrtoolError(f"--out: {folder} exists and is a file, not a folder; pick another path")
    root = folder.resolve()
    clashes = []
    for name in names:
        target = (root / name).resolve()
        if target.parent != root:
            raise LrtoolError(f"output file name {name!r} would leave the folder {folder}")
        if target.exists() and not force:
            clashes.append(name)
    if clashes:
        raise LrtoolError(
            f"--out: {folder} already holds {', '.join(clashes)}; pass --force to overwrite "
            f"or choose another --out folder"
        )
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LrtoolError(f"--out: cannot create folder {folder}: {exc.strerror}") from None
    _created.extend(missing)  # deepest first
    if not os.access(folder, os.W_OK):
        raise LrtoolError(f"--out: folder {folder} is not writable")
    return folder


_created: list[Path] = []  # folders prepare_folder made in this process, deepest first


def remove_empty_new_folders() -> None:
    """Remove the folders :func:`prepare_folder` created that are still empty.

    Called when a command ends, whatever its outcome: a run that fails or is interrupted before
    it writes anything leaves no empty run folder behind. A folder that holds a file, or that
    existed before, is kept.
    """
    while _created:
        folder = _created.pop(0)
        with contextlib.suppress(OSError):  # not empty (or gone): keep it
            folder.rmdir()


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def format_number(value: Any) -> str:
    """Numbers as CSV text: ints as is, floats with repr (round-trips exactly), NaN as 'nan'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return "" if value is None else str(value)


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_number(row.get(c)) for c in columns])
    return buffer.getvalue()


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    return write_atomic(path, csv_text(columns, rows))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def json_text(data: dict[str, Any]) -> str:
    return json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"


def write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_atomic(path, json_text(data))


def versions() -> dict[str, str]:
    import platform
    import sys

    from lrtool import __version__

    found = {"lrtool": __version__, "python": platform.python_version()}
    torch = sys.modules.get("torch")
    if torch is not None:
        found["torch"] = torch.__version__
    return found


# smoothed_loss: the debiased EMA, the divergence monitor; lagfree_loss: the centred smoothing
# the suggestion rules read (and the plot draws).
RANGE_TEST_COLUMNS = ["step", "lr", "loss", "smoothed_loss", "lagfree_loss"]
VERIFY_COLUMNS = ["use", "lr", "score", "steps", "kept", "rung"]


def range_test_summary(result: Any, config: dict[str, Any], source: str) -> dict[str, Any]:
    """What ``summary.json`` of ``lrtool find`` holds (``result`` is a RangeTestResult)."""
    rec = result.recommendation
    return {
        "command": "find",
        "config": source,
        "lr": result.lr,
        "onecycle_max_lr": result.onecycle_max_lr,
        "rule": rec.rule if rec else None,
        "optimizer_group": result.optimizer_group,
        "reason": rec.reason if rec else None,
        "confidence": rec.confidence if rec else "none",
        "spread_decades": rec.spread_decades if rec else None,
        "warnings": rec.warnings if rec else [],
        "suggestions": result.suggestions,
        "repeat_lrs": result.repeat_lrs,
        "stop_reason": result.stop_reason,
        "interrupted": result.interrupted,
        "steps_run": result.steps_run,
        "steps_requested": result.steps_requested,
        "steps_total": result.steps_total
        + (result.verification.steps_spent if result.verification else 0),
        "discarded_steps": result.discarded_steps,
        "refine_note": result.refined_because or None,
        "refined": None
        if result.coarse is None
        else {
            "because": result.refined_because,
            "first_sweep": [result.coarse.start_lr, result.coarse.end_lr],
            "first_sweep_steps": result.coarse.steps_run,
            "first_sweep_stop_reason": result.coarse.stop_reason,
        },
        "verify": None
        if result.verification is None
        else {
            "because": result.verification.because,
            "candidates": result.verification.rows(),
            "steps_spent": result.verification.steps_spent,
            "monitor": result.verification.monitor,
            "budget": result.verification.budget,
            "target_steps": result.verification.target_steps,
            "budget_spent": None
            if not result.verification.target_steps
            else round(result.verification.steps_spent / result.verification.target_steps, 4),
        },
        "start_lr": result.start_lr,
        "end_lr": result.end_lr,
        "mode": result.mode,
        "monitor": result.monitor,
        "elapsed_s": round(result.elapsed_s, 3),
        "config_echo": config,
        "versions": versions(),
    }
