"""Input formats: one module per format, each turning a decoded JSON object into events.

A format module provides ``NAME``, ``detect(obj) -> bool`` (used by ``--format auto``) and
``parse(obj) -> list[Event]`` (raising ``InvalidLine``; ``[]`` for a line of the format that carries
no usage). A module whose parsing depends on options also provides ``bind(options) -> parse``.
JSON decoding happens once, in ``decode_object``, so auto-detection costs no second parse, and
``parse_line`` is the one place that turns every way a line can fail into a documented reason.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson

from llm_log_exporter.events import Event, InvalidLine
from llm_log_exporter.parsers import aider, anthropic_batch, litellm, native, openai_batch
from llm_log_exporter.parsers.options import ParserOptions

ParseFn = Callable[[dict[str, Any]], list[Event]]

# Detection order matters only as a tie-break; each detect() keys on fields no other format has
# at top level (tests check every sample matches exactly one): native `v`; SLO `startTime` +
# `status`; OpenAI batch `custom_id` + `response`; Anthropic batch `custom_id` + `result`;
# aider `event` + `properties` + `user_id`.
FORMATS: dict[str, ModuleType] = {
    module.NAME: module for module in (native, litellm, openai_batch, anthropic_batch, aider)
}

AUTO = "auto"
FastEvent = Callable[[bytes], "Event | None"]
# Parse functions whose native lines may skip the generic decoding: raw line → its one event, or None
# (not sure: the generic decoding decides).
_FAST_EVENTS: dict[ParseFn, FastEvent] = {}


def fast_event_of(parse: ParseFn) -> FastEvent | None:
    """The shortcut ``parse_line`` tries first for ``parse``: a reader's loop can look it up once per batch."""
    return _FAST_EVENTS.get(parse)


def names() -> list[str]:
    return [AUTO, *FORMATS]


def _bound(module: ModuleType, options: ParserOptions) -> ParseFn:
    bind = getattr(module, "bind", None)
    return bind(options) if bind is not None else module.parse


def get_parser(name: str, options: ParserOptions | None = None) -> ParseFn:
    """The parse function for ``--format NAME``, with ``options`` bound where a format uses them."""
    options = options or ParserOptions()
    if name == AUTO:
        table = [(module.detect, _bound(module, options)) for module in FORMATS.values()]

        def parse_auto(obj: dict[str, Any]) -> list[Event]:
            for detect, parse in table:
                if detect(obj):
                    return parse(obj)
            raise InvalidLine("unknown_format")

        _FAST_EVENTS[parse_auto] = native.fast_event
        return parse_auto
    try:
        module = FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose from {', '.join(names())}") from None
    parse = _bound(module, options)
    if module is native:
        _FAST_EVENTS[parse] = native.fast_event
    return parse


_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def decode_object(line: bytes) -> dict[str, Any]:
    """One line → its JSON object; ``InvalidLine`` (``not_json``, ``not_object``) otherwise."""
    try:
        obj = _loads(line)
    except (_JSONDecodeError, RecursionError):
        raise InvalidLine("not_json") from None
    if type(obj) is not dict:
        raise InvalidLine("not_object")
    return obj


def parse_line(parse: ParseFn, line: bytes) -> list[Event]:
    """One raw line → its events, or ``InvalidLine`` with the reason it was rejected.

    The hot path of every reader: a native request line is decoded straight into its event where the
    format allows (``native.fast_event``); otherwise ``parse_generic``.
    """
    fast = _FAST_EVENTS.get(parse)
    if fast is not None:
        event = fast(line)
        if event is not None:
            return [event]
    return parse_generic(parse, line)


def parse_generic(parse: ParseFn, line: bytes) -> list[Event]:
    """``parse_line`` without the shortcut, for a reader that tried it already: orjson, then ``parse``;
    decoding is written out here rather than calling ``decode_object``."""
    try:
        obj = _loads(line)
    except _JSONDecodeError:
        raise InvalidLine("not_json") from None
    if type(obj) is not dict:
        raise InvalidLine("not_object")
    try:
        return parse(obj)
    except InvalidLine:
        raise
    except RecursionError:  # nesting deeper than the interpreter allows a parser to look at
        raise InvalidLine("too_deep") from None
    except Exception as exc:  # a parser bug: the line is counted, the rest of its batch is kept
        raise InvalidLine("parser_error", f"{type(exc).__name__}: {exc}"[:200]) from None
