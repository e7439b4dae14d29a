"""The values lrtool's settings may take, each declared once: the config's types
(:mod:`lrtool.config`), the flags' checks and help, and the engines all read them from here.

Torch-free: the config and the CLI load it without the engines.
"""

from __future__ import annotations

from typing import Literal, get_args

Device = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[str, ...] = get_args(Device)

# Autocast: "none" is full precision (the config's word; the engines take None).
Amp = Literal["none", "bf16", "fp16"]
AMP_MODES: tuple[str, ...] = get_args(Amp)
AUTOCAST_DTYPES: tuple[str, ...] = tuple(m for m in AMP_MODES if m != "none")

# Where the state a range test restarts from is kept: one host copy, a file, or nowhere.
SnapshotMode = Literal["cpu", "disk", "none"]
SNAPSHOT_MODES: tuple[str, ...] = get_args(SnapshotMode)


def one_of(choices: tuple[str, ...]) -> str:
    """``"a, b or c"``: the choices as a message and a flag's help say them.

    >>> one_of(DEVICES)
    'auto, cpu, cuda or mps'
    """
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


def restarts_need_a_snapshot(snapshot: str, budget: float, repeats: int) -> bool:
    """Whether a range test asks to start runs again from a state it was told not to keep:
    the budgeted search (``budget > 0``) and ``repeats > 1`` restore the model between runs,
    and ``snapshot: none`` keeps nothing to restore.

    >>> restarts_need_a_snapshot("none", 0.5, 1), restarts_need_a_snapshot("cpu", 0.5, 3)
    (True, False)
    """
    return snapshot == "none" and (budget > 0 or repeats > 1)
