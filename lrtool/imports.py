"""Import paths (``package.module:function``): the only way a config runs code.

A config with an import path is code: it runs that function (``os:system`` included). The
current directory, then the config file's folder, then that folder's parent are searched
before the rest of ``sys.path``, so ``examples.custom_model:build`` is found from
``configs/custom_model.yaml`` in a checkout; they are on the path only while the named
module is imported, so a file beside a config (a ``plotext.py``) is never picked up by a
later import. ``lrtool --no-imports`` or ``LRTOOL_NO_IMPORTS=1`` refuses import paths, for
configs from elsewhere.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError

_refused = [False]


def refuse_imports(refused: bool = True) -> None:
    """``lrtool --no-imports``: every import path of this command is refused."""
    _refused[0] = refused


def imports_refused() -> bool:
    return _refused[0] or os.environ.get("LRTOOL_NO_IMPORTS", "") not in ("", "0")


def search_folders(base_dir: Path | None) -> list[str]:
    """Where an import path's module is looked for before ``sys.path``, in this order: the
    current directory, the config's folder, its parent (each once)."""
    try:
        here: Path | None = Path.cwd()
    except OSError:  # the working directory was deleted
        here = None
    folders: list[str] = []
    for folder in (here, base_dir, base_dir.parent if base_dir else None):
        if folder is not None and str(folder) not in folders:
            folders.append(str(folder))
    return folders


def load_object(path: str, field: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """Import ``module:attribute`` and return it; errors name ``field`` and what failed."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise LrtoolError(f"{field}: '{path}' is not an import path like package.module:function")
    if imports_refused():
        raise LrtoolError(
            f"{field}: this config runs code ('{path}'), and import paths are refused "
            f"(--no-imports or LRTOOL_NO_IMPORTS); run it without them only if you trust it"
        )
    saved = list(sys.path)
    sys.path[:0] = search_folders(base_dir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise LrtoolError(
            f"{field}: cannot import module '{module_name}' ({exc}); check the path and that "
            f"the module is importable from the current directory"
        ) from None
    except Exception as exc:
        raise LrtoolError(
            f"{field}: importing '{module_name}' raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.path[:] = saved  # only the named module was imported from these folders
    obj = getattr(module, attr, None)
    if obj is None:
        raise LrtoolError(f"{field}: module '{module_name}' has no attribute '{attr}'")
    if not callable(obj):
        raise LrtoolError(f"{field}: '{path}' is not callable")
    return obj
