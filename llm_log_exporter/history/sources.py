"""Finished inputs for ``replay`` and ``report``: paths, directories, globs and ``-`` (stdin),
gzip-compressed or not, read in line batches (split by the tailer's own ``LineSplitter``).

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
from typing import IO, Any, BinaryIO

import orjson

from llm_log_exporter.events import InvalidLine
from llm_log_exporter.parsers import decode_object
from llm_log_exporter.tailing.lines import LineSplitter

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
        splitter = LineSplitter(self.max_line_bytes)
        batches: list[tuple[list[bytes], int, int]] = []
        on_lines = lambda lines, lineno, offset: batches.append((lines, lineno, offset))  # noqa: E731
        on_oversized = lambda lineno, offset: self.oversized.append((lineno, offset))  # noqa: E731
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
                splitter.feed(chunk, on_lines, on_oversized)
                yield from batches
                batches.clear()
            if self.error is None:
                splitter.finish(on_lines)
                yield from batches
        finally:
            if stream is not raw:
                stream.close()
            if raw is not sys.stdin.buffer:
                raw.close()


# --- whole JSON documents (LiteLLM's bucket loggers write one payload, or an array, per .json object)

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".log")
_JSON_ERRORS = (orjson.JSONDecodeError, RecursionError)


def _open_document(path: str | os.PathLike[str]) -> tuple[IO[bytes], str]:
    """The byte stream and the name that tells its format (``x.jsonl.gz`` → ``x.jsonl``)."""
    name = os.fspath(path)
    if name.endswith(".gz"):
        return gzip.open(name, "rb"), name[:-3]
    return open(name, "rb"), name


def _decode(data: bytes) -> dict[str, Any] | InvalidLine:
    try:
        return decode_object(data)
    except InvalidLine as err:
        return err


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | InvalidLine]]:
    for lineno, line in enumerate(stream, 1):
        if not line.strip():
            continue
        yield lineno, _decode(line)


def _document(data: bytes) -> Iterator[tuple[int, dict[str, Any] | InvalidLine]]:
    """A ``.json`` file: one object (position 1) or an array (positions 1..n, in order)."""
    try:
        doc = orjson.loads(data)
    except _JSON_ERRORS:
        # Not one document: JSON lines under a .json name (gcs/azure batch files do this).
        for lineno, line in enumerate(data.splitlines(), 1):
            if line.strip():
                yield lineno, _decode(line)
        return
    if type(doc) is dict:
        yield 1, doc
    elif type(doc) is list:
        for index, item in enumerate(doc, 1):
            yield index, item if type(item) is dict else InvalidLine("not_object")
    else:
        yield 1, InvalidLine("not_object")


def iter_objects(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | InvalidLine]]:
    """(line number or array position, decoded object or ``InvalidLine``) for every entry of ``path``.

    ``.json`` (optionally ``.json.gz``) is read as one document; everything else — ``.jsonl``,
    ``.ndjson``, ``.log``, no suffix — as JSON lines, streamed so huge files need no memory.
    Blank lines are not entries.
    """
    stream, name = _open_document(path)
    with stream:
        if name.endswith(".json"):
            yield from _document(stream.read())
        else:
            yield from _lines(stream)
