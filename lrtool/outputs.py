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
from collections.abc import Iterable, Iterator, Sequence
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


@contextlib.contextmanager
def claimed_folder(folder: Path, names: Sequence[str], force: bool) -> Iterator[Path]:
    """Create ``folder`` for a run that writes ``names``, and hold it for the run.

    Fails before any work starts when one of ``names`` exists there (unless ``force``), when
    the path is a file, or when the folder cannot be created or written. On leaving, the
    folders this claim created are removed again if they are still empty: a run that fails or
    is interrupted before it writes anything leaves no empty run folder behind. Names are
    plain file names: they are resolved inside the folder and may not escape it.
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
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LrtoolError(f"--out: cannot create folder {folder}: {exc.strerror}") from None
    try:
        if not os.access(folder, os.W_OK):
            raise LrtoolError(f"--out: folder {folder} is not writable")
        yield folder
    finally:
        for made in created:
            with contextlib.suppress(OSError):  # not empty (or gone): keep it
                made.rmdir()


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
