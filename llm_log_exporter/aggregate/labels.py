"""Bounded label values: control characters dropped, length capped, distinct values limited.

A hostile or buggy writer must not be able to grow a scrape without bound: past a label's limit new
values fold into ``__other__`` (totals over all series stay exact) and are counted as overflow.
"""

from __future__ import annotations

from llm_log_exporter.aggregate import codec

OTHER = "__other__"
MAX_LABEL_LENGTH = 128

_CONTROL = {c: None for c in range(32)} | {127: None}


def sanitize(value: str, limit: int = MAX_LABEL_LENGTH) -> str:
    """Drop control characters and cap the length so a hostile value cannot bloat a scrape."""
    if value.isprintable() and len(value) <= limit:
        return value
    return value.translate(_CONTROL)[:limit]


class LabelGuard:
    """Bounds the distinct values of one label; the rest fold into ``__other__``.

    ``overflow`` counts distinct folded values, so it does not depend on how often or through
    which family a value shows up; folded values are remembered up to ``FOLDED_MEMORY`` × the limit
    (beyond that a returning value may be counted again: memory stays bounded under a flood).
    """

    FOLDED_MEMORY = 10

    def __init__(self, name: str, limit: int, max_length: int = MAX_LABEL_LENGTH) -> None:
        self.name = name
        self.limit = limit
        self.max_length = max_length
        self.seen: set[str] = set()
        self.folded: set[str] = set()
        self.overflow = 0

    def admit(self, value: str) -> str:
        value = sanitize(value, self.max_length)
        if value in self.seen:
            return value
        if len(self.seen) < self.limit:
            self.seen.add(value)
            return value
        if value not in self.folded:
            self.overflow += 1
            if len(self.folded) < self.limit * self.FOLDED_MEMORY:
                self.folded.add(value)
        return OTHER

    def dump(self) -> dict:
        return {"seen": sorted(self.seen), "folded": sorted(self.folded), "overflow": self.overflow}

    def load(self, data: dict) -> None:
        seen = {codec.text(v) for v in data["seen"]}
        if len(seen) > self.limit:
            raise ValueError(f"more {self.name} values than --max-* allows")
        self.seen = seen
        self.folded = {codec.text(v) for v in data["folded"]}
        self.overflow = codec.count(data["overflow"])
