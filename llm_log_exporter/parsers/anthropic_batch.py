"""Anthropic Message Batches results: ``{"custom_id", "result": {"type", "message" | "error"}}`` per line.

Anthropic's ``input_tokens`` EXCLUDES prompt-cache tokens, while LiteLLM's ``prompt_tokens`` (and so
our ``input``) includes them, so input = ``input_tokens + cache_creation_input_tokens +
cache_read_input_tokens``; cache reads count as cached tokens, cache creation as cache-write tokens.
Results carry no cost: it is filled from the price table at the batch rates. ``errored`` results are
failures classified by the API error type; ``canceled`` and ``expired`` requests never ran and are
failures too (``other`` and ``timeout``), with no tokens.
"""

from __future__ import annotations

from typing import Any

from llm_log_exporter.events import Event, Request
from llm_log_exporter.parsers._fields import bad, count, first_count, mapping, text
from llm_log_exporter.schema.errors import classify_error

NAME = "anthropic_batch"
PROVIDER = "anthropic"
TIER = "batches"

_NOT_RUN = {"canceled": "other", "expired": "timeout"}


def detect(obj: dict[str, Any]) -> bool:
    return "custom_id" in obj and "result" in obj


def _failure(call_id: str, error_type: str) -> list[Event]:
    return [Request(call_id=call_id, provider=PROVIDER, status="failure", error_type=error_type, price_tier=TIER)]


def parse(obj: dict[str, Any]) -> list[Event]:
    call_id = text(obj, "custom_id") or ""
    result = mapping(obj, "result")
    if result is None:
        raise bad("result", None)
    kind = result.get("type")
    if type(kind) is not str:  # before any lookup: a list or dict is unhashable
        raise bad("result.type", kind)
    if kind == "succeeded":
        message = mapping(result, "message")
        model = text(message, "model")
        if not model:
            raise bad("model", model)
        usage = mapping(message, "usage")
        if usage is None:
            raise bad("usage", None)
        fresh = first_count((usage, "input_tokens"))
        cache_write = first_count((usage, "cache_creation_input_tokens"))
        cached = first_count((usage, "cache_read_input_tokens"))
        output = first_count((usage, "output_tokens"))
        reasoning = count(mapping(usage, "output_tokens_details"), "thinking_tokens") or 0
        if reasoning > output:
            raise bad("thinking_tokens", reasoning)
        return [Request(call_id=call_id, model=model, provider=PROVIDER, prompt_tokens=fresh + cache_write + cached,
                        completion_tokens=output, cached_tokens=cached, cache_write_tokens=cache_write,
                        reasoning_tokens=reasoning, price_tier=TIER)]
    if kind == "errored":
        # {"type": "error", "error": {"type": "invalid_request_error", "message": ...}}
        envelope = mapping(result, "error") or {}
        inner = envelope.get("error") if type(envelope.get("error")) is dict else envelope
        error_class = inner.get("type")
        return _failure(call_id, classify_error(error_class if type(error_class) is str else None, None))
    if kind in _NOT_RUN:
        return _failure(call_id, _NOT_RUN[kind])
    raise bad("result.type", kind)
