"""Follow JSON-lines files by path and hand complete lines, in batches, to a sink.

The loop every mature tailer uses (mtail's filestream, Fluent Bit, Vector): on each wake read every open
file to EOF, then ``stat`` the path and compare ``(st_dev, st_ino)`` with the open fd to notice rotation,
and compare size and a fingerprint of the bytes before the offset to notice truncation (the stream's
lifecycle is told in ``tailing/stream.py``). Wakes come from directory watches (latency) and from a timer
(correctness where inotify is silent: NFS, bind mounts, queue overflow); events are never data.

The promise: every complete line is delivered exactly once and a partial line never is.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence

from llm_log_exporter.tailing.discovery import Discovery, Ident, real_dir
from llm_log_exporter.tailing.lines import LineSplitter
from llm_log_exporter.tailing.positions import FP_BYTES, OPEN_FLAGS, Position, digest, fingerprints, locate
from llm_log_exporter.tailing.stream import FileStream, TailSink
from llm_log_exporter.tailing.watches import Watches

log = logging.getLogger(__name__)

__all__ = ["TailSink", "Tailer"]


class Tailer:
    """Follows files matching ``patterns`` and feeds complete lines to ``sink``.

    ``min_wake_interval`` caps watch-driven polls (default 50/s); the timer runs every ``poll_interval``.
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
        if max_line_bytes < 1 or read_chunk < 1 or poll_interval <= 0:
            raise ValueError("max_line_bytes, read_chunk and poll_interval must be positive")
        self._discovery = Discovery(patterns, exclude)
        self._sink = sink
        self._from_end = from_end
        self.poll_interval = poll_interval
        self._max = max_line_bytes
        self._chunk = read_chunk
        self._use_inotify = use_inotify
        self.after_poll = after_poll
        self._streams: dict[str, FileStream] = {}
        self._lock = threading.Lock()  # guards _streams swaps and fd closes against files/lag_bytes
        self._vacated: set[str] = set()  # paths whose file left; a new file there is a rotation
        # Files whose path now names another file but that are still linked somewhere this poll's listing did
        # not show (a rotation chain renaming while discovery ran): kept, and drained, for one more poll.
        self._unseen: dict[Ident, FileStream] = {}
        self._globbing = any(glob.has_magic(p) for p in self._discovery.patterns)  # a new name can match
        self._start_paths: set[str] | None = None  # from_end: paths seen at the first poll, not yet opened
        self._open_errors: dict[str, int | None] = {}
        self._read_errors: dict[str, int | None] = {}
        self._wake = threading.Event()
        self._stop: threading.Event | None = None
        self._watches = Watches(self.wake, self.min_wake_interval / 2)
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
        """Start watch wake-ups; the timer in ``run`` stays the safety net."""
        if not self._use_inotify or self._closed:
            return
        self._watches.start()
        self._watches.update(self._watch_dirs())

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

    def poll_once(self) -> None:
        """One wake: read open files to EOF, then rediscover paths and apply rotations."""
        if self._closed:
            return
        for st in [*self._streams.values(), *self._unseen.values()]:
            self._guarded(self._service, st)
        if self._stop is not None and self._stop.is_set():
            return  # shutting down: no rotation handling on half-read files
        found = self._discovery.find()
        self._track_start_paths(found)
        self._reconcile(found)
        self._open_new(found)
        if self._watches.active:
            self._watches.update(self._watch_dirs())

    def close(self) -> None:
        """Stop the watches and close every fd; held partial lines are dropped silently."""
        if self._closed:
            return
        self._closed = True
        self._watches.close()
        with self._lock:
            streams, self._streams = [*self._streams.values(), *self._unseen.values()], {}
            self._unseen = {}
            for st in streams:
                st.close()
        self._wake.set()

    # ----------------------------------------------------------------- restart positions

    def positions(self) -> list[Position]:
        """Resumable positions of the followed files; call between polls from the polling thread.

        A held partial line is not consumed: its start is the saved offset, so a restart reads it again
        whole. A file truncated since the last read is left out (a restart reads it from the start, as
        the next poll would). Raises ``OSError`` when a file cannot be read, so no position is guessed.
        """
        out: list[Position] = []
        for st in list(self._streams.values()):
            held = len(st.lines.tail)
            offset = st.offset - held
            n = min(offset, FP_BYTES)
            if held:
                if st.truncated():
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
            out.append(Position(st.path, st.watch_dir, dev, ino, offset, st.lines.lineno, st.lines.skip,
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
        wanted = [p for p in positions if self._discovery.wanted(p.path)]
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
            n = min(pos.offset, FP_BYTES)
            splitter = LineSplitter(self._max, pos.offset, pos.lineno, pos.skip)
            st = FileStream(pos.path, fd, (s.st_dev, s.st_ino), real_dir(path), self._sink, splitter,
                            fp=os.pread(fd, n, pos.offset - n), head=os.pread(fd, n, 0))
            with self._lock:
                self._streams[pos.path] = st
            if path != pos.path:
                self._vacated.add(pos.path)
            result[pos.path] = how
        if self._start_paths is None:
            self._start_paths = set()
        return result

    # ----------------------------------------------------------------- reading

    def _service(self, st: FileStream) -> None:
        st.service(self._chunk, self._stop)

    def _guarded(self, fn: Callable[[FileStream], None], st: FileStream) -> None:
        """An I/O error on one file (EIO, ESTALE) must not stop the others; logged once per errno."""
        try:
            fn(st)
        except OSError as err:
            if self._read_errors.get(st.path) != err.errno:
                self._read_errors[st.path] = err.errno
                log.warning("reading %s failed: %s", st.path, err)
        else:
            self._read_errors.pop(st.path, None)

    def _drain(self, st: FileStream) -> None:
        st.drain(self._chunk, self._stop)

    # ----------------------------------------------------------------- discovery and identity

    def _track_start_paths(self, found: dict[str, Ident]) -> None:
        """from_end applies to files present at the first poll only, even if they open later."""
        if self._start_paths is None:
            self._start_paths = set(found) if self._from_end else set()
        elif self._start_paths:
            self._start_paths.intersection_update(found)

    def _reconcile(self, found: dict[str, Ident]) -> None:
        """Re-key followed files to where their identity now lives; retire the ones replaced or deleted."""
        where: dict[Ident, str] = {}
        for path, ident in found.items():
            where.setdefault(ident, path)
        keep: dict[str, FileStream] = {}
        retired: list[FileStream] = []
        unseen: dict[Ident, FileStream] = {}
        for path, st in self._streams.items():
            if found.get(path) == st.ident:
                keep[path] = st
            elif st.ident in where:
                self._move(st, where[st.ident])
                keep[st.path] = st
            elif path not in found and st.still_linked():
                keep[path] = st  # renamed away: a writer may still append to it
            elif self._globbing and st.still_linked():
                unseen[st.ident] = st  # replaced at its path, renamed to a name this listing may have missed
                self._vacated.add(path)
                self._guarded(self._drain, st)
            else:
                retired.append(st)
        for ident, st in self._unseen.items():  # given one more listing: found under a new name, or done
            dest = where.get(ident)
            if dest is not None and dest not in keep:
                st.path, st.watch_dir = dest, real_dir(dest)
                self._vacated.discard(dest)
                keep[dest] = st
            else:
                retired.append(st)
        with self._lock:
            self._streams = keep
            self._unseen = unseen
        for st in retired:
            self._retire(st)

    def _move(self, st: FileStream, dest: str) -> None:
        self._vacated.add(st.path)
        self._vacated.discard(dest)
        st.path = dest
        st.watch_dir = real_dir(dest)

    def _retire(self, st: FileStream) -> None:
        """The path now names another file or nothing: finish the old fd, drop its partial line."""
        self._guarded(self._drain, st)
        st.discard_tail()
        st.close()
        self._vacated.add(st.path)

    def _open_new(self, found: dict[str, Ident]) -> None:
        followed = {st.ident for st in [*self._streams.values(), *self._unseen.values()]}
        for path, ident in found.items():
            if path in self._streams or ident in followed:
                continue
            st = self._open(path)
            if st is None:
                continue
            if st.ident in followed:  # replaced between stat and open by a file we already follow
                st.close()
                continue
            followed.add(st.ident)
            with self._lock:
                self._streams[path] = st
            if path in self._vacated:
                self._vacated.discard(path)
                self._sink.on_rotation(path)
            self._guarded(self._drain, st)

    def _open(self, path: str) -> FileStream | None:
        try:
            fd = os.open(path, OPEN_FLAGS)  # O_NONBLOCK: a FIFO swapped in between stat and open must not block
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
            st = FileStream(path, fd, (s.st_dev, s.st_ino), real_dir(path), self._sink, LineSplitter(self._max))
            if self._start_paths and path in self._start_paths:
                self._start_paths.discard(path)
                st.seek_end(s.st_size)
        except BaseException:
            os.close(fd)
            raise
        return st

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
        return [*self._discovery.parent_dirs(), *(st.watch_dir for st in list(self._streams.values()))]
