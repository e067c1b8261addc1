"""Durations (``90``, ``60s``, ``5m``, ``3h``, ``7d``) and points in time (RFC 3339 / ISO 8601,
epoch seconds, ``now``, ``-7d`` = 7 days ago, and the named windows ``today``, ``yesterday``,
``this-week``, ``this-month``, ``last-month``) for the command line. Naive times and the named windows
are in the given zone (UTC unless the command has ``--tz``)."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, tzinfo

from llm_log_exporter.aggregate.periods import UTC, WORDS, named_bound

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 90, 60s, 5m, 3h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_time(text: str, now: float | None = None, zone: tzinfo = UTC, edge: str = "start") -> float:
    """Epoch seconds for a command-line time; a named window is its start as ``edge="start"`` and the
    instant after it as ``edge="end"`` (``--start yesterday --end yesterday`` is yesterday)."""
    text = text.strip()
    now = time.time() if now is None else now
    if text == "now":
        return now
    if text in WORDS:
        return named_bound(text, edge, now, zone)
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
                         "epoch seconds, 'now', '-7d' or one of " + ", ".join(WORDS) + ")") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()
