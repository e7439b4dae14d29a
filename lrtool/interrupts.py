"""Ctrl-C, SIGTERM, SIGHUP and the other stop signals: one way to stop a run, and nothing
lost doing it.

While a command runs, the signals of :data:`SIGNALS` are handled alike: the first one raises
:class:`Interrupted` (a ``KeyboardInterrupt``) where the program is, so the engine returns its
partial result and the job writes it, marked interrupted. Signals after the first do not
raise: the run is already stopping and writing what it has, and a second Ctrl-C must not lose
that. Around the writing of result files, :func:`deferred` holds even the first signal until
the files are in place; one that arrives while a run's final results are written is
:func:`late`: the results are complete, the command reports them, then exits with the
signal's code. The exit code says which signal it was: 128 + its number, as shells report
them (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

# Every signal whose default action ends the process and that a user or a scheduler sends to
# stop a run: Ctrl-C, kill, a closed terminal, Ctrl-\\, a CPU-time limit (ulimit -t), an alarm,
# and the user signals batch systems send before a kill.
SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGXCPU",
        "SIGALRM",
        "SIGUSR1",
        "SIGUSR2",
    )  # fmt: skip
    if hasattr(signal, name)
)

_received: list[int] = []  # every signal of this run, in order
_held = [0]  # > 0: inside deferred(): record, do not raise


class Interrupted(KeyboardInterrupt):
    """A stop signal (a KeyboardInterrupt, so every engine treats it as Ctrl-C)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def __reduce__(self) -> tuple[type, tuple[int]]:
        # Pickled by its signal number, not its message: a compare worker stopped before its
        # run trained a step sends it back, and an exception the parent cannot unpickle
        # breaks the process pool, losing every other worker's partial result.
        return (type(self), (self.signum,))


def exit_code() -> int:
    """128 + the first signal received (130 for Ctrl-C when none was recorded)."""
    return 128 + (_received[0] if _received else signal.SIGINT)


def signal_name() -> str:
    return signal.Signals(_received[0]).name if _received else "SIGINT"


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if len(_received) == 1 and not _held[0]:
        raise Interrupted(signum)
    if len(_received) == 2:
        with contextlib.suppress(Exception):
            sys.stderr.write("stopping: writing the partial results first\n")


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Install the handlers for the duration of a command (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    _late.clear()
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def deferred(raise_after: bool = True) -> Iterator[None]:
    """Hold stop signals while result files are written; raise after, if one came (or, with
    ``raise_after=False``, leave it for the command to report: :func:`late`)."""
    before = len(_received)
    _held[0] += 1
    try:
        yield
    finally:
        _held[0] -= 1
    if len(_received) > before and before == 0 and not _held[0]:
        if raise_after:
            raise Interrupted(_received[0])
        _late.append(_received[0])


_late: list[int] = []  # signals held while complete results were written


def late() -> int | None:
    """The stop signal that arrived while a run's results were written (they are complete),
    or None."""
    return _late[0] if _late else None


def ignore_in_worker() -> None:
    """In a compare worker: the terminal's Ctrl-C (sent to the whole process group) and
    SIGHUP are the parent's to handle; the parent stops a worker with SIGTERM, which raises
    :class:`Interrupted` in it. The worker also dies with its parent (Linux), so it never
    outlives a parent that was killed outright."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_handler)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
            if os.getppid() == 1:  # the parent died before prctl: follow it
                os._exit(1)


_working = [False]  # a compare worker is inside a run


def _worker_handler(signum: int, frame: FrameType | None) -> None:
    if _working[0]:
        raise Interrupted(signum)
    # Idle between runs: nothing to return. Exiting here would make the pool drop the
    # results of the other workers (a broken pool fails every future); the parent kills the
    # idle workers once it has collected those results.


@contextlib.contextmanager
def working() -> Iterator[None]:
    """In a compare worker: SIGTERM stops this run (and returns its partial result)."""
    _working[0] = True
    try:
        yield
    finally:
        _working[0] = False
