"""Lines → events → the store: the tailer's sink, and the decoder replay and report read through.

One lock acquisition per slice of up to ``LOCK_SLICE`` lines; bad lines are counted by file and reason,
logged at most once per second with file, line number and byte offset, and skipped without touching any
usage metric.

Event time drives budgets, breakers and streams, so one line must not be able to move it far: a line
with an event more than ``max_future_skew`` seconds ahead of the wall clock (``wall``; replay passes its
own "now") is rejected as ``future_ts`` (a timestamp in milliseconds, a host with a wrong clock). The
past is always accepted: history is what replay is for.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from llm_log_exporter.aggregate.prices import PriceTable
from llm_log_exporter.aggregate.store import FileStats, Store
from llm_log_exporter.events import CallPart, Event, InvalidLine, Request
from llm_log_exporter.parsers import ParseFn, fast_event_of, parse_generic

log = logging.getLogger("llm_log_exporter")

DEFAULT_MAX_FUTURE_SKEW = 300.0  # seconds an event may be ahead of the wall clock (--max-future-skew)
LOCK_SLICE = 512  # lines applied per hold of the store's lock (~5-10 ms): a busy read does not hold up scrapes


class RateLimitedLog:
    """At most one record per interval; counts what it held back so nothing vanishes silently."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = 0.0
        self.suppressed = 0

    def allowed(self) -> bool:
        """Whether a record would be written now; when not, it is counted as held back."""
        if time.monotonic() < self._next:
            self.suppressed += 1
            return False
        return True

    def warning(self, msg: str, *args: object) -> None:
        if not self.allowed():
            return
        if self.suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self._next = time.monotonic() + self.interval
        log.warning(msg, *args)


class Ingestor:
    """Implements the tailer's ``TailSink``: parses complete lines and updates the store."""

    def __init__(self, store: Store, parse: ParseFn, prices: PriceTable | None = None,
                 max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.parse = parse
        self.prices = prices
        self.max_future_skew = max_future_skew
        self.wall = wall  # the clock "the future" is measured against: time.time live, replay's fixed now
        self.rejects = RateLimitedLog()

    def latest_allowed(self) -> float:
        """The newest event time a line may carry now (``future_ts`` beyond it)."""
        return self.wall() + self.max_future_skew

    def _fill_cost(self, event: Request) -> Request:
        """Price an event that came without a cost; count it when no price is known (lock held)."""
        if not (event.prompt_tokens or event.completion_tokens):
            return event  # nothing was billed
        cost = self.prices.cost(event) if self.prices is not None else None
        if cost is None:
            self.store.usage.unknown_cost(event.model)
            return event
        return event._replace(cost_usd=cost)

    def on_lines(self, path: str, lines: list[bytes], first_lineno: int, first_offset: int) -> None:
        store = self.store
        for at in range(0, len(lines), LOCK_SLICE):  # a scrape waits for one slice at most, not a whole read
            part = lines[at:at + LOCK_SLICE] if at or len(lines) > LOCK_SLICE else lines
            offset = first_offset + sum(map(len, lines[:at])) + at if at else first_offset
            with store.lock:
                handlers = store.usage.handlers
                for event in self.decode(path, part, first_lineno + at, offset):
                    handlers[type(event)](event)

    def decode(self, path: str, lines: list[bytes], first_lineno: int, first_offset: int) -> list[Event]:
        """Lines → events with the file's line accounting; apart from the daemon, replay uses this
        alone (it applies events later, in time order), so a per-event step added here (pricing,
        enrichment) serves both. The caller holds ``store.lock``."""
        parse = self.parse
        fast = fast_event_of(parse)  # tried first, as parse_line does: looked up once per batch
        stats = self.store.file(path)
        out: list[Event] = []
        append = out.append
        parsed = skipped = 0
        latest = self.latest_allowed()  # once per batch: a batch is read in well under a second
        last_ts = stats.last_event_ts
        if last_ts is None:
            last_ts = -math.inf
        for index, line in enumerate(lines):
            if fast is not None:  # the common line, one request: no list, one pass
                event = fast(line)
                if event is not None:
                    ts = event.ts
                    if ts is not None:
                        if ts > latest:
                            self._reject(stats, path, lines, index, first_lineno, first_offset, self._future(ts))
                            continue
                        if ts > last_ts:
                            last_ts = ts
                    if event.cost_usd is None:
                        event = self._fill_cost(event)
                    parsed += 1
                    append(event)
                    continue
            if len(line) < 2 and (not line or line == b"\r"):
                skipped += 1
                continue
            try:
                events = parse_generic(parse, line)
            except InvalidLine as err:
                self._reject(stats, path, lines, index, first_lineno, first_offset, err)
                continue
            if not events:
                skipped += 1
                continue
            for event in events:
                ts = event.ts
                if ts is not None and ts > latest:
                    self._reject(stats, path, lines, index, first_lineno, first_offset, self._future(ts))
                    break
            else:
                parsed += 1
                for event in events:
                    if type(event) is Request:
                        if event.cost_usd is None:
                            event = self._fill_cost(event)
                    elif type(event) is CallPart and event.request.cost_usd is None:
                        event = event._replace(request=self._fill_cost(event.request))
                    ts = event.ts
                    if ts is not None and ts > last_ts:
                        last_ts = ts
                    append(event)
        stats.lines_parsed += parsed
        stats.lines_skipped += skipped
        stats.last_event_ts = None if last_ts == -math.inf else last_ts
        return out

    def _future(self, ts: float) -> InvalidLine:
        ahead = ts - self.wall()
        hint = " (milliseconds? ts is in seconds)" if ts > 1e11 else ""
        return InvalidLine("future_ts", f"ts={ts:.10g} is {ahead:.6g} s ahead of the clock, more than "
                                        f"--max-future-skew {self.max_future_skew:g} s{hint}")

    def _reject(self, stats: FileStats, path: str, lines: list[bytes], index: int, first_lineno: int,
                first_offset: int, err: InvalidLine) -> None:
        stats.reject(err.reason)
        if self.rejects.allowed():  # the offset costs a sum over the batch: only for a line that is logged
            offset = first_offset + sum(len(line) + 1 for line in lines[:index])
            self.rejects.warning("%s:%d (byte %d): invalid line skipped: %s", path, first_lineno + index, offset, err)

    def on_read(self, path: str, nbytes: int) -> None:
        with self.store.lock:
            self.store.file(path).read_bytes += nbytes

    def on_oversized(self, path: str, lineno: int, offset: int) -> None:
        with self.store.lock:
            self.store.file(path).reject("oversized")
        self.rejects.warning("%s:%d (byte %d): line over --max-line-bytes skipped", path, lineno, offset)

    def on_incomplete(self, path: str, nbytes: int) -> None:
        with self.store.lock:
            self.store.file(path).reject("incomplete")
        self.rejects.warning("%s: unterminated last line (%d bytes) discarded", path, nbytes)

    def on_rotation(self, path: str) -> None:
        with self.store.lock:
            self.store.file(path).rotations += 1
        log.info("%s: rotated; reading the new file from the start", path)

    def on_truncation(self, path: str) -> None:
        with self.store.lock:
            self.store.file(path).truncations += 1
        log.info("%s: truncated; reading from the start", path)

    def on_open_error(self, path: str, err: OSError) -> None:
        with self.store.lock:
            self.store.file(path).open_errors += 1
        self.rejects.warning("%s: cannot open (%s); will retry", path, err)
