"""Aggregated metric state: plain dicts keyed by label tuples, updated with float adds.

Per-event ``labels(...).inc()`` on prometheus-client costs 1-2 µs per call; one dict lookup
per event and list-slot adds keep ingestion near the JSON parse limit. The collector turns
this state into metric families at scrape time.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from llm_log_exporter.breaker import Breakers
from llm_log_exporter.budgets import Budgets
from llm_log_exporter.events import (
    BreakerState,
    BudgetUsage,
    CacheLookup,
    Event,
    RateLimited,
    Request,
    StreamStart,
)

DEFAULT_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
DEFAULT_TTFT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OTHER = "__other__"
MAX_LABEL_LENGTH = 128
MAX_LABEL_SETS = 10_000
MAX_CALL_ID_LENGTH = 256  # stream starts are keyed by call id: a hostile id must not pin megabytes

# Slots of a per-(tenant, provider, model) record.
REQ_SUCCESS, REQ_FAILURE, TOK_IN, TOK_OUT, TOK_CACHED, TOK_CACHE_WRITE, TOK_REASONING = range(7)
COST, DUR_SUM, DUR_COUNT, TTFT_SUM, TTFT_COUNT, DUR_BUCKETS, TTFT_BUCKETS, KEY = range(7, 15)

LabelKey = tuple[str, str, str]  # tenant_id, provider, model

_CONTROL = {c: None for c in range(32)} | {127: None}


def sanitize(value: str, limit: int = MAX_LABEL_LENGTH) -> str:
    """Drop control characters and cap the length so a hostile value cannot bloat a scrape."""
    if value.isprintable() and len(value) <= limit:
        return value
    return value.translate(_CONTROL)[:limit]


class LabelGuard:
    """Bounds the distinct values of one label; the rest fold into ``__other__``.

    ``overflow`` counts distinct folded values, so it does not depend on how often or through
    which family a value shows up; folded values are remembered up to ``FOLDED_MEMORY`` × the limit
    (beyond that a returning value may be counted again: memory stays bounded under a flood).
    """

    FOLDED_MEMORY = 10

    def __init__(self, name: str, limit: int, max_length: int = MAX_LABEL_LENGTH) -> None:
        self.name = name
        self.limit = limit
        self.max_length = max_length
        self.seen: set[str] = set()
        self.folded: set[str] = set()
        self.overflow = 0

    def admit(self, value: str) -> str:
        value = sanitize(value, self.max_length)
        if value in self.seen:
            return value
        if len(self.seen) < self.limit:
            self.seen.add(value)
            return value
        if value not in self.folded:
            self.overflow += 1
            if len(self.folded) < self.limit * self.FOLDED_MEMORY:
                self.folded.add(value)
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
        breakers: Breakers | None = None,
        budgets: Budgets | None = None,
        stream_timeout: float = 600.0,
        max_streams: int = 10_000,
        max_label_length: int = MAX_LABEL_LENGTH,
        max_label_sets: int = MAX_LABEL_SETS,
    ) -> None:
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self.ttft_buckets = tuple(sorted(float(b) for b in ttft_buckets))
        self.guards = {
            "tenant_id": LabelGuard("tenant_id", max_tenants, max_label_length),
            "provider": LabelGuard("provider", max_providers, max_label_length),
            "model": LabelGuard("model", max_models, max_label_length),
        }
        self.records: dict[LabelKey, list] = {}
        # The per-label limits multiply (1000 x 100 x 500 by default), so the combinations are capped too.
        self.max_label_sets = max_label_sets
        self.label_set_overflow = 0
        self._keys: dict[LabelKey, list] = {}  # raw labels → record (skips sanitizing on the hot path)
        # Bounded, and only short raw values are cached: the cache must not pin hostile megabyte labels.
        self._key_cache_limit = max(1024, 2 * max_label_sets)
        self._cacheable_length = 3 * max_label_length
        # AI-gateway view, keyed by admitted label values.
        self.cache: dict[str, list[int]] = {}  # tenant → [hits, misses]
        self.rate_limits: dict[str, int] = {}  # tenant → rejections
        self.provider_errors: dict[tuple[str, str], int] = {}  # (provider, error_type) → failures
        self.breakers = breakers or Breakers()
        self.budgets = budgets or Budgets()
        self._budgets_active = self.budgets.active  # fixed by the config: checked once, not per event
        self.streams: dict[str, float | None] = {}  # call_id → start time, insertion-ordered
        self.stream_timeout = stream_timeout
        self.max_streams = max_streams
        self.expired_streams = 0
        self.clock: float | None = None  # newest event time seen: the clock of every time rule
        self._kinds = {
            Request: self.request,
            StreamStart: self.stream_start,
            RateLimited: self.rate_limited,
            BreakerState: self.breaker_state,
            BudgetUsage: self.budget,
            CacheLookup: self.cache_lookup,
        }
        self.cost_unknown: dict[str, int] = {}  # model label → events whose cost nobody could tell

    def _record(self, raw: LabelKey) -> list:
        guards = self.guards
        key = (
            guards["tenant_id"].admit(raw[0]),
            guards["provider"].admit(raw[1]),
            guards["model"].admit(raw[2]),
        )
        record = self.records.get(key)
        if record is None and len(self.records) >= self.max_label_sets:
            self.label_set_overflow += 1
            key = (OTHER, OTHER, OTHER)
            record = self.records.get(key)
        if record is None:
            record = [0.0] * DUR_BUCKETS + [
                [0] * (len(self.buckets) + 1),
                [0] * (len(self.ttft_buckets) + 1),
                key,
            ]
            self.records[key] = record
            self.breakers.register(key[1])
        if len(raw[0]) + len(raw[1]) + len(raw[2]) <= self._cacheable_length:
            if len(self._keys) >= self._key_cache_limit:
                self._keys.clear()
            self._keys[raw] = record
        return record

    def unknown_cost(self, model: str) -> None:
        """An event with tokens but no cost, and no price for its model."""
        label = self.guards["model"].admit(model)
        self.cost_unknown[label] = self.cost_unknown.get(label, 0) + 1

    def apply(self, events: Iterable[Event]) -> None:
        kinds = self._kinds
        for event in events:
            kinds[type(event)](event)

    def _tick(self, ts: float | None) -> None:
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts

    def _tenant(self, raw: str) -> str:
        return self.guards["tenant_id"].admit(raw)

    def request(self, ev: Request) -> None:
        (ts, call_id, _model, _provider, _tenant, status, error_type, duration, ttft, _stream,
         prompt, completion, cached, cache_write, reasoning, cost, cache_hit, _price_tier) = ev
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts
        raw = (_tenant, _provider, _model)
        rec = self._keys.get(raw) or self._record(raw)
        key = rec[KEY]
        if status == "success":
            rec[REQ_SUCCESS] += 1
            if key[1] in self.breakers.troubled:
                self.breakers.outcome(key[1], True, None, ts)
        else:
            rec[REQ_FAILURE] += 1
            self._failure(key, error_type or "other", ts)
        if cache_hit is not None:
            counts = self.cache.get(key[0])
            if counts is None:
                counts = self.cache[key[0]] = [0, 0]
            counts[0 if cache_hit else 1] += 1
        if self.streams:
            call_id = call_id[:MAX_CALL_ID_LENGTH]
            if call_id in self.streams:
                del self.streams[call_id]
        rec[TOK_IN] += prompt
        rec[TOK_OUT] += completion
        if cached:
            rec[TOK_CACHED] += cached
        if cache_write:
            rec[TOK_CACHE_WRITE] += cache_write
        if reasoning:
            rec[TOK_REASONING] += reasoning
        if cost is not None:
            rec[COST] += cost
            if self._budgets_active:
                self.budgets.spend(key[0], cost, ts)
        if duration is not None:
            rec[DUR_SUM] += duration
            rec[DUR_COUNT] += 1
            rec[DUR_BUCKETS][bisect_left(self.buckets, duration)] += 1
        if ttft is not None:
            rec[TTFT_SUM] += ttft
            rec[TTFT_COUNT] += 1
            rec[TTFT_BUCKETS][bisect_left(self.ttft_buckets, ttft)] += 1

    def _failure(self, key: LabelKey, error_type: str, ts: float | None) -> None:
        tenant, provider, _ = key
        errors = self.provider_errors
        errors[(provider, error_type)] = errors.get((provider, error_type), 0) + 1
        if error_type == "rate_limit":  # a provider 429 is a rate-limit hit for the tenant too
            self.rate_limits[tenant] = self.rate_limits.get(tenant, 0) + 1
        self.breakers.outcome(provider, False, error_type, ts)

    def stream_start(self, ev: StreamStart) -> None:
        self._tick(ev.ts)
        streams = self.streams
        call_id = ev.call_id[:MAX_CALL_ID_LENGTH]
        streams.pop(call_id, None)
        streams[call_id] = ev.ts if ev.ts is not None else self.clock
        if len(streams) > self.max_streams:
            del streams[next(iter(streams))]
            self.expired_streams += 1

    def expire_streams(self) -> None:
        """Drop starts older than the stream timeout on event time (oldest first)."""
        if self.clock is None or not self.streams:
            return
        cutoff = self.clock - self.stream_timeout
        streams = self.streams
        stale = [call_id for call_id, start in streams.items() if start is not None and start <= cutoff]
        for call_id in stale:
            del streams[call_id]
        self.expired_streams += len(stale)

    def rate_limited(self, ev: RateLimited) -> None:
        self._tick(ev.ts)
        tenant = self._tenant(ev.tenant_id)
        self.rate_limits[tenant] = self.rate_limits.get(tenant, 0) + 1

    def breaker_state(self, ev: BreakerState) -> None:
        self._tick(ev.ts)
        self.breakers.explicit(self.guards["provider"].admit(ev.provider), ev.state)

    def budget(self, ev: BudgetUsage) -> None:
        self._tick(ev.ts)
        self.budgets.set_explicit(self._tenant(ev.tenant_id), ev.spent_usd, ev.limit_usd)

    def cache_lookup(self, ev: CacheLookup) -> None:
        self._tick(ev.ts)
        tenant = self._tenant(ev.tenant_id)
        counts = self.cache.get(tenant)
        if counts is None:
            counts = self.cache[tenant] = [0, 0]
        counts[0 if ev.hit else 1] += 1


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
