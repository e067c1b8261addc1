"""Per-day usage the daemon keeps as it reads: the numbers of the landing page and of ``/api/v1/usage``.

Prometheus answers "how much today" only if one runs it; a solo user has the exporter alone. So the
daemon also sums every request by calendar day (in ``--tz``) and label set (tenant_id, provider, model,
as admitted by the label limits), with the sums ``report`` shows (``summary.COUNTS``) and a duration
histogram on the daemon's ``--buckets``. It is fed by ``Usage.request`` (the one way an event changes the
state, so a state-file restart, a replay of the files and live reading count alike) and saved in the
state file.

Bounded like every label set: the newest ``--daily-days`` days are kept (by event time; older days are
dropped as newer ones arrive) and a day holds at most ``--daily-label-sets`` label sets, the rest fold into
one ``__other__`` row of that day (counted in ``llm_exporter_label_overflow_total{label="daily_label_set"}``).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from datetime import date, timedelta, tzinfo
from typing import Any

from llm_log_exporter.aggregate import codec
from llm_log_exporter.aggregate.labels import OTHER
from llm_log_exporter.aggregate.periods import UTC, period_bounds, period_label
from llm_log_exporter.aggregate.summary import (
    CACHE_WRITE,
    CACHED,
    COST,
    COUNTS,
    FAILED,
    INPUT,
    NO_COST,
    OUTPUT,
    REASONING,
    REQUESTS,
)

DEFAULT_DAYS = 62  # this month and last month, whatever the day
DEFAULT_LABEL_SETS = 1000
FUTURE_SLACK = 86400.0  # a day more than a day ahead of the wall clock is not kept (it would evict real days)
_WIDTH = len(COUNTS)
_FOLDED = (OTHER, OTHER, OTHER)

LabelKey = tuple[str, str, str]
DayRecords = dict[LabelKey, list]  # label set → [*COUNTS, *duration bucket counts]


class Daily:
    """Day → label set → sums; not thread-safe by itself (the store's lock guards it, as for ``Usage``)."""

    def __init__(self, zone: tzinfo = UTC, days: int = DEFAULT_DAYS, max_label_sets: int = DEFAULT_LABEL_SETS,
                 buckets: Sequence[float] = ()) -> None:
        if days < 1 or max_label_sets < 1:
            raise ValueError("days and label sets must be at least 1")
        self.zone = zone
        self.keep_days = days
        self.max_label_sets = max_label_sets
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self.days: dict[str, DayRecords] = {}  # ISO date → records
        self.overflow = 0  # requests folded into a day's __other__ row
        self.dropped = 0  # requests older than the days kept, or too far in the future
        self.evicted = 0  # days dropped to keep --daily-days
        self._cutoff = ""  # the oldest day kept ("" before any)
        self._lo = self._hi = 0.0  # the bounds of the day last written to, and its records
        self._current: DayRecords | None = None

    # ----------------------------------------------------------------- feeding (Usage.request)

    def request(self, key: LabelKey, ts: float | None, status: str, prompt: int, completion: int, cached: int,
                cache_write: int, reasoning: int, cost: float | None, duration: float | None) -> None:
        if ts is None:
            ts = time.time()  # no event time anywhere yet: the moment it was read
        records = self._current if self._lo <= ts < self._hi else self._day(ts)
        if records is None:
            self.dropped += 1
            return
        rec = records.get(key)
        if rec is None:
            rec = self._new_record(records, key)
        rec[REQUESTS] += 1
        if status != "success":
            rec[FAILED] += 1
        rec[INPUT] += prompt
        rec[OUTPUT] += completion
        if cached:
            rec[CACHED] += cached
        if cache_write:
            rec[CACHE_WRITE] += cache_write
        if reasoning:
            rec[REASONING] += reasoning
        if cost is None:
            rec[NO_COST] += 1
        else:
            rec[COST] += cost
        if duration is not None:
            rec[_WIDTH + bisect_left(self.bounds, duration)] += 1

    def _new_record(self, records: DayRecords, key: LabelKey) -> list:
        if len(records) >= self.max_label_sets:
            self.overflow += 1
            key = _FOLDED
            rec = records.get(key)
            if rec is not None:
                return rec
        rec = records[key] = [0.0] * _WIDTH + [0] * (len(self.bounds) + 1)
        return rec

    def _day(self, ts: float) -> DayRecords | None:
        """The records of the day holding ``ts`` (made, and older days dropped, when it is new)."""
        lo, hi = period_bounds(ts, "day", self.zone)
        label = period_label(ts, "day", self.zone)
        if label < self._cutoff:
            return None
        records = self.days.get(label)
        if records is None:
            if lo > time.time() + FUTURE_SLACK:
                return None
            records = self.days[label] = {}
            self._prune()
            if label not in self.days:
                return None
        self._lo, self._hi, self._current = lo, hi, records
        return records

    def _prune(self) -> None:
        newest = date.fromisoformat(max(self.days))
        cutoff = (newest - timedelta(days=self.keep_days - 1)).isoformat()
        if cutoff > self._cutoff:
            self._cutoff = cutoff
            for label in [d for d in self.days if d < cutoff]:
                del self.days[label]
                self.evicted += 1
            self._lo = self._hi = 0.0  # the cached day may be gone
            self._current = None

    # ----------------------------------------------------------------- the state file

    def dump(self) -> dict[str, Any]:
        return {
            "counts": list(COUNTS),
            "buckets": len(self.bounds) + 1,
            "days": {day: [[*key, *rec] for key, rec in records.items()] for day, records in self.days.items()},
            "overflow": self.overflow,
            "dropped": self.dropped,
            "evicted": self.evicted,
        }

    def load(self, data: Any) -> None:
        """Restore a dump; ``ValueError``/``TypeError``/``KeyError`` on anything that does not fit."""
        if data["counts"] != list(COUNTS) or data["buckets"] != len(self.bounds) + 1:
            raise ValueError("daily records hold other values than this version keeps")
        width = 3 + _WIDTH + len(self.bounds) + 1
        days: dict[str, DayRecords] = {}
        for day, rows in data["days"].items():
            date.fromisoformat(codec.text(day))
            if len(rows) > self.max_label_sets + 1:
                raise ValueError(f"day {day} holds more label sets than --daily-label-sets allows")
            records: DayRecords = {}
            for row in rows:
                if len(row) != width:
                    raise ValueError(f"a record of day {day} has the wrong shape")
                key = (codec.text(row[0]), codec.text(row[1]), codec.text(row[2]))
                records[key] = [*(float(codec.number(v)) for v in row[3:3 + _WIDTH]),
                                *(codec.count(v) for v in row[3 + _WIDTH:])]
            days[day] = records
        self.days = dict(sorted(days.items()))
        self.overflow = codec.count(data["overflow"])
        self.dropped = codec.count(data["dropped"])
        self.evicted = codec.count(data["evicted"])
        if self.days:
            self._prune()
