"""PNG versions of the terminal plots, drawn with matplotlib (optional extra ``lrtool[png]``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrtool.errors import LrtoolError, usage_error

SIZE_INCHES = (8.0, 5.0)
DPI = 100  # 800 x 500 pixels


def check_png_target(path: Path, force: bool) -> None:
    """Fail before any work when the PNG cannot be written or matplotlib is missing."""
    from lrtool.outputs import check_output_file

    if path.suffix.lower() != ".png" or path.is_dir():
        raise usage_error(f"--png: {path} must be a file name ending in .png")
    check_output_file(path, "--png", force)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise LrtoolError(
            "--png needs matplotlib: pip install 'lrtool[png]' (or pip install matplotlib)"
        ) from None


def write_png(kind: str, path: Path, force: bool, **data: Any) -> Path:
    from lrtool.outputs import place, temporary_beside

    check_png_target(path, force)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=SIZE_INCHES, dpi=DPI)
    try:
        _DRAW[kind](fig, **data)
        fig.tight_layout()
        fd, tmp = temporary_beside(path)  # the umask's mode, like every result file
        os.close(fd)
        try:
            fig.savefig(tmp, format="png", dpi=DPI)
            place(tmp, path, force)  # never over a file created meanwhile, unless --force
        except OSError as exc:  # a full disk, a file-size limit (ulimit -f)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise LrtoolError(f"--png: cannot write {path}: {exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    finally:
        plt.close(fig)
    return path


def _range_test(fig: Any, result: Any) -> None:
    draw_range_test(fig.add_subplot(1, 1, 1), result)


def draw_range_test(
    ax: Any, result: Any, curve_label: str = "lag-free curve (what the rule reads)"
) -> None:
    """The range test on a matplotlib Axes: the raw losses (points), the lag-free curve the
    rules read (line), the suggestions marked; the y-range keeps the lowest loss in view.
    Used by ``--png`` and by ``RangeTestResult.plot``."""
    from lrtool.report import loss_window

    curve = result.lagfree
    ax.plot(result.lrs, result.losses, ".", color="0.6", ms=3, label="loss (raw)")
    ax.plot(result.lrs, curve, color="C0", lw=1.8, label=curve_label)
    for value, name, colour in (
        (result.lr, "lr", "C3"),
        (result.onecycle_max_lr, "1cycle max_lr", "C2"),
    ):
        if value is not None:
            ax.axvline(value, color=colour, ls="--", label=f"{name} {value:.3g}")
    if result.mode == "exp":
        ax.set_xscale("log")
    window = loss_window(result.losses, curve)
    if window is not None:
        ax.set_ylim(*window)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss" if result.monitor == "train" else f"loss ({result.monitor})")
    ax.set_title("LR range test")
    ax.legend()


def _schedule(fig: Any, curves: dict, log_y: bool = False) -> None:
    momentum = any(any(m is not None for m in c[2]) for c in curves.values())
    ax = fig.add_subplot(2 if momentum else 1, 1, 1)
    for name, (xs, ys, _) in curves.items():
        ax.plot(xs, ys, label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set_ylabel("lr")
    ax.set_title("Learning rate schedule")
    ax.legend()
    if momentum:
        ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
        for name, (xs, _, ms) in curves.items():
            pts = [(x, m) for x, m in zip(xs, ms, strict=True) if m is not None]
            if pts:
                ax2.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
        ax2.set_ylabel("momentum")
    (fig.axes[-1]).set_xlabel("step")


def _train(fig: Any, result: Any) -> None:
    ax = fig.add_subplot(2, 1, 1)
    ax.plot(result.steps, result.smoothed_train_losses(), label="train (smoothed)")
    ev = [(e["step"], e["val_loss"]) for e in result.evals if e.get("val_loss") is not None]
    if ev:
        ax.plot([p[0] for p in ev], [p[1] for p in ev], "o-", label="val")
    ax.set_ylabel("loss")
    ax.legend()
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
    ax2.plot(result.steps, result.lrs, color="C2")
    ax2.set_ylabel("lr")
    ax2.set_xlabel("step")


def _compare(fig: Any, results: list) -> None:
    ax = fig.add_subplot(2, 1, 1)
    for r in results:
        ev = [(e["step"], e["val_loss"]) for e in r.evals if e.get("val_loss") is not None]
        ax.plot([p[0] for p in ev], [p[1] for p in ev], label=r.label)
    ax.set_ylabel("val loss")
    ax.legend(fontsize="small")
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
    for r in results:
        ax2.plot(r.steps, r.lrs, label=r.label)
    ax2.set_yscale("log")
    ax2.set_ylabel("lr")
    ax2.set_xlabel("step")


_DRAW: dict[str, Callable[..., None]] = {
    "range_test": _range_test,
    "schedule": _schedule,
    "train": _train,
    "compare": _compare,
}
