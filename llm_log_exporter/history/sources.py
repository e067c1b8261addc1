"""Finished inputs for ``replay`` and ``report``: paths, directories, globs and ``-`` (stdin),
gzip-compressed or not, read in line batches (split by the tailer's own ``LineSplitter``).

The only place that opens history files, so a container format is added here once and both commands
read it: ``.json`` files (LiteLLM's s3 / gcs bucket loggers: one payload or an array of them per object,
gzipped or not) are read as one document whose objects become the "lines" (JSON lines under a
``.json`` name are read as lines). In a directory, files whose suffix says they are not usage logs
(``README.md``, ``budgets.toml``, ...) are skipped; a file named on the command line is always read.
An input that cannot be opened or read (permission, I/O error) stops the command: a partial history
must not pass for a complete one.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
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
    """A command-line input that names nothing readable, or a file that cannot be read."""


# Names of usage logs: these suffixes (before .gz and a rotation suffix), or none at all (the object
# names of LiteLLM's gcs logger are bare response ids).
LOG_SUFFIXES = (".jsonl", ".ndjson", ".json", ".log")
_ROTATION = re.compile(r"([.-]\d{4}-?\d{2}-?\d{2}([T_.-]?\d{2}[:-]?\d{2}([:-]?\d{2})?)?|[.-]\d+)$")


def is_log_name(name: str) -> bool:
    """Whether a file found in a directory is read: ``usage.jsonl``, ``usage.log.2.gz``,
    ``usage.jsonl-20251101``, ``2025-11-01/chatcmpl-abc`` yes; ``README.md``, ``budgets.toml`` no."""
    base = os.path.basename(name).lower().removesuffix(".gz")
    base = _ROTATION.sub("", base)
    suffix = os.path.splitext(base)[1]
    return suffix in LOG_SUFFIXES or not suffix


@dataclass(frozen=True)
class Source:
    path: str  # "-" for stdin; the ``file`` label of its self-metrics and messages
    size: int | None  # bytes on disk (compressed size for .gz); None for stdin

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == STDIN else self.path


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _walk(directory: str, skipped: list[str] | None = None) -> list[str]:
    """Files below a directory, sorted, hidden files and directories left out, and files whose name
    says they are not usage logs (added to ``skipped``)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            if is_log_name(name):
                found.append(path)
            elif skipped is not None:
                skipped.append(path)
    return found


def expand(args: Sequence[str], skipped: list[str] | None = None) -> list[Source]:
    """Command-line inputs → sources, in order, each file once; anything matching nothing is an error.
    Files of directories that are not usage logs by their suffix are left out and added to ``skipped``."""
    paths: list[str] = []
    for arg in args:
        if arg == STDIN:
            paths.append(STDIN)
            continue
        arg = os.path.expanduser(arg)
        if os.path.isdir(arg):
            paths.extend(_walk(arg, skipped))
        elif _is_glob(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            files = [m for p in matches for m in (_walk(p, skipped) if os.path.isdir(p) else [p])]
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
        if path != STDIN:
            _check_readable(path)
        sources.append(Source(path, None if path == STDIN else os.path.getsize(path)))
    return sources


def _check_readable(path: str) -> None:
    """Open the file once: a permission or I/O problem stops the command before it starts."""
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from None


def is_document(path: str) -> bool:
    """A ``.json`` file (or ``.json.gz``): one JSON document, not JSON lines."""
    return path.lower().removesuffix(".gz").endswith(".json")


DOCUMENT_MAX_BYTES = 256 << 20  # a larger .json is read as JSON lines (bucket batches can be big)


def _open_bytes(path: str) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def document_lines(path: str, max_bytes: int = DOCUMENT_MAX_BYTES) -> list[bytes] | None:
    """A ``.json`` file as "lines" for the line readers: the document itself when it is one object (or
    a scalar, rejected as not an object), one line per element when it is an array (re-encoded), its
    lines when it is not one JSON document (JSON lines under a ``.json`` name). None when it is larger
    than ``max_bytes``: then it is read as JSON lines, streamed."""
    with _open_bytes(path) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None
    try:
        doc = orjson.loads(data)
    except _JSON_ERRORS:
        return data.split(b"\n")
    if type(doc) is list:
        return [orjson.dumps(item) for item in doc]
    return [data]


def _data_error(err: BaseException) -> bool:
    """A broken compressed stream (a truncated .gz): the data, not the file, is at fault."""
    return isinstance(err, (EOFError, zlib.error, gzip.BadGzipFile))


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

    def _fail(self, err: OSError) -> InputError:
        return InputError(f"{self.source.name}: cannot read: {err.strerror or err}")

    def _document(self) -> list[tuple[list[bytes], int, int]] | None:
        try:
            lines = document_lines(self.source.path)
        except OSError as err:
            if not _data_error(err):
                raise self._fail(err) from None
            self.error = f"{type(err).__name__}: {err}"
            return []
        if lines is None:
            return None
        self.consumed = self.source.size or 0
        kept = []
        for index, line in enumerate(lines, 1):
            if len(line) > self.max_line_bytes:
                self.oversized.append((index, 0))
            else:
                kept.append(line)
        return [(kept, 1, 0)] if len(kept) == len(lines) else [([line], 1, 0) for line in kept]

    def batches(self) -> Iterator[tuple[list[bytes], int, int]]:
        """Yields ``(lines, first_lineno, first_offset)``; a last line without newline counts too
        (a finished file is complete). A line over ``max_line_bytes`` is skipped and recorded in
        ``oversized``; a broken compressed stream (a truncated .gz) ends the source and is kept in
        ``error``; a file that cannot be opened or read raises ``InputError``."""
        if self.source.path != STDIN and is_document(self.source.path):
            document = self._document()
            if document is not None:
                yield from document
                return
        try:
            raw, stream = self._open()
        except OSError as err:
            raise self._fail(err) from None
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
                    if not _data_error(err):
                        raise self._fail(err) if isinstance(err, OSError) else err from None
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


def iter_objects(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | InvalidLine]]:
    """(line number or array position, decoded object or ``InvalidLine``) for every entry of ``path``.

    ``.json`` (optionally ``.json.gz``) is read as one document; everything else — ``.jsonl``,
    ``.ndjson``, ``.log``, no suffix — as JSON lines, streamed so huge files need no memory.
    Blank lines are not entries.
    """
    name = os.fspath(path)
    lines = document_lines(name) if is_document(name) else None
    if lines is not None:
        for position, line in enumerate(lines, 1):
            if line.strip():
                yield position, _decode(line)
        return
    stream, _ = _open_document(name)
    with stream:
        yield from _lines(stream)
