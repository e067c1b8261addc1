"""LiteLLM ``StandardLoggingPayload`` (SLO): what ``kwargs["standard_logging_object"]`` holds and what
LiteLLM's s3 / gcs_bucket / azure_storage loggers write, in litellm 1.81.10 and 1.109.x.

The SLO → event mapping is the writer's own (``schema.litellm.build_request_event``), so a call logged
by our callback and the same call's SLO dumped by LiteLLM give the same event. This module adds what
a foreign file needs: strict types (the callback trusts litellm's objects; a file may hold anything), the
configurable tenant lookup (``--tenant-from``, the callback's sources and order by default), the trace id
that ties the payloads of one call's attempts together (LiteLLM writes a payload per failed attempt of a
retried stream, and the first failed attempt of any call that then succeeds, with nothing in it saying
whether the router retried it, so these are ``CallPart`` events that aggregation settles into one call),
the request metadata keys asked for as attribution labels (the payload's key alias, team alias, user,
end user, requested and served model always are), and the provider of cache hits (litellm leaves it null).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_log_exporter.events import CallPart, Event, InvalidLine
from llm_log_exporter.parsers import native
from llm_log_exporter.parsers._fields import MAX_EPOCH, bad, count, mapping, number, split_provider, text
from llm_log_exporter.parsers.options import ParserOptions
from llm_log_exporter.schema.litellm import STANDARD_LABELS, build_request_event, resolve_tenant

NAME = "litellm"

_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens", "prompt_cache_hit_tokens", "reasoning_tokens")
_PROMPT_DETAILS = ("cached_tokens", "cache_creation_tokens", "cache_write_tokens")


def detect(obj: dict[str, Any]) -> bool:
    """Every SLO (both versions) has ``startTime`` and ``status``; no other format has ``startTime``."""
    return "startTime" in obj and "status" in obj


def _check_usage(usage: Any, where: str) -> None:
    if type(usage) is not dict:
        return  # absent, or a shape litellm does not write: the mapping ignores it
    for key in _USAGE_COUNTS:
        count(usage, key)
    details = usage.get("prompt_tokens_details")
    if type(details) is dict:
        for key in _PROMPT_DETAILS:
            count(details, key)
    details = usage.get("completion_tokens_details")
    if type(details) is dict:
        count(details, "reasoning_tokens")


def _check(obj: dict[str, Any]) -> dict[str, Any] | None:
    """Reject wrong types in every field the mapping reads; returns ``metadata``."""
    status = obj.get("status")
    if status != "success" and status != "failure":
        raise bad("status", status)
    model = obj.get("model")
    if type(model) is not str or not model:
        raise InvalidLine("missing_model")
    for key in ("custom_llm_provider", "model_group", "trace_id", "api_base"):
        text(obj, key)
    mapping(obj, "model_parameters")
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        count(obj, key)
    number(obj, "response_cost")
    for key in ("startTime", "endTime", "completionStartTime"):
        number(obj, key, MAX_EPOCH)
    for key in ("stream", "cache_hit"):
        value = obj.get(key)
        if value is not None and type(value) is not bool:
            raise bad(key, value)
    tags = obj.get("request_tags")
    if tags is not None and type(tags) is not list:
        raise bad("request_tags", tags)
    mapping(obj, "error_information")
    metadata = mapping(obj, "metadata")
    mapping(metadata, "requester_metadata")
    _check_usage(mapping(metadata, "usage_object"), "metadata.usage_object")
    response = obj.get("response")
    if type(response) is dict:
        _check_usage(response.get("usage"), "response.usage")
    return metadata


def bind(options: ParserOptions) -> Callable[[dict[str, Any]], list[Event]]:
    """A parser that looks for the tenant in ``options.tenant_from`` order (first present value wins)."""
    sources = tuple(options.tenant_from)
    label_keys = tuple(name for name in options.label_keys if name not in STANDARD_LABELS)

    def parse_slo(obj: dict[str, Any]) -> list[Event]:
        _check(obj)
        event = build_request_event({"standard_logging_object": obj}, None, None, None, status=obj["status"],
                                    tenant_from=sources, label_keys=label_keys)
        tenant = resolve_tenant({}, obj, "tenant_id", sources)
        if tenant is not None and type(tenant) is not str:
            if type(tenant) is not int:
                raise bad("tenant", tenant)
            tenant = str(tenant)
        event["tenant_id"] = tenant or ""
        if not event["provider"]:
            # litellm 1.81.10 writes cache hits as model "openai/gpt-4o-mini" with a null provider
            event["provider"], event["model"] = split_provider(event["model"])
        if obj.get("endTime") is None:
            event["ts"] = None  # the callback stamps "now"; a file read later must not
        request = native._request(event)
        key = obj.get("trace_id")
        # Attempts of one call (router retries, fallbacks) share LiteLLM's trace id; aggregation keeps
        # only the last as the call's outcome (aggregate/calls.py).
        return [CallPart(request.ts, key, request)] if key else [request]

    return parse_slo


parse = bind(ParserOptions())
