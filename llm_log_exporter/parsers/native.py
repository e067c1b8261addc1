"""Schema v1: the exporter's own JSON-lines format (see docs/events.md).

Validation is strict because a bad value must never reach a counter; it is written as
straight-line code because this is the hot path of replay and catch-up.
"""

from __future__ import annotations

import math
from datetime import datetime
from operator import itemgetter
from typing import Annotated, Any, Literal

try:  # the typed decoder (see fast_event); without it every line takes orjson and the dict fast path
    import msgspec
    from msgspec import Meta
except ImportError:  # pragma: no cover - msgspec is a dependency; the fallback keeps the parser exact anyway
    msgspec = None  # type: ignore[assignment]

from llm_log_exporter.events import (
    Attempt,
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
_KEYS = (
    "v", "event", "model", "status", "stream", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
    "cache_write_tokens", "reasoning_tokens", "duration_s", "cost_usd", "ts", "call_id", "provider", "tenant_id",
    "cache_hit", "error_type",
)
_FIELDS = itemgetter(*_KEYS)
MAX_TRACE_ID = 128  # an optional trace_id longer than this is a bad field


def _fast_request(obj: dict[str, Any]) -> Request | None:
    """A well-formed request line in one pass of type checks, without per-field calls: the callback's
    full key set through one ``itemgetter``, any other subset of the keys (a gateway's own writer)
    through ``dict.get``; nulls, ints where floats go, RFC 3339 ``ts``, failures with an error type
    and unknown keys all stay here. None for a line with a bad value (or an odd one, such as
    ``"event": null``): the field-by-field path then names the reason, exactly as before."""
    try:
        fields = _FIELDS(obj)
    except KeyError:
        fields = tuple(map(obj.get, _KEYS))
    (v, kind, model, status, stream, p, c, t, ca, cw, r, d, cost, ts, call_id, provider, tenant, cache_hit,
     error_type) = fields
    if v != 1 or type(v) is not int or type(model) is not str or not model:
        return None
    if kind != "request" and (kind is not None or "event" in obj):
        return None
    if status is None and "status" not in obj:
        status = "success"
    if status == "success":
        if error_type is not None and type(error_type) is not str:
            return None  # the field-by-field path rejects it (bad_field)
        error = None
    elif status == "failure":
        if error_type is None:
            error = "other"
        elif type(error_type) is str:
            error = error_type if error_type in _ERROR_TYPES else "other"
        else:
            return None
    else:
        return None
    if stream is None:
        stream = False
    elif stream is not False and stream is not True:
        return None
    # Counts: ints within bounds (bools are not counts); a missing or null one is 0.
    p, c, t, ca, cw, r = (0 if x is None else x for x in (p, c, t, ca, cw, r))
    if not (type(p) is int and type(c) is int and type(t) is int and type(ca) is int and type(cw) is int
            and type(r) is int and 0 <= (p | c | t | ca | cw | r) <= MAX_TOKENS):
        return None
    ttft = obj.get("ttft_s") if stream else None
    for value, limit in ((d, MAX_DURATION_S), (ttft, MAX_DURATION_S), (cost, MAX_COST_USD)):
        if value is not None and not ((type(value) is float or type(value) is int) and 0 <= value <= limit):
            return None  # NaN and infinities fail the bounds (and are not JSON anyway)
    if not ((call_id is None or type(call_id) is str) and (provider is None or type(provider) is str)
            and (tenant is None or type(tenant) is str) and (cache_hit is None or cache_hit is True
                                                              or cache_hit is False)):
        return None
    served, estimated = obj.get("served_model"), obj.get("tokens_estimated", False)  # optional (issue 13)
    if not ((served is None or type(served) is str) and (estimated is False or estimated is True)):
        return None
    kind_ts = type(ts)
    if kind_ts is float or kind_ts is int:
        if not 0 <= ts < MAX_EPOCH:
            return None
        ts = float(ts)
    elif ts is not None:
        ts = parse_ts(ts)  # RFC 3339; raises the reason the field-by-field path gives
    attribution = None
    if "labels" in obj:
        try:
            attribution = labels(obj)
        except InvalidLine:
            return None
    trace = obj.get("trace_id")
    if trace is not None and (type(trace) is not str or len(trace) > MAX_TRACE_ID):
        return None
    return _new(Request, (ts, call_id or "", model, provider or "", tenant or "", status, error,
                          None if d is None else float(d), None if ttft is None else float(ttft), stream,
                          p, c, ca, cw, r, None if cost is None else float(cost), cache_hit, None, served or None,
                          estimated, attribution, trace or ""))


if msgspec is not None:
    _Count = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]
    _Seconds = Annotated[float, Meta(ge=0, le=MAX_DURATION_S)]
    _Cost = Annotated[float, Meta(ge=0, le=MAX_COST_USD)]
    _Epoch = Annotated[float, Meta(ge=0, lt=MAX_EPOCH)]
    _Model = Annotated[str, Meta(min_length=1)]

    class _Line(msgspec.Struct):
        """A schema-v1 request line as a struct with the field-by-field path's types and bounds."""

        v: Literal[1]
        model: _Model
        event: Literal["request"] = "request"
        ts: _Epoch | str | None = None
        call_id: str | None = None
        provider: str | None = None
        tenant_id: str | None = None
        status: Literal["success", "failure"] = "success"
        error_type: str | None = None
        duration_s: _Seconds | None = None
        ttft_s: _Seconds | None = None
        stream: bool | None = False
        prompt_tokens: _Count | None = None
        completion_tokens: _Count | None = None
        total_tokens: _Count | None = None
        cached_tokens: _Count | None = None
        cache_write_tokens: _Count | None = None
        reasoning_tokens: _Count | None = None
        cost_usd: _Cost | None = None
        cache_hit: bool | None = None
        served_model: str | None = None
        tokens_estimated: bool = False
        labels: dict[str, str] | None = None  # names, count and lengths checked by ``labels``
        trace_id: Annotated[str, Meta(max_length=MAX_TRACE_ID)] | None = None

    _decode_line = msgspec.json.Decoder(_Line).decode
    _TYPED_ERRORS: tuple[type[BaseException], ...] = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


# Fewer opening brackets than orjson's nesting limit (1024): such a line is never too deep for orjson.
_MAX_OPENINGS = 1000


def fast_event(line: bytes) -> Request | None:
    """A request line decoded straight from its bytes into a typed struct (msgspec: the JSON decoding
    and the checks in one C pass, ~4× cheaper than orjson plus the dict checks), as its one event; None
    for anything else, which then takes orjson and ``parse``, so what is accepted and every rejection
    reason stay exactly theirs. Only ASCII lines (the callback's): msgspec skips unknown keys without
    checking their UTF-8, where orjson rejects the line; and only lines that cannot nest deeper than
    orjson's limit (newer msgspec skips unknown values of any depth, where orjson says the line is too
    deep). One event rather than a list: a reader's loop handles the common line without a list."""
    if msgspec is None or not line.isascii() or b'"v"' not in line:
        return None
    if len(line) > _MAX_OPENINGS and line.count(b"[") + line.count(b"{") > _MAX_OPENINGS:
        return None
    try:
        o = _decode_line(line)
    except _TYPED_ERRORS:
        return None
    ts = o.ts
    if type(ts) is str:
        try:
            ts = parse_ts(ts)
        except InvalidLine:
            return None
    status = o.status
    error = None
    if status != "success":
        error = o.error_type
        if error not in _ERROR_TYPES:
            error = "other"
    stream = o.stream or False
    attribution = o.labels
    if attribution is not None:
        try:
            attribution = labels({"labels": attribution})
        except InvalidLine:
            return None
    return _new(Request, (ts, o.call_id or "", o.model, o.provider or "", o.tenant_id or "", status, error,
                          o.duration_s, o.ttft_s if stream else None, stream, o.prompt_tokens or 0,
                          o.completion_tokens or 0, o.cached_tokens or 0, o.cache_write_tokens or 0,
                          o.reasoning_tokens or 0, o.cost_usd, o.cache_hit, None, o.served_model or None,
                          o.tokens_estimated, attribution, o.trace_id or ""))


def _trace_id(obj: dict[str, Any]) -> str:
    value = obj.get("trace_id")
    if value is None:
        return ""
    if type(value) is not str or len(value) > MAX_TRACE_ID:
        raise InvalidLine("bad_field", f"trace_id={value!r:.40}")
    return value


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
    error_type = _error_type(obj)
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
        served_model=text(obj, "served_model"),
        tokens_estimated=_flag(obj, "tokens_estimated"),
        labels=labels(obj),
        trace_id=_trace_id(obj),
    )


def _error_type(obj: dict[str, Any]) -> str | None:
    error_type = obj.get("error_type")
    if error_type is not None:
        if type(error_type) is not str:
            raise InvalidLine("bad_field", f"error_type={error_type!r:.40}")
        if error_type not in _ERROR_TYPES:
            error_type = "other"  # bounded vocabulary: a gateway's own names never add series
    return error_type


def _flag(obj: dict[str, Any], key: str) -> bool:
    """An optional boolean: missing or null is false."""
    value = obj.get(key)
    if value is None:
        return False
    if type(value) is not bool:
        raise InvalidLine("bad_field", f"{key}={value!r:.40}")
    return value


def _attempt(obj: dict[str, Any]) -> Attempt:
    return Attempt(parse_ts(obj.get("ts")), _text(obj, "call_id"), _text(obj, "tenant_id"), _text(obj, "provider"),
                   _text(obj, "model"), _error_type(obj) or "other", _flag(obj, "stream"))


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
    "attempt": _attempt,
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
