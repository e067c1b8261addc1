"""The usage log as the writer sees it: whole lines appended to a path that rotation may move away.

Each line is one ``O_APPEND`` write of the complete line, so lines of concurrent writers (threads,
processes, workers of a proxy) never interleave. Before a write the path is ``stat``-ed (~1 µs): when it
names another file (renamed by logrotate, deleted) the old descriptor is closed and the path reopened.
A failed write closes the descriptor too, so the next write starts on a fresh one. With a ``Rotation``
the same ``stat`` gives the size, and the writer renames the file away when the next line would pass the limit.

A write cut short (a full disk: ENOSPC after part of the line) must not corrupt the *next* line, which
would be glued to the fragment. The fragment is cut off again at once when nothing was appended after
it (the usual case); otherwise the next line this writer appends starts with a newline, so the fragment
stands alone as one invalid line. The caller counts the lost line (``UsageLogger.errors``).
"""

from __future__ import annotations

import contextlib
import os
import threading

from .rotation import Rotation
from .safe_open import DEFAULT_MODE, open_append


class LogFile:
    """Appends lines to ``path``; ``append`` raises ``OSError`` on failure and the caller decides.

    ``lock`` is public so a caller that keeps its own bookkeeping per line (de-duplication, counts) does
    it under the same lock as the write, with ``append_locked``: one lock per line, not two.
    """

    def __init__(self, path: str, mode: int = DEFAULT_MODE, rotation: Rotation | None = None) -> None:
        self.path = path
        self.mode = mode
        self.rotation = rotation
        self.lock = threading.Lock()
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        # A partial line left behind: (file identity, its start, its end); the next line mends it.
        self._fragment: tuple[tuple[int, int], int, int] | None = None

    def append(self, data: bytes) -> None:
        with self.lock:
            self.append_locked(data)

    def append_locked(self, data: bytes) -> None:
        """``append`` for a caller that holds ``lock``."""
        fd = self._fd
        if fd is not None:
            try:
                st = os.stat(self.path)  # catches rotation (rename) and deletion
                if (st.st_dev, st.st_ino) != self._ident:
                    self._close_locked()
                    fd = None
                elif self.rotation is not None and self.rotation.due(st.st_size, len(data)):
                    self.rotation.rotate(self.path, self._ident, len(data))
                    self._close_locked()
                    fd = None
            except FileNotFoundError:
                self._close_locked()
                fd = None
        if fd is None:
            fd = self._open_locked()
            if self.rotation is not None and self.rotation.due(os.fstat(fd).st_size, len(data)):
                self.rotation.rotate(self.path, self._ident, len(data))  # found over the limit at open
                self._close_locked()
                fd = self._open_locked()
        mending = self._fragment is not None and self._mend(fd)
        if mending:
            data = b"\n" + data  # the fragment becomes a line of its own; this line stays whole
        written = 0
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError("os.write wrote 0 bytes")
                written += n
                view = view[n:]
        except BaseException:
            if mending and written:
                self._fragment = None  # the newline got in: the old fragment is a line of its own now
                written -= 1
            if written:
                self._cut(fd, written)
            self._close_locked()  # reopen on next write (EBADF, ENOSPC, stale NFS handle...)
            raise
        if mending:
            self._fragment = None

    def _cut(self, fd: int, written: int) -> None:
        """``written`` bytes of a line got in: take them back if they still end the file, else remember them."""
        end = -1  # unknown: the next line starts with a newline
        try:
            end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: just after the bytes this write added
            if os.fstat(fd).st_size == end:
                os.ftruncate(fd, end - written)
                return
        except OSError:
            pass
        if self._ident is not None:
            self._fragment = (self._ident, end - written, end)

    def _mend(self, fd: int) -> bool:
        """Before the next line: cut the fragment if it is still the end of the file; True when the line
        must start with a newline instead (something was appended after it)."""
        assert self._fragment is not None
        ident, start, end = self._fragment
        if ident != self._ident:  # the file was rotated: the fragment ends the old one, the new one is clean
            self._fragment = None
            return False
        try:
            if end >= 0 and os.fstat(fd).st_size == end:
                os.ftruncate(fd, start)
                self._fragment = None
                return False
        except OSError:
            pass
        return True

    def _open_locked(self) -> int:
        fd = open_append(self.path, self.mode)  # no planted symlink in world-writable dirs (docs/security.md)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        return fd

    def _close_locked(self) -> None:
        fd, self._fd, self._ident = self._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Close the descriptor; a later ``append`` reopens the path."""
        with self.lock:
            self._close_locked()

    def after_fork_in_child(self) -> None:
        # The parent's lock may have been held by another thread at fork time.
        self.lock = threading.Lock()
