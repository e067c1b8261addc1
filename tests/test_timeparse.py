"""Command-line durations and times."""

from __future__ import annotations

import pytest

from llm_log_exporter.history.timeparse import parse_duration, parse_time

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("60s", 60), ("5m", 300), ("3h", 10800), ("7d", 604800),
                                               ("1w", 604800), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "ts"), [
    ("2025-07-01T00:00:00Z", 1751328000), ("2025-07-01", 1751328000), ("2025-07-01T02:00:00+02:00", 1751328000),
    ("2025-07-01T00:00:00", 1751328000), ("1751328000", 1751328000), ("1751328000.5", 1751328000.5),
    ("now", NOW), ("-2h", NOW - 7200), ("-7d", NOW - 604800),
])
def test_times(text: str, ts: float) -> None:
    assert parse_time(text, now=NOW) == ts


@pytest.mark.parametrize("text", ["tomorrow", "2025-13-01", "inf", "-", "5 parsecs"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text, now=NOW)
    with pytest.raises(ValueError):
        parse_duration(text)
