"""LiteLLM callback that appends one schema-v1 ``request`` event per LLM call to a JSONL file.

This module runs *inside* the user's LLM process (aider, a script, the LiteLLM proxy), so it is
standard library only at import time, never raises into the caller, and costs a few microseconds
per call. The exporter daemon tails the file; nothing here knows about Prometheus.

Usage::

    import litellm
    from llm_log_exporter.callback import UsageLogger
    litellm.callbacks = [UsageLogger("~/.aider/usage.jsonl")]

    # or function style (default path: $LLM_USAGE_LOG, else ~/.aider/usage.jsonl)
    from llm_log_exporter.callback import async_log_success, log_failure, log_success
    litellm.success_callback = [log_success, async_log_success]
    litellm.failure_callback = [log_failure]

Facts about litellm 1.81.10 this design relies on (read in its source, confirmed by real calls;
paths relative to the ``litellm`` package, ``LL`` = ``litellm_core_utils/litellm_logging.py``):

* ``litellm.callbacks`` entries are copied into the success/failure/async lists by
  ``function_setup`` (``utils.py:785-806``) and then dispatched only if
  ``isinstance(cb, CustomLogger)`` (``LL:2247`` sync success, ``LL:2873`` sync failure,
  ``LL:2564`` async success, ``LL:2996`` async failure). ``CustomLogger`` is a plain class (no ABC
  registration), so duck typing is not enough: :class:`UsageLogger` instances are created as a
  subclass of ``CustomLogger`` when litellm is already imported at construction time (see
  :meth:`UsageLogger.__new__`). Create the logger *after* ``import litellm``.
* Sync successes are logged on litellm's thread pool (``utils.py:1633``); failures in the calling
  thread (``utils.py:1745``, ``1958``); async successes on litellm's logging-worker task
  (``utils.py:1180``). For a sync stream, ``log_success_event`` fires once with the assembled
  response; per-chunk calls go to ``log_stream_event``/``async_log_stream_event`` (ignored).
* Function style: a plain ``def`` in ``success_callback`` fires for sync calls only
  (``is_sync_request``, ``LL:2274``) and, for a sync stream, once *per chunk*
  (``litellm_core_utils/streaming_handler.py:1759`` -> ``:1705``), so chunk calls are skipped here.
  An ``async def`` is moved to the async list (``utils.py:833``) and fires for async calls only.
  A plain ``def`` in ``failure_callback`` fires for sync *and* async failures (``LL:2863``;
  ``utils.py:1958`` calls the sync handler for async calls too), so ``log_failure`` alone covers
  both; registering ``async_log_failure`` as well is harmless (identical events are written once).
* Function-style gotcha: litellm runs plain-function callbacks through a module global
  ``customLogger`` (``LL:227``) that it creates only in ``set_callbacks`` (``LL:3498``), which
  ``function_setup`` calls only while the process-global ``utils.callback_list`` is empty
  (``utils.py:813-828``). If the process made a call with callbacks registered (e.g. only
  ``CustomLogger`` objects) before a function was added, sync function callbacks never fire.
  Prefer :class:`UsageLogger`.
* The SLO's ``response_cost`` is never ``None`` (``... or 0.0``, ``LL:5135``): a model missing
  from the cost map gives ``0.0`` plus a non-null ``response_cost_failure_debug_info`` (top-level
  ``kwargs["response_cost"]`` is ``None``). We write ``cost_usd: null`` in that case.
* litellm de-duplicates ``CustomLogger`` objects by class name plus public ``str``/``bool``/``int``
  attributes (``litellm_core_utils/logging_callback_manager.py:285-321``); :attr:`UsageLogger.path`
  is public so loggers writing to different files are not merged.
"""

from __future__ import annotations

import contextlib
import json as _json
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from llm_log_exporter.safe_open import open_append

__all__ = [
    "DEFAULT_PATH",
    "ERROR_TYPES",
    "PATH_ENV_VAR",
    "UsageLogger",
    "async_log_failure",
    "async_log_success",
    "build_request_event",
    "classify_error",
    "default_logger",
    "encode_event",
    "log_failure",
    "log_success",
]

logger = logging.getLogger("llm_log_exporter.callback")

PATH_ENV_VAR = "LLM_USAGE_LOG"
DEFAULT_PATH = "~/.aider/usage.jsonl"
SCHEMA_VERSION = 1

ERROR_TYPES = (
    "rate_limit",
    "timeout",
    "auth",
    "bad_request",
    "context_window",
    "content_filter",
    "not_found",
    "server_error",
    "connection",
    "budget_exceeded",
    "other",
)

# --------------------------------------------------------------------------------------------
# JSON encoding: orjson when importable (about 5x faster), else the stdlib. Both give compact
# output with keys in insertion order; floats may be spelled differently (1.35e-5 vs 1.35e-05).
# --------------------------------------------------------------------------------------------

_json_dumps: Callable[[Any], str] = _json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _encode_stdlib(event: Mapping[str, Any]) -> bytes:
    return (_json_dumps(event) + "\n").encode("utf-8")


try:
    import orjson as _orjson

    _ORJSON_OPTS = getattr(_orjson, "OPT_APPEND_NEWLINE", 0)

    def _encode_orjson(event: Mapping[str, Any]) -> bytes:
        data = _orjson.dumps(event, option=_ORJSON_OPTS)
        return data if _ORJSON_OPTS else data + b"\n"

    encode_event: Callable[[Mapping[str, Any]], bytes] = _encode_orjson
except Exception:  # ImportError, or a broken wheel: never let it break the user's process
    encode_event = _encode_stdlib

encode_event.__doc__ = "Encode an event as one compact JSON line ending in a newline (UTF-8 bytes)."


# --------------------------------------------------------------------------------------------
# Error classification (pure; reused by the daemon-side parsers)
# --------------------------------------------------------------------------------------------


def _norm_name(name: str) -> str:
    """``openai.RateLimitError`` / ``rate_limit_error`` / ``RateLimitError`` -> ``ratelimiterror``."""
    name = name.rsplit(".", 1)[-1]
    return "".join(ch for ch in name.lower() if ch.isalnum())


# Exception class names (litellm, openai, anthropic, httpx, builtins) and the string error codes
# providers put in their bodies (OpenAI ``code``, Anthropic ``error.type``), normalized.
_BY_NAME: dict[str, str] = {
    # rate limit
    "ratelimiterror": "rate_limit",
    "ratelimitexceeded": "rate_limit",
    "insufficientquota": "rate_limit",
    "throttlingexception": "rate_limit",
    "toomanyrequests": "rate_limit",
    # timeout
    "timeout": "timeout",
    "timeouterror": "timeout",
    "apitimeouterror": "timeout",
    "timeoutexception": "timeout",
    "readtimeout": "timeout",
    "connecttimeout": "timeout",
    "writetimeout": "timeout",
    "pooltimeout": "timeout",
    # auth
    "authenticationerror": "auth",
    "permissiondeniederror": "auth",
    "permissionerror": "auth",  # Anthropic "permission_error" (403), not the OSError subclass
    "invalidapikey": "auth",
    # bad request
    "badrequesterror": "bad_request",
    "unprocessableentityerror": "bad_request",
    "invalidrequesterror": "bad_request",
    "unsupportedparamserror": "bad_request",
    "rejectedrequesterror": "bad_request",
    "imagefetcherror": "bad_request",
    "litellmunknownprovider": "bad_request",
    "requesttoolarge": "bad_request",
    # context window
    "contextwindowexceedederror": "context_window",
    "contextlengthexceeded": "context_window",
    # content filter (provider policy or a guardrail blocked the call)
    "contentpolicyviolationerror": "content_filter",
    "contentpolicyviolation": "content_filter",
    "contentfilter": "content_filter",
    "guardrailraisedexception": "content_filter",
    "guardrailinterventionnormalstringerror": "content_filter",
    "blockedpiientityerror": "content_filter",
    # not found
    "notfounderror": "not_found",
    "modelnotfound": "not_found",
    # server side
    "internalservererror": "server_error",
    "serviceunavailableerror": "server_error",
    "badgatewayerror": "server_error",
    "midstreamfallbackerror": "server_error",
    "apierror": "server_error",
    "overloadederror": "server_error",
    "servererror": "server_error",
    # connection
    "apiconnectionerror": "connection",
    "connecterror": "connection",
    "connectionerror": "connection",
    "connectionreseterror": "connection",
    "connectionrefusederror": "connection",
    # budget
    "budgetexceedederror": "budget_exceeded",
    "budgetexceeded": "budget_exceeded",
}

# Catch-all classes whose HTTP code says more than their name (litellm raises ``APIError`` with
# arbitrary status codes). For these the code wins when it maps to something specific.
_GENERIC_NAMES = frozenset(
    {"apierror", "apistatuserror", "mockexception", "openaierror", "exception", "httpstatuserror"}
)


def _classify_status(code: int) -> str:
    if code == 429:
        return "rate_limit"
    if code in (408, 504):
        return "timeout"
    if code in (401, 403):
        return "auth"
    if code in (400, 413, 422):
        return "bad_request"
    if code == 404:
        return "not_found"
    if code == 402:
        return "budget_exceeded"
    if 500 <= code <= 599:
        return "server_error"
    return "other"


def classify_error(error_class: str | None, error_code: str | int | None) -> str:
    """Map an exception class name and/or an error code to one of :data:`ERROR_TYPES`.

    The class name wins (litellm's ``APIConnectionError`` carries status 500), except for
    catch-all classes such as ``APIError`` where a specific HTTP code is more telling. The code
    may be an HTTP status (``429``, ``"429"``) or a provider string (``"context_length_exceeded"``).
    Never raises; unknown input gives ``"other"``.
    """
    try:
        by_class = None
        generic = False
        if isinstance(error_class, str) and error_class:
            name = _norm_name(error_class)
            by_class = _BY_NAME.get(name)
            generic = name in _GENERIC_NAMES
            if by_class is not None and not generic:
                return by_class
        by_code = "other"
        if error_code is not None and not isinstance(error_code, bool):
            if isinstance(error_code, int):
                by_code = _classify_status(error_code)
            elif isinstance(error_code, str):
                text = error_code.strip()
                if text.isdigit():
                    by_code = _classify_status(int(text))
                elif text:
                    by_code = _BY_NAME.get(_norm_name(text), "other")
        if by_code != "other":
            return by_code
        return by_class or "other"
    except Exception:  # pragma: no cover - defensive: a classifier must not fail
        return "other"


# --------------------------------------------------------------------------------------------
# Event building
# --------------------------------------------------------------------------------------------


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


_EMPTY: dict[str, Any] = {}


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


def _tenant_from_tags(tags: Any) -> str | None:
    if not isinstance(tags, (list, tuple)):
        return None
    for tag in tags:
        if isinstance(tag, str) and tag.startswith("tenant:") and len(tag) > 7:
            return tag[7:]
    return None


def _resolve_tenant(kwargs: Mapping[str, Any], slo: Any, tenant_key: str) -> str | None:
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
    tenant = _tenant_from_tags(_get(slo, "request_tags"))
    if tenant is None and isinstance(metadata, Mapping):
        tenant = _tenant_from_tags(metadata.get("tags"))
    if tenant is not None:
        return tenant
    team = _get(_get(slo, "metadata"), "user_api_key_team_id")
    if team is not None and team != "":
        return team if isinstance(team, str) else str(team)
    return None


def _is_stream_chunk(kwargs: Mapping[str, Any], response_obj: Any) -> bool:
    """True for litellm's per-chunk success calls of a sync stream (function-style callbacks).

    They carry a ``ModelResponseStream`` and no standard logging object; the final call carries the
    assembled response and the totals. Chunk calls run on other threads and share the same kwargs
    dict, so the type check matters: they may observe the final call's SLO.
    """
    if kwargs.get("stream") is not True:
        return False
    if type(response_obj).__name__ == "ModelResponseStream":
        return True
    return (
        kwargs.get("standard_logging_object") is None
        and kwargs.get("complete_streaming_response") is None
        and kwargs.get("async_complete_streaming_response") is None
    )


def build_request_event(
    kwargs: Mapping[str, Any],
    response_obj: Any,
    start_time: Any,
    end_time: Any,
    *,
    status: str,
    tenant_key: str = "tenant_id",
) -> dict[str, Any]:
    """Project litellm's callback arguments onto a schema-v1 ``request`` event (a new dict).

    Reads ``kwargs["standard_logging_object"]`` (the SLO) and falls back to top-level kwargs and
    the callback arguments when it is absent. Never copies prompt/response text or error messages.
    ``status`` is the hook's view ("success"/"failure"), used when the SLO has none.
    """
    slo = kwargs.get("standard_logging_object")
    if not isinstance(slo, dict):
        slo = None
    sget = slo.get if slo is not None else _EMPTY.get

    # identity ----------------------------------------------------------------------------
    call_id = sget("litellm_call_id") or kwargs.get("litellm_call_id") or sget("id") or ""
    model = sget("model") or kwargs.get("model") or ""
    provider = sget("custom_llm_provider") or kwargs.get("custom_llm_provider") or ""
    slo_status = sget("status")
    if slo_status == "success" or slo_status == "failure":
        status = slo_status

    # times -------------------------------------------------------------------------------
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
    # SLO "stream" is null (not false) for non-stream calls
    stream = (sget("stream") if slo is not None else kwargs.get("stream")) is True
    ttft = None
    if stream and start is not None:
        first = _epoch(sget("completionStartTime"))
        if first is None:
            first = _epoch(kwargs.get("completion_start_time"))
        if first is not None and first >= start:
            ttft = first - start

    # tokens ------------------------------------------------------------------------------
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
    cached, cache_write, reasoning = _usage_details(usages)

    # cost --------------------------------------------------------------------------------
    if slo is not None:
        cost = _as_float(slo.get("response_cost"))
        # 1.81.10 writes 0.0 (not None) for a model missing from the cost map.
        if cost == 0.0 and slo.get("response_cost_failure_debug_info"):
            cost = None
    else:
        cost = _as_float(kwargs.get("response_cost"))

    # error -------------------------------------------------------------------------------
    error_type = None
    if status == "failure":
        info = sget("error_information")
        error_class = _get(info, "error_class")
        error_code = _get(info, "error_code")
        if not error_class and not error_code:
            exc = kwargs.get("exception")
            if exc is None and isinstance(response_obj, BaseException):
                exc = response_obj
            if exc is not None:
                error_class = type(exc).__name__
                error_code = _get(exc, "status_code")
        error_type = classify_error(error_class, error_code)

    cache_hit = sget("cache_hit") if slo is not None else kwargs.get("cache_hit")
    if not isinstance(cache_hit, bool):
        cache_hit = None

    return {
        "v": SCHEMA_VERSION,
        "event": "request",
        "ts": end if end is not None else time.time(),
        "call_id": call_id if isinstance(call_id, str) else str(call_id),
        "model": model if isinstance(model, str) else str(model),
        "provider": provider if isinstance(provider, str) else str(provider),
        "tenant_id": _resolve_tenant(kwargs, slo, tenant_key),
        "status": status,
        "error_type": error_type,
        "duration_s": duration,
        "ttft_s": ttft,
        "stream": stream,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cached_tokens": cached,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
        "cost_usd": cost,
        "cache_hit": cache_hit,
    }


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
        "tenant_id": _resolve_tenant(kwargs, None, tenant_key),
    }


# --------------------------------------------------------------------------------------------
# The logger
# --------------------------------------------------------------------------------------------

_DEDUP_SIZE = 256

_instances: weakref.WeakSet[UsageLogger] = weakref.WeakSet()
_variants: dict[tuple[type, type], type] = {}
_variants_lock = threading.Lock()


def _default_path() -> str:
    return os.environ.get(PATH_ENV_VAR) or DEFAULT_PATH


def _litellm_custom_logger() -> type | None:
    """litellm's ``CustomLogger`` class if litellm is already imported; never imports litellm itself."""
    if "litellm" not in sys.modules:
        return None
    module = sys.modules.get("litellm.integrations.custom_logger")
    if module is None:
        try:  # litellm is loaded, so this is a cheap submodule import
            import importlib

            module = importlib.import_module("litellm.integrations.custom_logger")
        except Exception:
            return None
    base = getattr(module, "CustomLogger", None)
    return base if isinstance(base, type) else None


def _variant_for(cls: type) -> type:
    """``cls`` mixed with litellm's CustomLogger (cached), or ``cls`` itself without litellm."""
    base = _litellm_custom_logger()
    if base is None or issubclass(cls, base):
        return cls
    key = (cls, base)
    with _variants_lock:
        variant = _variants.get(key)
        if variant is None:
            variant = type(
                cls.__name__,
                (cls, base),
                {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__},
            )
            _variants[key] = variant
    return variant


class UsageLogger:
    """Append one JSON line per LLM call to ``path``; usable in ``litellm.callbacks``.

    litellm dispatches only ``CustomLogger`` instances, and this module must not import litellm,
    so ``UsageLogger(...)`` returns an instance of a subclass that also inherits litellm's
    ``CustomLogger`` when litellm is already imported (``isinstance(x, UsageLogger)`` still
    holds). Created before ``import litellm`` it is a plain object that litellm would ignore.

    ``path`` is a public ``str`` on purpose: litellm de-duplicates loggers by class name plus
    public scalar attributes, so two loggers with different paths can both be registered.
    """

    path: str
    tenant_key: str
    errors: int
    lines_written: int

    def __new__(cls, *args: Any, **kwargs: Any) -> UsageLogger:
        return object.__new__(_variant_for(cls))

    def __init__(self, path: str | os.PathLike[str] | None = None, *, tenant_key: str = "tenant_id") -> None:
        super().__init__()  # CustomLogger.__init__ when mixed in (sets its message_logging flags)
        raw = os.fsdecode(os.fspath(path)) if path is not None else _default_path()
        self.path = os.path.abspath(os.path.expanduser(raw))  # immune to later chdir()
        self.tenant_key = tenant_key
        self.errors = 0
        self.lines_written = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._seen_errors: set[str] = set()
        self._recent: OrderedDict[tuple[str, str, float], None] = OrderedDict()
        _instances.add(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, tenant_key={self.tenant_key!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> UsageLogger:
        # A sink holding an fd and a lock; litellm/pydantic may deep-copy callback lists.
        return self

    def __copy__(self) -> UsageLogger:
        return self

    # -- litellm CustomLogger hooks (parameter names matter: litellm passes them by keyword) ----

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Sync success (litellm's thread pool); for streams, once with the assembled response."""
        self._handle(kwargs, response_obj, start_time, end_time, "success")

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Sync failure, in the calling thread."""
        self._handle(kwargs, response_obj, start_time, end_time, "failure")

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Async success: the write is a single non-blocking-in-practice append, done inline."""
        self._handle(kwargs, response_obj, start_time, end_time, "success")

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Async failure."""
        self._handle(kwargs, response_obj, start_time, end_time, "failure")

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Before a streaming call: write ``stream_start`` so the exporter can count active streams."""
        self._stream_start(kwargs)

    async def async_log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Async twin (the proxy path); a call seen by both hooks is written once."""
        self._stream_start(kwargs)

    # Hooks litellm may call that carry nothing we need (the final success event has the totals).
    # Defined so the plain (non-litellm) variant has the same surface; CustomLogger's are no-ops too.

    def log_post_api_call(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Ignored."""

    def log_stream_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Ignored: per-chunk event; the final success event carries the totals."""

    async def async_log_stream_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Ignored: per-chunk event."""

    # -- core --------------------------------------------------------------------------------

    def _handle(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any, status: str) -> None:
        try:
            if status == "success" and _is_stream_chunk(kwargs, response_obj):
                return
            event = build_request_event(
                kwargs, response_obj, start_time, end_time, status=status, tenant_key=self.tenant_key
            )
            self._write(encode_event(event), (event["call_id"], event["status"], event["ts"]))
        except Exception as exc:
            self._record_error(exc)

    def _stream_start(self, kwargs: Any) -> None:
        try:
            event = build_stream_start_event(kwargs, tenant_key=self.tenant_key)
            if event is not None:
                self._write(encode_event(event), (event["call_id"], "stream_start", 0.0))
        except Exception as exc:
            self._record_error(exc)

    def write_event(self, event: Mapping[str, Any]) -> None:
        """Append an already-built event (for other producers). Never raises."""
        try:
            self._write(encode_event(event), None)
        except Exception as exc:
            self._record_error(exc)

    def _write(self, data: bytes, key: tuple[str, str, float] | None) -> None:
        with self._lock:
            if key is not None and key[0]:
                # The same call reported twice (e.g. both sync and async failure functions
                # registered, or a stream chunk racing the final event) is written once.
                if key in self._recent:
                    return
                self._recent[key] = None
                if len(self._recent) > _DEDUP_SIZE:
                    self._recent.popitem(last=False)
            fd = self._fd
            if fd is not None:
                try:
                    st = os.stat(self.path)  # ~1 µs; catches rotation (rename) and deletion
                    if (st.st_dev, st.st_ino) != self._ident:
                        self._close_locked()
                        fd = None
                except FileNotFoundError:
                    self._close_locked()
                    fd = None
            if fd is None:
                fd = self._open_locked()
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    if n <= 0:
                        raise OSError("os.write wrote 0 bytes")
                    view = view[n:]
            except BaseException:
                self._close_locked()  # reopen on next write (EBADF, ENOSPC, stale NFS handle...)
                raise
            self.lines_written += 1

    def _open_locked(self) -> int:
        fd = open_append(self.path)  # 0600; no planted symlink in world-writable dirs (docs/security.md)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        return fd

    def _close_locked(self) -> None:
        fd, self._fd, self._ident = self._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _record_error(self, exc: BaseException) -> None:
        try:
            name = type(exc).__name__
            with self._lock:
                self.errors += 1
                first = name not in self._seen_errors
                self._seen_errors.add(name)
            if first:
                logger.warning(
                    "llm_log_exporter: cannot record LLM usage to %s (%s: %s); further %s errors are only counted",
                    self.path,
                    name,
                    exc,
                    name,
                )
        except Exception:  # pragma: no cover - logging itself failed; stay silent
            pass

    def close(self) -> None:
        """Close the file descriptor. A later event reopens the file."""
        with self._lock:
            self._close_locked()

    def __enter__(self) -> UsageLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held by another thread at fork time.
        self._lock = threading.Lock()


def _reinit_after_fork() -> None:
    global _variants_lock, _default_lock
    _variants_lock = threading.Lock()
    _default_lock = threading.Lock()
    for instance in list(_instances):
        instance._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


# --------------------------------------------------------------------------------------------
# Function-style callbacks (litellm.success_callback / failure_callback)
# --------------------------------------------------------------------------------------------

_default: UsageLogger | None = None
_default_lock = threading.Lock()


def default_logger() -> UsageLogger:
    """The logger behind the function-style callbacks, created on first use from ``$LLM_USAGE_LOG``."""
    global _default
    logger_ = _default
    if logger_ is None:
        with _default_lock:
            if _default is None:
                _default = UsageLogger()
            logger_ = _default
    return logger_


def log_success(kwargs: Any, completion_response: Any, start_time: Any, end_time: Any) -> None:
    """For ``litellm.success_callback``. litellm calls a plain def for *sync* calls only."""
    with contextlib.suppress(Exception):  # _handle never raises; belt and braces
        default_logger()._handle(kwargs, completion_response, start_time, end_time, "success")


def log_failure(kwargs: Any, completion_response: Any, start_time: Any, end_time: Any) -> None:
    """For ``litellm.failure_callback``; litellm calls it for sync *and* async failures."""
    with contextlib.suppress(Exception):
        default_logger()._handle(kwargs, completion_response, start_time, end_time, "failure")


async def async_log_success(kwargs: Any, completion_response: Any, start_time: Any, end_time: Any) -> None:
    """For ``litellm.success_callback`` next to :func:`log_success`: covers async calls."""
    log_success(kwargs, completion_response, start_time, end_time)


async def async_log_failure(kwargs: Any, completion_response: Any, start_time: Any, end_time: Any) -> None:
    """Async twin of :func:`log_failure`; redundant (``log_failure`` already sees async failures)
    but harmless: the duplicate event is dropped."""
    log_failure(kwargs, completion_response, start_time, end_time)
