"""One ``request`` line per client call, whatever LiteLLM's router does: retried attempts become ``attempt`` lines.

LiteLLM's logging hooks fire per *attempt*, and nothing in an attempt's failure says whether the router will
retry it or fall back: the router decides after the hooks ran. What litellm 1.81.10 does (read in its source,
seen with a real proxy and a real ``litellm.Router``; ``R`` = ``router.py``):

* Every router call — ``Router.acompletion`` and the other async methods, and the LiteLLM proxy's calls,
  which go through its router — runs ``Router.async_function_with_fallbacks`` once (R:4783; fallbacks call
  it again, nested), which runs ``async_function_with_retries``, which runs one ``Router.make_call`` per
  attempt (R:4916, R:4997). The sync methods run ``function_with_fallbacks`` / ``function_with_retries``.
* In an ``litellm.Router`` of the application (the SDK), each attempt has its own logging object, so every
  failed attempt reaches the failure hooks, with its own ``litellm_call_id`` and one ``litellm_trace_id``
  shared by the call's attempts and fallbacks.
* Behind the proxy all attempts share the request's logging object and ``litellm_call_id``. Its
  ``has_logged_async_failure`` flag lets only a non-streaming call's *first* failed attempt reach the hooks
  (streams reset nothing and log every attempt), so a non-streaming call's later attempts are seen only by
  ``make_call``. A call that succeeds after retries logs its success as a separate success event.
* The proxy's ``async_post_call_failure_hook`` fires once per failed client request — including errors the
  proxy raises before any model is called (bad key, unknown model), which also reach the async *and*
  (in a thread) the sync failure hook.

So the callback marks the router's call boundary and attempt boundary (the wrappers below, installed once on
the ``Router`` class when a ``UsageLogger`` is made; a context variable carries the call, so concurrent
calls do not mix). Inside a call, a failed attempt is held; when the next attempt starts (``make_call`` or
litellm's pre-call hook) or the call succeeds, the held failure is written as an ``attempt`` line; when the
call raises, it is written as the call's ``request`` line. Attempts no hook reported are built from the
previous attempt's line and their exception. Outside a router call every event is final. Without a
``Router`` of this shape (another litellm version) nothing is wrapped and each failure is a request line.

Standard library only; never raises into litellm.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from ..schema import UNKNOWN_MODEL
from ..schema.errors import classify_exception
from ..schema.litellm import strip_provider

MARK = "_llm_log_exporter_instrumented"
_CANCELLED = ("CancelledError", "KeyboardInterrupt", "GeneratorExit", "SystemExit")


class _Record:
    """What one logger knows of one router call: its held failed attempt."""

    __slots__ = ("exc", "failed", "template")

    def __init__(self) -> None:
        self.failed: dict[str, Any] | None = None  # the latest failed attempt, not written yet
        self.exc: BaseException | None = None  # the exception it came from
        self.template: dict[str, Any] | None = None  # the last line seen, for attempts no hook reported


class RouterCall:
    """One client call through the router; ``data`` is what the router was called with (no text is kept
    beyond the call: the object dies with it)."""

    __slots__ = ("data", "records", "router")

    def __init__(self, data: dict[str, Any], router: Any = None) -> None:
        self.data = data
        self.router = router
        self.records: dict[Any, _Record] = {}  # logger → record

    def failure(self, logger: Any, data: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """The failed request event of ``data`` that no hook reported. A failure no provider took keeps its
        model name only when the router has a model group (or alias) of that name: other names are whatever
        the caller sent and would grow the label set (``UNKNOWN_MODEL``)."""
        event = logger.failure_event(data, exc)
        if not event.get("provider") and not _routes(self.router, data.get("model")):
            event["model"], event["served_model"] = UNKNOWN_MODEL, None
        else:
            name_requested(event, data)
        return event

    def record(self, logger: Any) -> _Record:
        rec = self.records.get(logger)
        if rec is None:
            rec = self.records[logger] = _Record()
        return rec


def _routes(router: Any, name: Any) -> bool:
    """Whether ``router`` has a model group or alias called ``name``."""
    if not isinstance(name, str) or router is None:
        return False
    try:
        names = getattr(router, "model_names", None)
        if isinstance(names, (set, frozenset, list, tuple)) and name in names:
            return True
        aliases = getattr(router, "model_group_alias", None)
        return isinstance(aliases, dict) and name in aliases
    except Exception:  # pragma: no cover - never break the host program
        return False


# The model group each router call asked for, by its trace id (shared by the call's retries and fallbacks):
# a fallback's hooks name the fallback group, and a stream's success comes after the router call returned.
MAX_CALLS = 10_000
_requested: OrderedDict[str, str] = OrderedDict()
_requested_lock = threading.Lock()


def _remember(kwargs: dict[str, Any]) -> None:
    trace, model = kwargs.get("litellm_trace_id"), kwargs.get("model")
    if isinstance(trace, str) and trace and isinstance(model, str) and model:
        with _requested_lock:
            _requested[trace] = model
            _requested.move_to_end(trace)
            while len(_requested) > MAX_CALLS:
                _requested.popitem(last=False)


def _trace_id(kwargs: Any) -> Any:
    trace = kwargs.get("litellm_trace_id")
    if not trace:
        slo = kwargs.get("standard_logging_object")
        trace = slo.get("trace_id") if isinstance(slo, dict) else None
    if not trace:
        params = kwargs.get("litellm_params")
        trace = params.get("litellm_trace_id") if isinstance(params, dict) else None
    return trace


def name_requested(event: dict[str, Any], kwargs: Any) -> None:
    """Name ``event``'s model as the router call asked for it: a fallback's lines say the group the client
    asked for (``served_model`` says what answered)."""
    try:
        if not isinstance(kwargs, dict) or event.get("model") == UNKNOWN_MODEL:
            return
        trace = _trace_id(kwargs)
        model = _requested.get(trace) if isinstance(trace, str) else None
        if model is not None:
            event["model"] = strip_provider(model, event.get("provider") or "")
    except Exception:  # pragma: no cover - never break the host program
        return


_current: ContextVar[RouterCall | None] = ContextVar("llm_log_exporter_router_call", default=None)
_loggers: Callable[[], Iterable[Any]] = tuple


def current() -> RouterCall | None:
    return _current.get()


def hold_failure(logger: Any, event: dict[str, Any], exc: Any) -> bool:
    """Inside a router call: hold ``event`` (a failed request event) as the call's latest attempt, writing
    the one it follows as an ``attempt`` line. False outside a router call (the event is final)."""
    call = _current.get()
    if call is None:
        return False
    rec = call.record(logger)
    if rec.failed is not None and rec.exc is not exc:
        logger.write_attempt(rec.failed)
    rec.failed, rec.exc, rec.template = event, exc, event
    return True


def next_attempt(logger: Any | None = None) -> None:
    """Another attempt of the current call starts: its held failure was retried (one logger, or all)."""
    call = _current.get()
    if call is None:
        return
    for owner, rec in list(call.records.items()):
        if (logger is None or owner is logger) and rec.failed is not None:
            failed, rec.failed, rec.exc = rec.failed, None, None
            owner.write_attempt(failed)


def _attempt_raised(call: RouterCall, exc: BaseException, kwargs: dict[str, Any]) -> None:
    """An attempt raised ``exc``: hold it for every logger whose hooks did not report it."""
    for logger in _loggers():
        rec = call.record(logger)
        if rec.exc is exc:
            continue  # the failure hook reported this attempt
        template = rec.template
        if template is not None:
            now = time.time()
            event = dict(template)
            duration, ts = template.get("duration_s"), template.get("ts")
            event.update(ts=now, status="failure", error_type=classify_exception(exc), ttft_s=None,
                         stream=kwargs.get("stream") is True or template.get("stream") is True,
                         prompt_tokens=0, completion_tokens=0, total_tokens=0, cached_tokens=0,
                         cache_write_tokens=0, reasoning_tokens=0, cost_usd=None, cache_hit=None,
                         tokens_estimated=False,
                         duration_s=duration + max(0.0, now - ts) if duration is not None and ts is not None
                         else None)
        else:
            event = call.failure(logger, kwargs, exc)
        if rec.failed is not None:
            logger.write_attempt(rec.failed)
        rec.failed, rec.exc, rec.template = event, exc, event


def _finish(call: RouterCall, exc: BaseException | None) -> None:
    """The call returned (held failures were retried) or raised (the held failure is its outcome)."""
    cancelled = exc is not None and type(exc).__name__ in _CANCELLED
    for logger in _loggers() if exc is not None and not cancelled else ():
        call.record(logger)  # a logger that saw nothing still writes the failure
    for logger, rec in call.records.items():
        failed, rec.failed, rec.exc = rec.failed, None, None
        if exc is None:
            if failed is not None:
                logger.write_attempt(failed)
        elif failed is not None:
            logger.write_request(failed)
        elif not cancelled:
            logger.write_request(call.failure(logger, call.data, exc))


def _wrap_async_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def async_function_with_fallbacks(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _current.get() is not None:  # a fallback inside a call: the same call
            return await original(self, *args, **kwargs)
        call, token = _begin(self, kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            _end(call, token, exc)
            raise
        _end(call, token, None)
        return result

    return async_function_with_fallbacks


def _begin(router: Any, kwargs: dict[str, Any]) -> tuple[RouterCall, Any]:
    """A client call enters the router: it becomes the current call of this context."""
    call = RouterCall(kwargs, router)
    _remember(kwargs)
    return call, _current.set(call)


def _end(call: RouterCall, token: Any, exc: BaseException | None) -> None:
    """The client call left the router (``exc``: how it failed): write its lines; never raises."""
    _current.reset(token)
    with contextlib.suppress(Exception):
        _finish(call, exc)


def _wrap_sync_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def function_with_fallbacks(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _current.get() is not None:
            return original(self, *args, **kwargs)
        call, token = _begin(self, kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            _end(call, token, exc)
            raise
        _end(call, token, None)
        return result

    return function_with_fallbacks


def _wrap_attempt(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def make_call(self: Any, original_function: Any, *args: Any, **kwargs: Any) -> Any:
        call = _current.get()
        if call is None:
            return await original(self, original_function, *args, **kwargs)
        with contextlib.suppress(Exception):
            next_attempt()
        try:
            return await original(self, original_function, *args, **kwargs)
        except Exception as exc:
            with contextlib.suppress(Exception):
                _attempt_raised(call, exc, kwargs)
            raise

    return make_call


_WRAPPERS = {
    "async_function_with_fallbacks": (_wrap_async_call, True),
    "function_with_fallbacks": (_wrap_sync_call, False),
    "make_call": (_wrap_attempt, True),
}


def instrument(router_cls: Any, loggers: Callable[[], Iterable[Any]]) -> bool:
    """Wrap ``router_cls``'s call and attempt boundaries once; False (and nothing changed) when it does
    not have them in the expected shape. ``loggers()`` gives the loggers litellm reports to."""
    global _loggers
    _loggers = loggers
    if getattr(router_cls, MARK, False):
        return True
    originals = {name: getattr(router_cls, name, None) for name in _WRAPPERS}
    for name, (_, is_async) in _WRAPPERS.items():
        fn = originals[name]
        if not callable(fn) or inspect.iscoroutinefunction(fn) is not is_async:
            return False
    for name, (wrap, _) in _WRAPPERS.items():
        setattr(router_cls, name, wrap(originals[name]))
    setattr(router_cls, MARK, True)
    return True
