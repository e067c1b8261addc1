"""A wake-only inotify watcher (Linux): the tailer needs to know *that* something changed, never what.

watchdog decodes every kernel event into Python objects on two threads; a writer that appends one
line per LLM call at 20k lines/s then costs ~15% of a core in event handling alone (measured by
``benchmarks/bench_runner.py``). Here the inotify fd is read at most once per ``interval``: between
reads the kernel merges identical consecutive events (the same file's IN_MODIFY over and over) into
one, so the cost no longer grows with the write rate. Only the events that can matter to a tailer are
subscribed (no IN_OPEN / IN_CLOSE, which would interleave and defeat the merging).

Implements the part of watchdog's observer API the tailer uses (``schedule``, ``unschedule``,
``start``, ``stop``, ``join``), so the tailer can fall back to watchdog where this is unavailable.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import select
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
# What a tailer must react to: appends/truncation, rotation by rename or create, deletion.
MASK = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF

_READ_SIZE = 1 << 16


class _Event:
    """Handed to ``handler.dispatch`` once per batch of kernel events (which ones is not kept)."""

    __slots__ = ()
    event_type = "modified"
    src_path = ""
    is_directory = False
    is_synthetic = True


_EVENT = _Event()


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "inotify is Linux only")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    for name in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
        if not hasattr(libc, name):
            raise OSError(errno.ENOSYS, f"libc has no {name}")
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


class WakeWatch:
    """The token ``schedule`` returns; ``unschedule`` takes it back."""

    __slots__ = ("handler", "path", "wd")

    def __init__(self, wd: int, path: str, handler: Any) -> None:
        self.wd, self.path, self.handler = wd, path, handler


class InotifyWaker:
    """Calls ``handler.dispatch`` at most once per ``interval`` while watched directories change."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._fd = fd
        self._stop_r, self._stop_w = os.pipe()
        self._watches: dict[int, WakeWatch] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inotify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, handler: Any, path: str, recursive: bool = False, event_filter: Any = None) -> WakeWatch:
        """Watch one directory (not recursive; ``event_filter`` is fixed to ``MASK``)."""
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        watch = WakeWatch(wd, path, handler)
        with self._lock:
            self._watches[wd] = watch
        return watch

    def unschedule(self, watch: WakeWatch) -> None:
        with self._lock:
            if self._watches.get(watch.wd) is watch:
                del self._watches[watch.wd]
        # fails with EINVAL when the kernel already dropped the watch (directory deleted): fine
        self._libc.inotify_rm_watch(self._fd, watch.wd)

    def unschedule_all(self) -> None:
        """Drop every watch (watchdog's observer API; the tailer's timer still wakes it)."""
        with self._lock:
            watches = list(self._watches.values())
        for watch in watches:
            self.unschedule(watch)

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            for fd in (self._fd, self._stop_r, self._stop_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while not self._stopping:
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            if self._stopping or any(fd == self._stop_r for fd, _ in ready):
                return
            self._drain()
            with self._lock:
                handlers = {id(w.handler): w.handler for w in self._watches.values()}
            for handler in handlers.values():
                try:
                    handler.dispatch(_EVENT)
                except Exception:  # a handler's bug must not end the wake-ups
                    log.exception("inotify wake handler failed")
            # Let the kernel merge what arrives meanwhile: one read per interval whatever the rate.
            time.sleep(self.interval)

    def _drain(self) -> None:
        for _ in range(64):  # bounded: a flood of distinct events must not keep this thread here
            try:
                os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError as err:
                log.warning("reading inotify events failed: %s", err)
                return
