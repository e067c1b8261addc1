"""Finished inputs for ``replay`` and ``report``: paths, directories, globs and ``-`` (stdin),
gzip-compressed or not, read in line batches.

The only place that opens history files, so a new container format (a JSON array, another
compression) is added here once and both commands read it.
"""

from __future__ import annotations

import glob
import gzip
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20


class InputError(ValueError):
    """A command-line input that names nothing readable."""


@dataclass(frozen=True)
class Source:
    path: str  # "-" for stdin; the ``file`` label of its self-metrics and messages
    size: int | None  # bytes on disk (compressed size for .gz); None for stdin

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == STDIN else self.path


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _walk(directory: str) -> list[str]:
    """Regular files below a directory, sorted, hidden files and directories left out."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return found


def expand(args: Sequence[str]) -> list[Source]:
    """Command-line inputs → sources, in order, each file once; anything matching nothing is an error."""
    paths: list[str] = []
    for arg in args:
        if arg == STDIN:
            paths.append(STDIN)
            continue
        arg = os.path.expanduser(arg)
        if os.path.isdir(arg):
            paths.extend(_walk(arg))
        elif _is_glob(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            files = [m for p in matches for m in (_walk(p) if os.path.isdir(p) else [p])]
            if not files:
                raise InputError(f"{arg}: no file matches")
            paths.extend(files)
        elif os.path.exists(arg):
            paths.append(arg)
        else:
            raise InputError(f"{arg}: no such file or directory")
    if paths.count(STDIN) > 1:
        raise InputError("'-' (stdin) can be given only once")
    seen: set[str] = set()
    sources = []
    for path in paths:
        key = path if path == STDIN else os.path.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        sources.append(Source(path, None if path == STDIN else os.path.getsize(path)))
    return sources


class Reader:
    """Line batches of one source; ``consumed`` counts raw (compressed) bytes read, for progress."""

    def __init__(self, source: Source, max_line_bytes: int = 1 << 20) -> None:
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.consumed = 0
        self.oversized: list[tuple[int, int]] = []  # (line number, byte offset) of skipped long lines
        self.error: str | None = None

    def _open(self) -> tuple[BinaryIO, BinaryIO]:
        raw: BinaryIO = sys.stdin.buffer if self.source.path == STDIN else open(self.source.path, "rb")  # noqa: SIM115
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if head == GZIP_MAGIC:
            return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw, raw

    def batches(self) -> Iterator[tuple[list[bytes], int, int]]:
        """Yields ``(lines, first_lineno, first_offset)``; a last line without newline counts too
        (a finished file is complete). A line over ``max_line_bytes`` is skipped and recorded in
        ``oversized``; a read error (a truncated .gz) ends the source and is kept in ``error``."""
        try:
            raw, stream = self._open()
        except OSError as err:
            self.error = f"cannot open: {err.strerror or err}"
            return
        tell = raw.tell if raw.seekable() else None
        lineno = 1
        offset = 0  # of the first byte of ``tail`` in the decompressed stream
        tail = b""
        skipping = False
        limit = self.max_line_bytes
        try:
            while True:
                try:
                    chunk = stream.read1(CHUNK)  # what is there: a truncated .gz keeps its decoded part
                except (OSError, EOFError, zlib.error) as err:
                    self.error = f"{type(err).__name__}: {err}"
                    break
                if not chunk:
                    break
                self.consumed = tell() if tell else self.consumed + len(chunk)
                data = tail + chunk if tail else chunk
                lines = data.split(b"\n")
                tail = lines.pop()
                if skipping:
                    if not lines:
                        offset += len(tail)
                        tail = b""
                        continue
                    offset += len(lines[0]) + 1
                    lineno += 1
                    del lines[0]
                    skipping = False
                if lines:
                    if max(map(len, lines)) <= limit:
                        yield lines, lineno, offset
                    else:
                        yield from self._split_long(lines, lineno, offset, limit)
                    lineno += len(lines)
                    offset += sum(map(len, lines)) + len(lines)
                if len(tail) > limit:
                    self.oversized.append((lineno, offset))
                    offset += len(tail)
                    tail = b""
                    skipping = True
            if tail and not skipping and self.error is None:
                yield [tail], lineno, offset
        finally:
            if stream is not raw:
                stream.close()
            if raw is not sys.stdin.buffer:
                raw.close()

    def _split_long(
        self, lines: list[bytes], lineno: int, offset: int, limit: int
    ) -> Iterator[tuple[list[bytes], int, int]]:
        """The runs of lines around over-long ones, each with its own exact line number and offset."""
        run: list[bytes] = []
        run_lineno, run_offset = lineno, offset
        for index, line in enumerate(lines):
            if len(line) > limit:
                self.oversized.append((lineno + index, offset))
                if run:
                    yield run, run_lineno, run_offset
                run = []
                run_lineno, run_offset = lineno + index + 1, offset + len(line) + 1
            else:
                run.append(line)
            offset += len(line) + 1
        if run:
            yield run, run_lineno, run_offset
