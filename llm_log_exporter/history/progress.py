"""A one-line progress bar for terminals: how far in event time (or bytes) the replay is, events/s and ETA.

Progress is measured in event time when the span of the history is known (the estimate found it): the
samples, which cost most, follow event time, not bytes read. Without a span it falls back to bytes read
of the total, and with stdin to a counter. Drawn only when the stream is a terminal (nothing in pipes,
files or CI logs), at most a few times a second, in plain ASCII so it reads without colour or Unicode.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

REDRAW_SECONDS = 0.2


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """``update(bytes_read, events, event_ts)``; ``span`` is the (first, last) event time of the history;
    without it ``total`` bytes (None for stdin: no percentage and no ETA)."""

    def __init__(self, stream: TextIO, total: int | None, enabled: bool | None = None,
                 span: tuple[float, float] | None = None) -> None:
        self.stream = stream
        self.total = total
        self.span = span if span is not None and span[1] > span[0] else None
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._next = 0.0
        self._drawn = False

    def __call__(self, done: int, events: int, event_ts: float | None = None) -> None:
        self.update(done, events, event_ts)

    def update(self, done: int, events: int, event_ts: float | None = None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next and not force:
            return
        self._next = now + REDRAW_SECONDS
        self.stream.write("\r" + self.render(done, events, now - self.started, event_ts) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def render(self, done: int, events: int, elapsed: float, event_ts: float | None = None) -> str:
        width = min(shutil.get_terminal_size((80, 24)).columns, 100)
        rate = events / elapsed if elapsed > 0 else 0.0
        speed = f"{rate / 1000:,.1f}k events/s" if rate >= 1000 else f"{rate:,.0f} events/s"
        where = None
        if self.span is not None and event_ts is not None:
            first, last = self.span
            fraction = min(max((event_ts - first) / (last - first), 0.0), 1.0)
            where = time.strftime("%Y-%m-%d %H:%M", time.gmtime(event_ts))
        elif self.total:
            fraction = min(done / self.total, 1.0)
            where = f"{_size(done)}/{_size(self.total)}"
        if where is not None:
            eta = (elapsed / fraction - elapsed) if fraction > 0 else 0.0
            tail = f" {fraction:4.0%} {where}  {speed}  ETA {_clock(eta)}"
            bar_width = max(width - len(tail) - 3, 10)
            filled = int(bar_width * fraction)
            return f"[{'#' * filled}{'.' * (bar_width - filled)}]{tail}"
        return f"{_size(done)} read  {speed}  {_clock(elapsed)}"

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
