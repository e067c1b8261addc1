"""Calendar periods in UTC: a day, an ISO week (Monday first), a month. Budgets reset on them and the
report groups by them, so a "month" means the same thing in both.

Both functions are total: any float (negative, NaN, beyond year 9999 — a millisecond timestamp read as
seconds is year 58 890) is clamped into what ``datetime`` can represent first, so a bad time that got
into the state (an old state file, a parser bug) can skew one period, never make a scrape raise.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

PERIODS = ("day", "week", "month")
# The last second ``datetime`` holds (9999-12-31T23:59:59Z); every period start at or before it exists.
LAST_SECOND = 253_402_300_799.0


def clamp(ts: float) -> float:
    """``ts`` within [0, LAST_SECOND]; NaN becomes 0."""
    if ts >= 0.0:
        return ts if ts <= LAST_SECOND else LAST_SECOND
    return 0.0


def _moment(ts: float) -> datetime:
    return datetime.fromtimestamp(clamp(ts), tz=timezone.utc)


def period_start(ts: float, period: str) -> float:
    """Start (epoch seconds, UTC) of the day, ISO week (Monday) or month holding ``ts``."""
    day = _moment(ts).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day.timestamp()
    if period == "week":
        return (day - timedelta(days=day.weekday())).timestamp()
    return day.replace(day=1).timestamp()


def period_label(ts: float | None, period: str) -> str:
    """``2025-07-01``, ``2025-W27`` or ``2025-07``; "" without a time."""
    if ts is None:
        return ""
    moment = _moment(ts)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")
