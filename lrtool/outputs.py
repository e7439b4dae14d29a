"""Result files: run folders, atomic writes, and no silent overwrites.

Every file is written to a temporary name in the same folder and renamed into place, so a
crash never leaves a truncated CSV; an existing file is only replaced with ``force``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError, printable

LOCK_NAME = ".lrtool-run.lock"  # held by the run that claimed the folder
# Present while a run puts its result files in place; left behind only by a run killed in
# the middle of that (SIGKILL, power loss): the folder is then incomplete, and says so.
INCOMPLETE_NAME = ".lrtool-incomplete"
TEMP_PREFIX = ".lrtool-"  # temporaries of result files: short, so long file names still fit


@dataclass
class Claim:
    """A run's hold on its output folder: the open lock file (an ``flock``), and whether the
    run may replace files already there (``--force``)."""

    folder: Path
    fd: int
    inode: tuple[int, int]
    force: bool

    def check_still_ours(self) -> None:
        """The folder's lock file is still the one this run holds: the folder was not moved,
        removed or replaced (results go nowhere else than where they were claimed)."""
        try:
            st = os.stat(self.folder / LOCK_NAME)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self.inode:
            raise LrtoolError(
                f"--out: {self.folder} was moved, removed or replaced while this run used it; "
                f"no results were written there. Rerun with a folder nothing else touches"
            )


_CLAIMS: dict[Path, Claim] = {}  # resolved folder -> the claim of this process


@contextlib.contextmanager
def claimed_folder(
    folder: Path, names: Sequence[str], force: bool, alternatives: Iterable[Path] = ()
) -> Iterator[Path]:
    """Create ``folder`` for a run that writes ``names``, and hold it for the run.

    Fails before any work starts when one of ``names`` exists there (unless ``force``), when
    the path is a file, when the folder cannot be created or written, or when another run
    holds it. The hold is an ``flock`` on a lock file in the folder, so it ends when the run's
    process ends, however it ends: a lock file nobody holds is taken over, and a reused pid
    cannot keep a folder locked. With ``alternatives`` (the next auto-generated names), a
    folder that is held or holds results is skipped for the next one instead.

    On leaving, the lock is removed, and so are the folders this claim created if they are
    still empty: a run that fails or is interrupted before it writes anything leaves no empty
    run folder behind. Temporaries left by a run killed while writing are removed on claim.
    Names are plain file names: they are resolved inside the folder and may not escape it.
    """
    options = iter(alternatives)
    while True:
        try:
            claim, created = _claim(folder, names, force)
            break
        except _Taken as taken:
            following = next(options, None)
            if following is None:
                raise LrtoolError(taken.message) from None
            folder = following
    key = folder.resolve()
    _CLAIMS[key] = claim
    try:
        yield folder
    finally:
        _CLAIMS.pop(key, None)
        _release(claim)
        _remove_if_empty(created)


class _Taken(LrtoolError):
    """The folder is held by another run, or holds results (and no --force)."""


def _claim(
    folder: Path, names: Sequence[str], force: bool
) -> tuple[Claim, list[tuple[Path, tuple[int, int] | None]]]:
    if folder.exists() and not folder.is_dir():
        raise LrtoolError(f"--out: {folder} exists and is a file, not a folder; pick another path")
    root = folder.resolve()
    for name in names:
        if (root / name).resolve().parent != root:
            raise LrtoolError(f"output file name {name!r} would leave the folder {folder}")
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LrtoolError(f"--out: cannot create folder {folder}: {exc.strerror}") from None
    created = [(p, _identity(p)) for p in missing]
    claim = None
    try:
        if not os.access(folder, os.W_OK):
            raise LrtoolError(f"--out: folder {folder} is not writable")
        claim = _lock(folder, force)
        clashes = [name for name in names if (root / name).exists()]
        if clashes and not force:
            raise _Taken(
                f"--out: {folder} already holds {', '.join(clashes)}; pass --force to "
                f"overwrite or choose another --out folder"
            )
        _remove_temporaries(folder)
        return claim, created
    except BaseException:
        if claim is not None:
            _release(claim)
        _remove_if_empty(created)
        raise


def _identity(path: Path) -> tuple[int, int] | None:
    st = _stat_or_none(path)
    return None if st is None else (st.st_dev, st.st_ino)


def _remove_if_empty(created: list[tuple[Path, tuple[int, int] | None]]) -> None:
    """Remove the folders a claim created, deepest first, if they are still empty and still
    the same folders (one that replaced them at the path is someone else's)."""
    for path, identity in created:
        if identity is not None and _identity(path) == identity:
            with contextlib.suppress(OSError):  # not empty (or gone): keep it
                path.rmdir()


def _lock(folder: Path, force: bool) -> Claim:
    """Hold ``folder``'s lock file: open (create) it, ``flock`` it without waiting, check it is
    still the file at the path (a run that just released it unlinks it), write our pid."""
    import fcntl

    lock = folder / LOCK_NAME
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise LrtoolError(f"--out: cannot write in {folder}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_pid(fd)
            os.close(fd)
            raise _Taken(
                f"--out: {folder} is in use by another lrtool run"
                + (f" (pid {owner})" if owner else "")
                + "; wait for it to finish or choose another --out folder"
            ) from None
        st, at = os.fstat(fd), _stat_or_none(lock)
        if at is None or (at.st_dev, at.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)  # released and unlinked under us: try the new file
            continue
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            _release(Claim(folder, fd, (st.st_dev, st.st_ino), force))
            raise LrtoolError(f"--out: cannot write in {folder}: {exc.strerror}") from None
        return Claim(folder, fd, (st.st_dev, st.st_ino), force)
    raise LrtoolError(f"--out: could not claim {folder}; try again or choose another --out")


def _release(claim: Claim) -> None:
    """Unlink the lock file (if it is still ours), then let go of the flock."""
    at = _stat_or_none(claim.folder / LOCK_NAME)
    if at is not None and (at.st_dev, at.st_ino) == claim.inode:
        with contextlib.suppress(OSError):
            (claim.folder / LOCK_NAME).unlink()
    with contextlib.suppress(OSError):
        os.close(claim.fd)


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _remove_temporaries(folder: Path) -> None:
    """The temporaries of a run that was killed while it wrote its results (this run holds
    the folder now, so no other run is writing them)."""
    for tmp in folder.glob(f"{TEMP_PREFIX}*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


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
    """Put a run's result files in place together, in the folder the run claimed.

    Every file is written to a temporary name first (so a full disk fails before any result
    is replaced), then each is moved into place, ``summary.json`` last; files of ``names``
    that this run did not write (a ``--force`` over an earlier run) are removed, so the
    folder never mixes two runs. While the files move, ``.lrtool-incomplete`` marks the
    folder and an earlier run's ``summary.json`` is already gone: a run killed outright in
    that moment leaves a folder that says it is incomplete, never one that looks whole.
    Without ``--force`` a file that appeared there during the run is not overwritten. Stop
    signals wait until the files are in place (:func:`lrtool.interrupts.deferred`)."""
    from lrtool.interrupts import deferred

    claim = _CLAIMS.get(folder.resolve())
    force = claim.force if claim is not None else False
    order = sorted(files, key=lambda name: name == "summary.json")
    temps: dict[str, str] = {}
    with deferred(raise_after=False):
        if claim is not None:
            claim.check_still_ours()
        marker = folder / INCOMPLETE_NAME
        try:
            for name in order:
                temps[name] = _write_temporary(folder / name, files[name])
            write_atomic(marker, "lrtool was writing this run's results when it stopped\n")
            with contextlib.suppress(FileNotFoundError):
                (folder / "summary.json").unlink()  # a half-replaced folder is never "whole"
            for name in order:
                place(temps[name], folder / name, force)
                del temps[name]
            for name in names:
                if name not in files:
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()
            marker.unlink()
        except OSError as exc:
            raise LrtoolError(
                f"cannot write the results in {folder}: {exc.strerror or exc}"
            ) from None
        finally:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return [folder / name for name in order]


def _file_mode() -> int:
    """0o666 less the umask: what ``open()`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temporary_beside(path: Path) -> tuple[int, str]:
    """An open temporary file in ``path``'s folder, with the mode ``open()`` would give
    ``path`` (the umask's), named ``.lrtool-*.tmp`` (short: a long ``path`` still fits)."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())  # mkstemp makes 0600; results follow the umask
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


def _write_temporary(path: Path, text: str) -> str:
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


def place(tmp: str, path: Path, force: bool) -> None:
    """Move a finished temporary to ``path``: replacing a file there only with ``force``.
    Without it the move is a hard link, which fails if ``path`` exists (a file created
    there after the run's up-front check): one line, and the other file is kept."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise LrtoolError(
            f"{path} was created while lrtool was running; it was kept, and this run's "
            f"version was not written. Pass --force to overwrite it, or choose another path"
        ) from None
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        # a file system without hard links (FAT, some network and FUSE mounts): check, move
        if path.exists():
            raise LrtoolError(
                f"{path} was created while lrtool was running; pass --force to overwrite it"
            ) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def write_atomic(path: Path, text: str, force: bool = True) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (``force=False``:
    never over a file that exists by then)."""
    tmp = _write_temporary(path, text)
    try:
        place(tmp, path, force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_csv(
    path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]], force: bool = True
) -> Path:
    return write_atomic(path, csv_text(columns, rows), force)


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


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {printable(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return printable(str(value))
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
