"""Strict readers for restoring saved state: a state file is input too, and a bad value must not
become a counter. Each raises ``TypeError`` or ``ValueError``, which the loader reports as corrupt."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, integral: bool = False) -> float:
    """A finite, non-negative number (an integer when ``integral``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"bad number {value!r:.40}")
    if integral and value != int(value):
        raise ValueError(f"not an integer {value!r:.40}")
    return value


def count(value: Any) -> int:
    return int(number(value, True))


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r:.40}")
    return value


def optional(value: Any) -> float | None:
    return None if value is None else float(number(value))
