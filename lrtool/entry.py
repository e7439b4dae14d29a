"""The process around the CLI: what click and the OS do made one line (or silence).

``lrtool`` and ``python -m lrtool`` start here. A usage error (unknown flag or command, a bad
value) is one ``error:`` line and exit 2; a closed pipe (``lrtool find | head -1``) is not a
failure; a closed or full stdout is one line on stderr; Ctrl-C before a command has started
is one line and exit 130.
"""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from lrtool import distributed, interrupts
from lrtool.cli import app
from lrtool.render import stderr_console as _stderr


def main() -> None:
    """Console-script entry point: the app, with what click and the OS do around it made
    one line (or silence) too. A usage error (unknown flag or command, a bad value) is one
    ``error:`` line and exit 2; a closed pipe (``lrtool find | head -1``) is not a failure;
    a closed or full stdout is one line on stderr."""
    if sys.stdout is None:  # started with stdout closed (>&-): write nowhere, do not crash
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    try:
        os.getcwd()
    except FileNotFoundError:  # torch's libraries cannot even load from a deleted folder
        _stderr().print(
            "error: the current directory no longer exists (it was deleted or moved); cd to "
            "a folder that exists and run lrtool again",
            markup=False,
            soft_wrap=True,
        )
        _quiet_exit(1)
    try:
        code = app(standalone_mode=False)
        sys.stdout.flush()
    except typer.Abort:
        _stderr().print("interrupted (SIGINT)", markup=False)
        code = interrupts.exit_code()
    except BrokenPipeError:
        code = 0  # the reader has what it wanted
    except OSError as exc:
        if exc.errno is None or getattr(exc, "filename", None) is not None:
            raise
        _stderr().print(f"error: cannot write the output: {exc.strerror}", markup=False)
        code = 1
    except KeyboardInterrupt:  # before a command installed its handlers
        _stderr().print("interrupted (SIGINT)", markup=False)
        code = interrupts.exit_code()
    except Exception as exc:
        code = _usage_error(exc)
    _quiet_exit(code if isinstance(code, int) else 0)


def _usage_error(exc: Exception) -> int:
    """Click's usage errors (typer vendors click, so matched by their interface): the help
    for a bare ``lrtool``, else one ``error:`` line naming the command's ``--help``."""
    if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
        raise exc
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help())
        return int(exc.exit_code)
    command = ctx.command_path if ctx is not None else "lrtool"
    message = " ".join(exc.format_message().split())
    _stderr().print(f"error: {message} (see {command} --help)", markup=False, soft_wrap=True)
    return int(exc.exit_code)


def _quiet_exit(code: int) -> None:
    """Exit without Python's own flush of a closed or full stdout printing a traceback.
    A torchrun rank that left its process group ends here at once (``os._exit``, after the
    flush): its results are written and closed, and the interpreter's finalization could
    only abort it in gloo's threads (:func:`lrtool.distributed.left_a_process_group`)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    if distributed.left_a_process_group():
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
