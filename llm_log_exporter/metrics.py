"""Aggregated metric state: plain dicts keyed by label tuples, updated with float adds.

Per-event ``labels(...).inc()`` on prometheus-client costs 1-2 µs per call; one dict lookup
per event and list-slot adds keep ingestion near the JSON parse limit. The collector turns
this state into metric families at scrape time.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from llm_log_exporter.events import Event, Request

DEFAULT_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
DEFAULT_TTFT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OTHER = "__other__"
MAX_LABEL_LENGTH = 128
_KEY_CACHE_LIMIT = 100_000

# Slots of a per-(tenant, provider, model) record.
REQ_SUCCESS, REQ_FAILURE, TOK_IN, TOK_OUT, TOK_CACHED, TOK_CACHE_WRITE, TOK_REASONING = range(7)
COST, DUR_SUM, DUR_COUNT, TTFT_SUM, TTFT_COUNT, DUR_BUCKETS, TTFT_BUCKETS = range(7, 14)

LabelKey = tuple[str, str, str]  # tenant_id, provider, model

_CONTROL = {c: None for c in range(32)} | {127: None}


def sanitize(value: str, limit: int = MAX_LABEL_LENGTH) -> str:
    """Drop control characters and cap the length so a hostile value cannot bloat a scrape."""
    if value.isprintable() and len(value) <= limit:
        return value
    return value.translate(_CONTROL)[:limit]


class LabelGuard:
    """Bounds the distinct values of one label; the rest fold into ``__other__``."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.seen: set[str] = set()
        self.overflow = 0

    def admit(self, value: str) -> str:
        value = sanitize(value)
        if value in self.seen:
            return value
        if len(self.seen) < self.limit:
            self.seen.add(value)
            return value
        self.overflow += 1
        return OTHER


class UsageMetrics:
    """Usage aggregates fed by events; not thread-safe by itself (see ``Store``)."""

    def __init__(
        self,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        ttft_buckets: Sequence[float] = DEFAULT_TTFT_BUCKETS,
        max_tenants: int = 1000,
        max_models: int = 500,
        max_providers: int = 100,
    ) -> None:
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self.ttft_buckets = tuple(sorted(float(b) for b in ttft_buckets))
        self.guards = {
            "tenant_id": LabelGuard("tenant_id", max_tenants),
            "provider": LabelGuard("provider", max_providers),
            "model": LabelGuard("model", max_models),
        }
        self.records: dict[LabelKey, list] = {}
        self._keys: dict[LabelKey, list] = {}  # raw labels → record (skips sanitizing on the hot path)
        self.cost_unknown: dict[str, int] = {}  # model label → events whose cost nobody could tell

    def _record(self, raw: LabelKey) -> list:
        guards = self.guards
        key = (
            guards["tenant_id"].admit(raw[0]),
            guards["provider"].admit(raw[1]),
            guards["model"].admit(raw[2]),
        )
        record = self.records.get(key)
        if record is None:
            record = [0.0] * DUR_BUCKETS + [[0] * (len(self.buckets) + 1), [0] * (len(self.ttft_buckets) + 1)]
            self.records[key] = record
        if len(self._keys) >= _KEY_CACHE_LIMIT:
            self._keys.clear()
        self._keys[raw] = record
        return record

    def unknown_cost(self, model: str) -> None:
        """An event with tokens but no cost, and no price for its model."""
        label = self.guards["model"].admit(model)
        self.cost_unknown[label] = self.cost_unknown.get(label, 0) + 1

    def apply(self, events: Iterable[Event]) -> None:
        for event in events:
            if type(event) is Request:
                self.request(event)

    def request(self, ev: Request) -> None:
        raw = (ev.tenant_id, ev.provider, ev.model)
        rec = self._keys.get(raw) or self._record(raw)
        if ev.status == "success":
            rec[REQ_SUCCESS] += 1
        else:
            rec[REQ_FAILURE] += 1
        rec[TOK_IN] += ev.prompt_tokens
        rec[TOK_OUT] += ev.completion_tokens
        if ev.cached_tokens:
            rec[TOK_CACHED] += ev.cached_tokens
        if ev.cache_write_tokens:
            rec[TOK_CACHE_WRITE] += ev.cache_write_tokens
        if ev.reasoning_tokens:
            rec[TOK_REASONING] += ev.reasoning_tokens
        if ev.cost_usd is not None:
            rec[COST] += ev.cost_usd
        duration = ev.duration_s
        if duration is not None:
            rec[DUR_SUM] += duration
            rec[DUR_COUNT] += 1
            rec[DUR_BUCKETS][bisect_left(self.buckets, duration)] += 1
        ttft = ev.ttft_s
        if ttft is not None:
            rec[TTFT_SUM] += ttft
            rec[TTFT_COUNT] += 1
            rec[TTFT_BUCKETS][bisect_left(self.ttft_buckets, ttft)] += 1


class FileStats:
    """Self-metrics of one followed file."""

    __slots__ = ("bytes", "invalid", "last_event_ts", "lines", "open_errors", "rotations", "truncations")

    def __init__(self) -> None:
        self.lines: dict[str, int] = {"parsed": 0, "skipped": 0, "invalid": 0}
        self.invalid: dict[str, int] = {}
        self.bytes = 0
        self.rotations = 0
        self.truncations = 0
        self.open_errors = 0
        self.last_event_ts: float | None = None

    def reject(self, reason: str) -> None:
        self.lines["invalid"] += 1
        self.invalid[reason] = self.invalid.get(reason, 0) + 1


class Store:
    """Usage state plus self-metrics behind one lock: taken once per batch and once per scrape."""

    def __init__(self, usage: UsageMetrics) -> None:
        self.lock = threading.Lock()
        self.usage = usage
        self.files: dict[str, FileStats] = {}
        self.ready = threading.Event()

    def file(self, path: str) -> FileStats:
        stats = self.files.get(path)
        if stats is None:
            stats = self.files[path] = FileStats()
        return stats
