"""LiteLLM ``StandardLoggingPayload`` (SLO): what ``kwargs["standard_logging_object"]`` holds and what
LiteLLM's s3 / gcs_bucket / azure_storage loggers write, in litellm 1.81.10 and 1.109.x.

The SLO → event mapping is the writer's own (``schema.litellm.build_request_event``), so a call logged
by our callback and the same call's SLO dumped by LiteLLM give the same event. This module adds what
a foreign file needs: strict types (the callback trusts litellm's objects; a file may hold anything),
the configurable tenant lookup, the request metadata keys asked for as attribution labels (the
payload's key alias, team alias, user, end user, requested and served model always are), and the
provider of cache hits (litellm leaves it null there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_log_exporter.events import Event, InvalidLine
from llm_log_exporter.parsers import native
from llm_log_exporter.parsers._fields import MAX_EPOCH, bad, count, mapping, number, split_provider, text
from llm_log_exporter.parsers.options import ParserOptions
from llm_log_exporter.schema import tenant_from_tags
from llm_log_exporter.schema.litellm import STANDARD_LABELS, build_request_event

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
    text(obj, "custom_llm_provider")
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
    _check_usage(mapping(metadata, "usage_object"), "metadata.usage_object")
    response = obj.get("response")
    if type(response) is dict:
        _check_usage(response.get("usage"), "response.usage")
    return metadata


def _tag(obj: dict[str, Any], metadata: dict[str, Any] | None) -> Any:
    return tenant_from_tags(obj.get("request_tags"))


def _meta(key: str) -> Callable[[dict[str, Any], dict[str, Any] | None], Any]:
    return lambda obj, metadata: metadata.get(key) if metadata is not None else None


_SOURCES: dict[str, Callable[[dict[str, Any], dict[str, Any] | None], Any]] = {
    "tag": _tag,
    "team_id": _meta("user_api_key_team_id"),
    "team_alias": _meta("user_api_key_team_alias"),
    "end_user_id": _meta("user_api_key_end_user_id"),
    "end_user": lambda obj, metadata: obj.get("end_user"),
    "user_id": _meta("user_api_key_user_id"),
    "key_alias": _meta("user_api_key_alias"),
    "org_id": _meta("user_api_key_org_id"),
}


def bind(options: ParserOptions) -> Callable[[dict[str, Any]], list[Event]]:
    """A parser that looks for the tenant in ``options.tenant_from`` order (first non-empty wins)."""
    sources = tuple(_SOURCES[name] for name in options.tenant_from)
    label_keys = tuple(name for name in options.label_keys if name not in STANDARD_LABELS)

    def parse_slo(obj: dict[str, Any]) -> list[Event]:
        metadata = _check(obj)
        event = build_request_event({"standard_logging_object": obj}, None, None, None, status=obj["status"],
                                    label_keys=label_keys)
        tenant = ""
        for source in sources:
            value = source(obj, metadata)
            if value is not None and value != "" and type(value) is not bool:
                if type(value) is not str:
                    if type(value) is not int:
                        raise bad("tenant", value)
                    value = str(value)
                tenant = value
                break
        event["tenant_id"] = tenant
        if not event["provider"]:
            # litellm 1.81.10 writes cache hits as model "openai/gpt-4o-mini" with a null provider
            event["provider"], event["model"] = split_provider(event["model"])
        if obj.get("endTime") is None:
            event["ts"] = None  # the callback stamps "now"; a file read later must not
        return [native._request(event)]

    return parse_slo


parse = bind(ParserOptions())
