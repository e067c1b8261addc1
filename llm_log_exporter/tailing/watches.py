"""Early wake-ups: directory watches that only *wake* the tailer; they never carry data.

The wake-only inotify waker where available (its cost does not grow with the write rate), else a watchdog
observer filtered to the events that matter (the default mask costs about a full core when a writer opens
and closes the file per line). Directories are watched, not files, so creation and rename are seen; a
directory deleted and recreated gets a new watch. Failing to watch (inotify limits) is logged once and
left to the tailer's timer, which keeps it correct anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable
from typing import Any

from watchdog.events import (
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from llm_log_exporter.tailing.inotify import InotifyWaker

log = logging.getLogger("llm_log_exporter.tailer")

Ident = tuple[int, int]
EVENT_FILTER = (FileModifiedEvent, FileCreatedEvent, FileMovedEvent, FileDeletedEvent)


class _WakeHandler(FileSystemEventHandler):
    """Turns every filesystem event into a wake-up; the tailer finds out what changed itself."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def dispatch(self, event: FileSystemEvent) -> None:
        self._wake()


class Watches:
    """Watched directories; ``start`` once, ``update`` after each poll, ``close`` at the end.

    ``update`` may run on another thread than ``start`` (the HTTP server starts before the first poll).
    """

    def __init__(self, wake: Callable[[], None], min_interval: float) -> None:
        self._handler = _WakeHandler(wake)
        self._min_interval = min_interval
        self._observer: BaseObserver | InotifyWaker | None = None
        self._watches: dict[str, tuple[Ident, Any]] = {}
        self._errors: set[str] = set()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._observer is not None

    def start(self) -> None:
        if self._observer is not None:
            return
        try:  # wake-only inotify where available: its cost does not grow with the write rate
            observer: BaseObserver | InotifyWaker = InotifyWaker(self._min_interval)
        except OSError:
            observer = Observer()
        observer.start()
        with self._lock:
            self._observer = observer

    def update(self, dirs: Iterable[str]) -> None:
        """Watch directories that exist now; re-watch ones deleted and recreated (new identity)."""
        with self._lock:
            observer = self._observer
            if observer is None:
                return
            for d in dict.fromkeys(dirs):
                self._watch(observer, d)

    def _watch(self, observer: BaseObserver | InotifyWaker, d: str) -> None:
        try:
            s = os.stat(d)
        except OSError:
            return
        ident = (s.st_dev, s.st_ino)
        old = self._watches.get(d)
        if not stat.S_ISDIR(s.st_mode) or (old is not None and old[0] == ident):
            return
        if old is not None:
            with contextlib.suppress(KeyError, OSError):
                observer.unschedule(old[1])
        try:
            watch = observer.schedule(self._handler, d, event_filter=list(EVENT_FILTER))
        except OSError as err:  # inotify limits: the timer still keeps us correct
            if d not in self._errors:
                self._errors.add(d)
                log.warning("cannot watch %s (falling back to polling): %s", d, err)
            return
        self._errors.discard(d)
        self._watches[d] = (ident, watch)

    def close(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
