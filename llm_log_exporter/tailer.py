"""Follow JSON-lines files by path and hand complete lines, in batches, to a sink.

The loop every mature tailer uses (mtail's filestream, Fluent Bit, Vector): on each wake read every open
file to EOF, then ``stat`` the path and compare ``(st_dev, st_ino)`` with the open fd to notice rotation,
and compare size and a fingerprint of the bytes before the offset to notice truncation. Wakes come from a
watchdog observer on the parent directories (latency) and from a timer (correctness where inotify is
silent: NFS, bind mounts, queue overflow); events are never treated as data.

The promise: every complete line is delivered exactly once and a partial line never is.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from watchdog.events import (
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from llm_log_exporter.inotify import InotifyWaker
from llm_log_exporter.positions import FP_BYTES, OPEN_FLAGS, Position, digest, fingerprints, locate

log = logging.getLogger(__name__)

Ident = tuple[int, int]

_FINGERPRINT_BYTES = FP_BYTES
# O_NONBLOCK: a FIFO swapped in between stat and open must not block the reader thread.
_OPEN_FLAGS = OPEN_FLAGS
# The default (all events) costs ~a full core when a writer opens/closes the file per line.
_EVENT_FILTER = (FileModifiedEvent, FileCreatedEvent, FileMovedEvent, FileDeletedEvent)


class TailSink(Protocol):
    """Receiver of tailer output; called from the thread that runs ``poll_once``."""

    def on_lines(self, path: str, lines: list[bytes], first_lineno: int, first_offset: int) -> None: ...

    def on_read(self, path: str, nbytes: int) -> None: ...

    def on_oversized(self, path: str, lineno: int, offset: int) -> None: ...

    def on_incomplete(self, path: str, nbytes: int) -> None: ...

    def on_rotation(self, path: str) -> None: ...

    def on_truncation(self, path: str) -> None: ...

    def on_open_error(self, path: str, err: OSError) -> None: ...


@dataclass(eq=False)
class _Stream:
    """One open file identity; the held ``tail`` starts at byte ``offset - len(tail)``."""

    path: str
    fd: int
    ident: Ident
    watch_dir: str  # parent of the real file, so writes behind a symlink wake us too
    offset: int = 0  # bytes consumed (read position)
    lineno: int = 0  # lines consumed: delivered plus dropped
    tail: bytes = b""
    skip: bool = False  # drop bytes up to the next newline (oversized line, or from_end mid-line start)
    fp: bytes = b""  # up to 256 bytes before offset: detects truncate-and-regrow between polls
    head: bytes = b""  # up to 256 first bytes of the file: part of its identity in a saved position


class _WakeHandler(FileSystemEventHandler):
    """Turns every filesystem event into a wake-up; the tailer finds out what changed itself."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def dispatch(self, event: FileSystemEvent) -> None:
        self._wake()


def _has_long_line(buf: bytes, end: int, max_len: int) -> bool:
    """Whether a line in ``buf[:end]`` (``end`` = index of the last newline) is longer than ``max_len``.

    Jumps from newline to newline at most ``max_len`` bytes apart with ``rfind``, so a chunk no larger
    than ``max_len`` costs nothing and a larger one a few C-level scans instead of per-line work.
    """
    pos = 0
    while end - pos > max_len:
        nl = buf.rfind(b"\n", pos, pos + max_len + 1)
        if nl < 0:
            return True
        pos = nl + 1
    return False


def _real_dir(path: str) -> str:
    return os.path.dirname(os.path.realpath(path))


class Tailer:
    """Follows files matching ``patterns`` and feeds complete lines to ``sink``.

    ``min_wake_interval`` caps inotify-driven polls (default 50/s); the timer runs every ``poll_interval``.
    ``after_poll`` runs in the polling thread after each poll of ``run``: the one moment where
    ``positions()`` and everything the sink was given agree (used to write the restart state).

    Threading: ``poll_once``/``run`` must be driven by one thread; ``files``, ``lag_bytes`` and ``wake``
    may be called from any thread. Shut down with ``stop.set()``, join the ``run`` thread, then ``close()``.
    """

    min_wake_interval: float = 0.02

    def __init__(
        self,
        patterns: Sequence[str],
        sink: TailSink,
        *,
        from_end: bool = False,
        poll_interval: float = 1.0,
        max_line_bytes: int = 1 << 20,
        use_inotify: bool = True,
        exclude: Sequence[str] = (),
        read_chunk: int = 1 << 20,
        after_poll: Callable[[], None] | None = None,
    ) -> None:
        if isinstance(patterns, (str, bytes)) or isinstance(exclude, (str, bytes)):
            raise TypeError("patterns and exclude must be sequences of paths, not a single string")
        if max_line_bytes < 1 or read_chunk < 1 or poll_interval <= 0:
            raise ValueError("max_line_bytes, read_chunk and poll_interval must be positive")
        self._patterns = [os.fspath(p) for p in patterns]
        self._exclude = [os.fspath(p) for p in exclude]
        self._sink = sink
        self._from_end = from_end
        self.poll_interval = poll_interval
        self._max = max_line_bytes
        self._chunk = read_chunk
        self._use_inotify = use_inotify
        self.after_poll = after_poll
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()  # guards _streams swaps and fd closes against files/lag_bytes
        self._vacated: set[str] = set()  # paths whose file left; a new file there is a rotation
        self._start_paths: set[str] | None = None  # from_end: paths seen at the first poll, not yet opened
        self._open_errors: dict[str, int | None] = {}
        self._read_errors: dict[str, int | None] = {}
        self._wake = threading.Event()
        self._stop: threading.Event | None = None
        self._observer: BaseObserver | InotifyWaker | None = None
        self._handler = _WakeHandler(self.wake)
        self._watches: dict[str, tuple[Ident, ObservedWatch]] = {}
        self._watch_errors: set[str] = set()
        self._watch_lock = threading.Lock()
        self._last_poll_error = ""
        self._closed = False

    # ----------------------------------------------------------------- public API

    @property
    def files(self) -> list[str]:
        """Paths currently followed (a renamed-away file stays listed under its old path)."""
        with self._lock:
            return list(self._streams)

    def lag_bytes(self) -> dict[str, int]:
        """Per path: bytes written but not yet read (``fstat`` of the open fd, so rotation-safe)."""
        lag: dict[str, int] = {}
        with self._lock:
            for path, st in self._streams.items():
                try:
                    lag[path] = max(0, os.fstat(st.fd).st_size - st.offset)
                except OSError:
                    continue
        return lag

    def wake(self) -> None:
        if not self._wake.is_set():  # called per filesystem event: skip the Condition when already set
            self._wake.set()

    def start_watching(self) -> None:
        """Start inotify wake-ups; the timer in ``run`` stays the safety net."""
        if not self._use_inotify or self._observer is not None or self._closed:
            return
        try:  # wake-only inotify where available: its cost does not grow with the write rate
            observer: BaseObserver | InotifyWaker = InotifyWaker(self.min_wake_interval / 2)
        except OSError:
            observer = Observer()
        observer.start()
        with self._watch_lock:
            self._observer = observer
        self._update_watches()

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; a failing poll is logged, not fatal, so the exporter keeps tailing."""
        self._stop = stop
        threading.Thread(target=self._wake_on_stop, args=(stop,), name="tailer-stop", daemon=True).start()
        try:
            while not stop.is_set():
                self._wake.clear()
                started = time.monotonic()
                try:
                    self.poll_once()
                    if self.after_poll is not None:
                        self.after_poll()
                except Exception as exc:
                    self._log_poll_error(exc)
                if self._wake.wait(self.poll_interval):
                    # Coalesce bursts: a writer that opens/appends/closes per line sends an event per
                    # line; polling on each would cost most of a core at 20k lines/s.
                    stop.wait(self.min_wake_interval - (time.monotonic() - started))
        finally:
            self._stop = None

    def positions(self) -> list[Position]:
        """Resumable positions of the followed files; call between polls from the polling thread.

        A held partial line is not consumed: its start is the saved offset, so a restart reads it again
        whole. A file truncated since the last read is left out (a restart reads it from the start, as
        the next poll would). Raises ``OSError`` when a file cannot be read, so no position is guessed.
        """
        out: list[Position] = []
        for st in list(self._streams.values()):
            held = len(st.tail)
            offset = st.offset - held
            n = min(offset, _FINGERPRINT_BYTES)
            if held:
                if self._truncated(st):
                    continue
                before = os.pread(st.fd, n, offset - n)
            else:
                before = st.fp
            head = st.head[:n]
            if len(head) != n or len(before) != n:  # opened mid-file (from_end) and head not read yet
                fps = fingerprints(st.fd, offset)
                if fps is None:
                    continue
                head_digest, before_digest = fps
            else:
                head_digest, before_digest = digest(head), digest(before)
            dev, ino = st.ident
            out.append(Position(st.path, st.watch_dir, dev, ino, offset, st.lineno, st.skip,
                                head_digest, before_digest, held))
        return out

    def restore(self, positions: Sequence[Position]) -> dict[str, str | None]:
        """Resume the files of a previous run; call once, before the first poll.

        Each position is looked up by identity (at its path or renamed within its directory), then by
        content (a copytruncate copy); a file found is followed under its old path from its offset, so the
        next poll finishes it and then opens whatever is at the path now from the start. Positions whose
        path no longer matches the patterns are dropped. ``from_end`` no longer applies: a file the
        positions do not know appeared while the exporter was down and is read from the start.

        Returns, per path, how its file was found (``same``, ``renamed``, ``copied``) or None (gone:
        deleted, truncated or replaced while the exporter was down).
        """
        wanted = [p for p in positions if self._wanted(p.path)]
        claimed: set[Ident] = {st.ident for st in self._streams.values()}
        hits: dict[int, tuple[str, int, str]] = {}
        for by_content in (False, True):
            for i, pos in enumerate(wanted):
                if i not in hits:
                    hit = locate(pos, claimed, by_content=by_content)
                    if hit is not None:
                        hits[i] = hit
        result: dict[str, str | None] = {}
        for i, pos in enumerate(wanted):
            hit = hits.get(i)
            if hit is None or pos.path in self._streams:
                if hit is not None:
                    os.close(hit[1])
                self._vacated.add(pos.path)  # whatever is there now is a new file
                result[pos.path] = None
                continue
            path, fd, how = hit
            s = os.fstat(fd)
            n = min(pos.offset, _FINGERPRINT_BYTES)
            st = _Stream(pos.path, fd, (s.st_dev, s.st_ino), _real_dir(path), offset=pos.offset,
                         lineno=pos.lineno, skip=pos.skip, fp=os.pread(fd, n, pos.offset - n),
                         head=os.pread(fd, n, 0))
            with self._lock:
                self._streams[pos.path] = st
            if path != pos.path:
                self._vacated.add(pos.path)
            result[pos.path] = how
        if self._start_paths is None:
            self._start_paths = set()
        return result

    def _wanted(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) for p in self._patterns) and not any(
            fnmatch.fnmatch(path, ex) for ex in self._exclude
        )

    def close(self) -> None:
        """Stop the observer and close every fd; held partial lines are dropped silently."""
        if self._closed:
            return
        self._closed = True
        with self._watch_lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
            for st in streams:
                self._close_fd(st)
        self._wake.set()

    def poll_once(self) -> None:
        """One wake: read open files to EOF, then rediscover paths and apply rotations."""
        if self._closed:
            return
        for st in list(self._streams.values()):
            self._guarded(self._service, st)
        if self._stop is not None and self._stop.is_set():
            return  # shutting down: no rotation handling on half-read files
        found = self._discover()
        self._track_start_paths(found)
        self._reconcile(found)
        self._open_new(found)
        if self._observer is not None:
            self._update_watches()

    # ----------------------------------------------------------------- reading

    def _service(self, st: _Stream) -> None:
        if self._truncated(st):
            self._sink.on_truncation(st.path)
            self._discard_tail(st)
            st.offset = st.lineno = 0
            st.skip = False
            st.fp = st.head = b""
        self._drain(st)

    def _truncated(self, st: _Stream) -> bool:
        """Size below the offset, or different bytes before it (truncated and regrown since last poll)."""
        if os.fstat(st.fd).st_size < st.offset:
            return True
        fp = st.fp
        return bool(fp) and os.pread(st.fd, len(fp), st.offset - len(fp)) != fp

    def _drain(self, st: _Stream) -> None:
        stop, fd, chunk = self._stop, st.fd, self._chunk
        while True:
            data = os.pread(fd, chunk, st.offset)
            if not data:
                return
            self._sink.on_read(st.path, len(data))
            self._feed(st, data)
            if stop is not None and stop.is_set():
                return

    def _feed(self, st: _Stream, data: bytes) -> None:
        """Split one read into lines; everything but the split is O(1) per chunk on the fast path."""
        pos = st.offset
        st.offset = pos + len(data)
        fp_bytes = _FINGERPRINT_BYTES
        if pos < fp_bytes:
            st.head = (st.head + data)[:fp_bytes]
        st.fp = data[-fp_bytes:] if len(data) >= fp_bytes else (st.fp + data)[-fp_bytes:]
        if st.skip:
            nl = data.find(b"\n")
            if nl < 0:
                return
            st.skip = False
            pos += nl + 1
            data = data[nl + 1 :]
        lines = data.split(b"\n")
        rest = lines.pop()
        head = st.tail
        if not lines:
            st.tail = head + rest if head else rest
            self._check_tail(st)
            return
        start = pos - len(head)
        if head:
            lines[0] = head + lines[0]
        st.tail = rest
        if len(lines[0]) > self._max or _has_long_line(data, len(data) - len(rest) - 1, self._max):
            self._emit_checked(st, lines, start)
        else:
            first = st.lineno + 1
            st.lineno += len(lines)
            self._sink.on_lines(st.path, lines, first, start)
        self._check_tail(st)

    def _emit_checked(self, st: _Stream, lines: list[bytes], offset: int) -> None:
        """Slow path, only for chunks holding an oversized line: emit the good runs around it."""
        path, max_len, sink = st.path, self._max, self._sink
        batch: list[bytes] = []
        batch_offset = offset
        for line in lines:
            st.lineno += 1
            if len(line) > max_len:
                if batch:
                    sink.on_lines(path, batch, st.lineno - len(batch), batch_offset)
                    batch = []
                sink.on_oversized(path, st.lineno, offset)
                batch_offset = offset + len(line) + 1
            else:
                batch.append(line)
            offset += len(line) + 1
        if batch:
            sink.on_lines(path, batch, st.lineno - len(batch) + 1, batch_offset)

    def _check_tail(self, st: _Stream) -> None:
        """Bound memory: a held tail past max_line_bytes is dropped now and skipped to its newline."""
        if len(st.tail) > self._max:
            st.lineno += 1
            self._sink.on_oversized(st.path, st.lineno, st.offset - len(st.tail))
            st.tail = b""
            st.skip = True

    def _discard_tail(self, st: _Stream) -> None:
        if st.tail:
            nbytes, st.tail = len(st.tail), b""
            self._sink.on_incomplete(st.path, nbytes)

    def _guarded(self, fn: Callable[[_Stream], None], st: _Stream) -> None:
        """An I/O error on one file (EIO, ESTALE) must not stop the others; logged once per errno."""
        try:
            fn(st)
        except OSError as err:
            if self._read_errors.get(st.path) != err.errno:
                self._read_errors[st.path] = err.errno
                log.warning("reading %s failed: %s", st.path, err)
        else:
            self._read_errors.pop(st.path, None)

    # ----------------------------------------------------------------- discovery and identity

    def _discover(self) -> dict[str, Ident]:
        """Regular files matching the patterns now, with the identity ``stat`` (symlinks followed) sees."""
        found: dict[str, Ident] = {}
        for pattern in self._patterns:
            for path in sorted(glob.glob(pattern, recursive=True)):
                if path in found or any(fnmatch.fnmatch(path, ex) for ex in self._exclude):
                    continue
                try:
                    s = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(s.st_mode):
                    found[path] = (s.st_dev, s.st_ino)
        return found

    def _track_start_paths(self, found: dict[str, Ident]) -> None:
        """from_end applies to files present at the first poll only, even if they open later."""
        if self._start_paths is None:
            self._start_paths = set(found) if self._from_end else set()
        elif self._start_paths:
            self._start_paths.intersection_update(found)

    def _reconcile(self, found: dict[str, Ident]) -> None:
        """Re-key followed files to where their identity now lives; retire the ones replaced or deleted.

        A file renamed to another matching path (``usage.jsonl`` -> ``usage.jsonl.1`` with a
        ``usage.jsonl*`` pattern) keeps its fd, offset and tail, so it is never read twice.
        """
        where: dict[Ident, str] = {}
        for path, ident in found.items():
            where.setdefault(ident, path)
        keep: dict[str, _Stream] = {}
        retired: list[_Stream] = []
        for path, st in self._streams.items():
            if found.get(path) == st.ident:
                keep[path] = st
            elif st.ident in where:
                self._move(st, where[st.ident])
                keep[st.path] = st
            elif path not in found and self._still_linked(st):
                keep[path] = st  # renamed away: a writer may still append to it
            else:
                retired.append(st)
        with self._lock:
            self._streams = keep
        for st in retired:
            self._retire(st)

    def _move(self, st: _Stream, dest: str) -> None:
        self._vacated.add(st.path)
        self._vacated.discard(dest)
        st.path = dest
        st.watch_dir = _real_dir(dest)

    @staticmethod
    def _still_linked(st: _Stream) -> bool:
        """Deleted files (no links left) are released so their disk space is freed."""
        try:
            return os.fstat(st.fd).st_nlink > 0
        except OSError:
            return True

    def _retire(self, st: _Stream) -> None:
        """The path now names another file or nothing: finish the old fd, drop its partial line."""
        self._guarded(self._drain, st)
        self._discard_tail(st)
        self._close_fd(st)
        self._vacated.add(st.path)

    def _open_new(self, found: dict[str, Ident]) -> None:
        followed = {st.ident for st in self._streams.values()}
        for path, ident in found.items():
            if path in self._streams or ident in followed:
                continue
            st = self._open(path)
            if st is None:
                continue
            if st.ident in followed:  # replaced between stat and open by a file we already follow
                self._close_fd(st)
                continue
            followed.add(st.ident)
            with self._lock:
                self._streams[path] = st
            if path in self._vacated:
                self._vacated.discard(path)
                self._sink.on_rotation(path)
            self._guarded(self._drain, st)

    def _open(self, path: str) -> _Stream | None:
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as err:
            if self._open_errors.get(path) != err.errno:
                self._open_errors[path] = err.errno
                self._sink.on_open_error(path, err)
            return None
        self._open_errors.pop(path, None)
        try:
            s = os.fstat(fd)
            if not stat.S_ISREG(s.st_mode):
                os.close(fd)
                return None
            st = _Stream(path, fd, (s.st_dev, s.st_ino), _real_dir(path))
            if self._start_paths and path in self._start_paths:
                self._start_paths.discard(path)
                self._seek_end(st, s.st_size)
        except BaseException:
            os.close(fd)
            raise
        return st

    @staticmethod
    def _seek_end(st: _Stream, size: int) -> None:
        """Start at EOF; if the writer is mid-line, skip to the next newline rather than emit a fragment."""
        if size == 0:
            return
        n = min(size, _FINGERPRINT_BYTES)
        fp = os.pread(st.fd, n, size - n)
        if len(fp) != n:  # truncated since fstat: the history is gone, read what is there now
            return
        st.fp, st.offset = fp, size
        st.head = os.pread(st.fd, n, 0)
        st.skip = not fp.endswith(b"\n")

    @staticmethod
    def _close_fd(st: _Stream) -> None:
        with contextlib.suppress(OSError):
            os.close(st.fd)

    # ----------------------------------------------------------------- wake-ups

    def _log_poll_error(self, exc: Exception) -> None:
        """Full traceback once per distinct error; a sink bug must not flood the log at 50 polls/s."""
        key = f"{type(exc).__name__}: {exc}"
        if key != self._last_poll_error:
            self._last_poll_error = key
            log.exception("tailer poll failed")
        else:
            log.debug("tailer poll failed again: %s", key)

    def _wake_on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _watch_dirs(self) -> list[str]:
        dirs: list[str] = []
        for pattern in self._patterns:
            parent = os.path.dirname(pattern) or os.curdir
            dirs.extend(os.path.realpath(d) for d in glob.glob(parent, recursive=True))
        dirs.extend(st.watch_dir for st in list(self._streams.values()))
        return list(dict.fromkeys(dirs))

    def _update_watches(self) -> None:
        """Schedule directories that exist now; re-schedule ones deleted and recreated (new identity)."""
        with self._watch_lock:  # start_watching may run on another thread than run()
            observer = self._observer
            if observer is not None:
                self._schedule_dirs(observer)

    def _schedule_dirs(self, observer: BaseObserver | InotifyWaker) -> None:
        for d in self._watch_dirs():
            try:
                s = os.stat(d)
            except OSError:
                continue
            ident = (s.st_dev, s.st_ino)
            old = self._watches.get(d)
            if not stat.S_ISDIR(s.st_mode) or (old is not None and old[0] == ident):
                continue
            if old is not None:
                self._unschedule(observer, old[1])
            try:
                watch = observer.schedule(self._handler, d, event_filter=list(_EVENT_FILTER))
            except OSError as err:  # inotify limits: the timer still keeps us correct
                if d not in self._watch_errors:
                    self._watch_errors.add(d)
                    log.warning("cannot watch %s (falling back to polling): %s", d, err)
                continue
            self._watch_errors.discard(d)
            self._watches[d] = (ident, watch)

    @staticmethod
    def _unschedule(observer: BaseObserver | InotifyWaker, watch: ObservedWatch | Any) -> None:
        with contextlib.suppress(KeyError, OSError):
            observer.unschedule(watch)
