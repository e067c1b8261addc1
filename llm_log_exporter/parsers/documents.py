"""Whole files for replay: JSON lines, one JSON document (an object or an array), gzip of either.

LiteLLM's bucket loggers write one SLO per ``.json`` object (or a batch per ``.jsonl``/``.ndjson``);
rotated logs are often gzipped. The daemon follows JSON-lines files line by line (tailer.py); this
module serves readers of finished files. Bad entries are yielded as ``InvalidLine`` next to their
position instead of raising, so one broken line never hides the rest of a file.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from typing import IO, Any

import orjson

from llm_log_exporter.events import InvalidLine

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".log")
_JSON_ERRORS = (orjson.JSONDecodeError, RecursionError)


def _open(path: str | os.PathLike[str]) -> tuple[IO[bytes], str]:
    """The byte stream and the name that tells its format (``x.jsonl.gz`` → ``x.jsonl``)."""
    name = os.fspath(path)
    if name.endswith(".gz"):
        return gzip.open(name, "rb"), name[:-3]
    return open(name, "rb"), name


def _decode(data: bytes) -> dict[str, Any] | InvalidLine:
    try:
        obj = orjson.loads(data)
    except _JSON_ERRORS:
        return InvalidLine("not_json")
    return obj if type(obj) is dict else InvalidLine("not_object")


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
    stream, name = _open(path)
    with stream:
        if name.endswith(".json"):
            yield from _document(stream.read())
        else:
            yield from _lines(stream)
