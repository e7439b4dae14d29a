"""Import paths (``package.module:function``): the only way a config runs code.

The current directory, the config file's folder and that folder's parent are searched first,
so ``examples.custom_model:build`` is found from ``configs/custom_model.yaml`` in a checkout.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError


def load_object(path: str, field: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """Import ``module:attribute`` and return it; errors name ``field`` and what failed."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise LrtoolError(f"{field}: '{path}' is not an import path like package.module:function")
    for folder in (Path.cwd(), base_dir, base_dir.parent if base_dir else None):
        if folder is not None and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
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
    obj = getattr(module, attr, None)
    if obj is None:
        raise LrtoolError(f"{field}: module '{module_name}' has no attribute '{attr}'")
    if not callable(obj):
        raise LrtoolError(f"{field}: '{path}' is not callable")
    return obj
