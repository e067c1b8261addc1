"""Scrape-time view of the store: a custom collector yielding metric families.

Values are copied under the store lock (short), families are built outside it, so a scrape
never holds up ingestion for longer than the copy.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from llm_log_exporter import __version__
from llm_log_exporter.exposition import CounterRows, HistogramRows
from llm_log_exporter.metrics import (
    COST,
    DUR_BUCKETS,
    DUR_COUNT,
    DUR_SUM,
    REQ_FAILURE,
    REQ_SUCCESS,
    TOK_CACHE_WRITE,
    TOK_CACHED,
    TOK_IN,
    TOK_OUT,
    TOK_REASONING,
    TTFT_BUCKETS,
    TTFT_COUNT,
    TTFT_SUM,
    Store,
)

USAGE_LABELS = ["tenant_id", "provider", "model"]
SELF_PREFIX = "llm_exporter"


def _les(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """Bucket bounds as ``le`` texts, once per scrape rather than once per series."""
    return tuple(floatToGoString(bound) for bound in (*bounds, float("inf")))


def _cumulative(les: tuple[str, ...], counts: list[int]) -> list[tuple[str, float]]:
    out = []
    total = 0
    for le, count in zip(les, counts, strict=True):
        total += count
        out.append((le, total))
    return out


class UsageCollector(Collector):
    def __init__(self, store: Store, namespace: str = "llm") -> None:
        self.store = store
        self.ns = namespace

    def collect(self) -> Iterator[Metric]:
        yield from self._self_metrics()
        if self.store.ready.is_set():
            yield from self._usage()

    def _usage(self) -> Iterator[Metric]:
        usage = self.store.usage
        with self.store.lock:
            records = [(key, [*rec[:DUR_BUCKETS], list(rec[DUR_BUCKETS]), list(rec[TTFT_BUCKETS])])
                       for key, rec in usage.records.items()]
            overflow = {name: guard.overflow for name, guard in usage.guards.items()}
            overflow["label_set"] = usage.label_set_overflow
            usage.expire_streams()
            gateway = (
                {tenant: list(counts) for tenant, counts in usage.cache.items()},
                dict(usage.rate_limits),
                dict(usage.provider_errors),
                usage.breakers.states(usage.clock),
                len(usage.streams),
                usage.budgets.ratios(usage.clock),
                usage.expired_streams,
            )
            cost_unknown = dict(usage.cost_unknown)
        ns = self.ns
        requests = CounterRows(
            f"{ns}_requests", "LLM requests by final status.", labels=[*USAGE_LABELS, "status"]
        )
        tokens = CounterRows(
            f"{ns}_tokens", "Tokens by type (input, output); sum over type is total tokens.",
            labels=[*USAGE_LABELS, "type"],
        )
        cached = CounterRows(
            f"{ns}_cached_tokens", "Input tokens read from the provider's prompt cache (subset of input).",
            labels=USAGE_LABELS,
        )
        cache_write = CounterRows(
            f"{ns}_cache_write_tokens", "Input tokens written to the provider's prompt cache (subset of input).",
            labels=USAGE_LABELS,
        )
        reasoning = CounterRows(
            f"{ns}_reasoning_tokens", "Reasoning tokens (subset of output).", labels=USAGE_LABELS
        )
        cost = CounterRows(
            f"{ns}_cost_usd", "Cost in US dollars of calls whose cost is known.", labels=USAGE_LABELS
        )
        duration = HistogramRows(
            f"{ns}_request_duration_seconds", "LLM request duration in seconds.", labels=USAGE_LABELS
        )
        ttft = HistogramRows(
            f"{ns}_time_to_first_token_seconds", "Time to first token of streaming calls, in seconds.",
            labels=USAGE_LABELS,
        )
        buckets, ttft_buckets = _les(usage.buckets), _les(usage.ttft_buckets)
        for key, rec in records:
            labels = list(key)
            requests.add_metric([*labels, "success"], rec[REQ_SUCCESS])
            requests.add_metric([*labels, "failure"], rec[REQ_FAILURE])
            tokens.add_metric([*labels, "input"], rec[TOK_IN])
            tokens.add_metric([*labels, "output"], rec[TOK_OUT])
            cached.add_metric(labels, rec[TOK_CACHED])
            cache_write.add_metric(labels, rec[TOK_CACHE_WRITE])
            reasoning.add_metric(labels, rec[TOK_REASONING])
            cost.add_metric(labels, rec[COST])
            if rec[DUR_COUNT]:
                duration.add_metric(labels, _cumulative(buckets, rec[DUR_BUCKETS]), rec[DUR_SUM])
            if rec[TTFT_COUNT]:
                ttft.add_metric(labels, _cumulative(ttft_buckets, rec[TTFT_BUCKETS]), rec[TTFT_SUM])
        yield from (requests, duration, ttft, tokens, cached, cache_write, reasoning, cost)
        yield from self._gateway(*gateway)
        folded = CounterMetricFamily(
            f"{SELF_PREFIX}_label_overflow", "Distinct label values folded into __other__ by the cardinality limits.",
            labels=["label"],
        )
        for name, value in overflow.items():
            folded.add_metric([name], value)
        yield folded
        unpriced = CounterMetricFamily(
            f"{SELF_PREFIX}_cost_unknown", "Events with tokens but no cost and no price for their model.",
            labels=["model"],
        )
        for model, value in cost_unknown.items():
            unpriced.add_metric([model], value)
        yield unpriced

    def _gateway(
        self,
        cache: dict[str, list[int]],
        rate_limits: dict[str, int],
        errors: dict[tuple[str, str], int],
        breakers: dict[str, int],
        active_streams: int,
        budgets: dict[str, float],
        expired_streams: int,
    ) -> Iterator[Metric]:
        ns = self.ns
        hits = CounterMetricFamily(f"{ns}_cache_hits", "Responses served from a cache.", labels=["tenant_id"])
        misses = CounterMetricFamily(f"{ns}_cache_misses", "Cache lookups that missed.", labels=["tenant_id"])
        for tenant, (hit, miss) in cache.items():
            hits.add_metric([tenant], hit)
            misses.add_metric([tenant], miss)
        limited = CounterMetricFamily(
            f"{ns}_rate_limit_hits", "Requests rejected by a rate limit (gateway or provider 429).",
            labels=["tenant_id"],
        )
        for tenant, count in rate_limits.items():
            limited.add_metric([tenant], count)
        breaker = GaugeMetricFamily(
            f"{ns}_circuit_breaker_state", "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
            labels=["provider"],
        )
        for provider, state in breakers.items():
            breaker.add_metric([provider], state)
        provider_errors = CounterMetricFamily(
            f"{ns}_provider_errors", "Failed LLM calls by provider and error type.", labels=["provider", "error_type"]
        )
        for (provider, error_type), count in errors.items():
            provider_errors.add_metric([provider, error_type], count)
        streams = GaugeMetricFamily(f"{ns}_active_streams", "Streaming calls started and not yet finished.")
        streams.add_metric([], active_streams)
        budget = GaugeMetricFamily(
            f"{ns}_budget_usage_ratio", "Spend in the current budget period / limit (above 1 when over budget).",
            labels=["tenant_id"],
        )
        for tenant, ratio in budgets.items():
            budget.add_metric([tenant], ratio)
        expired = CounterMetricFamily(
            f"{SELF_PREFIX}_expired_streams", "Stream starts dropped without an end (timeout or table limit)."
        )
        expired.add_metric([], expired_streams)
        yield from (hits, misses, limited, breaker, provider_errors, streams, budget, expired)

    def _self_metrics(self) -> Iterator[Metric]:
        with self.store.lock:
            files = [
                (path, dict(st.lines), dict(st.invalid), st.bytes, st.rotations, st.truncations,
                 st.open_errors, st.last_event_ts)
                for path, st in self.store.files.items()
            ]
        p = SELF_PREFIX
        lines = CounterMetricFamily(f"{p}_lines", "Lines read by file and result.", labels=["file", "result"])
        invalid = CounterMetricFamily(
            f"{p}_invalid_lines", "Rejected lines by file and reason.", labels=["file", "reason"]
        )
        nbytes = CounterMetricFamily(f"{p}_read_bytes", "Bytes read by file.", labels=["file"])
        rotations = CounterMetricFamily(f"{p}_rotations", "File rotations noticed.", labels=["file"])
        truncations = CounterMetricFamily(f"{p}_truncations", "File truncations noticed.", labels=["file"])
        open_errors = CounterMetricFamily(f"{p}_open_errors", "Failed attempts to open a file.", labels=["file"])
        last_ts = GaugeMetricFamily(
            f"{p}_last_event_timestamp_seconds", "Newest event time seen in a file (epoch seconds).",
            labels=["file"],
        )
        for path, by_result, by_reason, read, rot, trunc, errs, ts in files:
            for result, value in by_result.items():
                lines.add_metric([path, result], value)
            for reason, value in by_reason.items():
                invalid.add_metric([path, reason], value)
            nbytes.add_metric([path], read)
            rotations.add_metric([path], rot)
            truncations.add_metric([path], trunc)
            open_errors.add_metric([path], errs)
            if ts is not None:
                last_ts.add_metric([path], ts)
        ready = GaugeMetricFamily(f"{p}_ready", "1 once the initial read of existing files has finished.")
        ready.add_metric([], 1.0 if self.store.ready.is_set() else 0.0)
        # A gauge named *_build_info with value 1, the node_exporter convention.
        info = GaugeMetricFamily(f"{p}_build_info", "Build information.", labels=["version", "python"])
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield from (lines, invalid, nbytes, rotations, truncations, open_errors, last_ts, ready, info)
