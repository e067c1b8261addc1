"""History in event-time order: every input's events, sorted in bounded memory and merged.

Each input is usually already nearly sorted (a writer appends calls as they finish), so each gets
a reorder buffer that holds events for ``max_reorder`` seconds of event time; the inputs are then
merged k-way. An input is opened only when the merge reaches its first timestamp, so a directory
of time-sliced dumps keeps one or two files open, not thousands. An event that arrives more than
``max_reorder`` seconds behind newer events of its input comes out of order; the caller counts it
(``replay`` applies it at the current step, never drops it).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.events import Event, InvalidLine
from llm_log_exporter.history.sources import STDIN, Reader, Source
from llm_log_exporter.parsers import parse_line

log = logging.getLogger("llm_log_exporter")

PEEK_LINES = 1000  # lines read to find an input's first timestamp
MAX_PENDING = 100_000  # events without ts held while looking for an input's first timestamp

Item = tuple[float, int, Event]


@dataclass
class TimelineStats:
    events: int = 0
    without_ts: int = 0  # took a borrowed time (previous event, first event, or file mtime)
    no_time: int = 0  # no ts and nothing to borrow from (stdin without any ts): skipped
    files: int = 0
    read_errors: dict[str, str] = field(default_factory=dict)  # path → message
    oversized: int = 0


def _first_ts(source: Source, parse: Callable, max_line_bytes: int, latest: float = math.inf) -> float:
    """The first event time of an input, read without any accounting; -inf when none is found early.
    Times after ``latest`` are skipped: such lines are rejected (``future_ts``) and must not order the input."""
    if source.path == STDIN:
        return -math.inf
    reader = Reader(source, max_line_bytes)
    seen = 0
    for lines, _, _ in reader.batches():
        for line in lines:
            seen += 1
            try:
                events = parse_line(parse, line)
            except InvalidLine:
                events = []
            for event in events:
                if event.ts is not None and event.ts <= latest:
                    return event.ts
            if seen >= PEEK_LINES:
                return -math.inf
    return -math.inf


class Timeline:
    """Events of all sources in event-time order, as ``(ts, seq, event)``; ``ts`` is never None."""

    def __init__(
        self,
        sources: Sequence[Source],
        ingestor: Ingestor,
        max_reorder: float = 300.0,
        max_line_bytes: int = 1 << 20,
    ) -> None:
        self.sources = list(sources)
        self.ingestor = ingestor
        self.max_reorder = max_reorder
        self.max_line_bytes = max_line_bytes
        self.stats = TimelineStats()
        self.readers: list[Reader] = []  # opened so far, for progress
        self._seq = itertools.count()

    @property
    def consumed(self) -> int:
        return sum(r.consumed for r in self.readers)

    def __iter__(self) -> Iterator[Item]:
        return itertools.chain.from_iterable(self.chunks())

    def chunks(self) -> Iterator[list[Item]]:
        """The same items as iteration, in lists (cheaper to consume than one by one)."""
        if len(self.sources) == 1:
            return self._source_chunks(self.sources[0])
        return self._merged_chunks()

    def _merged_chunks(self, size: int = 4096) -> Iterator[list[Item]]:
        chunk: list[Item] = []
        for item in self._merge():
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _merge(self) -> Iterator[Item]:
        parse = self.ingestor.parse
        latest = self.ingestor.latest_allowed()
        order = sorted(
            ((_first_ts(s, parse, self.max_line_bytes, latest), index, s) for index, s in enumerate(self.sources)),
            key=lambda item: (item[0], item[1]),
        )
        waiting = iter(order)
        upcoming = next(waiting, None)
        heap: list[tuple[float, int, Event, Iterator[Item]]] = []
        reach = self.max_reorder

        def open_next() -> None:
            nonlocal upcoming
            assert upcoming is not None
            stream = itertools.chain.from_iterable(self._source_chunks(upcoming[2]))
            upcoming = next(waiting, None)
            first = next(stream, None)
            if first is not None:
                heapq.heappush(heap, (*first, stream))

        while heap or upcoming is not None:
            if not heap:
                open_next()
                continue
            ts = heap[0][0]
            if upcoming is not None and upcoming[0] <= ts + reach:
                open_next()  # it may hold events at or before ts
                continue
            ts, seq, event, stream = heap[0]
            yield ts, seq, event
            following = next(stream, None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (*following, stream))

    def _source_chunks(self, source: Source) -> Iterator[list[Item]]:
        """One input's events in time order (within ``max_reorder``), borrowed times filled in,
        released in chunks. The buffer is re-sorted per batch: input that is already nearly in
        order costs timsort about one comparison per event, in C."""
        reader = Reader(source, self.max_line_bytes)
        self.readers.append(reader)
        self.stats.files += 1
        stats = self.stats
        seq = self._seq
        decode = self.ingestor.decode
        lock = self.ingestor.store.lock
        reach = self.max_reorder
        buffer: list[Item] = []
        append = buffer.append
        newest = -math.inf
        previous: float | None = None  # time of the previous event in file order
        pending: list[Event] = []  # events without ts before the input's first timestamp
        path = source.path
        for lines, lineno, offset in reader.batches():
            with lock:
                events = decode(path, lines, lineno, offset)
            stats.events += len(events)
            for event in events:
                ts = event.ts
                if ts is None:
                    if previous is None:
                        pending.append(event)
                        if len(pending) >= MAX_PENDING:
                            previous = self._release(source, pending, buffer)
                        continue
                    ts = previous
                    stats.without_ts += 1
                else:
                    if pending:
                        self._settle(pending, ts, buffer)
                    previous = ts
                    if ts > newest:
                        newest = ts
                append((ts, next(seq), event))
            if buffer and buffer[0][0] <= newest - reach:
                buffer.sort()
                cut = bisect.bisect_right(buffer, (newest - reach, math.inf))
                if cut:
                    yield buffer[:cut]
                    del buffer[:cut]
        for message in self._problems(reader):
            log.warning("%s", message)
        if pending:
            self._release(source, pending, buffer)
        if buffer:
            buffer.sort()
            yield buffer

    def _problems(self, reader: Reader) -> list[str]:
        out = []
        name = reader.source.name
        if reader.oversized:
            self.stats.oversized += len(reader.oversized)
            with self.ingestor.store.lock:
                stats = self.ingestor.store.file(reader.source.path)
                for _ in reader.oversized:
                    stats.reject("oversized")
            lineno, offset = reader.oversized[0]
            count = len(reader.oversized)
            out.append(f"{name}:{lineno} (byte {offset}): {count} line(s) over --max-line-bytes skipped")
        if reader.error:
            self.stats.read_errors[reader.source.path] = reader.error
            out.append(f"{name}: reading stopped early: {reader.error}")
        return out

    def _settle(self, pending: list[Event], ts: float, buffer: list[Item]) -> None:
        """Events before the input's first timestamp take that timestamp."""
        for event in pending:
            buffer.append((ts, next(self._seq), event))
        self.stats.without_ts += len(pending)
        pending.clear()

    def _release(self, source: Source, pending: list[Event], buffer: list[Item]) -> float | None:
        """An input without timestamps (so far) takes its file's modification time; stdin cannot."""
        if source.path == STDIN:
            self.stats.no_time += len(pending)
            log.warning("<stdin>: %d event(s) without ts and no earlier time to borrow: skipped", len(pending))
            pending.clear()
            return None
        mtime = os.stat(source.path).st_mtime
        log.warning("%s: %d event(s) without ts placed at the file's modification time", source.name, len(pending))
        self._settle(pending, mtime, buffer)
        return mtime
