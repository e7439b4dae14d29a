"""The shape of the code (docs/architecture.md): the layer table matches the real imports and
imports point one way, no private names cross modules, the CLI only parses and renders, every
schedule is declared once, the docstring examples run, and no test asserts what cannot fail."""

from __future__ import annotations

import ast
import inspect
import re
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
        "import lrtool.schedules, lrtool.schedules.plateau, lrtool.config\n"
        "from lrtool.jobs.plot import PlotRequest, plot\n"
        "plot(PlotRequest(['onecycle', 'plateau'], steps=50))\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"


# The map in docs/architecture.md, checked against the code ---------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _layers() -> list[tuple[str, list[str], str]]:
    """``(layer, modules, torch)`` of each row of the layer table, top layer first."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] not in ("layer", "---"):
            rows.append((cells[0], re.findall(r"`([\w.]+)`", cells[1]), cells[2]))
    return rows


def _torch_imports(path: Path) -> tuple[bool, bool]:
    """(at module level, anywhere) whether a file imports torch."""
    tree = ast.parse(path.read_text())

    def is_torch(node: ast.AST) -> bool:
        if isinstance(node, ast.Import):
            return any(a.name.split(".")[0] == "torch" for a in node.names)
        return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch"

    top = any(is_torch(node) for node in tree.body)
    anywhere = any(is_torch(node) for node in ast.walk(tree))
    return top, anywhere


def test_every_module_sits_in_one_layer_of_the_map():
    placed = [module for _, modules, _ in _layers() for module in modules]
    assert len(_layers()) >= 5
    assert sorted(placed) == sorted(set(placed)), "a module in two rows"
    assert set(placed) == set(MODULES), (
        f"not in the map: {sorted(set(MODULES) - set(placed))}; "
        f"no such module: {sorted(set(placed) - set(MODULES))}"
    )


def test_imports_point_down_the_layers_of_the_map():
    rank = {module: i for i, (_, modules, _) in enumerate(_layers()) for module in modules}
    names = {i: layer for i, (layer, _, _) in enumerate(_layers())}
    upward = [
        f"{module} ({names[rank[module]]}) imports {target} ({names[rank[target]]})"
        for module, targets in _graph().items()
        for target in targets
        if rank[target] < rank[module]
    ]
    assert upward == []


def test_the_layers_that_promise_no_torch_keep_it():
    broken = []
    for layer, modules, torch_use in _layers():
        assert torch_use in ("no", "lazy", "yes"), layer
        for module in modules:
            top, anywhere = _torch_imports(MODULES[module])
            if (torch_use == "no" and anywhere) or (torch_use == "lazy" and top):
                broken.append(f"{module} ({layer}: torch {torch_use})")
    assert broken == []


def test_the_map_checks_catch_a_wrong_map(monkeypatch):
    """The checks above read the table: a module moved up a layer is an upward import."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    moved = text.replace("`lrtool.suggest` ", "", 1).replace(
        "| `lrtool.cli` ", "| `lrtool.suggest` `lrtool.cli` ", 1
    )
    fake = ROOT / "docs" / ".architecture-test.md"
    monkeypatch.setattr(sys.modules[__name__], "ARCHITECTURE", fake)
    fake.write_text(moved, encoding="utf-8")
    try:
        with pytest.raises(AssertionError, match="lrtool.suggest"):
            test_imports_point_down_the_layers_of_the_map()
    finally:
        fake.unlink()


def test_every_file_the_module_map_names_exists():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:lrtool|tests|benchmarks|docs)/[\w/.]+\.(?:py|md))`", text))
    assert len(named) >= 15
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


DOCTEST_MODULES = sorted(
    name for name, path in MODULES.items() if ">>> " in path.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name):
    import doctest
    import importlib

    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(name), optionflags=flags)
    assert result.attempted > 0 and result.failed == 0, result


def test_the_examples_are_found():
    expected = {"lrtool.schedules.decay", "lrtool.schedules.cycles", "lrtool.schedules.base"}
    assert expected | {"lrtool.suggest", "lrtool.search"} <= set(DOCTEST_MODULES)


def _constant_assert(node: ast.Assert) -> bool:
    """An assert that cannot fail, or checks only that something is non-empty: a non-empty
    literal or a generator is always true, and ``assert [a == b for ...]`` passes whatever
    its items are (``all(...)`` was meant)."""
    test = node.test
    if isinstance(test, ast.List | ast.Tuple | ast.Set | ast.Dict):
        return bool(getattr(test, "elts", None) or getattr(test, "keys", None))
    if isinstance(test, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return True
    return isinstance(test, ast.Constant) and bool(test.value)


def test_no_test_asserts_something_always_true():
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert) and _constant_assert(node)
    ]
    assert found == []


def test_no_test_takes_a_capture_it_never_reads():
    unread = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            captures = {a.arg for a in node.args.args} & {"capsys", "capfd", "caplog"}
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            unread += [f"{path.name}:{node.name} ({c})" for c in captures if c not in used]
    assert unread == []
