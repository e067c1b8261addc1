"""OpenMetrics text with timestamps, for ``promtool tsdb create-blocks-from openmetrics``.

Input: points (``render.Point``) written at non-decreasing times. Output: expositions in which, as the
format requires, families are not interleaved, a series' samples are contiguous and in increasing
time, and each ends with ``# EOF``: one file (``-o``), or one file per time window (``--tsdb``: a
window per Prometheus block, so promtool reads each sample once).

Samples arrive time-major but the text is series-major, so this is a transpose: each point keeps its
entries and times of the current buffer, made into text only when written (``Point.text``); past
``run_bytes`` (their text size, about) they are spilled as a sorted run to a temporary file,
and the runs are merged when the buffer is written. Memory stays bounded whatever the length of
history; disk use is about the buffer's text size.
"""

from __future__ import annotations

import heapq
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, BinaryIO

from llm_log_exporter.history.render import Point

ENTRY = attrgetter("entry")
DEFAULT_RUN_BYTES = 256 << 20
BLOCK_SECONDS = 7200  # Prometheus' block range (2 h), which promtool aligns its blocks to
# The block lengths promtool writes with --max-block-duration (Prometheus' compaction ranges, 2 h × 3^k).
BLOCK_RANGES = (BLOCK_SECONDS, 3 * BLOCK_SECONDS, 9 * BLOCK_SECONDS, 27 * BLOCK_SECONDS)


@dataclass
class WriterStats:
    samples: int = 0
    points: int = 0  # histogram points count once
    series: int = 0
    runs: int = 0
    windows: int = 0
    bytes: int = 0
    first_ts: int | None = None
    last_ts: int | None = None


class WindowSink:
    """Where the windows of a ``--tsdb`` replay go: ``path`` names each window's file, ``done`` takes it over.
    ``window``: their length in seconds (windows are aligned to multiples of it)."""

    window: int = BLOCK_SECONDS

    def path(self, start: int) -> str:
        raise NotImplementedError

    def done(self, path: str, start: int, end: int) -> None:
        raise NotImplementedError


class OpenMetricsWriter:
    """Collects samples with ``write``/``repeat``/``zeros`` and writes the exposition(s).

    With ``window`` (seconds), samples of each window ``[k·window, (k+1)·window)`` go to their own file,
    handed to ``sink`` once complete; otherwise everything goes to ``out`` on ``close``.
    """

    def __init__(
        self,
        out: BinaryIO | None,
        headers: Sequence[bytes],
        run_bytes: int = DEFAULT_RUN_BYTES,
        spool_dir: str | None = None,
        window: int | None = None,
        sink: WindowSink | None = None,
    ) -> None:
        if (out is None) == (window is None):
            raise ValueError("give either an output stream or a window length")
        self.out = out
        self.headers = headers
        self.run_bytes = run_bytes
        self.spool_dir = spool_dir
        self.window = window
        self.sink = sink
        self.stats = WriterStats()
        self._touched: list[Point] = []  # points with texts in the current buffer
        self._size = 0
        self._runs: list[str] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._start = -math.inf  # the current buffer's window (with windows: none before the first sample)
        self._end = math.inf if window is None else -math.inf

    @property
    def spool(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="llm-replay-", dir=self.spool_dir)
        return self._tmp.name

    # --- samples (the hot path) -------------------------------------------------------------------

    def _at(self, ts: int) -> str:
        if not self._start <= ts < self._end:
            self._roll(ts)
        stats = self.stats
        if stats.first_ts is None:
            stats.first_ts = ts
        stats.last_ts = ts
        return f" {ts}\n"

    def write(self, points: list[Point], entries: list[Any], ts: int) -> None:
        """``points`` at ``ts``, with ``entries`` (their value texts, in the same order)."""
        if not points:
            return
        suffix = self._at(ts)
        touched = self._touched
        size = 0
        for point, entry in zip(points, entries, strict=True):
            point.entry = entry
            buffered = point.entries
            if not buffered:
                touched.append(point)
            buffered.append(entry)
            point.times.append(suffix)
            size += point.size
            point.last = ts
        self._count(len(points), size)

    def repeat(self, points: list[Point], ts: int, since: int) -> list[Point]:
        """The points of ``points`` last written at ``since`` and still shown, unchanged, again at ``ts``
        (re-emission before Prometheus' lookback loses them); returns them."""
        done = [point for point in points if point.last == since and not point.gone]
        self.write(done, list(map(ENTRY, done)), ts)
        return done

    def last(self, points: list[Point], ts: int) -> None:
        """Every shown point not written at ``ts`` yet, again at ``ts``: the end of the backfill."""
        points = [p for p in points if p.last is not None and p.last != ts and not p.gone]
        self.write(points, list(map(ENTRY, points)), ts)

    def zeros(self, points: list[Point], ts: int) -> None:
        """A 0 point at ``ts`` for each new counter and histogram of ``points`` (before their first sample)."""
        points = [point for point in points if point.zero is not None]
        if not points:
            return
        suffix = self._at(ts)
        touched = self._touched
        size = 0
        for point in points:
            if not point.entries:
                touched.append(point)
            point.entries.append(point.zero)
            point.times.append(suffix)
            size += point.size
        self._count(len(points), size)

    def _count(self, points: int, size: int) -> None:
        self.stats.points += points
        self._size += size + 48 * points
        if self._size >= self.run_bytes:
            self._spill()

    def register(self, points: Sequence[Point]) -> None:
        """Count newly rendered series (for the summary)."""
        self.stats.series += sum(point.lines for point in points)

    # --- buffers, runs and windows ----------------------------------------------------------------

    def _roll(self, ts: int) -> None:
        if ts < self._start:
            raise ValueError(f"sample at {ts} is before the window written already ({self._start})")
        if self.window is not None:
            self._flush_window()
            self._start = ts // self.window * self.window
            self._end = self._start + self.window
        else:
            self._start = ts

    def _ordered(self) -> list[Point]:
        points = self._touched
        points.sort(key=lambda p: (p.family, p.order))
        return points

    def _take(self, point: Point) -> bytes:
        """The point's buffered lines as bytes, counted; its buffer emptied."""
        data = point.text().encode()
        self.stats.samples += point.lines * len(point.entries)
        self.stats.bytes += len(data)
        point.entries = []
        point.times = []
        return data

    def _spill(self) -> None:
        path = os.path.join(self.spool, f"run-{len(self._runs):05d}")
        with open(path, "wb", buffering=1 << 20) as f:
            for point in self._ordered():
                data = self._take(point)
                f.write(b"%d %d %d\n" % (point.family, point.order, len(data)))
                f.write(data)
        self._runs.append(path)
        self.stats.runs += 1
        self._touched = []
        self._size = 0

    @staticmethod
    def _read_run(path: str, order: int) -> Iterator[tuple[int, int, int, bytes]]:
        with open(path, "rb", buffering=1 << 20) as f:
            while header := f.readline():
                family, point, size = map(int, header.split())
                yield family, point, order, f.read(size)

    def _write_buffer(self, out: BinaryIO) -> None:
        """The current buffer (and its spilled runs) as one exposition ending in ``# EOF``."""
        write = out.write
        headers = self.headers
        current = -1
        if not self._runs:
            for point in self._ordered():
                if point.family != current:
                    current = point.family
                    write(headers[current])
                write(self._take(point))
        else:
            if self._touched:
                self._spill()
            runs = [self._read_run(path, order) for order, path in enumerate(self._runs)]
            for family, _, _, data in heapq.merge(*runs):
                if family != current:
                    current = family
                    write(headers[current])
                write(data)
            for path in self._runs:
                os.unlink(path)
            self._runs = []
        write(b"# EOF\n")
        self._touched = []
        self._size = 0

    def _flush_window(self) -> None:
        if not self._touched and not self._runs:
            return
        assert self.sink is not None
        start, end = int(self._start), int(self._end)
        path = self.sink.path(start)
        with open(path, "wb", buffering=1 << 20) as f:
            self._write_buffer(f)
        self.stats.windows += 1
        self.sink.done(path, start, end)

    def close(self) -> WriterStats:
        """Write what is left (merging spilled runs); the spool directory is removed in any case."""
        try:
            if self.window is not None:
                self._flush_window()
            else:
                assert self.out is not None
                self._write_buffer(self.out)
        finally:
            self.cleanup()
        return self.stats

    def cleanup(self) -> None:
        for point in self._touched:
            point.entries = []
            point.times = []
        self._touched = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
