"""Start-up benchmarks load lrtool from compiled bytecode, as an installed package does."""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lrtool"


def compile_package() -> None:
    """Write lrtool's ``.pyc`` files (``__pycache__``, ignored by git), as ``pip install`` does.

    An editable checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (this machine's default) would
    compile every lrtool module from source at each start-up (about 20 ms for ``lrtool plot``),
    while torch, typer and pydantic load the bytecode pip wrote into site-packages: an unfair
    start-up comparison, and not what a user's installed lrtool does.
    """
    compileall.compile_dir(PACKAGE, quiet=1)
