"""The registry: every schedule's name, parameters, defaults, help and one-line formula
(:data:`SCHEDULES`), and :func:`build_schedule`, which builds one from a name and values as
a config, ``--set`` or the Python API gives them (lengths in epochs, a warm-up, the run
length that derives defaults). ``sequential`` lives here: it builds its parts by name.
"""

from __future__ import annotations

import collections.abc
import copyreg
import dataclasses
import functools
import inspect
import itertools
import math
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from lrtool.errors import LrtoolError, closest, usage_error
from lrtool.schedules.base import Schedule, check, check_range, declared
from lrtool.schedules.composition import join, with_warmup
from lrtool.schedules.cycles import cyclic, geron, onecycle
from lrtool.schedules.decay import (
    constant,
    cosine,
    cosine_restarts,
    exponential,
    linear,
    piecewise,
    piecewise_interpolate,
    polynomial,
    power,
    step,
    tanh,
    warmup_stable_decay,
)
from lrtool.schedules.plateau import PlateauSchedule, plateau

# --------------------------------------------------------------------------------------------
# sequential: parts built by name, then joined
# --------------------------------------------------------------------------------------------


@declared(boundaries=">= 1")
def sequential(
    schedules: Sequence[dict[str, Any]],
    boundaries: Sequence[int] | None = None,
    lr: float | None = None,
    total_steps: int | None = None,
) -> Schedule:
    """Schedules one after another: part ``i`` runs at step ``t - boundaries[i-1]`` where
    ``boundaries[i-1] <= t < boundaries[i]``; each part counts its own steps from 0.

    Equals torch ``SequentialLR(schedulers, milestones=boundaries)`` and optax
    ``join_schedules(schedules, boundaries)``. Each part is a schedule written as in a config
    (``{name: cosine, eta_min: 0.001}``), with any of its parameters. A part that gives no LR
    takes ``lr``; a part that needs ``total_steps`` and does not give it runs the length of
    its segment (the last one: ``total_steps - boundaries[-1]``). Without ``boundaries``, the
    parts but the last give their lengths with ``total_steps`` (or ``epochs``). Plateau, which
    needs a validation metric, cannot be a part. On the command line, ``--set
    schedules.1.eta_min=0.001`` sets a parameter of the second part (counting from 0).
    Default (with a run length): a linear warm-up from lr/10 over 10% of T, then cosine.

    >>> s = sequential([{"name": "constant", "lr": 1.0}, {"name": "constant", "lr": 0.5}], [3])
    >>> [s(t) for t in (2, 3)]
    [1.0, 0.5]
    """
    name = "sequential"
    parts = [dict(part) for part in schedules]
    check(len(parts) >= 1, name, "schedules must list at least one schedule")
    if boundaries is None:
        lengths = [part.get("total_steps") for part in parts[:-1]]
        check(
            all(isinstance(n, int) and n >= 1 for n in lengths),
            name,
            "set boundaries (the step each part after the first starts at), or total_steps "
            "in every part but the last",
        )
        bounds = list(itertools.accumulate(int(n) for n in lengths))  # type: ignore[arg-type]
    else:
        bounds = list(boundaries)
    check(
        len(bounds) == len(parts) - 1,
        name,
        f"needs one boundary fewer than schedules, got {len(bounds)} boundaries for "
        f"{len(parts)} schedules",
    )
    check(
        all(b < a for b, a in zip(bounds, bounds[1:], strict=False)),
        name,
        f"boundaries must be strictly increasing, got boundaries={bounds}",
    )
    if total_steps is not None and bounds:
        check(
            bounds[-1] < total_steps,
            name,
            f"the last boundary ({bounds[-1]}) must be below total_steps ({total_steps})",
        )
    starts = [0, *bounds]
    ends: list[int | None] = [*bounds, total_steps]
    built = []
    for i, part in enumerate(parts):
        kind = part.pop("name")
        spec = get_spec(kind)
        check(
            not spec.stateful,
            name,
            f"part {i} ({kind}) needs a validation metric and cannot be a part",
        )
        if lr is not None and not spec.has_lr(part):
            part[spec.lr_param] = lr
        end = ends[i]
        if (
            "total_steps" in spec.param_names
            and part.get("total_steps") is None
            and end is not None
        ):
            part["total_steps"] = end - starts[i]
        try:
            built.append(build_schedule(kind, part))
        except LrtoolError as exc:
            detail = exc.message.removeprefix(f"schedule '{kind}': ")
            raise LrtoolError(
                f"schedule '{name}': part {i} ({kind}): {detail}", exc.exit_code
            ) from None
    return join(built, bounds)


def _default_parts(T: int | None, values: dict[str, Any]) -> list[dict[str, Any]] | None:
    """sequential's default: a linear warm-up from lr/10 over 10% of T, then cosine (a
    one-step run: the cosine alone)."""
    if T is None:
        return None
    T -= values.get("warmup_steps") or 0  # the parts run after any warm-up
    if T < 2:
        return [{"name": "cosine"}]
    return [
        {"name": "linear", "start_factor": 0.1, "end_factor": 1.0, "total_steps": max(1, T // 10)},
        {"name": "cosine"},
    ]


# --------------------------------------------------------------------------------------------
# Registry: names, parameters, defaults and a one-line formula for every schedule.
# --------------------------------------------------------------------------------------------

REQUIRED: Any = object()  # marks a parameter without a default


@dataclass(frozen=True)
class Param:
    """One schedule parameter, read off the factory's signature (name, kind, default,
    choices) plus the help text its declaration gives."""

    name: str
    kind: str  # float | int | bool | str | floats | ints | schedules
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def shown_default(self) -> str:
        if self.required:
            return "required"
        if self.default is None:
            return "-"
        return str(self.default)


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """``(kind, choices)`` of a factory parameter's type hint."""
    if get_origin(annotation) is Literal:
        return "str", tuple(get_args(annotation))
    if annotation is dict or get_origin(annotation) is dict:
        return "schedule", ()  # a part of sequential: {name: ..., parameters}
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _kind(inner[0])
    if get_origin(annotation) in (Sequence, list, tuple, collections.abc.Sequence):
        (item,) = get_args(annotation)[:1]
        return _kind(item)[0] + "s", ()
    names = {float: "float", int: "int", bool: "bool", str: "str"}
    if annotation not in names:
        raise TypeError(f"no parameter kind for the type hint {annotation!r}")
    return names[annotation], ()


Derive = Callable[[int | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule's declaration: its factory, and what the signature cannot say.

    Parameter names, kinds, defaults and choices (``Literal`` hints) come from the factory's
    signature; ``help`` gives each parameter's one-line help (a test checks that the two
    agree: every parameter has help, and every help names a parameter). ``derived`` fills an
    unset parameter from the run length T and the other values (``None``: cannot), so every
    schedule works with only an LR and a budget; a derived parameter shows ``-`` as its
    default. ``with_total_steps`` adds an optional ``total_steps`` for factories that do not
    take it (it is only used to derive defaults).
    """

    name: str
    factory: Callable[..., Schedule]
    help: dict[str, str]
    formula: str
    matches: str
    lr_param: str = "lr"  # what --lr sets
    derived: dict[str, Derive] = field(default_factory=dict)
    with_total_steps: bool = False
    stateful: bool = False  # fed a validation metric after each evaluation (plateau)
    doc: str = ""  # overrides the factory's docstring where the factory is shared
    # Parameters that give the LR instead of lr_param (piecewise's absolute values).
    lr_alternatives: tuple[str, ...] = ()

    @property
    def ranges(self) -> dict[str, str]:
        """Each parameter's valid values: the factory's own declaration
        (:func:`lrtool.schedules.base.declared`), the warm-up's, and the run length's."""
        declared_by_factory: dict[str, str] = getattr(self.factory, "ranges", {})
        warmup = {k: v.replace("@lr", self.lr_param) for k, v in WARMUP_RANGES.items()}
        length = {"total_steps": SHARED_TOTAL_STEPS} if self.with_total_steps else {}
        return {**length, **warmup, **declared_by_factory}

    def valid(self, name: str) -> str:
        """The declared range of a parameter ('' when any value of its kind is valid)."""
        return self.ranges.get(name, "")

    @functools.cached_property
    def params(self) -> tuple[Param, ...]:
        hints = get_type_hints(self.factory)
        out = []
        for p in inspect.signature(self.factory).parameters.values():
            kind, choices = _kind(hints[p.name])
            if p.name in self.derived:
                default = None
            else:
                default = REQUIRED if p.default is inspect.Parameter.empty else p.default
            out.append(Param(p.name, kind, default, self.help.get(p.name, ""), choices))
        if self.with_total_steps:
            out.append(Param("total_steps", "int", None, self.help.get("total_steps", "")))
        return tuple(out)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params] + list(WARMUP_PARAMS) + [EPOCHS_PARAM.name]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        return EPOCHS_PARAM if name == EPOCHS_PARAM.name else WARMUP_PARAMS[name]

    @property
    def description(self) -> str:
        """The factory's docstring up to its doctest examples: closed form, semantics, defaults."""
        if self.doc:
            return self.doc
        text = inspect.cleandoc(self.factory.__doc__ or "")
        return text.split(">>>")[0].strip()

    @property
    def uses_total_steps(self) -> bool:
        return any(p.name == "total_steps" for p in self.params)

    def has_lr(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` already set this schedule's LR (its lr_param or an alternative;
        for sequential, every part its own)."""
        if any(params.get(k) is not None for k in (self.lr_param, *self.lr_alternatives)):
            return True
        for p in self.params:
            parts = params.get(p.name) if p.kind == "schedules" else None
            if isinstance(parts, list) and parts:
                return all(
                    isinstance(part, dict)
                    and part.get("name") in SCHEDULES
                    and SCHEDULES[part["name"]].has_lr(part)
                    for part in parts
                )
        return False

    @property
    def suggestion_key(self) -> str:
        """Which range-test suggestion sets the LR: the 1cycle peak for schedules whose LR
        parameter is a peak (``max_lr``), else the constant LR."""
        return "onecycle_max_lr" if self.lr_param == "max_lr" else "lr"

    def build(self, values: dict[str, Any]) -> Schedule:
        """Call the factory with ``values`` (validated, defaults derived); unset optional
        parameters take the factory's own defaults."""
        kwargs = {k: v for k, v in values.items() if v is not None}
        if self.with_total_steps:
            total = kwargs.pop("total_steps", None)
            return dataclasses.replace(self.factory(**kwargs), total_steps=total)
        return self.factory(**kwargs)


SHARED_TOTAL_STEPS = ">= 1"  # the run length a factory that does not take it is given
# A warm-up (any schedule's) starts between 0 and the schedule's LR ("@lr": its LR parameter):
# the registry's own parameters, so declared here; with_warmup itself only needs >= 0.
WARMUP_RANGES = {"warmup_steps": ">= 0", "warmup_start_lr": "[0, @lr]"}


WARMUP_PARAMS = {
    "warmup_steps": Param("warmup_steps", "int", 0, "linear warm-up steps before the schedule"),
    "warmup_start_lr": Param("warmup_start_lr", "float", 0.0, "LR at the first warm-up step"),
}

# Any schedule's run length in epochs (in_steps turns it into total_steps).
EPOCHS_PARAM = Param(
    "epochs", "float", None, "run length in epochs: total_steps = epochs x steps_per_epoch"
)

# Parameters counted in optimizer steps: each also takes a length in epochs ("2ep", "2 epochs").
STEP_PARAMS = frozenset(
    {"total_steps", "s", "step_size", "boundaries", "milestones", "T_0", "warmup_steps",
     "decay_steps", "step_size_up", "step_size_down"}
)  # fmt: skip
_EPOCHS = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:ep|epochs?)\s*$", re.IGNORECASE
)

LR_HELP = "base (starting) LR"
T_HELP = "length of the run in optimizer steps"
T_OPT_HELP = "run length, used for the defaults marked '-'"


SCHEDULES: dict[str, ScheduleSpec] = {
    spec.name: spec
    for spec in [
        ScheduleSpec(
            "constant", constant, {"lr": LR_HELP, "total_steps": T_OPT_HELP}, "lr",
            "every library", with_total_steps=True,
        ),
        ScheduleSpec(
            "power",
            power,
            {"lr": LR_HELP, "s": "steps until lr/2^c (default T/10)", "c": "power",
             "total_steps": T_OPT_HELP},
            "lr / (1 + t/s)^c",
            "Keras InverseTimeDecay (c=1), HF inverse_sqrt (c=0.5)",
            derived={"s": lambda T, v: None if T is None else max(1.0, T / 10)},
            with_total_steps=True,
        ),
        ScheduleSpec(
            "exponential",
            exponential,
            {"lr": LR_HELP, "s": "steps per factor `base` (default T/2)",
             "base": "factor per s steps", "staircase": "floor(t/s)", "total_steps": T_OPT_HELP},
            "lr * base^(t/s)",
            "Keras ExponentialDecay, torch ExponentialLR(gamma=base^(1/s))",
            derived={"s": lambda T, v: None if T is None else max(1.0, T / 2)},
            with_total_steps=True,
        ),
        ScheduleSpec(
            "step",
            step,
            {"lr": LR_HELP, "step_size": "steps between cuts (default T/3)",
             "factor": "multiplier at each cut", "total_steps": T_OPT_HELP},
            "lr * factor^floor(t/step_size)",
            "torch StepLR",
            derived={"step_size": lambda T, v: None if T is None else max(1, T // 3)},
            with_total_steps=True,
        ),
        ScheduleSpec(
            "piecewise",
            piecewise,
            {"lr": "base LR (with milestones)",
             "boundaries": "steps where the LR changes (with values)",
             "values": "absolute LRs, one more than boundaries",
             "milestones": "steps where lr is cut (default 50%, 75% of T)",
             "factor": "multiplier at each milestone", "total_steps": T_OPT_HELP},
            "values[i] for b[i-1] < t <= b[i]  |  lr * factor^#(milestones <= t)",
            "Keras PiecewiseConstantDecay, torch MultiStepLR",
            derived={
                "milestones": lambda T, v: None
                if T is None or v.get("boundaries") is not None
                else [max(1, T // 2), max(2, 3 * T // 4)]
            },
            with_total_steps=True,
            lr_alternatives=("values",),
        ),
        ScheduleSpec(
            "plateau",
            plateau,
            {"lr": LR_HELP, "factor": "multiplier at each cut",
             "patience": "bad evaluations tolerated before a cut",
             "threshold": "smallest change that counts as better",
             "threshold_mode": "rel or abs", "cooldown": "evaluations to wait after a cut",
             "min_lr": "lower bound", "mode": "auto (from monitor), min or max",
             "eps": "smallest cut that is applied",
             "monitor": "what train/compare feed it: val_loss (default), val_accuracy, train_loss",
             "total_steps": T_OPT_HELP},
            "lr * factor^(cuts), a cut after patience+1 evaluations without improvement",
            "torch ReduceLROnPlateau",
            stateful=True,
        ),
        ScheduleSpec(
            "onecycle",
            onecycle,
            {"max_lr": "peak LR", "total_steps": T_HELP,
             "pct_start": "share of steps spent warming up",
             "div_factor": "start = max_lr / div_factor",
             "final_div_factor": "end = start / final_div_factor", "anneal": "cos or linear",
             "three_phase": "Smith's symmetric cycle + annihilation",
             "cycle_momentum": "cycle momentum (beta1) inversely",
             "base_momentum": "momentum at the LR peak", "max_momentum": "momentum at the ends",
             "pct_final": "share of steps before the final drop (optax; default: none)"},
            "max_lr/div -> max_lr -> max_lr/(div*final_div), momentum inverse",
            "torch OneCycleLR, optax *_onecycle_schedule (pct_final)",
            lr_param="max_lr",
        ),
        ScheduleSpec(
            "geron",
            geron,
            {"max_lr": "peak LR", "total_steps": T_HELP,
             "pct_start": "share of steps rising to max_lr", "pct_final": "share before the final drop",
             "div_factor": "start = max_lr / div_factor", "final_div_factor": "end = start / final_div_factor"},
            "linear max_lr/div -> max_lr -> max_lr/div, then / final_div_factor",
            "Geron, Hands-On ML (1cycle); optax linear_onecycle_schedule",
            lr_param="max_lr",
        ),
        ScheduleSpec(
            "tanh",
            tanh,
            {"lr": LR_HELP, "total_steps": T_HELP, "lb": "tanh argument at t=0",
             "ub": "tanh argument at t=T", "min_lr": "final floor"},
            "min_lr + (lr - min_lr) * (1 - tanh(lb + (ub - lb) t/T)) / 2",
            "timm TanhLRScheduler",
        ),
        ScheduleSpec(
            "piecewise_interpolate",
            piecewise_interpolate,
            {"lr": LR_HELP, "boundaries": "steps where the next scale is reached (default 50%, 75% of T)",
             "scales": "LR multipliers, one per boundary", "interpolate": "linear or cosine",
             "total_steps": T_OPT_HELP},
            "lr * prod(scales[:i]) at boundaries[i], interpolated",
            "optax piecewise_interpolate_schedule",
            with_total_steps=True,
            derived={
                "boundaries": lambda T, v: None if T is None else [max(1, T // 2), max(2, 3 * T // 4)]
            },
        ),
        ScheduleSpec(
            "cosine",
            cosine,
            {"lr": LR_HELP, "total_steps": T_HELP, "eta_min": "final LR (torch)",
             "num_cycles": "cosine waves over T: 0.5 is one half-wave down (HF)",
             "min_lr_rate": "floor as a share of lr (HF cosine_with_min_lr)"},
            "eta_min + (lr - eta_min) * (1 + cos(pi*t/T)) / 2",
            "torch CosineAnnealingLR, Keras CosineDecay",
        ),
        ScheduleSpec(
            "cosine_restarts",
            cosine_restarts,
            {"lr": LR_HELP, "T_0": "first period (default T/4)", "T_mult": "period growth factor",
             "eta_min": "LR at the end of each period",
             "cycle_decay": "each restart's peak times this (timm cycle_decay, Keras m_mul)",
             "total_steps": T_OPT_HELP},
            "cosine over periods T_0, T_0*T_mult, ... restarting at lr",
            "torch CosineAnnealingWarmRestarts (SGDR)",
            derived={"T_0": lambda T, v: None if T is None else max(1, T // 4)},
            with_total_steps=True,
        ),
        ScheduleSpec(
            "polynomial",
            polynomial,
            {"lr": LR_HELP, "total_steps": T_HELP, "power": "exponent", "end_lr": "final LR"},
            "(lr - end_lr) * (1 - t/T)^power + end_lr",
            "torch PolynomialLR, Keras PolynomialDecay, optax",
        ),
        ScheduleSpec(
            "linear",
            linear,
            {"lr": LR_HELP, "total_steps": T_HELP, "start_factor": "multiplier at t=0",
             "end_factor": "multiplier at t=T"},
            "lr * (start_factor + (end_factor - start_factor) * t/T)",
            "torch LinearLR, HF linear",
        ),
        ScheduleSpec(
            "cyclic",
            cyclic,
            {"lr": "lowest LR (default max_lr/4)", "max_lr": "highest LR",
             "step_size_up": "steps from lr to max_lr (default T/4)",
             "step_size_down": "steps back down (default = up)",
             "mode": "triangular, triangular2, exp_range", "gamma": "exp_range decay per step",
             "cycle_momentum": "cycle momentum inversely", "base_momentum": "momentum at max_lr",
             "max_momentum": "momentum at lr", "total_steps": T_OPT_HELP},
            "lr + (max_lr - lr) * triangle(t) * f(cycle)",
            "torch CyclicLR",
            lr_param="max_lr",
            derived={
                "lr": lambda T, v: None if v.get("max_lr") is None else v["max_lr"] / 4,
                "step_size_up": lambda T, v: None if T is None else max(1, T // 4),
            },
            with_total_steps=True,
        ),
        ScheduleSpec(
            "warmup_stable_decay",
            warmup_stable_decay,
            {"lr": LR_HELP, "total_steps": T_HELP,
             "decay_steps": "length of the decay (default T/10)",
             "decay": "cosine, linear, 1-sqrt", "min_lr": "final LR"},
            "warm-up, lr, then decay to min_lr over decay_steps",
            "HF warmup_stable_decay, timm WSD",
        ),
        ScheduleSpec(
            "sequential",
            sequential,
            {"schedules": "the parts, each {name: ..., parameters} (default: warm-up, cosine)",
             "boundaries": "steps where each part after the first starts (default: parts' total_steps)",
             "lr": "LR of the parts that give none", "total_steps": "run length; the last part runs to it"},
            "part i at step t - boundaries[i-1], for boundaries[i-1] <= t < boundaries[i]",
            "torch SequentialLR, optax join_schedules",
            derived={"schedules": _default_parts},
        ),
        ScheduleSpec(
            "warmup",
            constant,
            {"lr": LR_HELP, "total_steps": T_OPT_HELP},
            "warmup_start_lr -> lr linearly over warmup_steps, then lr",
            "HF constant_with_warmup",
            derived={"warmup_steps": lambda T, v: None if T is None else (max(1, T // 10) if T > 1 else 0)},
            with_total_steps=True,
            doc=(
                "A linear warm-up from ``warmup_start_lr`` to ``lr`` over ``warmup_steps``\n"
                "(default 10% of T), then ``lr``: Hugging Face ``constant_with_warmup``. Every\n"
                "other schedule takes the same warm-up parameters; this one is the warm-up alone."
            ),
        ),
    ]
}  # fmt: skip


def schedule_names() -> list[str]:
    return list(SCHEDULES)


def get_spec(name: str) -> ScheduleSpec:
    """The registry entry for ``name``; an error that suggests the closest name otherwise."""
    spec = SCHEDULES.get(name)
    if spec is None:
        raise usage_error(
            f"unknown schedule '{name}'{closest(name, schedule_names())}; "
            f"choose from: {', '.join(schedule_names())}"
        )
    return spec


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (``--set``) into a dict of parsed values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise usage_error(f"--set: expected key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def route_sets(names: Sequence[str], sets: dict[str, Any], what: str) -> dict[str, dict]:
    """Each schedule's parameters from ``--set``: ``name.key=value`` sets one schedule's,
    ``key=value`` every listed schedule's that has it. ``what`` names the list in errors
    (``"plotted"``, ``"compared"``). Every key must reach at least one schedule."""
    routed: dict[str, dict] = {name: {} for name in names}

    def nested(spec_name: str, sub: str) -> bool:  # schedules.1.lr: a part's parameter
        head = sub.split(".")[0]
        spec = get_spec(spec_name)
        return "." in sub and head in spec.param_names and spec.param(head).kind == "schedules"

    for key, value in sets.items():
        owner, dot, sub = key.partition(".")
        if dot and owner not in routed and any(nested(n, key) for n in routed):
            for name in routed:
                if nested(name, key):
                    routed[name][key] = value
            continue
        if dot:
            if owner not in routed:
                raise usage_error(
                    f"--set {key}: schedule '{owner}' is not in the {what} list "
                    f"({', '.join(names)})"
                )
            known = get_spec(owner).param_names
            if sub not in known and not nested(owner, sub):
                raise usage_error(
                    f"--set {key}: schedule '{owner}' has no parameter '{sub}'{closest(sub, known)}"
                )
            routed[owner][sub] = value
            continue
        takers = [n for n in routed if key in get_spec(n).param_names]
        if not takers:
            known = sorted({p for n in names for p in get_spec(n).param_names})
            raise usage_error(
                f"--set {key}: none of the {what} schedules has a parameter '{key}'"
                f"{closest(key, known)}"
            )
        for name in takers:
            routed[name][key] = value
    return routed


def epochs_of(value: Any) -> float | None:
    """The number of epochs a value like ``"2ep"``, ``"2.5 epochs"`` gives (None: not epochs)."""
    if not isinstance(value, str):
        return None
    found = _EPOCHS.match(value)
    return None if found is None else float(found.group(1))


def uses_epochs(name: str, params: dict[str, Any]) -> bool:
    """Whether ``params`` give any length in epochs (``epochs``, or a value like ``"2ep"``),
    in this schedule or in a part of it."""
    for key, value in params.items():
        if key == EPOCHS_PARAM.name and value is not None:
            return True
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if epochs_of(item) is not None:
                return True
            if isinstance(item, dict) and item.get("name") in SCHEDULES:
                if uses_epochs(item["name"], item):
                    return True
    return False


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    """A run length in epochs as optimizer steps: ``round(epochs * steps_per_epoch)``, at
    least 1 (``train.epochs``, ``--epochs``)."""
    return max(1, round(epochs * steps_per_epoch))


def in_steps(name: str, params: dict[str, Any], steps_per_epoch: float | None) -> dict[str, Any]:
    """``params`` with every length given in epochs turned into optimizer steps.

    ``epochs: E`` sets ``total_steps = round(E * steps_per_epoch)``; a step-counted parameter
    (:data:`STEP_PARAMS`: ``s``, ``boundaries``, ``milestones``, ``warmup_steps``...) written
    as ``"Nep"`` or ``"N epochs"`` becomes ``N * steps_per_epoch`` (rounded where the parameter
    is a whole number). Parts of ``sequential`` are converted too. Without
    ``steps_per_epoch``, a length in epochs is an error that says where to give it.

    >>> in_steps("cosine", {"lr": 0.1, "epochs": 3}, steps_per_epoch=100)
    {'lr': 0.1, 'total_steps': 300}
    """
    spec = get_spec(name)
    if not uses_epochs(name, params):
        return params

    def counted(key: str, epochs: float, given: Any) -> int | float:
        if steps_per_epoch is None:
            raise usage_error(
                f"schedule '{name}': {key}={given!r} is in epochs; give steps_per_epoch "
                f"(train.steps_per_epoch, plot --steps-per-epoch, or build_schedule's "
                f"steps_per_epoch)"
            )
        exact = epochs * steps_per_epoch
        kind = spec.param(key).kind if key in spec.param_names else "int"
        return exact if kind == "float" else int(round(exact))

    def steps(key: str, value: Any) -> Any:
        epochs = epochs_of(value)
        return value if epochs is None else counted(key, epochs, value)

    out: dict[str, Any] = {}
    for key, value in params.items():
        head = key.split(".")[0]
        if key == EPOCHS_PARAM.name:
            continue
        if head in STEP_PARAMS:
            if isinstance(value, list | tuple):
                out[key] = [steps(head, item) for item in value]
            else:
                out[key] = steps(head, value)
        elif (
            isinstance(value, list)
            and head in spec.param_names
            and spec.param(head).kind == "schedules"
        ):
            out[key] = [
                {
                    "name": part["name"],
                    **in_steps(
                        part["name"],
                        {k: v for k, v in part.items() if k != "name"},
                        steps_per_epoch,
                    ),
                }
                if isinstance(part, dict) and part.get("name") in SCHEDULES
                else part
                for part in value
            ]
        elif "." in key and key.rsplit(".", 1)[-1] in STEP_PARAMS:  # schedules.1.total_steps
            out[key] = steps(key, value)
        else:
            out[key] = value
    epochs = params.get(EPOCHS_PARAM.name)
    if epochs is not None:
        if params.get("total_steps") is not None:
            raise usage_error(
                f"schedule '{name}': give epochs or total_steps, not both "
                f"(got epochs={epochs!r}, total_steps={params['total_steps']!r})"
            )
        if isinstance(epochs, bool) or not isinstance(epochs, int | float) or not epochs > 0:
            raise usage_error(f"schedule '{name}': epochs must be a number > 0, got {epochs!r}")
        out["total_steps"] = counted("total_steps", float(epochs), f"{epochs}ep")
    return out


def with_part_sets(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``schedules.I.KEY=value`` (``--set``) applied to part I (from 0) of the ``schedules``
    list given in ``params`` (or the default parts, when none is given)."""
    spec = get_spec(name)
    nested = [key for key in params if "." in key]
    if not nested:
        return params
    out = {k: v for k, v in params.items() if "." not in k}
    for key in nested:
        head, _, rest = key.partition(".")
        index_text, _, sub = rest.partition(".")
        if head not in spec.param_names or spec.param(head).kind != "schedules":
            raise usage_error(
                f"schedule '{name}' has no parameter '{key}'{closest(key, spec.param_names)}"
            )
        parts = out.get(head)
        if parts is None and head in spec.derived:
            parts = spec.derived[head](params.get("total_steps"), params)
        if not isinstance(parts, list):
            raise usage_error(f"--set {key}: give {head} first (a list of schedules)")
        if not index_text.isdigit() or int(index_text) >= len(parts) or not sub:
            raise usage_error(
                f"--set {key}: write {head}.I.KEY=value with I from 0 to {len(parts) - 1}"
            )
        parts = [dict(p) if isinstance(p, dict) else p for p in parts]
        target = parts[int(index_text)]
        if not isinstance(target, dict):
            raise usage_error(f"--set {key}: part {index_text} is not a schedule")
        target[sub] = params[key]
        out[head] = parts
    return out


def parse_value(text: str) -> Any:
    """Read a ``--set`` value: numbers, true/false, none, comma or bracketed lists, or text."""
    raw = text.strip()
    if raw.startswith(("[{", "{")):  # parts of sequential: YAML flow, [{name: linear}, ...]
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise usage_error(f"--set: cannot read {raw!r} as YAML ({problem})") from None
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
        return [parse_value(part) for part in raw.split(",") if part.strip()]
    if "," in raw:
        return [parse_value(part) for part in raw.split(",") if part.strip()]
    lowered = raw.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null", "~"):
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def _coerce(schedule: str, param: Param, value: Any) -> Any:
    where = f"schedule '{schedule}': {param.name}"
    if value is None:
        return None
    if param.kind in ("floats", "ints", "schedules"):
        items = value if isinstance(value, list | tuple) else [value]
        single = Param(param.name, param.kind[:-1])
        return [_coerce(schedule, single, item) for item in items]
    if param.kind == "schedule":
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise usage_error(
                f"{where}: each part must be a schedule written as {{name: ..., parameters}}, "
                f"got {value!r}"
            )
        return dict(value)
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        raise usage_error(f"{where} must be true or false, got {value!r}")
    if param.kind == "str":
        if not isinstance(value, str) or (param.choices and value not in param.choices):
            raise usage_error(
                f"{where} must be one of {', '.join(param.choices)}, got {value!r}"
                + (closest(value, param.choices) if isinstance(value, str) else "")
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise usage_error(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise usage_error(f"{where} must be finite, got {value!r}")
    if param.kind == "int":
        if float(value) != int(value):
            raise usage_error(f"{where} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def build_schedule(
    name: str, params: dict[str, Any] | None = None, steps_per_epoch: float | None = None
) -> Schedule:
    """Validate ``params`` against the registry entry ``name`` and build the schedule.

    Unset parameters take their defaults; those derived from the run length use
    ``total_steps`` when it is given. Errors name the schedule, the parameter and the value.
    Lengths may be given in epochs (``epochs: 10``, ``s: 2ep``; see :func:`in_steps`) when
    ``steps_per_epoch`` is given.
    """
    spec = get_spec(name)
    given = in_steps(name, with_part_sets(name, dict(params or {})), steps_per_epoch)
    names = spec.param_names
    for key in given:
        if key not in names:
            raise usage_error(
                f"schedule '{name}' has no parameter '{key}'{closest(key, names)}; "
                f"its parameters are: {', '.join(names)}"
            )
    values = {key: _coerce(name, spec.param(key), value) for key, value in given.items()}
    total = values.get("total_steps")
    # the run length first: the derived defaults below are computed from it
    check_range(name, "total_steps", total, spec.valid("total_steps"), values)
    for key, derive in spec.derived.items():
        if values.get(key) is None:
            values[key] = derive(total, values)
    checked = {p.name: values.get(p.name, None if p.required else p.default) for p in spec.params}
    checked.update({k: v for k, v in values.items() if k in WARMUP_PARAMS})
    for key, value in checked.items():
        check_range(name, key, value, spec.valid(key), checked)
    warmup_steps = values.pop("warmup_steps", None) or 0
    warmup_start = values.pop("warmup_start_lr", None) or 0.0
    if warmup_steps and spec.uses_total_steps and total is not None:
        if warmup_steps >= total:
            raise usage_error(
                f"schedule '{name}': warmup_steps ({warmup_steps}) must be < total_steps ({total})"
            )
        values["total_steps"] = total - warmup_steps
    for p in spec.params:
        if values.get(p.name) is not None:
            continue
        if p.required:
            hint = " (set it with --steps or total_steps)" if p.name == "total_steps" else ""
            flag = " (--lr)" if p.name == spec.lr_param else ""
            raise usage_error(f"schedule '{name}': missing parameter {p.name}{flag}{hint}")
        if p.name in spec.derived and _required_by_factory(spec, p.name):
            raise usage_error(
                f"schedule '{name}': set {p.name}, or total_steps to derive it from the run"
            )
    built = with_warmup(spec.build(values), warmup_steps, warmup_start)
    return dataclasses.replace(
        built,
        params=dict(given),
        total_steps=total if total is not None else built.total_steps,
        recipe=(name, dict(params or {}), steps_per_epoch),
    )


def rebuilt(recipe: tuple[str, dict[str, Any], float | None], state: Any = None) -> Schedule:
    """A pickled schedule, built again from its recipe (a stateful one gets its state back)."""
    name, params, steps_per_epoch = recipe
    schedule = build_schedule(name, params, steps_per_epoch)
    if state is not None and isinstance(schedule, PlateauSchedule):
        schedule.load_state(state)
    return schedule


def _reduce_schedule(schedule: Schedule) -> tuple[Any, ...]:
    """How pickle stores a schedule: its recipe (its functions are closures)."""
    if schedule.recipe is None:
        raise TypeError(
            f"schedule '{schedule.name}' cannot be pickled: build it with "
            f"lrtool.build_schedule(name, params), which records how to build it again"
        )
    return (rebuilt, (schedule.recipe, getattr(schedule, "state", None)))


for _schedule_type in (Schedule, PlateauSchedule):  # copyreg matches exact types only
    copyreg.pickle(_schedule_type, _reduce_schedule)  # type: ignore[arg-type]


def _required_by_factory(spec: ScheduleSpec, name: str) -> bool:
    parameter = inspect.signature(spec.factory).parameters.get(name)
    return parameter is not None and parameter.default is inspect.Parameter.empty


def sample_steps(total: int, max_points: int) -> list[int]:
    """Up to ``max_points`` steps spread evenly over 0..total-1, first and last included."""
    if total <= max_points:
        return list(range(total))
    stride = (total - 1) / (max_points - 1)
    return sorted({round(i * stride) for i in range(max_points)})
