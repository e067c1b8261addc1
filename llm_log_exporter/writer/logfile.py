"""The usage log as the writer sees it: whole lines appended to a path that rotation may move away.

Each line is one ``O_APPEND`` write of the complete line, so lines of concurrent writers (threads,
processes, workers of a proxy) never interleave. Before a write the path is ``stat``-ed (~1 µs): when it
names another file (renamed by logrotate, deleted) the old descriptor is closed and the path reopened.
A failed write closes the descriptor too, so the next write starts on a fresh one. With a ``Rotation``
the same ``stat`` gives the size, and the writer renames the file away when the next line would pass the limit.
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
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError("os.write wrote 0 bytes")
                view = view[n:]
        except BaseException:
            self._close_locked()  # reopen on next write (EBADF, ENOSPC, stale NFS handle...)
            raise

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
