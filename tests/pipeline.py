"""The real exporter pipeline in-process, ticked by hand: deterministic restarts, crashes and scrapes.

``tick()`` is one tailer wake (what the timer or an inotify event triggers in the daemon), ``save()`` the
periodic state write, ``stop()`` a SIGTERM (final save), ``crash()`` a SIGKILL (no save).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from prometheus_client.exposition import generate_latest

from llm_log_exporter.aggregate.usage import REQ_FAILURE, REQ_SUCCESS
from llm_log_exporter.daemon import Config, Exporter
from tests.helpers import Samples, append, parse_exposition, value
from tests.helpers import request_line as line

__all__ = ["Pipeline", "append", "inode", "line", "lines", "once"]




class Pipeline:
    """One exporter at a time over the same files and state file."""

    def __init__(self, *files: Path | str, state: Path | str | None = None, **config: object) -> None:
        self.config = {"files": [str(f) for f in files], "poll": True, **config}
        if state is not None:
            self.config["state_file"] = str(state)
        self.exporter: Exporter | None = None
        self.start()

    def start(self) -> Pipeline:
        assert self.exporter is None
        self.exporter = Exporter(Config(**self.config))  # type: ignore[arg-type]
        return self

    @property
    def exp(self) -> Exporter:
        assert self.exporter is not None, "exporter is down"
        return self.exporter

    def tick(self, n: int = 1) -> Pipeline:
        for _ in range(n):
            self.exp.tailer.poll_once()
            self.exp.store.ready.set()
        return self

    def save(self) -> Pipeline:
        assert self.exp.save_state()
        return self

    def stop(self) -> None:
        """SIGTERM: the final save, then close (held partial lines stay unconsumed)."""
        if self.exporter is not None:
            self.exporter.save_state()
            self.crash()

    def crash(self) -> None:
        """SIGKILL: gone without a save; the state file keeps whatever the last save wrote."""
        if self.exporter is not None:
            self.exporter.tailer.close()
            self.exporter = None

    def restart(self, clean: bool = True) -> Pipeline:
        self.stop() if clean else self.crash()
        return self.start()

    def samples(self) -> Samples:
        return parse_exposition(generate_latest(self.exp.registry).decode())

    def total(self, name: str = "llm_requests_total", **labels: str) -> float:
        try:
            return value(self.samples(), name, **labels)
        except KeyError:
            return 0

    def counted_in_store(self) -> Counter[str]:
        """``counted()`` read from the store directly: the same numbers without building a scrape."""
        out: Counter[str] = Counter()
        with self.exp.store.lock:
            for (_, _, model), rec in self.exp.store.usage.records.items():
                if rec[REQ_SUCCESS] + rec[REQ_FAILURE]:
                    out[model] += int(rec[REQ_SUCCESS] + rec[REQ_FAILURE])
        return out

    def counted(self) -> Counter[str]:
        """Requests per model label: with one model per line, exactly how often each line was counted."""
        out: Counter[str] = Counter()
        for (name, labels), v in self.samples().items():
            if name == "llm_requests_total" and v:
                out[dict(labels)["model"]] += int(v)
        return out


def lines(prefix: str, n: int, start: int = 0) -> bytes:
    """``n`` lines whose models are ``prefix0 ..``: each line identifiable in the metrics."""
    return b"".join(line(f"{prefix}{i}") for i in range(start, start + n))


def once(prefix: str, n: int, start: int = 0) -> Counter[str]:
    return Counter({f"{prefix}{i}": 1 for i in range(start, start + n)})


def inode(path: Path | str) -> int:
    return os.stat(path).st_ino
