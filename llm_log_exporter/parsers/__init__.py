"""Input formats: one module per format, each turning a decoded JSON object into events.

A format module provides ``NAME``, ``detect(obj) -> bool`` (used by ``--format auto``) and
``parse(obj) -> list[Event]`` (raising ``InvalidLine``). JSON decoding happens once, in the
caller, so auto-detection costs no second parse.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from llm_log_exporter.events import Event, InvalidLine
from llm_log_exporter.parsers import native

ParseFn = Callable[[dict[str, Any]], list[Event]]

# Detection order matters: the most specific shapes first.
FORMATS: dict[str, ModuleType] = {native.NAME: native}

AUTO = "auto"


def names() -> list[str]:
    return [AUTO, *FORMATS]


def _parse_auto(obj: dict[str, Any]) -> list[Event]:
    for module in FORMATS.values():
        if module.detect(obj):
            return module.parse(obj)
    raise InvalidLine("unknown_format")


def get_parser(name: str) -> ParseFn:
    """The parse function for ``--format NAME``."""
    if name == AUTO:
        return _parse_auto
    try:
        return FORMATS[name].parse
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose from {', '.join(names())}") from None
