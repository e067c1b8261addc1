"""History → OpenMetrics backfill: the live aggregation, driven through event time.

Events go through the daemon's own parsing and accounting (``Ingestor.decode``), the same
``UsageMetrics`` (built by ``daemon.build_usage``) and the same ``UsageCollector``; at every
``step`` of event time the collector's families are handed to the OpenMetrics writer, exactly as a
scrape would see them. So a family added to the collector later is backfilled with no change here.

Time rules: the sample at time T holds every event with ``ts < T``. Sample times are multiples of
the step, except a last one clamped to ``end``. Events before ``start`` are counted (so values are
the same cumulative totals a live exporter that read the whole files shows) but not sampled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from llm_log_exporter.collector import SELF_PREFIX, UsageCollector
from llm_log_exporter.daemon import Config, build_ingestor, build_usage
from llm_log_exporter.events import Request
from llm_log_exporter.inputs import Source
from llm_log_exporter.metrics import Store
from llm_log_exporter.openmetrics import DEFAULT_RUN_BYTES, OpenMetricsWriter, WriterStats
from llm_log_exporter.timeline import Timeline, TimelineStats

DEFAULT_LIVE_RANGE = 3 * 3600.0  # Prometheus' head block: data a running server already holds


@dataclass
class ReplayOptions:
    step: int = 60
    start: float | None = None
    end: float | None = None
    until_now: bool = False
    live_range: float = DEFAULT_LIVE_RANGE
    max_reorder: float = 300.0
    labels: dict[str, str] = field(default_factory=dict)
    run_bytes: int = DEFAULT_RUN_BYTES
    spool_dir: str | None = None


@dataclass
class ReplayResult:
    timeline: TimelineStats
    writer: WriterStats
    store: Store
    applied: int = 0
    late: int = 0  # applied after a sample that should have held them (out of order > max_reorder)
    after_end: int = 0
    newest_ts: float | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(sum(stats.lines.values()) for stats in self.store.files.values())


def usage_families(collector: UsageCollector) -> list:
    """What a scrape shows of usage: self-metrics describe the replaying process, not history."""
    return [f for f in collector.collect() if not f.name.startswith(SELF_PREFIX + "_")]


def replay(
    config: Config,
    sources: Sequence[Source],
    out: BinaryIO,
    options: ReplayOptions,
    progress: Callable[[int, int], None] | None = None,
    now: float | None = None,
) -> ReplayResult:
    began = time.perf_counter()
    now = time.time() if now is None else now
    store = Store(build_usage(config))
    store.ready.set()
    ingestor = build_ingestor(config, store)
    collector = UsageCollector(store, config.namespace)
    timeline = Timeline(sources, ingestor, options.max_reorder, config.max_line_bytes)
    writer = OpenMetricsWriter(out, options.labels, options.run_bytes, options.spool_dir)
    result = ReplayResult(timeline.stats, writer.stats, store)
    usage = store.usage
    step = options.step
    end = min(options.end, now) if options.end is not None else (now if options.until_now else None)
    first_emit = math.ceil(options.start / step) * step if options.start is not None else None
    emitted: int | None = None  # time of the last sample written
    dirty = False  # events applied since then
    history = False  # events counted before the first sample (a --start cut): no 0 points first

    def boundary(ts: float) -> int:
        return (math.floor(ts / step) + 1) * step

    def snapshot(at: int) -> None:
        nonlocal emitted, dirty
        if not dirty and emitted is not None:
            writer.repeat(at)
        else:
            # New counter / histogram series get a 0 point where they were last sampled as absent.
            zero = emitted if emitted is not None else (None if history else at - step)
            writer.add(usage_families(collector), at, zero)
        emitted = at
        dirty = False

    apply_request = usage.request
    apply = usage.apply
    next_b: int | None = None
    applied = late = after_end = 0
    newest = -math.inf
    for chunk in timeline.chunks():
        for ts, _, event in chunk:
            if end is not None and ts >= end:
                after_end += 1
                continue
            if next_b is None:
                next_b = boundary(ts)
                if first_emit is None:
                    first_emit = next_b
            while next_b <= ts:
                if next_b < first_emit:
                    next_b = min(first_emit, boundary(ts))
                    continue
                snapshot(next_b)
                next_b += step
            if emitted is None:
                if ts < first_emit - step:
                    history = True
            elif ts < emitted:
                late += 1
            if type(event) is Request:
                apply_request(event)
            else:
                apply((event,))
            dirty = True
            if ts > newest:
                newest = ts
        applied += len(chunk)
        if progress is not None:
            progress(timeline.consumed, applied - after_end)
    applied -= after_end
    if next_b is not None:
        if end is not None:
            while next_b <= end:
                if next_b >= first_emit:
                    snapshot(next_b)
                next_b += step
            if end >= first_emit and (emitted is None or (emitted < end and dirty)):
                snapshot(math.floor(end))
        elif next_b >= first_emit:
            snapshot(next_b)
    writer.close()
    if progress is not None:
        progress(timeline.consumed, applied)
    result.applied, result.late, result.after_end = applied, late, after_end
    result.newest_ts = newest if applied else None
    result.seconds = time.perf_counter() - began
    _guard(result, options, now)
    return result


def _guard(result: ReplayResult, options: ReplayOptions, now: float) -> None:
    """Warn when the backfill reaches into time a live exporter (and Prometheus' head) covers."""
    if result.late:
        result.warnings.append(
            f"{result.late} event(s) arrived more than --max-reorder ({options.max_reorder:g} s) behind newer "
            "events of their input; they were counted at the next sample instead of their own"
        )
    if result.timeline.no_time:
        result.warnings.append(f"{result.timeline.no_time} event(s) without ts on stdin could not be placed: skipped")
    if result.applied == 0:
        result.warnings.append("no event in the inputs (or in the window): the backfill holds no samples")
        return
    if result.writer.samples == 0:
        result.warnings.append("every event lies before --start: the backfill holds no samples")
    if options.until_now or options.end is not None or result.newest_ts is None:
        return
    live_from = now - options.live_range
    if result.newest_ts > live_from:
        age = "lies in the future" if result.newest_ts > now else f"is less than {options.live_range / 3600:g} h old"
        result.warnings.append(
            f"the newest event ({iso(result.newest_ts)}) {age}: a live "
            "exporter and Prometheus' head block likely hold that time already, so backfilling it double counts. "
            "Pass --end with the time your live data starts (see docs/replay.md), or --until-now if no live "
            "exporter covers these files."
        )


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
