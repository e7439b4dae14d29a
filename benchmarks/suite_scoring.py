"""Score LRs against the cached suite without training: regret by interpolation on the grid.

A run is one (task, seed). Its regret at an LR ``s`` for a schedule is
``(L(s) - L*) / (L0 - L*)`` clipped to [0, 1], where ``L*`` is the best final validation loss
of the grid and ``L0`` the untrained model's; a diverged run counts 1. Between grid points the
regret is interpolated linearly in log10 LR (the grid is a quarter decade, an eighth near the
optimum); below the lowest LR trained it is that LR's regret, above the highest it is 1.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_tasks import TASKS  # noqa: E402

# Every optimizer but torch's SGD: lrtool.finder.optimizer_group calls them "adaptive".
ADAPTIVE = {"adam", "adamw", "rmsprop", "adagrad", "nadam", "radam", "adamax", "adadelta"}


@dataclass
class Grid:
    """One schedule's grid of a run: log10 LRs ascending, regret and prefix scores at each."""

    log_lrs: np.ndarray
    regret: np.ndarray  # at the full budget
    prefix_val: np.ndarray  # [point, mark] validation loss (inf: diverged), constant only
    marks: list[int]
    best: float = math.nan  # the best final validation loss of the grid
    untrained: float = math.nan  # the untrained model's validation loss

    def regret_of_loss(self, loss: float | None) -> float:
        """The regret of a run that ended at validation loss ``loss`` (another method trained
        for the same budget): 1 for NaN/None (diverged) or no better than untrained."""
        if loss is None or not math.isfinite(loss) or not self.untrained > self.best:
            return 1.0
        return min(1.0, max(0.0, (loss - self.best) / (self.untrained - self.best)))

    def regret_of(self, log_lrs: np.ndarray) -> np.ndarray:
        """Regret at each log10 LR: interpolated, 1 above the grid (diverged) and for NaN."""
        x = np.asarray(log_lrs, dtype=float)
        inside = np.isfinite(x) & (x <= self.log_lrs[-1] + 1e-9)
        return np.where(inside, np.interp(np.nan_to_num(x), self.log_lrs, self.regret), 1.0)

    def regret_at(self, lr: float | None) -> float:
        if lr is None or not lr > 0 or not math.isfinite(lr):
            return 1.0
        return float(self.regret_of(np.array(math.log10(lr))))

    def prefix_at(self, lr: float, mark: int) -> float:
        """The validation loss after ``marks[mark]`` steps at constant ``lr`` (interpolated;
        inf when a neighbouring grid point diverged by then)."""
        x = math.log10(lr)
        if x > self.log_lrs[-1] + 1e-9:
            return math.inf
        col = self.prefix_val[:, mark]
        i = int(np.searchsorted(self.log_lrs, x))
        if i <= 0:
            return float(col[0])
        if i >= len(col):
            return float(col[-1])
        lo, hi = col[i - 1], col[i]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return math.inf
        t = (x - self.log_lrs[i - 1]) / (self.log_lrs[i] - self.log_lrs[i - 1])
        return float(lo + t * (hi - lo))


@dataclass
class Run:
    task: str
    seed: int
    family: str
    optimizer: str
    steps: int
    untrained: float
    first: dict[str, list[float]]
    second: dict[str, list[float]]
    grids: dict[str, Grid] = field(default_factory=dict)
    peers: dict[str, Any] = field(default_factory=dict)  # LR-free optimizers: {method: {val}}

    @property
    def adaptive(self) -> bool:
        return self.optimizer in ADAPTIVE

    @property
    def key(self) -> str:
        return f"{self.task}|{self.seed}"


def _grid(entries: list[dict[str, Any]], untrained: float, constant: bool) -> Grid:
    trained = [e for e in entries if not e.get("skipped")]
    lowest = min(trained, key=lambda e: e["lr"])
    # A skipped LR below the walk reads like the lowest LR trained (one above it: diverged).
    sources = [lowest if e.get("skipped") and e["lr"] < lowest["lr"] else e for e in entries]
    finals = [math.inf if not e["val"] or e["val"][-1] is None else e["val"][-1] for e in sources]
    best = min(finals)
    regret = [
        1.0
        if not math.isfinite(value) or untrained <= best
        else min(1.0, max(0.0, (value - best) / (untrained - best)))
        for value in finals
    ]
    marks = next((e["marks"] for e in trained if e["marks"]), [])
    prefix = np.full((len(entries), len(marks)), math.inf)
    if constant:
        for i, e in enumerate(sources):
            for j, v in enumerate(e["val"][: len(marks)]):
                prefix[i, j] = math.inf if v is None else v
    log_lrs = np.log10([e["lr"] for e in entries])
    return Grid(log_lrs, np.array(regret), prefix, marks, best, untrained)


def load_runs(
    cache: dict[str, Any], names: list[str] | None = None, monitor: str = "train"
) -> list[Run]:
    """Every (task, seed) of the cache that has its curves and both grids; ``monitor="val"``
    reads the sweeps that watched validation batches (``valcurve``) instead of the training
    loss."""
    runs = []
    for key, curve in sorted(cache.items()):
        if not key.startswith("curve|"):
            continue
        _, name, seed = key.split("|")
        if names is not None and name not in names:
            continue
        if monitor == "val":
            watched = cache.get(f"valcurve|{name}|{seed}")
            if watched is None:
                continue
            curve = {**curve, **watched}
        grids = {s: cache.get(f"grid|{name}|{seed}|{s}") for s in ("constant", "onecycle")}
        if any(g is None for g in grids.values()) or name not in TASKS:
            continue
        task = TASKS[name]
        run = Run(
            name,
            int(seed),
            task.family,
            task.optimizer,
            task.steps,
            curve["untrained"],
            _nan(curve["first"]),
            _nan(curve["second"]),
        )
        run.grids = {
            s: _grid(g, run.untrained, s == "constant") for s, g in grids.items() if g is not None
        }
        run.peers = cache.get(f"peers|{name}|{seed}") or {}
        runs.append(run)
    return runs


def _nan(curve: dict[str, list]) -> dict[str, list[float]]:
    return {k: [math.nan if v is None else float(v) for v in vals] for k, vals in curve.items()}


def summary(values: list[float]) -> tuple[float, float, float]:
    """Median, 90th percentile and worst of a list of regrets."""
    a = np.asarray(values, dtype=float)
    return float(np.median(a)), float(np.percentile(a, 90)), float(a.max())
