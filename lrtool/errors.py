"""The one error type for everything a user can get wrong.

Library code raises :class:`LrtoolError` with a message that says what is wrong and how to fix
it; the CLI catches it once, prints the message on stderr and exits with ``exit_code``.
"""

from __future__ import annotations

from pathlib import Path

USAGE_EXIT = 2  # bad flags, bad config: the user must change what they typed
RUNTIME_EXIT = 1  # the run itself failed: data, import paths, output folders, divergence
INTERRUPTED_EXIT = 130  # Ctrl-C / SIGINT, as shells report it


class LrtoolError(Exception):
    """A user-facing error: one line, no traceback, and a process exit code."""

    def __init__(self, message: str, exit_code: int = RUNTIME_EXIT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def usage_error(message: str) -> LrtoolError:
    """An error in what the user typed (flags, config): exit code 2."""
    return LrtoolError(message, USAGE_EXIT)


def closest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest valid name, or '' when nothing is close."""
    import difflib

    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def describe_exception(exc: BaseException) -> str:
    """One line for an exception raised inside a run: the LrtoolError's message, or the type
    and the first line of the message of anything else (user code, torch)."""
    if isinstance(exc, LrtoolError):
        return exc.message
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def printable(text: str) -> str:
    """``text`` with the bytes a C locale could not decode (lone surrogates from
    ``surrogateescape``, e.g. a Latin-1 file name under LC_ALL=C) shown as U+FFFD, so that JSON
    and terminals get valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def check_input_file(path: Path, what: str) -> None:
    """One line for an input file that cannot be read as one: missing, a folder, or not a
    regular file (a FIFO would block the run forever, ``/dev/zero`` would fill the memory)."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LrtoolError(f"{what}: file not found: {path}") from None
    except OSError as exc:
        raise LrtoolError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise LrtoolError(f"{what}: {path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise LrtoolError(
            f"{what}: {path} is not a regular file (a pipe or a device); save the data to a "
            f"file and give its path"
        )
