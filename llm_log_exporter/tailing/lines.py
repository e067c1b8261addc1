"""Bytes → complete lines with their line numbers and byte offsets, bounded by ``max_line_bytes``.

One splitter serves the daemon (a file still being written: an unterminated last line is held until
its newline arrives, never emitted) and history readers (a finished file: ``finish`` emits it). A line
longer than ``max_line_bytes`` is reported, not emitted, and memory stays bounded: a held partial line
past the limit is dropped at once and the bytes up to its newline are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

LinesFn = Callable[[list[bytes], int, int], None]  # (lines, number of the first, byte offset of the first)
OversizedFn = Callable[[int, int], None]  # (line number, byte offset)


def has_long_line(buf: bytes, end: int, max_len: int) -> bool:
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


class LineSplitter:
    """Splits what is fed to it; ``offset`` counts bytes fed, ``lineno`` lines consumed (emitted or dropped).

    The held partial line starts at byte ``offset - len(tail)``; ``skip`` means the bytes up to the next
    newline belong to a line already dropped (or to a line begun before the reader's start position).
    """

    __slots__ = ("lineno", "max_line", "offset", "skip", "tail")

    def __init__(self, max_line: int, offset: int = 0, lineno: int = 0, skip: bool = False) -> None:
        self.max_line = max_line
        self.offset = offset
        self.lineno = lineno
        self.skip = skip
        self.tail = b""

    def reset(self) -> None:
        """Back to the start of a file (it was truncated): nothing held, nothing skipped."""
        self.offset = self.lineno = 0
        self.skip = False
        self.tail = b""

    def feed(self, data: bytes, on_lines: LinesFn, on_oversized: OversizedFn) -> None:
        """Split one read; everything but the split itself is O(1) per chunk on the fast path."""
        pos = self.offset
        self.offset = pos + len(data)
        if self.skip:
            nl = data.find(b"\n")
            if nl < 0:
                return
            self.skip = False
            pos += nl + 1
            data = data[nl + 1:]
        lines = data.split(b"\n")
        rest = lines.pop()
        head = self.tail
        if not lines:
            self.tail = head + rest if head else rest
            self._bound_tail(on_oversized)
            return
        start = pos - len(head)
        if head:
            lines[0] = head + lines[0]
        self.tail = rest
        if len(lines[0]) > self.max_line or has_long_line(data, len(data) - len(rest) - 1, self.max_line):
            self._emit_checked(lines, start, on_lines, on_oversized)
        else:
            first = self.lineno + 1
            self.lineno += len(lines)
            on_lines(lines, first, start)
        self._bound_tail(on_oversized)

    def finish(self, on_lines: LinesFn) -> None:
        """End of a finished file: its unterminated last line is a line too."""
        if self.tail and not self.skip:
            tail, self.tail = self.tail, b""
            self.lineno += 1
            on_lines([tail], self.lineno, self.offset - len(tail))

    def discard(self) -> int:
        """Drop the held partial line (the file it belonged to is gone); returns its length."""
        nbytes, self.tail = len(self.tail), b""
        return nbytes

    def _emit_checked(self, lines: list[bytes], offset: int, on_lines: LinesFn, on_oversized: OversizedFn) -> None:
        """Slow path, only for chunks holding an oversized line: emit the good runs around it."""
        max_len = self.max_line
        batch: list[bytes] = []
        batch_offset = offset
        for line in lines:
            self.lineno += 1
            if len(line) > max_len:
                if batch:
                    on_lines(batch, self.lineno - len(batch), batch_offset)
                    batch = []
                on_oversized(self.lineno, offset)
                batch_offset = offset + len(line) + 1
            else:
                batch.append(line)
            offset += len(line) + 1
        if batch:
            on_lines(batch, self.lineno - len(batch) + 1, batch_offset)

    def _bound_tail(self, on_oversized: OversizedFn) -> None:
        """A held tail past the limit is dropped now and skipped to its newline: memory stays bounded."""
        if len(self.tail) > self.max_line:
            self.lineno += 1
            on_oversized(self.lineno, self.offset - len(self.tail))
            self.tail = b""
            self.skip = True
