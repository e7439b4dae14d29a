"""Learning-rate schedules: pure functions of the step, and a registry that describes them.

Every schedule is built by a factory that checks its arguments against its one declaration
of their valid values and returns a frozen :class:`Schedule`, a callable ``t -> lr`` (t = 0
is the first optimizer step) that may also define ``momentum(t)``. Nothing here imports
torch, so ``lrtool plot`` starts fast; the torch side is :mod:`lrtool.schedules.torch_adapter`
(:class:`~lrtool.LrtoolScheduler`), loaded only when used.

Where each part lives:

* :mod:`~lrtool.schedules.base`: the :class:`Schedule` type, :func:`declared` (valid values);
* :mod:`~lrtool.schedules.decay`: constant, power, exponential, step, piecewise, polynomial,
  linear, cosine and its restarts, tanh, warmup-stable-decay;
* :mod:`~lrtool.schedules.cycles`: 1cycle, Geron's 1cycle, cyclical LRs;
* :mod:`~lrtool.schedules.composition`: :func:`join` and :func:`with_warmup`, optax-style;
* :mod:`~lrtool.schedules.plateau`: performance scheduling, the one stateful schedule;
* :mod:`~lrtool.schedules.registry`: names, parameters, defaults, :func:`build_schedule`.

Parameter names are shared by every schedule, config files, ``--set`` and the Python API:
``lr`` is the base (starting) LR, ``max_lr`` the peak of ``onecycle`` and ``cyclic``,
``total_steps`` the length of the run, and the seed's letters ``s`` and ``c`` where it uses them.
Any schedule can be prefixed by a linear warm-up with ``warmup_steps`` (and
``warmup_start_lr``); ``total_steps`` then includes the warm-up, as in optax.

The factories compose as optax's do::

    from lrtool.schedules import cosine, join, linear, with_warmup
    schedule = with_warmup(join([linear(0.1, 100, 1.0, 0.1), cosine(0.01, 900)], [100]), 50)
"""

from __future__ import annotations

from lrtool.schedules.base import SHARED_RANGES, Schedule, check_range, declared
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
from lrtool.schedules.plateau import PlateauSchedule, PlateauState, plateau, stalling_metric
from lrtool.schedules.registry import (
    EPOCHS_PARAM,
    REQUIRED,
    SCHEDULES,
    STEP_PARAMS,
    WARMUP_PARAMS,
    WARMUP_RANGES,
    Param,
    ScheduleSpec,
    build_schedule,
    epochs_of,
    epochs_to_steps,
    get_spec,
    in_steps,
    parse_sets,
    parse_value,
    rebuilt,
    route_sets,
    sample_steps,
    schedule_names,
    sequential,
    uses_epochs,
    with_part_sets,
)

__all__ = [
    # factories, composable as optax's are
    "constant", "power", "exponential", "step", "piecewise", "piecewise_interpolate",
    "polynomial", "linear", "cosine", "cosine_restarts", "tanh", "warmup_stable_decay",
    "onecycle", "geron", "cyclic", "plateau", "sequential", "join", "with_warmup",
    # the type, the declarations, the registry
    "EPOCHS_PARAM", "REQUIRED", "SCHEDULES", "SHARED_RANGES", "STEP_PARAMS", "WARMUP_PARAMS",
    "WARMUP_RANGES", "Param", "PlateauSchedule", "PlateauState", "Schedule", "ScheduleSpec",
    "build_schedule", "check_range", "declared", "epochs_of", "epochs_to_steps", "get_spec",
    "in_steps", "parse_sets", "parse_value", "rebuilt", "route_sets", "sample_steps",
    "schedule_names", "stalling_metric", "uses_epochs", "with_part_sets",
]  # fmt: skip
