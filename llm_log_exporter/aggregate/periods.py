"""Calendar periods in a time zone: a day, an ISO week (Monday first), a month, and the named windows of
the command line and the HTTP API (``today``, ``yesterday``, ``this-week``, ``this-month``, ``last-month``).

Budgets reset on these periods, ``report`` groups by them and the daemon keys its per-day aggregates by
them, so a "day" means the same thing in all three. The zone is an IANA name read with ``zoneinfo`` (the
machine's local zone by default, ``--tz``); every function takes it and defaults to UTC.

The period functions are total: any float (negative, NaN, beyond year 9999 — a millisecond timestamp read
as seconds is year 58 890) is clamped into what ``datetime`` can represent first, so a bad time that got
into the state (an old state file, a parser bug) can skew one period, never make a scrape raise.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PERIODS = ("day", "week", "month")
# 9999-11-30T00:00:00Z: the last time whose date in any zone, and the period after its period, ``datetime``
# can still represent (its limit is 9999-12-31).
LAST_SECOND = 253_399_536_000.0


def clamp(ts: float) -> float:
    """``ts`` within [0, LAST_SECOND]; NaN becomes 0."""
    if ts >= 0.0:
        return ts if ts <= LAST_SECOND else LAST_SECOND
    return 0.0


WORDS = ("today", "yesterday", "this-week", "this-month", "last-month")
UTC: tzinfo = timezone.utc
LOCAL = "local"  # --tz's default: the machine's zone

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ----------------------------------------------------------------------------- zones


def get_zone(name: str | None) -> tzinfo:
    """The zone called ``name`` (an IANA name such as ``Europe/Paris``, or ``UTC``); ``local`` or None for
    the machine's; ``ValueError`` when unknown."""
    if name is None or name == LOCAL:
        return local_zone()
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Europe/Paris, "
                         "America/New_York or UTC") from None


def zone_name(zone: tzinfo) -> str:
    """The name to show and to record for ``zone`` (its IANA key where it has one)."""
    if zone is UTC:
        return "UTC"
    return getattr(zone, "key", None) or str(zone)


def local_zone() -> tzinfo:
    """The machine's zone the way the C library finds it: ``$TZ``, else ``/etc/localtime`` (named by its
    link target or ``/etc/timezone`` when possible, so DST rules are kept); UTC when none is set."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            return get_zone(tz)
        except ValueError:
            pass  # a POSIX rule string such as "CET-1CEST": fall through to the system zone
    link = "/etc/localtime"
    names = []
    try:
        target = os.path.realpath(link)
        if "/zoneinfo/" in target:
            names.append(target.split("/zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        with open("/etc/timezone", encoding="utf-8") as f:
            names.append(f.read().strip())
    except OSError:
        pass
    for name in names:
        try:
            zone = get_zone(name)
        except ValueError:
            continue
        if name in ("Etc/UTC", "Etc/UCT", "UCT", "Universal", "Zulu", "Etc/Universal", "Etc/Zulu"):
            return UTC
        return zone
    try:
        with open(link, "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


# ----------------------------------------------------------------------------- periods


def _midnight(day: date, zone: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _first_day(ts: float, period: str, zone: tzinfo) -> date:
    day = datetime.fromtimestamp(clamp(ts), tz=zone).date()
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(day: date, period: str) -> date:
    if period == "day":
        return day + timedelta(days=1)
    if period == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_start(ts: float, period: str, zone: tzinfo = UTC) -> float:
    """Start (epoch seconds) of the day, ISO week (Monday) or month holding ``ts``, in ``zone``."""
    return _midnight(_first_day(ts, period, zone), zone)


def period_bounds(ts: float, period: str, zone: tzinfo = UTC) -> tuple[float, float]:
    """``[start, end)`` of the period holding ``ts`` (a day lasts 23 or 25 hours across a DST change)."""
    first = _first_day(ts, period, zone)
    return _midnight(first, zone), _midnight(_next(first, period), zone)


def period_label(ts: float | None, period: str, zone: tzinfo = UTC) -> str:
    """``2025-07-01``, ``2025-W27`` or ``2025-07``; "" without a time."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(clamp(ts), tz=zone)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


def day_label(day: date) -> str:
    return day.isoformat()


# ----------------------------------------------------------------------------- named windows


def named_window(word: str, now: float, zone: tzinfo = UTC) -> tuple[float, float]:
    """``[start, end)`` of ``today``, ``yesterday``, ``this-week``, ``this-month`` or ``last-month``."""
    if word == "today":
        return period_bounds(now, "day", zone)
    if word == "yesterday":
        start, _ = period_bounds(now, "day", zone)
        return period_bounds(start - 1, "day", zone)
    if word == "this-week":
        return period_bounds(now, "week", zone)
    if word == "this-month":
        return period_bounds(now, "month", zone)
    if word == "last-month":
        start, _ = period_bounds(now, "month", zone)
        return period_bounds(start - 1, "month", zone)
    raise ValueError(f"{word!r} is not one of {', '.join(WORDS)}")


def named_bound(word: str, edge: str, now: float, zone: tzinfo = UTC) -> float:
    """A named window as one bound: its first instant for ``--start``, the instant after it for ``--end``
    (so ``--start yesterday --end yesterday`` is yesterday, and ``--start last-month`` runs until now)."""
    start, end = named_window(word, now, zone)
    return start if edge == "start" else end


def day_bound(text: str, edge: str, now: float, zone: tzinfo = UTC) -> float:
    """A day-aligned bound for the HTTP API: a named window or a date (``2025-07-01``: midnight in ``zone``)."""
    text = text.strip()
    if text in WORDS:
        return named_bound(text, edge, now, zone)
    if _DATE.match(text):
        try:
            return _midnight(date.fromisoformat(text), zone)
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a day: give {', '.join(WORDS)} or a date such as 2025-07-01")
