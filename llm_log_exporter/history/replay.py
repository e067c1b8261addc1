"""History → OpenMetrics backfill: the live aggregation, driven through event time.

Events go through the daemon's own parsing and accounting (``Ingestor.decode``), the same ``Usage``
(``apply``) and the same family collector, all built by the CLI exactly as for the daemon; at every
``step`` of event time the collector's usage families are handed to the OpenMetrics writer, exactly as a
scrape would see them. So a family added to the table later is backfilled with no change here.

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

from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.exposition.collector import FamilyCollector, usage_families
from llm_log_exporter.history.backfill import DEFAULT_RUN_BYTES, OpenMetricsWriter, WriterStats
from llm_log_exporter.history.sources import Source
from llm_log_exporter.history.timeline import Timeline, TimelineStats

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


class _Sampler:
    """Takes the snapshots of one replay: when event time crosses a step boundary, and at the end."""

    def __init__(self, writer: OpenMetricsWriter, collector: FamilyCollector, step: int,
                 first_emit: float | None) -> None:
        self.writer = writer
        self.collector = collector
        self.step = step
        self.first_emit = first_emit
        self.next_b: float | None = None  # the next boundary a snapshot is due at
        self.emitted: int | None = None  # time of the last sample written
        self.dirty = False  # events applied since then
        self.history = False  # events counted before the first sample (a --start cut): no 0 points first
        self.late = 0  # events applied after a sample that should have held them

    def _boundary(self, ts: float) -> int:
        return (math.floor(ts / self.step) + 1) * self.step

    def snapshot(self, at: int) -> None:
        if not self.dirty and self.emitted is not None:
            self.writer.repeat(at)
        else:
            # New counter / histogram series get a 0 point where they were last sampled as absent.
            zero = self.emitted if self.emitted is not None else (None if self.history else at - self.step)
            self.writer.add(usage_families(self.collector), at, zero)
        self.emitted = at
        self.dirty = False

    def before(self, ts: float) -> None:
        """An event at ``ts`` comes next: take the snapshots due before it."""
        if self.next_b is None:
            self.next_b = self._boundary(ts)
            if self.first_emit is None:
                self.first_emit = self.next_b
        first_emit = self.first_emit
        while self.next_b <= ts:
            if self.next_b < first_emit:
                self.next_b = min(first_emit, self._boundary(ts))
                continue
            self.snapshot(self.next_b)
            self.next_b += self.step
        if self.emitted is None:
            if ts < first_emit - self.step:
                self.history = True
        elif ts < self.emitted:
            self.late += 1

    def finish(self, end: float | None) -> None:
        """The snapshots after the last event: up to ``end``, or the one boundary that holds it."""
        if self.next_b is None:
            return
        first_emit = self.first_emit
        assert first_emit is not None
        if end is not None:
            while self.next_b <= end:
                if self.next_b >= first_emit:
                    self.snapshot(self.next_b)
                self.next_b += self.step
            if end >= first_emit and (self.emitted is None or (self.emitted < end and self.dirty)):
                self.snapshot(math.floor(end))
        elif self.next_b >= first_emit:
            self.snapshot(self.next_b)


def replay(
    store: Store,
    ingestor: Ingestor,
    collector: FamilyCollector,
    sources: Sequence[Source],
    out: BinaryIO,
    options: ReplayOptions,
    max_line_bytes: int = 1 << 20,
    progress: Callable[[int, int], None] | None = None,
    now: float | None = None,
) -> ReplayResult:
    """Read ``sources`` in event-time order through ``ingestor`` into ``store`` and write the backfill."""
    began = time.perf_counter()
    now = time.time() if now is None else now
    store.ready.set()
    timeline = Timeline(sources, ingestor, options.max_reorder, max_line_bytes)
    writer = OpenMetricsWriter(out, options.labels, options.run_bytes, options.spool_dir)
    result = ReplayResult(timeline.stats, writer.stats, store)
    step = options.step
    end = min(options.end, now) if options.end is not None else (now if options.until_now else None)
    first_emit = math.ceil(options.start / step) * step if options.start is not None else None
    sampler = _Sampler(writer, collector, step, first_emit)
    handlers = store.usage.handlers
    applied = after_end = 0
    newest = -math.inf
    for chunk in timeline.chunks():
        for ts, _, event in chunk:
            if end is not None and ts >= end:
                after_end += 1
                continue
            sampler.before(ts)
            handlers[type(event)](event)
            sampler.dirty = True
            if ts > newest:
                newest = ts
        applied += len(chunk)
        if progress is not None:
            progress(timeline.consumed, applied - after_end)
    applied -= after_end
    store.usage.settle_all()  # LiteLLM payloads still waiting for a later attempt of their call: none will come
    sampler.dirty = True
    sampler.finish(end)
    writer.close()
    if progress is not None:
        progress(timeline.consumed, applied)
    result.applied, result.late, result.after_end = applied, sampler.late, after_end
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
