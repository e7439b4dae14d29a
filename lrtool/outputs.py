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
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError

LOCK_NAME = ".lrtool-run.lock"  # held by the run that claimed the folder


@contextlib.contextmanager
def claimed_folder(folder: Path, names: Sequence[str], force: bool) -> Iterator[Path]:
    """Create ``folder`` for a run that writes ``names``, and hold it for the run.

    Fails before any work starts when one of ``names`` exists there (unless ``force``), when
    the path is a file, when the folder cannot be created or written, or when another run
    holds it: the claim is a lock file created with ``O_EXCL``, so of two runs started into
    the same folder at once exactly one gets it (a lock left by a run that no longer exists
    is taken over). On leaving, the lock is removed, and so are the folders this claim
    created if they are still empty: a run that fails or is interrupted before it writes
    anything leaves no empty run folder behind. Names are plain file names: they are
    resolved inside the folder and may not escape it.
    """
    if folder.exists() and not folder.is_dir():
        raise LrtoolError(f"--out: {folder} exists and is a file, not a folder; pick another path")
    root = folder.resolve()
    for name in names:
        if (root / name).resolve().parent != root:
            raise LrtoolError(f"output file name {name!r} would leave the folder {folder}")
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LrtoolError(f"--out: cannot create folder {folder}: {exc.strerror}") from None
    lock = None
    try:
        if not os.access(folder, os.W_OK):
            raise LrtoolError(f"--out: folder {folder} is not writable")
        lock = _lock(folder)
        clashes = [name for name in names if (root / name).exists()]
        if clashes and not force:
            raise LrtoolError(
                f"--out: {folder} already holds {', '.join(clashes)}; pass --force to "
                f"overwrite or choose another --out folder"
            )
        yield folder
    finally:
        if lock is not None:
            with contextlib.suppress(OSError):
                lock.unlink()
        for made in created:
            with contextlib.suppress(OSError):  # not empty (or gone): keep it
                made.rmdir()


def _lock(folder: Path) -> Path:
    lock = folder / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None:
                raise LrtoolError(
                    f"--out: {folder} is in use by another lrtool run (pid {owner}); wait for "
                    f"it to finish or choose another --out folder"
                ) from None
            with contextlib.suppress(OSError):
                lock.unlink()  # left by a run that no longer exists
            continue
        except OSError as exc:
            raise LrtoolError(f"--out: cannot write in {folder}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return lock
    raise LrtoolError(f"--out: could not claim {folder}; try again or choose another --out")


def _lock_owner(lock: Path) -> int | None:
    """The pid holding ``lock`` if that process is alive, else None."""
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, someone else's
    return pid


def check_output_file(path: Path, flag: str, force: bool) -> None:
    """Fail before any work when ``path`` (a ``--csv`` or ``--png`` file) cannot be written:
    a folder, a missing or read-only folder, or an existing file without ``force``."""
    if path.is_dir():
        raise LrtoolError(f"{flag}: {path} is a folder; give a file name")
    if path.exists() and not force:
        raise LrtoolError(f"{flag}: {path} exists; pass --force to overwrite it")
    parent = path.parent
    if not parent.is_dir():
        raise LrtoolError(f"{flag}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise LrtoolError(f"{flag}: folder {parent} is not writable")


def write_results(folder: Path, files: dict[str, str], names: Sequence[str]) -> list[Path]:
    """Put a run's result files in place together: every file is written to a temporary
    name first (so a full disk fails before any result is replaced), then each is renamed
    into place, ``summary.json`` last; files of ``names`` that this run did not write (a
    ``--force`` over an earlier run) are removed, so the folder never mixes two runs.
    Stop signals wait until the files are in place (:func:`lrtool.interrupts.deferred`)."""
    from lrtool.interrupts import deferred

    order = sorted(files, key=lambda name: name == "summary.json")
    temps: dict[str, str] = {}
    with deferred():
        try:
            for name in order:
                temps[name] = _write_temporary(folder / name, files[name])
            for name in order:
                os.replace(temps[name], folder / name)
                del temps[name]
        except OSError as exc:
            raise LrtoolError(
                f"cannot write the results in {folder}: {exc.strerror or exc}"
            ) from None
        finally:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        for name in names:
            if name not in files:
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
    return [folder / name for name in order]


def _file_mode() -> int:
    """0o666 less the umask: what ``open()`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_temporary(path: Path, text: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())  # mkstemp makes 0600; results follow the umask
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = _write_temporary(path, text)
    try:
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
    # default=str: a config value YAML gives a type JSON lacks (a date) is written as text.
    return json.dumps(_json_safe(data), indent=2, sort_keys=False, default=str) + "\n"


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
