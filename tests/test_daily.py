"""Per-day sums (aggregate/daily.py): cut into days of the configured zone, bounded in days and label sets
(with the overflow counted), fed only through Usage.apply, saved and restored by the state file."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from llm_log_exporter.aggregate.daily import Daily
from llm_log_exporter.aggregate.periods import get_zone, named_window, period_bounds
from llm_log_exporter.aggregate.summary import COST, REQUESTS
from llm_log_exporter.aggregate.usage import Usage
from llm_log_exporter.events import Request
from tests.helpers import event_line, metrics_for_files, value

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, zone: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def usage(**kw: object) -> Usage:
    return Usage(daily=Daily(**kw))  # type: ignore[arg-type]


def call(ts: float | None, tenant: str = "t", model: str = "m", cost: float | None = 0.5, **kw: object) -> Request:
    return Request(ts=ts, model=model, provider="p", tenant_id=tenant, prompt_tokens=10, cost_usd=cost, **kw)


def day_totals(u: Usage) -> dict[str, tuple[float, float]]:
    assert u.daily is not None
    return {day: (sum(r[REQUESTS] for r in recs.values()), sum(r[COST] for r in recs.values()))
            for day, recs in u.daily.days.items()}


def test_days_are_cut_at_midnight_of_the_zone_even_across_dst() -> None:
    u = usage(zone=PARIS, buckets=(1.0,))
    # 2025-03-30 has 23 hours in Paris (clocks go forward at 02:00).
    for ts in (at("2025-03-29T23:59:59"), at("2025-03-30T00:00:00"), at("2025-03-30T23:59:00"),
               at("2025-03-31T00:00:01")):
        u.apply(call(ts))
    assert day_totals(u) == {"2025-03-29": (1, 0.5), "2025-03-30": (2, 1.0), "2025-03-31": (1, 0.5)}
    start, end = period_bounds(at("2025-03-30T12:00:00"), "day", PARIS)
    assert end - start == 23 * 3600


def test_an_event_without_ts_lands_on_the_newest_time_seen() -> None:
    u = usage(zone=PARIS)
    u.apply(call(at("2025-07-01T10:00:00")))
    u.apply(call(None))
    assert day_totals(u) == {"2025-07-01": (2, 1.0)}


def test_only_the_newest_days_are_kept() -> None:
    u = usage(zone=PARIS, days=3)
    for day in range(1, 6):
        u.apply(call(at(f"2025-07-0{day}T12:00:00")))
    assert sorted(day_totals(u)) == ["2025-07-03", "2025-07-04", "2025-07-05"]
    u.apply(call(at("2025-07-02T12:00:00")))  # older than the days kept: counted in /metrics, not per day
    assert sorted(day_totals(u)) == ["2025-07-03", "2025-07-04", "2025-07-05"]
    assert u.daily is not None and u.daily.dropped == 1 and u.daily.evicted == 2
    assert sum(rec[0] for rec in u.records.values()) == 6  # requests_success: every call still counted


def test_a_line_far_in_the_future_evicts_no_real_day() -> None:
    u = usage(zone=PARIS, days=2)
    now = time.time()
    u.apply(call(now))
    u.apply(call(now + 400 * 86400))
    assert len(day_totals(u)) == 1 and u.daily is not None and u.daily.dropped == 1


def test_label_sets_per_day_are_bounded_and_the_overflow_is_exported(tmp_path) -> None:
    u = usage(zone=PARIS, max_label_sets=2)
    ts = at("2025-07-01T12:00:00")
    for tenant in ("a", "b", "c", "d", "c"):
        u.apply(call(ts, tenant=tenant))
    assert u.daily is not None
    assert set(u.daily.days["2025-07-01"]) == {("a", "p", "m"), ("b", "p", "m"), ("__other__",) * 3}
    assert day_totals(u)["2025-07-01"] == (5, 2.5)  # the day's total stays exact
    assert u.views()["label_overflow"]["daily_label_set"] == 3
    log = tmp_path / "u.jsonl"
    log.write_text("".join(event_line(ts=ts, model="m", provider="p", tenant_id=t, prompt_tokens=1) for t in "abc"))
    samples = metrics_for_files([log], daily_label_sets=2, tz="UTC")
    assert value(samples, "llm_exporter_label_overflow_total", label="daily_label_set") == 1


def test_dump_and_load_round_trip_and_refuse_other_shapes() -> None:
    u = usage(zone=PARIS, buckets=(1.0, 2.0))
    u.apply(call(at("2025-07-01T12:00:00"), duration_s=1.5, status="failure", error_type="timeout"))
    u.apply(call(at("2025-07-02T12:00:00"), cost=None, cached_tokens=3, reasoning_tokens=2))
    restored = usage(zone=PARIS, buckets=(1.0, 2.0))
    restored.load(u.dump())
    assert restored.daily is not None and u.daily is not None
    assert restored.daily.days == u.daily.days and restored.daily.dump() == u.daily.dump()
    restored.apply(call(at("2025-07-02T13:00:00")))  # goes on counting where it left off
    assert day_totals(restored)["2025-07-02"] == (2, 0.5)
    with pytest.raises(ValueError):
        usage(zone=PARIS, buckets=(1.0,)).load(u.dump())  # other buckets
    with pytest.raises(ValueError):
        usage(zone=PARIS, buckets=(1.0, 2.0), max_label_sets=1).daily.load(  # type: ignore[union-attr]
            {**u.daily.dump(), "days": {"2025-07-01": [["a", "p", "m", *[0] * 12]] * 3}})
    with pytest.raises(ValueError):
        Usage().load(u.dump())  # no per-day sums configured, some saved


def test_named_windows_in_a_zone() -> None:
    now = at("2025-03-01T00:30:00")  # just past midnight in Paris; still February in UTC
    assert named_window("today", now, PARIS) == (at("2025-03-01T00:00:00"), at("2025-03-02T00:00:00"))
    assert named_window("yesterday", now, PARIS) == (at("2025-02-28T00:00:00"), at("2025-03-01T00:00:00"))
    assert named_window("this-month", now, PARIS) == (at("2025-03-01T00:00:00"), at("2025-04-01T00:00:00"))
    assert named_window("last-month", now, PARIS) == (at("2025-02-01T00:00:00"), at("2025-03-01T00:00:00"))
    assert named_window("this-week", now, PARIS) == (at("2025-02-24T00:00:00"), at("2025-03-03T00:00:00"))
    utc = get_zone("UTC")
    assert named_window("this-month", now, utc)[0] == at("2025-02-01T00:00:00", ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="unknown time zone"):
        get_zone("Mars/Olympus_Mons")
