"""``python -m lrtool``."""

from lrtool.cli import run

run()
