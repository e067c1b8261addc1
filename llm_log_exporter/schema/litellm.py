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

from . import LABEL_NAME, MAX_LINE_LABELS, SCHEMA_VERSION, UNKNOWN_MODEL, label_value, tenant_from_tags
from .errors import classify_error, classify_exception

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


# Where a LiteLLM call keeps its tenant, by the names ``--tenant-from`` accepts. The callback (with the hook's
# arguments) and the ``litellm`` parser (with LiteLLM's payload alone) read them through ``resolve_tenant``.
TENANT_SOURCES = (
    "metadata",  # the caller's metadata={"tenant_id": ...}; through the proxy: metadata.requester_metadata
    "tag",  # a "tenant:<id>" request tag (metadata={"tags": [...]}, or the proxy's top-level "tags")
    "team_id",  # metadata.user_api_key_team_id (LiteLLM proxy team)
    "team_alias",  # metadata.user_api_key_team_alias
    "end_user_id",  # metadata.user_api_key_end_user_id (proxy customer)
    "end_user",  # the payload's end_user
    "user_id",  # metadata.user_api_key_user_id (proxy internal user)
    "key_alias",  # metadata.user_api_key_alias (virtual key alias)
    "org_id",  # metadata.user_api_key_org_id
)
# The caller's own word first, then an explicit tag, then the proxy's billing units.
DEFAULT_TENANT_FROM: tuple[str, ...] = ("metadata", "tag", "team_id", "end_user_id", "end_user")

_KEY_FIELDS = {
    "team_id": "user_api_key_team_id",
    "team_alias": "user_api_key_team_alias",
    "end_user_id": "user_api_key_end_user_id",
    "user_id": "user_api_key_user_id",
    "key_alias": "user_api_key_alias",
    "org_id": "user_api_key_org_id",
}


def _present(value: Any) -> bool:
    return value is not None and value != "" and not isinstance(value, bool)


def _tenant_from(source: str, metadatas: tuple[Any, ...], slo_md: Any, slo: Any, tenant_key: str) -> Any:
    if source == "metadata":
        # litellm keeps the SDK caller's metadata dict (unfiltered) in litellm_params; the proxy moves the
        # client's request metadata into metadata.requester_metadata, which the payload keeps too.
        for md in (*metadatas, *(_get(md, "requester_metadata") for md in metadatas),
                   _get(slo_md, "requester_metadata")):
            value = _get(md, tenant_key)
            if _present(value):
                return value
        return None
    if source == "tag":
        tenant = tenant_from_tags(_get(slo, "request_tags"))
        for md in metadatas:
            if tenant is None:
                tenant = tenant_from_tags(_get(md, "tags"))
        return tenant
    if source == "end_user":
        return _get(slo, "end_user")
    field = _KEY_FIELDS[source]
    for md in (slo_md, *metadatas):
        value = _get(md, field)
        if _present(value):
            return value
    return None


def resolve_tenant(kwargs: Mapping[str, Any], slo: Any, tenant_key: str = "tenant_id",
                   sources: tuple[str, ...] = DEFAULT_TENANT_FROM) -> Any:
    """The first present tenant value of ``sources`` (raw: callers decide how strict to be), else None.

    ``kwargs`` are a hook's arguments (``litellm_params.metadata`` / ``litellm_metadata``: the caller's
    metadata, which litellm even mutates; we only read it) or ``{}`` for a payload read from a file.
    """
    litellm_params = kwargs.get("litellm_params")
    metadatas = tuple(md for md in (_get(litellm_params, "metadata"), _get(litellm_params, "litellm_metadata"))
                      if isinstance(md, Mapping))
    slo_md = _get(slo, "metadata")
    for source in sources:
        value = _tenant_from(source, metadatas, slo_md, slo, tenant_key)
        if _present(value):
            return value
    return None


def _tenant_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


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
    exc = kwargs.get("exception")
    if exc is None and isinstance(response_obj, BaseException):
        exc = response_obj
    if exc is not None and type(exc).__name__ == "ProxyException":
        return classify_exception(exc)  # its type says "auth_error" where its code says 400
    info = slo.get("error_information") if slo is not None else None
    error_class = _get(info, "error_class")
    error_code = _get(info, "error_code")
    if not error_class and not error_code and exc is not None:
        return classify_exception(exc)
    return classify_error(error_class, error_code)


def strip_provider(name: str, provider: str) -> str:
    """``openai/gpt-4o-mini`` → ``gpt-4o-mini`` when ``openai`` is the call's provider."""
    if provider and name.startswith(provider) and name[len(provider):len(provider) + 1] == "/":
        return name[len(provider) + 1:]
    return name


def _model_group(kwargs: Mapping[str, Any], slo: dict[str, Any] | None) -> Any:
    """The model name the caller asked LiteLLM's router (or proxy) for; "" outside a router."""
    group = slo.get("model_group") if slo is not None else None
    if not group:
        params = kwargs.get("litellm_params")
        for md in (_get(params, "metadata"), _get(params, "litellm_metadata")):
            group = _get(md, "model_group")
            if group:
                break
    return group if isinstance(group, str) else ""


def _names(kwargs: Mapping[str, Any], slo: dict[str, Any] | None, status: str, cache_hit: Any
           ) -> tuple[str, str, str | None]:
    """(model, provider, served_model): the name the caller asked for (a proxy's model alias, LiteLLM's
    ``model_group``), the provider, and the model LiteLLM sent the call to — both without provider prefix."""
    sget = slo.get if slo is not None else _EMPTY.get
    called = sget("model") or kwargs.get("model") or ""
    called = called if isinstance(called, str) else str(called)
    provider = sget("custom_llm_provider") or kwargs.get("custom_llm_provider") or ""
    provider = provider if isinstance(provider, str) else str(provider)
    if not provider and (cache_hit is True or status == "success") and "/" in called:
        # litellm 1.81.10 writes its cache hits as model "openai/gpt-4o-mini" with a null provider
        provider = called.partition("/")[0]
    group = _model_group(kwargs, slo)
    if status == "failure" and not provider and not group:
        return UNKNOWN_MODEL, "", None  # rejected before routing: the client's name is no label
    served = strip_provider(called, provider) if provider and called else None
    return strip_provider(group or called, provider), provider, served


def _stream(kwargs: Mapping[str, Any], slo: dict[str, Any] | None) -> bool:
    """Streamed call? The SLO's ``stream`` is null for non-stream calls *and* for failed streams, whose
    request parameters (``model_parameters`` / the hook's ``stream``) still say so."""
    if slo is not None and (slo.get("stream") is True or _get(slo.get("model_parameters"), "stream") is True):
        return True
    return kwargs.get("stream") is True or _get(kwargs.get("optional_params"), "stream") is True


# Providers that stream usage only when asked (OpenAI's ``stream_options.include_usage``); others
# (Anthropic, Bedrock, Gemini, …) always send it. litellm asks by itself only for api.openai.com.
USAGE_ON_REQUEST = frozenset({"openai", "azure", "text-completion-openai", "hosted_vllm", "vllm", "openai_like",
                              "lm_studio", "llamafile", "custom_openai"})


def _asked_for_usage(kwargs: Mapping[str, Any], slo: dict[str, Any] | None) -> bool:
    """The call's ``stream_options.include_usage``: in the payload's request parameters, the hook's
    parameters, or the body litellm sent (``additional_args.complete_input_dict``)."""
    for params in (_get(slo, "model_parameters"), kwargs.get("optional_params"), kwargs,
                   _get(kwargs.get("additional_args"), "complete_input_dict")):
        if _get(_get(params, "stream_options"), "include_usage") is True:
            return True
    return False


def tokens_estimated(kwargs: Mapping[str, Any], slo: dict[str, Any] | None, response_obj: Any, provider: str,
                     stream: bool, status: str) -> bool:
    """Whether a call's token counts are litellm's tokenizer estimates rather than the provider's numbers.

    Only a successful stream can be estimated: litellm counts the text itself when no chunk carried usage.
    The assembled response says so when the call set no ``stream_options`` (litellm then stores the usage
    the chunks carried in ``_hidden_params["usage"]``: all zero means none did). Otherwise — or reading a
    payload, which has no response object — a stream is estimated when its provider sends usage only on
    request, the call did not ask (``stream_options.include_usage``) and it did not go to api.openai.com.
    """
    if not stream or status != "success":
        return False
    response = kwargs.get("async_complete_streaming_response") or kwargs.get("complete_streaming_response") \
        or response_obj
    hidden = _get(response, "_hidden_params")
    if isinstance(hidden, Mapping) and "usage" in hidden:
        usage = hidden.get("usage")
        return _as_int(_get(usage, "prompt_tokens")) == 0 and _as_int(_get(usage, "completion_tokens")) == 0
    if provider not in USAGE_ON_REQUEST or _asked_for_usage(kwargs, slo):
        return False
    api_base = _get(slo, "api_base") or _get(_get(slo, "hidden_params"), "api_base") or kwargs.get("api_base")
    return not (isinstance(api_base, str) and "://api.openai.com" in api_base)


def build_request_event(
    kwargs: Mapping[str, Any],
    response_obj: Any,
    start_time: Any,
    end_time: Any,
    *,
    status: str,
    tenant_key: str = "tenant_id",
    tenant_from: tuple[str, ...] = DEFAULT_TENANT_FROM,
    cache_consulted: bool | None = None,
    label_keys: tuple[str, ...] = (),
    static_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Project litellm's callback arguments onto a schema-v1 ``request`` event (a new dict).

    Reads ``kwargs["standard_logging_object"]`` (the SLO) and falls back to top-level kwargs and
    the callback arguments when it is absent. ``status`` is the hook's view ("success"/"failure"),
    used when the SLO has none. ``cache_hit`` is true for litellm's cache hits; false only when the
    caller knows a cache was consulted (``cache_consulted``): litellm says false for every stream and
    failure even with no cache configured, and null for non-stream misses. ``label_keys`` and
    ``static_labels``: see ``attribution_labels``; the ``labels`` key is left out when there are none.
    """
    slo = kwargs.get("standard_logging_object")
    if not isinstance(slo, dict):
        slo = None
    sget = slo.get if slo is not None else _EMPTY.get
    call_id = sget("litellm_call_id") or kwargs.get("litellm_call_id") or sget("id") or ""
    slo_status = sget("status")
    if slo_status == "success" or slo_status == "failure":
        status = slo_status
    hit = sget("cache_hit") if slo is not None else kwargs.get("cache_hit")
    model, provider, served = _names(kwargs, slo, status, hit)
    stream = _stream(kwargs, slo)
    end, duration, ttft = _times(kwargs, slo, start_time, end_time, stream and status == "success")
    prompt, completion, total, cached, cache_write, reasoning = _tokens(slo, response_obj)
    event = {
        "v": SCHEMA_VERSION,
        "event": "request",
        "ts": end if end is not None else time.time(),
        "call_id": call_id if isinstance(call_id, str) else str(call_id),
        "model": model,
        "provider": provider,
        "tenant_id": _tenant_text(resolve_tenant(kwargs, slo, tenant_key, tenant_from)),
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
        "cache_hit": True if hit is True else (False if cache_consulted else None),
        "served_model": served,
        "tokens_estimated": tokens_estimated(kwargs, slo, response_obj, provider, stream, status),
    }
    labels = attribution_labels(kwargs, slo, None, label_keys, static_labels)
    if labels is not None:
        event["labels"] = labels
    return event


ATTEMPT_KEYS = ("ts", "call_id", "model", "provider", "tenant_id", "error_type", "stream", "served_model")


def attempt_event(request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``attempt`` line of a failed request event: the call went on to another attempt."""
    out: dict[str, Any] = {"v": SCHEMA_VERSION, "event": "attempt"}
    for key in ATTEMPT_KEYS:
        out[key] = request.get(key)
    out["error_type"] = out["error_type"] or "other"
    return out


def build_failure_event(data: Mapping[str, Any], exc: BaseException, *, tenant_key: str = "tenant_id",
                        tenant_from: tuple[str, ...] = DEFAULT_TENANT_FROM) -> dict[str, Any]:
    """A failed ``request`` event from a request's own parameters and its exception, for failures no
    LiteLLM logging hook reported (a router that found no deployment, a proxy pre-call check): ``data``
    is what the router or the proxy was called with (model, metadata, stream, litellm_call_id)."""
    md = data.get("litellm_metadata") if isinstance(data.get("litellm_metadata"), Mapping) else data.get("metadata")
    params = {"metadata": data.get("metadata"), "litellm_metadata": data.get("litellm_metadata")}
    provider = getattr(exc, "llm_provider", None)
    provider = provider if isinstance(provider, str) else ""
    group = _get(md, "model_group")
    requested = group or data.get("model") or ""
    requested = requested if isinstance(requested, str) else str(requested)
    if not provider and not group:
        requested = UNKNOWN_MODEL  # rejected before routing: the client's name is no label
    tags = data.get("tags")  # the proxy's top-level request tags
    slo = {"request_tags": tags} if isinstance(tags, list) else None
    call_id = data.get("litellm_call_id")
    return {
        "v": SCHEMA_VERSION,
        "event": "request",
        "ts": time.time(),
        "call_id": call_id if isinstance(call_id, str) else "",
        "model": strip_provider(requested, provider) or UNKNOWN_MODEL,
        "provider": provider,
        "tenant_id": _tenant_text(resolve_tenant({"litellm_params": params}, slo, tenant_key, tenant_from)),
        "status": "failure",
        "error_type": classify_exception(exc),
        "duration_s": None,
        "ttft_s": None,
        "stream": data.get("stream") is True,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": None,
        "cache_hit": None,
        "served_model": None,
        "tokens_estimated": False,
    }


def build_stream_start_event(kwargs: Mapping[str, Any], *, tenant_key: str = "tenant_id",
                             tenant_from: tuple[str, ...] = DEFAULT_TENANT_FROM) -> dict[str, Any] | None:
    """A ``stream_start`` event for a streaming call about to be sent; None for other calls.

    Its ``call_id`` is the one the final request event carries, which ends the stream; its model is
    named as the request line names it.
    """
    if kwargs.get("stream") is not True:
        return None
    call_id = kwargs.get("litellm_call_id")
    if not isinstance(call_id, str) or not call_id:
        return None
    provider = kwargs.get("custom_llm_provider")
    provider = provider if isinstance(provider, str) else ""
    model = _model_group(kwargs, None) or kwargs.get("model")
    return {
        "v": SCHEMA_VERSION,
        "event": "stream_start",
        "ts": time.time(),
        "call_id": call_id,
        "model": strip_provider(model, provider) if isinstance(model, str) else None,
        "provider": provider or None,
        "tenant_id": _tenant_text(resolve_tenant(kwargs, None, tenant_key, tenant_from)),
    }
