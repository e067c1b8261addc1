"""The aggregation state behind one lock: usage, per-file self-metrics and the ready flag.

The lock is taken once per batch of lines and once per scrape (for a copy), so scrapes never hold
up ingestion for longer than the copy.
"""

from __future__ import annotations

import threading
from typing import Any

from llm_log_exporter.aggregate import codec
from llm_log_exporter.aggregate.families import record_slots
from llm_log_exporter.aggregate.usage import Usage

FILE_SLOTS = record_slots("files")


class FileStats:
    """Self-metrics of one followed file; its attributes are the ``files`` slots of the family table."""

    __slots__ = FILE_SLOTS

    def __init__(self) -> None:
        self.lines_parsed = 0
        self.lines_skipped = 0
        self.lines_invalid = 0
        self.invalid: dict[str, int] = {}
        self.read_bytes = 0
        self.rotations = 0
        self.truncations = 0
        self.open_errors = 0
        self.last_event_ts: float | None = None

    def reject(self, reason: str) -> None:
        self.lines_invalid += 1
        self.invalid[reason] = self.invalid.get(reason, 0) + 1

    @property
    def lines(self) -> dict[str, int]:
        """Lines by result, as ``llm_exporter_lines_total`` shows them."""
        return {"parsed": self.lines_parsed, "skipped": self.lines_skipped, "invalid": self.lines_invalid}

    def values(self) -> list[Any]:
        """The slots in table order (dicts copied): a scrape's or a state file's view of this file."""
        return [dict(v) if isinstance(v, dict) else v for v in (getattr(self, slot) for slot in FILE_SLOTS)]

    def load(self, values: list[Any]) -> None:
        if len(values) != len(FILE_SLOTS):
            raise ValueError(f"file record has {len(values)} values, this version keeps {len(FILE_SLOTS)}")
        for slot, value in zip(FILE_SLOTS, values, strict=True):
            if isinstance(value, dict):
                value = {codec.text(k): codec.count(v) for k, v in value.items()}
            elif slot == "last_event_ts":
                value = codec.optional(value)
            else:
                value = codec.count(value)
            setattr(self, slot, value)


class Store:
    """Usage state plus self-metrics behind one lock: taken once per batch and once per scrape."""

    def __init__(self, usage: Usage) -> None:
        self.lock = threading.Lock()
        self.usage = usage
        self.files: dict[str, FileStats] = {}
        self.ready = threading.Event()

    def file(self, path: str) -> FileStats:
        stats = self.files.get(path)
        if stats is None:
            stats = self.files[path] = FileStats()
        return stats

    def dump_files(self) -> dict[str, Any]:
        return {"slots": list(FILE_SLOTS), "files": {path: st.values() for path, st in self.files.items()}}

    def repair_times(self, latest: float) -> dict[str, int]:
        """Event times beyond ``latest`` in restored state: see ``Usage.repair_times``; a file's newest
        event time beyond it is forgotten (the gauge returns with the file's next event)."""
        files = 0
        for stats in self.files.values():
            if stats.last_event_ts is not None and stats.last_event_ts > latest:
                stats.last_event_ts = None
                files += 1
        known = [st.last_event_ts for st in self.files.values() if st.last_event_ts is not None]
        repaired = self.usage.repair_times(latest, known)
        if files:
            repaired["files"] = files
        return repaired

    def load_files(self, data: Any) -> None:
        if data["slots"] != list(FILE_SLOTS):
            raise ValueError(f"file records hold {data['slots']}, this version keeps {list(FILE_SLOTS)}")
        for path, values in data["files"].items():
            stats = FileStats()
            stats.load(values)
            self.files[codec.text(path)] = stats
