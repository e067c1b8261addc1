"""OpenAI Batch API output and error files: ``{"id", "custom_id", "response", "error"}`` per line.

``response`` is ``{"status_code", "request_id", "body"}`` with the endpoint's normal response body
(chat completions, completions, embeddings or responses) or null when the request never ran
(``error`` then says why, e.g. ``batch_expired``). Lines carry no cost: it is filled from the price
table at the batch rates (``*_batches`` keys). No per-line time exists except the body's ``created``.
"""

from __future__ import annotations

from typing import Any

from llm_log_exporter.events import Event, Request
from llm_log_exporter.parsers._fields import MAX_EPOCH, bad, count, first_count, mapping, text
from llm_log_exporter.schema.errors import classify_error

NAME = "openai_batch"
PROVIDER = "openai"
TIER = "batches"

# Per-line error codes of the batch error file (not HTTP codes).
_BATCH_CODES = {"batch_expired": "timeout", "batch_cancelled": "other", "batch_canceled": "other"}


def detect(obj: dict[str, Any]) -> bool:
    return "custom_id" in obj and "response" in obj


def _ts(body: dict[str, Any] | None) -> float | None:
    value = body.get("created", body.get("created_at")) if body is not None else None
    if value is None:
        return None
    if type(value) is int and 0 <= value < MAX_EPOCH:
        return float(value)
    raise bad("created", value)


def _failure(call_id: str, model: str, ts: float | None, error_type: str) -> list[Event]:
    return [Request(ts=ts, call_id=call_id, model=model, provider=PROVIDER, status="failure", error_type=error_type,
                    price_tier=TIER)]


def parse(obj: dict[str, Any]) -> list[Event]:
    call_id = text(obj, "custom_id") or ""
    response = mapping(obj, "response")
    error = mapping(obj, "error")
    if response is None:
        if error is None:
            raise bad("response", None)
        code = error.get("code")
        error_type = _BATCH_CODES.get(code) if type(code) is str else None
        return _failure(call_id, "", None, error_type or classify_error(None, code))
    status = response.get("status_code")
    if type(status) is not int:
        raise bad("status_code", status)
    body = mapping(response, "body")
    model = text(body, "model") or ""
    ts = _ts(body)
    if status != 200 or error is not None:
        body_error = mapping(body, "error") or error or {}
        code = body_error.get("code")
        error_class = body_error.get("type")
        # OpenAI's `code` ("context_length_exceeded") is more specific than its `type`
        # ("invalid_request_error"), which is more specific than the HTTP status.
        error_type = classify_error(None, code) if type(code) is str else "other"
        if error_type == "other":
            error_type = classify_error(error_class if type(error_class) is str else None, status)
        return _failure(call_id, model, ts, error_type)
    if body is None:
        raise bad("body", None)
    usage = mapping(body, "usage")
    if usage is None:
        raise bad("usage", None)
    # chat/completions/embeddings spell it prompt/completion; the Responses API input/output
    prompt_details = mapping(usage, "prompt_tokens_details") or mapping(usage, "input_tokens_details")
    output_details = mapping(usage, "completion_tokens_details") or mapping(usage, "output_tokens_details")
    prompt = first_count((usage, "prompt_tokens"), (usage, "input_tokens"))
    completion = first_count((usage, "completion_tokens"), (usage, "output_tokens"))
    count(usage, "total_tokens")
    cached = first_count((prompt_details, "cached_tokens"))
    cache_write = first_count((prompt_details, "cache_write_tokens"))
    reasoning = first_count((output_details, "reasoning_tokens"))
    if cached + cache_write > prompt:
        raise bad("cached_tokens", cached)
    if reasoning > completion:
        raise bad("reasoning_tokens", reasoning)
    if not model:
        raise bad("model", body.get("model"))
    return [Request(ts=ts, call_id=call_id, model=model, provider=PROVIDER, prompt_tokens=prompt,
                    completion_tokens=completion, cached_tokens=cached, cache_write_tokens=cache_write,
                    reasoning_tokens=reasoning, price_tier=TIER)]
