"""One open file being followed: its identity, read position, held partial line and fingerprints.

Lifecycle of a ``FileStream`` (the tailer drives it; every step happens in the polling thread):

* **Opened** when discovery finds a regular file at a followed path whose identity ``(st_dev, st_ino)``
  is not followed yet: read from byte 0, or from its end with ``--from-end`` for files present at start
  (mid-line: the rest of that line is skipped, never emitted as a fragment).
* **Serviced** on every wake: first the truncation check, then read to EOF. Truncation means the *same*
  identity now holds fewer bytes than were read, or other bytes just before the read position (cut and
  regrown between two polls: copytruncate, ``> file``); the held partial line is dropped as incomplete
  and the file is read again from byte 0.
* **Rotation** is told apart by identity, never by size: after servicing, the tailer stats the path. The
  same identity under another followed name (``usage.jsonl`` → ``usage.jsonl.1`` with a ``usage.jsonl*``
  glob) re-keys the stream, which keeps its fd and position, so nothing is read twice. A file renamed
  out of the followed names stays open under its old path while it still has a link, since a writer may
  still append to it. When the path names another file (rename + create, delete + create) or the file is
  deleted, the stream is **retired**: read to EOF once more, its unterminated last line dropped as
  incomplete (its writer never finished it), its fd closed. The new file at the path is opened from
  byte 0 and counted as a rotation.
* **Parked** (``--max-open-files``): when every descriptor the tailer may use is taken and another file
  needs one, the stream read longest ago that holds no partial line gives its descriptor back. It keeps
  everything else (identity, offset, line number, fingerprints), so it is still followed: when its path
  shows another size or modification time it is **reopened by path**, checked to be the same identity,
  checked for truncation, and read on. A parked file whose path no longer names it is looked for in its
  directory by identity and fingerprints (a rotation), finished and retired.
* **Closed** at shutdown; a held partial line is not consumed, so a restart with ``--state-file`` reads it
  again whole.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from llm_log_exporter.tailing.lines import LineSplitter
from llm_log_exporter.tailing.positions import FP_BYTES, OPEN_FLAGS

Ident = tuple[int, int]


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
class FileStream:
    """One open file identity; the splitter's held tail starts at byte ``lines.offset - len(lines.tail)``."""

    path: str
    fd: int
    ident: Ident
    watch_dir: str  # parent of the real file, so writes behind a symlink wake us too
    sink: TailSink
    lines: LineSplitter
    fp: bytes = b""  # up to FP_BYTES bytes before the read position: detects truncate-and-regrow between polls
    head: bytes = b""  # up to FP_BYTES first bytes of the file: part of its identity in a saved position
    active: float = 0.0  # monotonic time of the last read that found bytes (least recent is parked first)
    # While parked: (size, mtime in ns) when everything had been read, None when unread bytes were left.
    seen: tuple[int, int] | None = None
    read_total: int = 0  # bytes read since opened: how busy the file is (the tailer's wake coalescing)

    @property
    def parked(self) -> bool:
        return self.fd < 0

    def parkable(self) -> bool:
        """Open, no partial line held, and fingerprints complete: nothing needs the descriptor to resume."""
        n = min(self.lines.offset, FP_BYTES)
        return self.fd >= 0 and not self.lines.tail and len(self.fp) == n and len(self.head) == n

    def park(self) -> None:
        """Give the descriptor back; the caller holds the tailer's lock (a scrape may be reading the fd)."""
        try:
            s = os.fstat(self.fd)
            self.seen = (s.st_size, s.st_mtime_ns) if s.st_size == self.lines.offset else None
        except OSError:
            self.seen = None
        self.close()
        self.fd = -1

    def changed(self, now: tuple[int, int] | None) -> bool:
        """Whether a parked file, whose path shows ``now``, has something to read (or to check)."""
        return self.seen is None or (now is not None and now != self.seen)

    def reopen(self, path: str) -> bool:
        """Open ``path`` again; False (and still parked) unless it is the same regular file."""
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError:
            return False
        try:
            s = os.fstat(fd)
            if stat.S_ISREG(s.st_mode) and (s.st_dev, s.st_ino) == self.ident:
                self.fd = fd
                return True
        except OSError:
            pass
        os.close(fd)
        return False

    @property
    def offset(self) -> int:
        return self.lines.offset

    def truncated(self) -> bool:
        """Size below the read position, or other bytes before it (truncated and regrown since last poll)."""
        if os.fstat(self.fd).st_size < self.lines.offset:
            return True
        fp = self.fp
        return bool(fp) and os.pread(self.fd, len(fp), self.lines.offset - len(fp)) != fp

    def service(self, chunk: int, stop: threading.Event | None) -> None:
        """One wake: notice a truncation (read again from 0), then read to EOF."""
        if self.truncated():
            self.sink.on_truncation(self.path)
            self.discard_tail()
            self.lines.reset()
            self.fp = self.head = b""
        self.drain(chunk, stop)

    def drain(self, chunk: int, stop: threading.Event | None) -> None:
        """Read to EOF (or until ``stop`` is set between two reads)."""
        fd = self.fd
        while True:
            data = os.pread(fd, chunk, self.lines.offset)
            if not data:
                return
            self.sink.on_read(self.path, len(data))
            self.read_total += len(data)
            self.active = time.monotonic()
            self._remember(data)
            self.lines.feed(data, self._on_lines, self._on_oversized)
            if stop is not None and stop.is_set():
                return

    def _remember(self, data: bytes) -> None:
        """Keep the first and the last FP_BYTES bytes read: the file's fingerprints."""
        if self.lines.offset < FP_BYTES:
            self.head = (self.head + data)[:FP_BYTES]
        self.fp = data[-FP_BYTES:] if len(data) >= FP_BYTES else (self.fp + data)[-FP_BYTES:]

    def _on_lines(self, lines: list[bytes], first_lineno: int, first_offset: int) -> None:
        self.sink.on_lines(self.path, lines, first_lineno, first_offset)

    def _on_oversized(self, lineno: int, offset: int) -> None:
        self.sink.on_oversized(self.path, lineno, offset)

    def discard_tail(self) -> None:
        nbytes = self.lines.discard()
        if nbytes:
            self.sink.on_incomplete(self.path, nbytes)

    def seek_end(self, size: int) -> None:
        """Start at EOF; if the writer is mid-line, skip to the next newline rather than emit a fragment."""
        if size == 0:
            return
        n = min(size, FP_BYTES)
        fp = os.pread(self.fd, n, size - n)
        if len(fp) != n:  # truncated since fstat: the history is gone, read what is there now
            return
        self.fp, self.lines.offset = fp, size
        self.head = os.pread(self.fd, n, 0)
        self.lines.skip = not fp.endswith(b"\n")

    def still_linked(self) -> bool:
        """Deleted files (no links left) are released so their disk space is freed."""
        try:
            return os.fstat(self.fd).st_nlink > 0
        except OSError:
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
