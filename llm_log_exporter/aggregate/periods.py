"""Calendar periods in UTC: a day, an ISO week (Monday first), a month. Budgets reset on them and the
report groups by them, so a "month" means the same thing in both."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

PERIODS = ("day", "week", "month")


def period_start(ts: float, period: str) -> float:
    """Start (epoch seconds, UTC) of the day, ISO week (Monday) or month holding ``ts``."""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day.timestamp()
    if period == "week":
        return (day - timedelta(days=day.weekday())).timestamp()
    return day.replace(day=1).timestamp()


def period_label(ts: float | None, period: str) -> str:
    """``2025-07-01``, ``2025-W27`` or ``2025-07``; "" without a time."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")
