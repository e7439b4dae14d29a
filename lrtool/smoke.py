"""``lrtool find --smoke``: a pass/fail verdict for CI pipelines."""

from __future__ import annotations

from typing import Any

from lrtool.errors import usage_error


def parse_expected_range(text: str) -> tuple[float, float]:
    """``MIN:MAX`` into two positive floats with MIN < MAX."""
    lo, sep, hi = text.partition(":")
    try:
        low, high = float(lo), float(hi)
    except ValueError:
        raise usage_error(
            f"--expect-lr: expected MIN:MAX such as 1e-3:1e-1, got {text!r}"
        ) from None
    if not sep or not (0 < low < high):
        raise usage_error(f"--expect-lr: expected 0 < MIN < MAX, got {text!r}")
    return low, high


def smoke_verdict(result: Any, expected: tuple[float, float] | None) -> tuple[bool, str]:
    """(ok, one-line verdict) for a range-test result."""
    losses = [v for v in result.losses if v == v and abs(v) != float("inf")]
    if len(losses) < 2:
        return False, f"smoke: FAIL: the loss diverged at the very start ({result.stop_reason})"
    if min(losses[1:]) >= losses[0]:
        return False, "smoke: FAIL: the loss never decreased during the sweep"
    if result.lr is None:
        warning = result.recommendation.warnings[0] if result.recommendation else "no suggestion"
        return False, f"smoke: FAIL: {warning}"
    if expected is not None and not (expected[0] <= result.lr <= expected[1]):
        return False, (
            f"smoke: FAIL: suggested lr {result.lr:.3g} is outside the expected range "
            f"{expected[0]:g}:{expected[1]:g}"
        )
    where = f" within {expected[0]:g}:{expected[1]:g}" if expected else ""
    return True, (
        f"smoke: ok: suggested lr {result.lr:.3g}{where} "
        f"(confidence {result.recommendation.confidence}, {result.steps_run} steps)"
    )
