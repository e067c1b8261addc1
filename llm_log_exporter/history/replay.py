"""History → OpenMetrics backfill: the live aggregation, driven through event time.

Events go through the daemon's own parsing and accounting (``Ingestor.decode``) and the same ``Usage``
(``apply``), all built by the CLI exactly as for the daemon. At every ``step`` of event time that saw
events, the series they changed are rendered from the state (``render.Renderer``) and written; a series
that did not change is written again only when its last sample is about to fall out of Prometheus'
lookback window (``lookback``, 5 min by default), so an instant query at any time finds every series,
as if it had been scraped, with a fraction of the samples.

Time rules: the sample at time T holds every event with ``ts < T``. Change samples are at multiples of
the step; re-emitted ones at multiples of the *tick* (the step, or for a step longer than the lookback
its largest divisor within it), repeating the value of the last step. Events before ``start`` are
counted (the values are the cumulative totals a live exporter that read the whole files shows) but
not sampled. Every series gets a last sample at the end (the step after the last event, or ``end``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.events import Event
from llm_log_exporter.exposition.collector import FamilyCollector
from llm_log_exporter.history.backfill import (
    BLOCK_SECONDS,
    DEFAULT_RUN_BYTES,
    OpenMetricsWriter,
    WindowSink,
    WriterStats,
)
from llm_log_exporter.history.render import Point, Renderer
from llm_log_exporter.history.sources import Source
from llm_log_exporter.history.timeline import Timeline, TimelineStats

DEFAULT_LIVE_RANGE = 3 * 3600.0  # Prometheus' head block: data a running server already holds
DEFAULT_LOOKBACK = 300  # Prometheus' --query.lookback-delta default
MAX_LOOKBACK = BLOCK_SECONDS  # a zero point reaches back one tick at most: at most one window back

Progress = Callable[[int, int, float | None], None]  # (bytes read, events applied, event time reached)


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
    lookback: int = DEFAULT_LOOKBACK


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


def tick_of(step: int, lookback: int) -> int:
    """The grid unchanged series are re-emitted on: the step, or its largest divisor within the lookback."""
    if step <= lookback:
        return step
    return max(d for d in range(1, lookback + 1) if step % d == 0)


class Sampler:
    """When samples are written: changes at step boundaries, re-emission before the lookback runs out,
    and every series once at the end."""

    def __init__(self, renderer: Renderer, writer: OpenMetricsWriter, step: int, lookback: int,
                 first_emit: float | None, after_step: Callable[[], None] | None = None) -> None:
        self.renderer = renderer
        self.writer = writer
        self.step = step
        self.tick = tick_of(step, lookback)
        self.period = self.tick * (lookback // self.tick)  # re-emission period: ≤ lookback, on the tick grid
        self.first_emit = first_emit
        self.queue: deque[tuple[int, list[Point]]] = deque()  # (due, points written at due - period)
        self.dirty = False  # events applied since the last step boundary sampled
        self.events: list[Event] = []  # ... and which (once sampling started: before, all is rendered)
        self.boundary: float = math.inf  # the step boundary the pending changes are due at
        self.last_time: float = -math.inf  # the last time samples were written at
        self.due: float = math.inf  # the next time anything is due
        self.started = False  # the first sample is written
        self.history = False  # events counted before the first sample (a --start cut): no 0 points first
        self.late = 0
        self.after_step = after_step  # the caller's, after each step's samples (the heap policy: heap.py)

    def changed(self, ts: float, event: Event) -> None:
        """An event at ``ts`` was applied."""
        if not self.dirty:
            self._open(ts)
        elif ts < self.last_time:
            self.late += 1
        if self.started:
            self.events.append(event)

    def _open(self, ts: float) -> None:
        self.dirty = True
        if ts < self.last_time:  # a sample at or after ts was written: this event misses it
            self.late += 1
        boundary = (math.floor(max(ts, self.last_time) / self.step) + 1) * self.step
        if self.first_emit is None:
            self.first_emit = boundary
        elif not self.started and ts < self.first_emit - self.step:
            self.history = True
        self.boundary = max(boundary, self.first_emit)
        if self.boundary < self.due:
            self.due = self.boundary

    def advance(self, ts: float) -> None:
        """Write everything due at or before ``ts`` (an event at ``ts`` comes next)."""
        queue = self.queue
        while True:
            at = min(queue[0][0] if queue else math.inf, self.boundary)
            if at > ts:
                break
            self._at(int(at))
        self.due = min(queue[0][0] if queue else math.inf, self.boundary)

    def _at(self, at: int) -> None:
        self.last_time = at
        written = self._changes(at) if at == self.boundary else []
        queue = self.queue
        repeat = self.writer.repeat
        since = at - self.period
        while queue and queue[0][0] == at:
            written += repeat(queue.popleft()[1], at, since)
        if written:
            queue.append((at + self.period, written))
        if self.after_step is not None:
            self.after_step()

    def _changes(self, at: int) -> list[Point]:
        changed, entries, new = self.renderer.changes(self.events, full=not self.started)
        if new:
            self.writer.register(new)
            if self.started or not self.history:
                self.writer.zeros(new, math.ceil(at / self.tick) * self.tick - self.tick)
        self.writer.write(changed, entries, at)
        self.started = True
        self.dirty = False
        self.events = []
        self.boundary = math.inf
        return changed

    def finish(self, end: float | None) -> None:
        """The last samples: up to ``end`` (the last one at ``end``), or at the step boundary after the
        last event; every series is written at that last time."""
        if self.first_emit is None:
            return
        final = math.floor(end) if end is not None else self.boundary
        if final == math.inf or final < self.first_emit:
            return
        self.advance(final - 0.5)
        if self.dirty:
            self._changes(final)
        self.writer.last(self.renderer.points, final)


def replay(
    store: Store,
    ingestor: Ingestor,
    collector: FamilyCollector,
    sources: Sequence[Source],
    out: BinaryIO | WindowSink,
    options: ReplayOptions,
    max_line_bytes: int = 1 << 20,
    progress: Progress | None = None,
    now: float | None = None,
    after_step: Callable[[], None] | None = None,
) -> ReplayResult:
    """Read ``sources`` in event-time order through ``ingestor`` into ``store`` and write the backfill
    to ``out``: one OpenMetrics stream, or a window per Prometheus block handed to a ``WindowSink``.
    ``after_step`` is called after each time samples were written at."""
    began = time.perf_counter()
    now = time.time() if now is None else now
    if not 1 <= options.lookback <= MAX_LOOKBACK:
        raise ValueError(f"the lookback must be between 1 s and {MAX_LOOKBACK} s")
    ingestor.wall = lambda: now  # --max-future-skew is measured from the replay's now, as live from the clock
    store.ready.set()
    timeline = Timeline(sources, ingestor, options.max_reorder, max_line_bytes)
    renderer = Renderer(store.usage, collector, options.labels)
    if isinstance(out, WindowSink):
        writer = OpenMetricsWriter(None, renderer.headers, options.run_bytes, options.spool_dir, out.window, out)
    else:
        writer = OpenMetricsWriter(out, renderer.headers, options.run_bytes, options.spool_dir)
    result = ReplayResult(timeline.stats, writer.stats, store)
    step = options.step
    end = min(options.end, now) if options.end is not None else (now if options.until_now else None)
    first_emit = math.ceil(options.start / step) * step if options.start is not None else None
    sampler = Sampler(renderer, writer, step, options.lookback, first_emit, after_step)
    handlers = store.usage.handlers
    changed = sampler.changed
    applied = after_end = 0
    newest = -math.inf
    try:
        for chunk in timeline.chunks():
            due = sampler.due
            for ts, _, event in chunk:
                if end is not None and ts >= end:
                    after_end += 1
                    continue
                if ts >= due:
                    sampler.advance(ts)
                    due = sampler.due
                handlers[type(event)](event)
                changed(ts, event)
                due = sampler.due
                if ts > newest:
                    newest = ts
            applied += len(chunk)
            if progress is not None:
                progress(timeline.consumed, applied - after_end, newest if newest > -math.inf else None)
        applied -= after_end
        if newest > -math.inf:  # LiteLLM payloads still waiting for a later attempt of their call: none will come
            for request in store.usage.settle_all():
                changed(newest, request)
        sampler.finish(end)
        writer.close()
    finally:
        writer.cleanup()
    if progress is not None:
        progress(timeline.consumed, applied, newest if applied else None)
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
