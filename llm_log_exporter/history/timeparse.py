"""Durations (``90``, ``60s``, ``5m``, ``3h``, ``7d``) and points in time (RFC 3339 / ISO 8601,
epoch seconds, ``now``, ``-7d`` = 7 days ago) for the command line. Naive times are UTC."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 90, 60s, 5m, 3h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds for a command-line time."""
    text = text.strip()
    now = time.time() if now is None else now
    if text == "now":
        return now
    if text.startswith("-") and _DURATION.match(text[1:]):
        return now - parse_duration(text[1:])
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
        raise ValueError(f"{text!r} is not a time")
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (RFC 3339 such as 2026-11-01T00:00:00Z, a date, "
                         "epoch seconds, 'now' or '-7d')") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
