"""How the command line reports failure: every :class:`LrtoolError` is caught once, here, and
printed as one line on stderr with its exit code; ``--debug`` shows the traceback instead.
A failure of the machine (memory, recursion, a library that will not import) and a bug get
one line too, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

try:  # imported up front: under a memory cap, importing it while reporting an error can fail
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

from lrtool import distributed, interrupts, render
from lrtool.errors import LrtoolError, describe_exception, printable

debug_state = {"debug": False}  # set by ``lrtool --debug``
F = TypeVar("F", bound=Callable[..., Any])


def _stderr() -> Console:
    return render.stderr_console()


RANK_ERROR_GRACE_S = 3.0  # how long a failing rank other than 0 leaves rank 0 to report


def handle_errors(fn: F) -> F:
    """Turn an LrtoolError into one line on stderr and its exit code; Ctrl-C, SIGTERM and
    SIGHUP stop the run alike (:mod:`lrtool.interrupts`), with exit 130, 143 or 129."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        finished = False  # the command ran to its end (its own exit codes included)
        try:
            with interrupts.handled():
                result = fn(*args, **kwargs)
                late = interrupts.late()
            finished = True
            if late is not None:  # the results were written whole, then the signal is obeyed
                name = interrupts.signal_name()
                _stderr().print(
                    f"stopped ({name}) after the results were written: they are complete",
                    markup=False,
                )
                raise typer.Exit(interrupts.exit_code())
            return result
        except typer.Exit:
            finished = True
            raise
        except LrtoolError as exc:
            if debug_state["debug"]:
                raise
            if distributed.is_main_rank():
                say_error(f"error: {exc.message}")
            else:
                # Under torchrun the ranks usually fail alike, and rank 0 speaks for all. Exiting
                # at once could let torchrun stop rank 0 before it has printed, so this rank
                # waits: once rank 0 has exited, torchrun stops this one here. A rank still
                # running after the wait failed on its own, and says so.
                time.sleep(RANK_ERROR_GRACE_S)
                say_error(f"error (rank {os.environ.get('RANK', '?')}): {exc.message}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if debug_state["debug"]:
                raise
            say_error(f"interrupted ({interrupts.signal_name()})")
            raise typer.Exit(interrupts.exit_code()) from None
        except (RecursionError, MemoryError, ImportError) as exc:
            if debug_state["debug"]:
                raise
            say_error(resource_error(exc))
            raise typer.Exit(1) from None
        except BrokenPipeError:
            raise  # the reader went away: lrtool.entry makes it a quiet exit 0
        except Exception as exc:  # a bug, or user code failing outside a run: still one line
            if debug_state["debug"]:
                raise
            if distributed.peer_failed(exc):  # another rank failed first and said why
                rank = os.environ.get("RANK", "?")
                say_error(f"stopped (rank {rank}): another rank failed")
                raise typer.Exit(1) from None
            say_error(
                f"error: {describe_exception(exc)}{memory_hint()} (lrtool --debug ... shows "
                f"the traceback)"
            )
            raise typer.Exit(1) from None
        finally:
            distributed.finish(finished)

    return wrapper  # type: ignore[return-value]


def say_error(line: str) -> None:
    """One line on stderr, also when printing itself fails (out of memory under a memory cap):
    then written to the file descriptor with nothing that allocates much."""
    line = printable(line)
    try:
        _stderr().print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)
    except BaseException:  # noqa: BLE001 (the last resort must not raise)
        with contextlib.suppress(BaseException):
            os.write(2, (line + "\n").encode("utf-8", "replace"))


def resource_error(exc: BaseException) -> str:
    """The line for an error of the machine rather than of the input: recursion, memory, a
    library that would not import (naming it, and the address-space limit when one is set)."""
    if isinstance(exc, RecursionError):
        return f"error: nested too deeply: {describe_exception(exc)}"
    hint = memory_hint()
    if isinstance(exc, MemoryError):
        return f"error: out of memory{hint}"
    name = getattr(exc, "name", None) or "a library"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # numpy's import error opens with a banner; its cause is on the "Original error" line
    cause = next((x for x in lines if x.startswith("Original error was:")), None)
    first = (cause or (lines[0] if lines else "")).removeprefix("Original error was:").strip()
    return f"error: {name} failed to import ({type(exc).__name__}: {first[:200]}){hint}"


def memory_hint() -> str:
    """'; this process may use only N MB ...' when an address-space limit is set (errors
    deep inside torch under such a limit are often a failed allocation in disguise)."""
    limit = _address_space_limit()
    if not limit:
        return ""
    return (
        f"; this process may use only {limit // 2**20} MB of address space (ulimit -v), "
        f"which torch may not fit in: raise the limit"
    )


def _address_space_limit() -> int | None:
    if resource is None:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft in (resource.RLIM_INFINITY, -1) else int(soft)
