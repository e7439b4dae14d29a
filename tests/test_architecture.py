"""The shape of the code (docs/architecture.md): imports point one way, no private names cross
modules, the CLI only parses and renders, and every schedule is declared once."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from lrtool.schedules import SCHEDULES, WARMUP_PARAMS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lrtool"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` of every lrtool import in a file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrtool"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("lrtool")]
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for module, imported in _imports(path):
            full = f"{module}.{imported}"
            target = full if full in MODULES else module
            if target in MODULES and target != name and target != "lrtool":
                targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_cycles_even_through_lazy_imports():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_graph_is_read_from_the_code():
    graph = _graph()
    assert "lrtool.schedules" in graph["lrtool.jobs.plot"]
    assert "lrtool.loop" in graph["lrtool.finder"]  # a top-level import
    assert "lrtool.verify" in graph["lrtool.finder"]  # a function-level (lazy) import


def test_no_private_names_imported_across_modules():
    offenders = [
        f"{name}: from {module} import {imported}"
        for name, path in MODULES.items()
        for module, imported in _imports(path)
        if imported.startswith("_") and imported != "__version__"
    ]
    assert offenders == []


def test_cli_only_parses_and_renders():
    """cli.py reaches the engines through the jobs only, and stays short."""
    engines = {
        "lrtool.finder",
        "lrtool.trainer",
        "lrtool.verify",
        "lrtool.loop",
        "lrtool.build",
        "lrtool.config",
        "lrtool.schedules",
        "lrtool.outputs",
    }
    used = {module for module, _ in _imports(PACKAGE / "cli.py")}
    assert not used & (engines - {"lrtool.outputs"})  # outputs: json_text for --json only
    assert len((PACKAGE / "cli.py").read_text().splitlines()) < 400


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_is_declared_once_and_agrees_with_its_factory(name):
    spec = SCHEDULES[name]
    signature = inspect.signature(spec.factory).parameters
    names = [p.name for p in spec.params]
    expected = list(signature) + (["total_steps"] if spec.with_total_steps else [])
    assert names == expected  # the parameters are the factory's own
    assert set(spec.help) == set(names), "every parameter has help, and only parameters do"
    assert all(spec.help[n].strip() for n in names)
    assert set(spec.derived) <= set(names) | set(WARMUP_PARAMS)
    assert spec.lr_param in names and set(spec.lr_alternatives) <= set(names)
    for p in spec.params:
        if p.name in signature and p.name not in spec.derived:
            default = signature[p.name].default
            assert p.required == (default is inspect.Parameter.empty)
            if not p.required:
                assert p.default == default
        if p.choices:
            assert p.kind == "str" and p.default in p.choices + (None,)


def test_torch_free_modules_stay_torch_free():
    """plot and schedules (and everything they load) never import torch."""
    code = (
        "import sys\n"
        "import lrtool.cli, lrtool.jobs.plot, lrtool.jobs.common, lrtool.render\n"
        "import lrtool.schedules, lrtool.plateau, lrtool.config\n"
        "from lrtool.jobs.plot import PlotRequest, plot\n"
        "plot(PlotRequest(['onecycle', 'plateau'], steps=50))\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"
