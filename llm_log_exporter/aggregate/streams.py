"""Streaming calls started and not finished yet, on event time.

A ``stream_start`` opens a stream; the ``request`` with the same call id ends it. A start whose end never
comes is dropped once the event clock passes its start by ``timeout`` seconds, or when the table is full
(oldest first), and counted as expired. Dropping happens when events move the clock, never when someone
reads, so the gauge and the counter are a function of the files alone, whenever Prometheus scrapes.
"""

from __future__ import annotations

import math
from typing import Any

from llm_log_exporter.aggregate import codec

MAX_CALL_ID_LENGTH = 256  # starts are keyed by call id: a hostile id must not pin megabytes


class Streams:
    def __init__(self, timeout: float = 600.0, limit: int = 10_000) -> None:
        self.timeout = timeout
        self.limit = limit
        self.starts: dict[str, float | None] = {}  # call id → start time, insertion-ordered
        self.expired = 0
        self.next_due = math.inf  # no start is older than this: a cheap check on every clock move

    def start(self, call_id: str, ts: float | None) -> None:
        starts = self.starts
        call_id = call_id[:MAX_CALL_ID_LENGTH]
        starts.pop(call_id, None)
        starts[call_id] = ts
        if ts is not None and ts < self.next_due:
            self.next_due = ts
        if len(starts) > self.limit:
            del starts[next(iter(starts))]
            self.expired += 1

    def end(self, call_id: str) -> None:
        call_id = call_id[:MAX_CALL_ID_LENGTH]
        if call_id in self.starts:
            del self.starts[call_id]

    def clock_moved(self, clock: float) -> None:
        """Drop the starts older than the timeout; only scans when one is due."""
        cutoff = clock - self.timeout
        if cutoff < self.next_due:
            return
        starts = self.starts
        stale = [call_id for call_id, start in starts.items() if start is not None and start <= cutoff]
        for call_id in stale:
            del starts[call_id]
        self.expired += len(stale)
        self.next_due = min((s for s in starts.values() if s is not None), default=math.inf)

    def dump(self) -> dict[str, Any]:
        return {"starts": list(self.starts.items()), "expired": self.expired}

    def load(self, data: Any) -> None:
        self.starts = {codec.text(c): codec.optional(t) for c, t in data["starts"]}
        self.expired = codec.count(data["expired"])
        self.next_due = min((s for s in self.starts.values() if s is not None), default=math.inf)
