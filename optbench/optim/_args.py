"""Constructor-argument checks shared by the zoo: ValueError naming the argument, the value and what is allowed."""

from __future__ import annotations

import math


def check_betas(betas, n: int = 2, name: str = "betas") -> tuple[float, ...]:
    """ValueError unless ``betas`` has n numbers, each in [0, 1)."""
    try:
        vals = tuple(float(b) for b in betas)
    except TypeError:
        raise ValueError(f"{name}: must be a sequence of {n} numbers in [0, 1), got {betas!r}") from None
    if len(vals) != n or not all(0.0 <= b < 1.0 for b in vals):
        raise ValueError(f"{name}: must be {n} numbers each in [0, 1), got {betas!r}")
    return vals


def check_nonneg(name: str, value) -> None:
    """ValueError unless ``value`` is a finite number >= 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")
