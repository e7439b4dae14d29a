"""Each schedule parameter's valid values are declared once (the factory's ``@declared``) and
enforced from that one declaration: a direct call of the factory and ``build_schedule``
refuse the same value just outside every declared bound, with the same message, and accept
the bound itself where it is closed; the registry and the docs table show that declaration."""

from __future__ import annotations

import inspect
import math

import pytest

from lrtool.errors import LrtoolError
from lrtool.schedules import SCHEDULES, WARMUP_RANGES, build_schedule
from lrtool.schedules.base import _parse_range

ROOT_EXTRAS = {  # what a schedule needs beyond a run length and an LR to be built at all
    "piecewise": {"milestones": [30, 60]},
    "piecewise_interpolate": {"boundaries": [30, 60], "scales": [0.5, 0.5]},
}
# Parameters that only the registry has (the factory never sees them).
REGISTRY_ONLY = set(WARMUP_RANGES) | {"epochs"}


def _base(name: str, param: str = "") -> dict:
    spec = SCHEDULES[name]
    if name == "piecewise" and param in ("values", "boundaries"):  # the absolute-LR form
        return {"total_steps": 100, "boundaries": [30, 60], "values": [0.1, 0.05, 0.01]}
    return {"total_steps": 100, spec.lr_param: 0.1, **ROOT_EXTRAS.get(name, {})}


def _factory_kwargs(name: str, params: dict) -> dict:
    """The arguments build_schedule would give the factory (its derived defaults filled)."""
    spec = SCHEDULES[name]
    names = inspect.signature(spec.factory).parameters
    values = {k: v for k, v in params.items() if k in names}
    for key, derive in spec.derived.items():
        if key in names and values.get(key) is None:
            values[key] = derive(params.get("total_steps"), params)
    return {k: v for k, v in values.items() if v is not None}


def _defaults(name: str) -> dict:
    spec = SCHEDULES[name]
    return {p.name: p.default for p in spec.params if not p.required and p.default is not None}


def _cases():
    for name, spec in SCHEDULES.items():
        for param, text in spec.ranges.items():
            if param in REGISTRY_ONLY or spec.param(param).kind not in (
                "int",
                "float",
                "ints",
                "floats",
            ):
                continue
            yield name, param, text


CASES = list(_cases())


def _outside_and_edge(name: str, param: str, text: str) -> list[tuple[object, bool]]:
    """(value, accepted) pairs: just outside each bound (refused), and each closed bound."""
    values = {**_defaults(name), **_base(name, param)}
    low, high, low_open, high_open = _parse_range(text, values)
    kind = SCHEDULES[name].param(param).kind
    whole = kind in ("int", "ints")
    out = []
    for edge, is_open, below in ((low, low_open, True), (high, high_open, False)):
        if edge is None:
            continue
        step = 1 if whole else max(abs(edge), 1e-3) * 0.5
        outside = edge - step if below else edge + step
        if whole:
            outside = math.floor(outside) if below else math.ceil(outside)
        out.append((outside, False))
        if is_open:
            out.append((edge, False))  # an open bound refuses the bound itself
        elif not (whole and edge != int(edge)) and abs(edge) < 1e9:
            out.append((int(edge) if whole else edge, True))
    if kind in ("ints", "floats"):  # the first item of a valid list
        given = _base(name, param).get(param) or [1]
        out = [([value, *given[1:]], ok) for value, ok in out]
    return out


def test_every_schedule_declares_its_ranges_on_its_factory():
    declared_somewhere = {name for name, _, _ in CASES}
    assert declared_somewhere == set(SCHEDULES)
    for spec in SCHEDULES.values():
        own = getattr(spec.factory, "ranges", None)
        assert own is not None, f"{spec.name}: factory without @declared"
        for param, text in own.items():
            assert spec.valid(param) == text  # the registry reads the factory's declaration


@pytest.mark.parametrize(("name", "param", "text"), CASES)
def test_a_declared_bound_is_enforced_alike_by_the_factory_and_the_registry(name, param, text):
    spec = SCHEDULES[name]
    cases = _outside_and_edge(name, param, text)
    assert cases, (name, param, text)
    for value, accepted in cases:
        params = {**_base(name, param), param: value}
        if param == "total_steps" and spec.with_total_steps:
            kwargs = None  # a length the registry adds; the factory does not take it
        else:
            kwargs = _factory_kwargs(name, params)
        if accepted:
            try:
                build_schedule(name, params)
                if kwargs is not None:
                    spec.factory(**kwargs)
            except LrtoolError as exc:  # only another parameter's range, bounded by this one
                assert f"{param}=" in exc.message, exc.message
            continue
        with pytest.raises(LrtoolError, match=f"'{name}': ") as registry:
            build_schedule(name, params)
        # the parameter is named (or, for a bound of another one, that one's range shows it)
        assert f"{param} must be in" in registry.value.message or f"{param}=" in (
            registry.value.message
        ), registry.value.message
        if kwargs is not None:
            with pytest.raises(LrtoolError) as direct:
                spec.factory(**kwargs)
            # the same line (a factory registered under two names says its own)
            said = direct.value.message.replace(f"'{spec.factory.__name__}'", f"'{name}'")
            assert said == registry.value.message, (value, text)


def test_the_docs_table_shows_the_declared_ranges():
    from pathlib import Path

    table = (Path(__file__).resolve().parents[1] / "docs" / "schedules.md").read_text()
    for name, param, text in CASES:
        if param == "total_steps":
            continue
        assert f"`{text}`" in table or text in table, (name, param, text)


def test_frozen_schedules_are_values():
    import dataclasses

    schedule = build_schedule("cosine", {"lr": 0.1, "total_steps": 10})
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.total_steps = 20  # type: ignore[misc]
    longer = dataclasses.replace(schedule, total_steps=20)
    assert (longer.total_steps, schedule.total_steps) == (20, 10)
    plateau = build_schedule("plateau", {"lr": 1.0, "patience": 0})
    plateau.update(1.0)
    plateau.update(2.0)  # its state moves (the one schedule with state) ...
    assert plateau(0) == pytest.approx(0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plateau.factor = 0.5  # type: ignore[misc]  # ... its settings do not
    copy = dataclasses.replace(plateau)
    assert copy(0) == 1.0 and plateau(0) == pytest.approx(0.1)  # a copy never shares the state


def test_the_documented_composition_runs():
    """docs/schedules.md's example of composing factories runs as written."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "schedules.md").read_text()
    code = re.search(r"```python\n(from lrtool.schedules import .*?)```", page, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/schedules.md", "exec"), namespace)  # noqa: S102
    schedule = namespace["schedule"]
    assert schedule(0) == 0.0 and schedule(25) == pytest.approx(0.05)  # the warm-up
    assert schedule(1049) == pytest.approx(0.01 * (1 + math.cos(math.pi * 899 / 900)) / 2)
