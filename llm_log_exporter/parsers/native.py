"""Schema v1: the exporter's own JSON-lines format (see docs/events.md).

Validation is strict because a bad value must never reach a counter; it is written as
straight-line code because this is the hot path of replay and catch-up.
"""

from __future__ import annotations

import math
from datetime import datetime
from operator import itemgetter
from typing import Any

from llm_log_exporter.events import (
    BreakerState,
    BudgetUsage,
    CacheLookup,
    Event,
    InvalidLine,
    RateLimited,
    Request,
    StreamStart,
)
from llm_log_exporter.parsers._fields import MAX_COST_USD, MAX_DURATION_S, MAX_EPOCH, MAX_TOKENS, count, number, text
from llm_log_exporter.schema import (
    BREAKER_STATES,
    ERROR_TYPES,
    LABEL_NAME,
    MAX_LABEL_VALUE_READ,
    MAX_LINE_LABELS,
    SCHEMA_VERSION,
)

_ERROR_TYPES = frozenset(ERROR_TYPES)

NAME = "native"


def detect(obj: dict[str, Any]) -> bool:
    """A native line carries the schema version marker ``v``."""
    return "v" in obj


def _count(obj: dict[str, Any], key: str) -> int:
    return count(obj, key) or 0


def _text(obj: dict[str, Any], key: str) -> str:
    return text(obj, key) or ""


def parse_ts(value: Any) -> float | None:
    """Epoch seconds from a number or an RFC 3339 string; None when absent."""
    if value is None:
        return None
    kind = type(value)
    if (kind is float or kind is int) and math.isfinite(value) and value >= 0:
        return float(value)
    if kind is str:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidLine("bad_field", f"ts={value!r:.40}") from None
        if parsed.tzinfo is None:
            raise InvalidLine("bad_field", f"ts without offset {value!r:.40}")
        return parsed.timestamp()
    raise InvalidLine("bad_field", f"ts={value!r:.40}")


_new = tuple.__new__
_FIELDS = itemgetter(
    "v", "event", "model", "status", "stream", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
    "cache_write_tokens", "reasoning_tokens", "duration_s", "cost_usd", "ts", "call_id", "provider", "tenant_id",
    "cache_hit", "error_type",
)


def _fast_request(obj: dict[str, Any]) -> Request | None:
    """The well-formed request line in one combined check, without per-field calls; None for
    anything unusual — a key left out, nulls, ints where floats go, failures with an error type,
    bad values — which then takes the field-by-field path that also names why a line is bad."""
    try:
        (v, kind, model, status, stream, p, c, t, ca, cw, r, d, cost, ts, call_id, provider, tenant, cache_hit,
         error_type) = _FIELDS(obj)
    except KeyError:
        return None
    ttft = obj.get("ttft_s") if stream is True else None
    if (
        v == 1 and type(v) is int
        and kind == "request"
        and type(model) is str
        and model
        and status == "success"
        and (stream is False or stream is True)
        and type(p) is int and type(c) is int and type(t) is int
        and type(ca) is int and type(cw) is int and type(r) is int
        and 0 <= (p | c | t | ca | cw | r) <= MAX_TOKENS
        and (d is None or (type(d) is float and 0.0 <= d <= MAX_DURATION_S))
        and (ttft is None or (type(ttft) is float and 0.0 <= ttft <= MAX_DURATION_S))
        and (cost is None or (type(cost) is float and 0.0 <= cost <= MAX_COST_USD))
        and type(ts) is float and 0.0 <= ts < MAX_EPOCH
        and type(call_id) is str and type(provider) is str and type(tenant) is str
        and (cache_hit is None or cache_hit is True or cache_hit is False)
        and error_type is None
        and "labels" not in obj
    ):
        return _new(Request, (ts, call_id, model, provider, tenant, status, None, d, ttft, stream,
                              p, c, ca, cw, r, cost, cache_hit, None, None))  # every field, labels last
    return None


def labels(obj: dict[str, Any]) -> dict[str, str] | None:
    """The ``labels`` object: at most MAX_LINE_LABELS label names → strings; None when absent or empty."""
    value = obj.get("labels")
    if value is None:
        return None
    if type(value) is not dict or len(value) > MAX_LINE_LABELS:
        raise InvalidLine("bad_field", f"labels={value!r:.60}")
    for name, label in value.items():
        if not LABEL_NAME.fullmatch(name) or type(label) is not str or len(label) > MAX_LABEL_VALUE_READ:
            raise InvalidLine("bad_field", f"labels.{name:.40}={label!r:.40}")
    return value or None


def _request(obj: dict[str, Any]) -> Request:
    model = obj.get("model")
    if type(model) is not str or not model:
        raise InvalidLine("missing_model")
    status = obj.get("status", "success")
    if status != "success" and status != "failure":
        raise InvalidLine("bad_field", f"status={status!r:.40}")
    stream = obj.get("stream", False)
    if stream is None:
        stream = False
    elif type(stream) is not bool:
        raise InvalidLine("bad_field", f"stream={stream!r:.40}")
    cache_hit = obj.get("cache_hit")
    if cache_hit is not None and type(cache_hit) is not bool:
        raise InvalidLine("bad_field", f"cache_hit={cache_hit!r:.40}")
    error_type = obj.get("error_type")
    if error_type is not None:
        if type(error_type) is not str:
            raise InvalidLine("bad_field", f"error_type={error_type!r:.40}")
        if error_type not in _ERROR_TYPES:
            error_type = "other"  # bounded vocabulary: a gateway's own names never add series
    prompt = _count(obj, "prompt_tokens")
    completion = _count(obj, "completion_tokens")
    _count(obj, "total_tokens")  # validated; totals are derived from input + output
    return Request(
        ts=parse_ts(obj.get("ts")),
        call_id=_text(obj, "call_id"),
        model=model,
        provider=_text(obj, "provider"),
        tenant_id=_text(obj, "tenant_id"),
        status=status,
        error_type=(error_type or "other") if status == "failure" else None,
        duration_s=number(obj, "duration_s", MAX_DURATION_S),
        ttft_s=number(obj, "ttft_s", MAX_DURATION_S) if stream else None,
        stream=stream,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=_count(obj, "cached_tokens"),
        cache_write_tokens=_count(obj, "cache_write_tokens"),
        reasoning_tokens=_count(obj, "reasoning_tokens"),
        cost_usd=number(obj, "cost_usd", MAX_COST_USD),
        cache_hit=cache_hit,
        labels=labels(obj),
    )


def _stream_start(obj: dict[str, Any]) -> StreamStart:
    call_id = obj.get("call_id")
    if type(call_id) is not str or not call_id:
        raise InvalidLine("bad_field", "stream_start needs a call_id")
    return StreamStart(
        parse_ts(obj.get("ts")), call_id, _text(obj, "tenant_id"), _text(obj, "provider"), _text(obj, "model")
    )


def _rate_limited(obj: dict[str, Any]) -> RateLimited:
    return RateLimited(parse_ts(obj.get("ts")), _text(obj, "tenant_id"), _text(obj, "provider"))


def _circuit_breaker(obj: dict[str, Any]) -> BreakerState:
    provider = obj.get("provider")
    if type(provider) is not str or not provider:
        raise InvalidLine("bad_field", "circuit_breaker needs a provider")
    state = obj.get("state")
    if type(state) is str and state in BREAKER_STATES:
        state = BREAKER_STATES[state]
    elif type(state) is not int or not 0 <= state <= 2:
        raise InvalidLine("bad_field", f"state={state!r:.40}")
    return BreakerState(parse_ts(obj.get("ts")), provider, state)


def _budget(obj: dict[str, Any]) -> BudgetUsage:
    tenant = obj.get("tenant_id")
    if type(tenant) is not str:
        raise InvalidLine("bad_field", "budget needs a tenant_id")
    spent = number(obj, "spent_usd", MAX_COST_USD)
    limit = number(obj, "limit_usd", MAX_COST_USD)
    if spent is None or not limit:
        raise InvalidLine("bad_field", "budget needs spent_usd and a positive limit_usd")
    return BudgetUsage(parse_ts(obj.get("ts")), tenant, spent, limit)


def _cache(obj: dict[str, Any]) -> CacheLookup:
    hit = obj.get("hit")
    if type(hit) is not bool:
        raise InvalidLine("bad_field", f"hit={hit!r:.40}")
    return CacheLookup(parse_ts(obj.get("ts")), _text(obj, "tenant_id"), hit)


_KINDS = {
    "request": _request,
    "stream_start": _stream_start,
    "rate_limited": _rate_limited,
    "circuit_breaker": _circuit_breaker,
    "budget": _budget,
    "cache": _cache,
}


def parse(obj: dict[str, Any]) -> list[Event]:
    """One native line → its event; an unknown ``event`` kind is skipped (newer writer)."""
    event = _fast_request(obj)
    if event is not None:
        return [event]
    version = obj.get("v", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or type(version) is not int:
        raise InvalidLine("unsupported_version", f"v={version!r:.20}")
    kind = obj.get("event", "request")
    if type(kind) is not str:  # before the lookup: a list or dict is unhashable
        raise InvalidLine("bad_field", f"event={kind!r:.40}")
    build = _KINDS.get(kind)
    if build is None:
        return []
    return [build(obj)]
