"""A one-line progress bar for terminals: bytes read of the total, events/s and ETA.

Drawn only when the stream is a terminal (nothing in pipes, files or CI logs), at most a few
times a second, in plain ASCII so it reads without colour or Unicode.
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
    """``update(bytes_read, events)``; ``total`` None (stdin) shows no percentage and no ETA."""

    def __init__(self, stream: TextIO, total: int | None, enabled: bool | None = None) -> None:
        self.stream = stream
        self.total = total
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._next = 0.0
        self._drawn = False

    def __call__(self, done: int, events: int) -> None:
        self.update(done, events)

    def update(self, done: int, events: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next and not force:
            return
        self._next = now + REDRAW_SECONDS
        self.stream.write("\r" + self.render(done, events, now - self.started) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def render(self, done: int, events: int, elapsed: float) -> str:
        width = min(shutil.get_terminal_size((80, 24)).columns, 100)
        rate = events / elapsed if elapsed > 0 else 0.0
        speed = f"{rate / 1000:,.1f}k events/s" if rate >= 1000 else f"{rate:,.0f} events/s"
        if self.total:
            fraction = min(done / self.total, 1.0)
            eta = (elapsed / fraction - elapsed) if fraction > 0 else 0.0
            tail = f" {fraction:4.0%} {_size(done)}/{_size(self.total)}  {speed}  ETA {_clock(eta)}"
            bar_width = max(width - len(tail) - 3, 10)
            filled = int(bar_width * fraction)
            return f"[{'#' * filled}{'.' * (bar_width - filled)}]{tail}"
        return f"{_size(done)} read  {speed}  {_clock(elapsed)}"

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
