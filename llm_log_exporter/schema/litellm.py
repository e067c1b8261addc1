"""LiteLLM's callback arguments and ``StandardLoggingPayload`` (the SLO) → a schema-v1 event dict.

One mapping for both readers of LiteLLM: the writer projects what a hook is handed, the ``litellm``
parser what LiteLLM's own loggers dumped, so the same call gives the same event either way. It reads
only counts, times, names and error classes: never prompt or response text, never error messages.
Objects are read leniently (``_get`` tolerates pydantic objects and None); a parser checks types first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from . import LABEL_NAME, MAX_LINE_LABELS, SCHEMA_VERSION, label_value, tenant_from_tags
from .errors import classify_error

_EMPTY: dict[str, Any] = {}


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for dicts, ``obj.key`` for pydantic-ish objects, else None (tolerates None)."""
    if obj.__class__ is dict or isinstance(obj, dict):  # exact-type check first: hot path
        return obj.get(key)
    if obj is None or isinstance(obj, (str, bytes, int, float)):
        return None
    try:
        return getattr(obj, key, None)
    except Exception:
        return None


def _as_int(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0
    return int(f) if math.isfinite(f) else 0


def _as_float(value: Any) -> float | None:
    """Finite float or None (JSON has no NaN/inf)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a float (the SLO) or a datetime (callback args; naive = local time)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _as_float(value)
    timestamp = getattr(value, "timestamp", None)
    if callable(timestamp):
        try:
            return _as_float(timestamp())
        except Exception:
            return None
    return None


def _opt_int(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else _as_int(value)


def _usage_details(usages: tuple[Any, ...]) -> tuple[int, int, int]:
    """(cached, cache_write, reasoning) tokens: first non-null value across the usage objects.

    litellm 1.81.10 normalises provider usage into ``prompt_tokens_details.cached_tokens`` /
    ``cache_creation_tokens`` and also keeps Anthropic's ``cache_creation_input_tokens``; the raw
    provider spellings are accepted too. All default to 0.
    """
    cached = cache_write = reasoning = None
    for usage in usages:
        if usage is None:
            continue
        details = _get(usage, "prompt_tokens_details")
        if cached is None:
            cached = _opt_int(_get(details, "cached_tokens"))
            if cached is None:
                cached = _opt_int(_get(usage, "cache_read_input_tokens"))
            if cached is None:
                cached = _opt_int(_get(usage, "prompt_cache_hit_tokens"))
        if cache_write is None:
            cache_write = _opt_int(_get(usage, "cache_creation_input_tokens"))
            if cache_write is None:
                cache_write = _opt_int(_get(details, "cache_creation_tokens"))
            if cache_write is None:
                cache_write = _opt_int(_get(details, "cache_write_tokens"))
        if reasoning is None:
            reasoning = _opt_int(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))
            if reasoning is None:
                reasoning = _opt_int(_get(usage, "reasoning_tokens"))
        if cached is not None and cache_write is not None and reasoning is not None:
            break
    return cached or 0, cache_write or 0, reasoning or 0


def _first_int(usages: tuple[Any, ...], *keys: str) -> int:
    """First non-null integer under any of ``keys`` in any usage object, else 0."""
    for usage in usages:
        for key in keys:
            value = _opt_int(_get(usage, key))
            if value is not None:
                return value
    return 0


def resolve_tenant(kwargs: Mapping[str, Any], slo: Any, tenant_key: str) -> str | None:
    """Caller metadata[tenant_key] > ``tenant:<id>`` tag > proxy team id > None.

    litellm keeps the caller's ``metadata=`` dict (it even mutates it) in
    ``litellm_params["metadata"]``, while the SLO's metadata is filtered to known keys, so a custom
    tenant key is only visible there. We only read it.
    """
    litellm_params = kwargs.get("litellm_params")
    metadata = _get(litellm_params, "metadata")
    for md in (metadata, _get(litellm_params, "litellm_metadata")):
        if isinstance(md, Mapping):
            value = md.get(tenant_key)
            if value is not None and value != "":
                return value if isinstance(value, str) else str(value)
    tenant = tenant_from_tags(_get(slo, "request_tags"))
    if tenant is None and isinstance(metadata, Mapping):
        tenant = tenant_from_tags(metadata.get("tags"))
    if tenant is not None:
        return tenant
    team = _get(_get(slo, "metadata"), "user_api_key_team_id")
    if team is not None and team != "":
        return team if isinstance(team, str) else str(team)
    return None


# Attribution labels every LiteLLM payload can give, by label name: the proxy's key alias, team alias,
# internal user and end user, the model the client asked for (the proxy's model group, else the model)
# and the model the provider says answered (``response.model``, e.g. a dated snapshot).
STANDARD_LABELS = ("key_alias", "team_alias", "user", "end_user", "request_model", "response_model")


def _standard_label(name: str, slo: dict[str, Any], metadata: Any) -> Any:
    if name == "key_alias":
        return _get(metadata, "user_api_key_alias")
    if name == "team_alias":
        return _get(metadata, "user_api_key_team_alias")
    if name == "user":
        return _get(metadata, "user_api_key_user_id")
    if name == "end_user":
        return slo.get("end_user") or _get(metadata, "user_api_key_end_user_id")
    if name == "request_model":
        return slo.get("model_group") or slo.get("model")
    return _get(slo.get("response"), "model")  # response_model


def _metadata_value(key: str, mappings: tuple[Any, ...]) -> Any:
    for md in mappings:
        if isinstance(md, Mapping):
            value = md.get(key)
            if value is not None and value != "":
                return value
    return None


def attribution_labels(kwargs: Mapping[str, Any], slo: Any, names: tuple[str, ...] | None = None,
                       metadata_keys: tuple[str, ...] = (), static: Mapping[str, str] | None = None,
                       ) -> dict[str, str] | None:
    """The ``labels`` object of a request line, or None when it would be empty.

    ``names``: the standard labels to fill (None: all of them); ``metadata_keys``: request metadata keys
    copied under their own name — from the caller's ``metadata=`` (the hook's kwargs) or the payload's
    ``metadata``, ``requester_metadata`` (what a proxy client sent) and ``spend_logs_metadata``;
    ``static``: fixed labels of the writer (aider's ``repo``). Values are bounded by ``label_value``, names
    by ``LABEL_NAME``; at most ``MAX_LINE_LABELS`` labels, standard ones first.
    """
    out: dict[str, str] = {}
    if not isinstance(slo, dict):
        slo = _EMPTY
    metadata = slo.get("metadata")
    for name in STANDARD_LABELS if names is None else names:
        value = label_value(_standard_label(name, slo, metadata))
        if value is not None:
            out[name] = value
    if metadata_keys:
        litellm_params = kwargs.get("litellm_params")
        mappings = (_get(litellm_params, "metadata"), _get(litellm_params, "litellm_metadata"), metadata,
                    _get(metadata, "requester_metadata"), _get(metadata, "spend_logs_metadata"))
        for key in metadata_keys:
            if key not in out and LABEL_NAME.fullmatch(key):
                value = label_value(_metadata_value(key, mappings))
                if value is not None:
                    out[key] = value
    if static:
        for key, value in static.items():
            value = label_value(value)
            if key not in out and LABEL_NAME.fullmatch(key) and value is not None:
                out[key] = value
    if len(out) > MAX_LINE_LABELS:
        out = dict(list(out.items())[:MAX_LINE_LABELS])
    return out or None


def _times(kwargs: Mapping[str, Any], slo: dict[str, Any] | None, start_time: Any, end_time: Any,
           stream: bool) -> tuple[float | None, float | None, float | None]:
    """(end, duration, ttft): the SLO's times first, then the hook's arguments, then the kwargs."""
    sget = slo.get if slo is not None else _EMPTY.get
    start = _epoch(sget("startTime"))
    if start is None:
        start = _epoch(start_time)
        if start is None:
            start = _epoch(kwargs.get("start_time"))
    end = _epoch(sget("endTime"))
    if end is None:
        end = _epoch(end_time)
        if end is None:
            end = _epoch(kwargs.get("end_time"))
    duration = max(0.0, end - start) if start is not None and end is not None else None
    ttft = None
    if stream and start is not None:
        first = _epoch(sget("completionStartTime"))
        if first is None:
            first = _epoch(kwargs.get("completion_start_time"))
        if first is not None and first >= start:
            ttft = first - start
    return end, duration, ttft


def _tokens(slo: dict[str, Any] | None, response_obj: Any) -> tuple[int, int, int, int, int, int]:
    """(prompt, completion, total, cached, cache_write, reasoning)."""
    sget = slo.get if slo is not None else _EMPTY.get
    response = sget("response") if slo is not None else response_obj
    usages = (_get(sget("metadata"), "usage_object"), _get(response, "usage"))
    if slo is not None:
        prompt = _as_int(sget("prompt_tokens"))
        completion = _as_int(sget("completion_tokens"))
        total = _as_int(sget("total_tokens"))
    else:
        prompt = _first_int(usages, "prompt_tokens", "input_tokens")
        completion = _first_int(usages, "completion_tokens", "output_tokens")
        total = _first_int(usages, "total_tokens")
    if total <= 0:
        total = prompt + completion
    return (prompt, completion, total, *_usage_details(usages))


def _cost(kwargs: Mapping[str, Any], slo: dict[str, Any] | None) -> float | None:
    if slo is None:
        return _as_float(kwargs.get("response_cost"))
    cost = _as_float(slo.get("response_cost"))
    # 1.81.10 writes 0.0 (not None) for a model missing from the cost map.
    if cost == 0.0 and slo.get("response_cost_failure_debug_info"):
        return None
    return cost


def _error_type(kwargs: Mapping[str, Any], slo: dict[str, Any] | None, response_obj: Any) -> str:
    info = slo.get("error_information") if slo is not None else None
    error_class = _get(info, "error_class")
    error_code = _get(info, "error_code")
    if not error_class and not error_code:
        exc = kwargs.get("exception")
        if exc is None and isinstance(response_obj, BaseException):
            exc = response_obj
        if exc is not None:
            error_class = type(exc).__name__
            error_code = _get(exc, "status_code")
    return classify_error(error_class, error_code)


def build_request_event(
    kwargs: Mapping[str, Any],
    response_obj: Any,
    start_time: Any,
    end_time: Any,
    *,
    status: str,
    tenant_key: str = "tenant_id",
    label_keys: tuple[str, ...] = (),
    static_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Project litellm's callback arguments onto a schema-v1 ``request`` event (a new dict).

    Reads ``kwargs["standard_logging_object"]`` (the SLO) and falls back to top-level kwargs and
    the callback arguments when it is absent. ``status`` is the hook's view ("success"/"failure"),
    used when the SLO has none. ``label_keys`` and ``static_labels``: see ``attribution_labels``; the
    ``labels`` key is left out when there are none.
    """
    slo = kwargs.get("standard_logging_object")
    if not isinstance(slo, dict):
        slo = None
    sget = slo.get if slo is not None else _EMPTY.get
    call_id = sget("litellm_call_id") or kwargs.get("litellm_call_id") or sget("id") or ""
    model = sget("model") or kwargs.get("model") or ""
    provider = sget("custom_llm_provider") or kwargs.get("custom_llm_provider") or ""
    slo_status = sget("status")
    if slo_status == "success" or slo_status == "failure":
        status = slo_status
    # SLO "stream" is null (not false) for non-stream calls
    stream = (sget("stream") if slo is not None else kwargs.get("stream")) is True
    end, duration, ttft = _times(kwargs, slo, start_time, end_time, stream)
    prompt, completion, total, cached, cache_write, reasoning = _tokens(slo, response_obj)
    cache_hit = sget("cache_hit") if slo is not None else kwargs.get("cache_hit")
    event = {
        "v": SCHEMA_VERSION,
        "event": "request",
        "ts": end if end is not None else time.time(),
        "call_id": call_id if isinstance(call_id, str) else str(call_id),
        "model": model if isinstance(model, str) else str(model),
        "provider": provider if isinstance(provider, str) else str(provider),
        "tenant_id": resolve_tenant(kwargs, slo, tenant_key),
        "status": status,
        "error_type": _error_type(kwargs, slo, response_obj) if status == "failure" else None,
        "duration_s": duration,
        "ttft_s": ttft,
        "stream": stream,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cached_tokens": cached,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
        "cost_usd": _cost(kwargs, slo),
        "cache_hit": cache_hit if isinstance(cache_hit, bool) else None,
    }
    labels = attribution_labels(kwargs, slo, None, label_keys, static_labels)
    if labels is not None:
        event["labels"] = labels
    return event


def build_stream_start_event(kwargs: Mapping[str, Any], *, tenant_key: str = "tenant_id") -> dict[str, Any] | None:
    """A ``stream_start`` event for a streaming call about to be sent; None for other calls.

    Its ``call_id`` is the one the final request event carries, which ends the stream.
    """
    if kwargs.get("stream") is not True:
        return None
    call_id = kwargs.get("litellm_call_id")
    if not isinstance(call_id, str) or not call_id:
        return None
    model = kwargs.get("model")
    provider = kwargs.get("custom_llm_provider")
    return {
        "v": SCHEMA_VERSION,
        "event": "stream_start",
        "ts": time.time(),
        "call_id": call_id,
        "model": model if isinstance(model, str) else None,
        "provider": provider if isinstance(provider, str) else None,
        "tenant_id": resolve_tenant(kwargs, None, tenant_key),
    }
