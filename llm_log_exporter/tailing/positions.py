"""Where the tailer stands in a file, in a form that survives a restart, and how to find that file again.

A file is recognised by ``(st_dev, st_ino)`` **and** two fingerprints: of its first bytes and of the bytes
just before the saved offset. The inode alone is the classic bug of persistent tailers (Fluent Bit, Filebeat):
a file deleted and recreated while the exporter was down often gets the same inode, and resuming it at the
old offset would skip lines. Fingerprints are hashes, so a state file never holds log content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

FP_BYTES = 256
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)

# How ``locate`` found a file: still at its path, renamed within its directory, or a copy of it
# (logrotate's copytruncate while the exporter was down).
SAME, RENAMED, COPIED = "same", "renamed", "copied"


@dataclass(frozen=True)
class Position:
    """A resumable read position; ``offset`` is where the first unconsumed byte is (a held partial line
    starts there, so it is read again after a restart instead of being lost or half-parsed)."""

    path: str  # the path the tailer follows it under
    real_dir: str  # directory of the real file (behind symlinks), searched for a rotated copy too
    dev: int
    ino: int
    offset: int
    lineno: int  # lines consumed before offset, for log messages
    skip: bool  # inside an oversized line: drop bytes up to the next newline
    head: str  # digest of the first min(offset, FP_BYTES) bytes
    before: str  # digest of the min(offset, FP_BYTES) bytes before offset
    held: int = 0  # bytes of a partial line read but not consumed (re-read after a restart)


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprints(fd: int, offset: int) -> tuple[str, str] | None:
    """Digests of the head and of the bytes before ``offset``; None if the file is shorter than that."""
    n = min(offset, FP_BYTES)
    head = os.pread(fd, n, 0)
    before = head if offset == n else os.pread(fd, n, offset - n)
    if len(head) != n or len(before) != n:
        return None
    return digest(head), digest(before)


def holds(fd: int, pos: Position) -> bool:
    """Whether the open file has the bytes ``pos`` was taken from (same head, same bytes before offset)."""
    try:
        return os.fstat(fd).st_size >= pos.offset and fingerprints(fd, pos.offset) == (pos.head, pos.before)
    except OSError:
        return False


def _candidates(pos: Position) -> Iterator[str]:
    """The path itself first, then every other entry of its directory and of the real file's directory."""
    yield pos.path
    seen = {pos.path}
    for d in dict.fromkeys((os.path.dirname(pos.path) or os.curdir, pos.real_dir)):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            if path not in seen:
                seen.add(path)
                yield path


def _open_if(path: str, pos: Position, claimed: set[tuple[int, int]], same_inode: bool) -> int | None:
    try:
        s = os.stat(path)
    except OSError:
        return None
    ident = (s.st_dev, s.st_ino)
    if not stat.S_ISREG(s.st_mode) or ident in claimed or s.st_size < pos.offset:
        return None
    if same_inode != (ident == (pos.dev, pos.ino)):
        return None
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return None
    try:
        f = os.fstat(fd)
        if (f.st_dev, f.st_ino) == ident and holds(fd, pos):
            claimed.add(ident)
            return fd
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.close(fd)
    return None


def locate(pos: Position, claimed: set[tuple[int, int]], *, by_content: bool) -> tuple[str, int, str] | None:
    """Find and open the file ``pos`` was taken from: ``(path now, fd, SAME | RENAMED | COPIED)``.

    By identity (same inode and fingerprints: the file itself, perhaps renamed by logrotate) or, with
    ``by_content``, by fingerprints alone (a copy made by copytruncate); never a file already ``claimed``.
    Callers run the identity pass for every position before any content pass. A file truncated, replaced
    or deleted while the exporter was down is not found: the caller reads the path from the start.
    """
    if pos.offset == 0:
        # Nothing consumed: the fingerprints are empty and any file with a reused inode would "match".
        # Only the path itself is resumed (from 0, as discovery would); a renamed one is not looked for.
        if by_content:
            return None
        candidates: Iterable[str] = (pos.path,)
    else:
        candidates = _candidates(pos)
    for path in candidates:
        fd = _open_if(path, pos, claimed, same_inode=not by_content)
        if fd is not None:
            how = COPIED if by_content else SAME if path == pos.path else RENAMED
            return path, fd, how
    return None
