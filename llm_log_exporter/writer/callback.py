"""LiteLLM callback that appends one schema-v1 ``request`` event per LLM call to a JSONL file.

This module runs *inside* the user's LLM process (aider, a script, the LiteLLM proxy), so it is
standard library only at import time, never raises into the caller, and costs a few microseconds
per call. The exporter daemon tails the file; nothing here knows about Prometheus. The mapping from
LiteLLM's arguments to the event is ``schema.litellm``'s, shared with the exporter's ``litellm`` parser.

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
* Hooks fire per *attempt*; a client call is one ``request`` line: inside a call of litellm's router
  (an application's ``Router``, every LiteLLM proxy call) a failure is held until the router retries
  (an ``attempt`` line) or gives up (the call's ``request``) — see :mod:`.calls`. The proxy hands its own
  errors (bad key, unknown model) to the async and, in a thread, the sync failure hook: a second
  ``request`` with the same call id and status is dropped (the end times differ, so they are not part
  of the key).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ..schema import ERROR_TYPES, SCHEMA_VERSION
from ..schema.errors import classify_error
from ..schema.litellm import attempt_event, build_failure_event, build_request_event, build_stream_start_event
from . import calls
from .encode import encode_event
from .logfile import LogFile
from .rotation import BACKUPS_ENV_VAR, DEFAULT_BACKUPS, MAX_BYTES_ENV_VAR, Rotation, parse_backups, parse_size, resolve
from .safe_open import DEFAULT_MODE, MODE_ENV_VAR, parse_mode
from .stream_usage import request_stream_usage

__all__ = [
    "DEFAULT_PATH",
    "ERROR_TYPES",
    "LABELS_ENV_VAR",
    "PATH_ENV_VAR",
    "SCHEMA_VERSION",
    "UsageLogger",
    "async_log_failure",
    "async_log_success",
    "build_request_event",
    "classify_error",
    "default_logger",
    "encode_event",
    "log_failure",
    "log_success",
    "request_stream_usage",
]

logger = logging.getLogger("llm_log_exporter.callback")

PATH_ENV_VAR = "LLM_USAGE_LOG"
LABELS_ENV_VAR = "LLM_USAGE_LABELS"
DEFAULT_PATH = "~/.aider/usage.jsonl"
REPO_LABEL = "repo"  # in the labels list: the name of the git top-level directory of the working directory
_DEDUP_SIZE = 256

_instances: weakref.WeakSet[UsageLogger] = weakref.WeakSet()
_variants: dict[tuple[type, type], type] = {}
_variants_lock = threading.Lock()


def _default_path() -> str:
    return os.environ.get(PATH_ENV_VAR) or DEFAULT_PATH


def parse_labels(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"project,repo"`` (or a list) → label names; ``off``, empty or None → none."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(p.strip() for p in parts if isinstance(p, str) and p.strip()))
    return () if names in ((), ("off",)) else names


def repo_name(directory: str) -> str | None:
    """The name of the git top-level directory holding ``directory`` (nothing else about it), or None.

    A ``.git`` directory or file (worktrees, submodules) marks the top level, as ``git rev-parse
    --show-toplevel`` finds it, without running git in the host process.
    """
    path = os.path.abspath(directory)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return os.path.basename(path) or None
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


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


_LITELLM_LISTS = ("callbacks", "failure_callback", "_async_failure_callback", "success_callback",
                  "_async_success_callback")


def _registered_loggers() -> list[UsageLogger]:
    """The loggers litellm reports to (in one of its callback lists): the router wrappers write for them."""
    litellm = sys.modules.get("litellm")
    if litellm is None:
        return []
    listed: list[Any] = []
    for name in _LITELLM_LISTS:
        entries = getattr(litellm, name, None)
        if isinstance(entries, list):
            listed.extend(entries)
    return [logger for logger in list(_instances) if any(entry is logger for entry in listed)]


def _instrument_router() -> None:
    """Mark the call and attempt boundaries of litellm's Router (``calls``); only when litellm is loaded."""
    try:
        router = sys.modules.get("litellm.router")
        cls = getattr(router, "Router", None) if router is not None else None
        if isinstance(cls, type):
            calls.instrument(cls, _registered_loggers)
    except Exception:  # pragma: no cover - never break the host program
        pass


def _cache_consulted(kwargs: Any) -> bool:
    """Whether litellm looked this call up in its cache (``litellm.cache`` set, the call type cached):
    only then is a call that was not a hit a miss. litellm's own ``cache_hit`` says false for every stream
    and failure, cache or not, and null for a non-streaming miss."""
    litellm = sys.modules.get("litellm")
    cache = getattr(litellm, "cache", None) if litellm is not None else None
    if cache is None or not isinstance(kwargs, Mapping):
        return False
    types = getattr(cache, "supported_call_types", None)
    call_type = kwargs.get("call_type")
    if isinstance(types, (list, tuple, set)) and isinstance(call_type, str):
        return call_type in types or call_type.rpartition(".")[2] in types
    return True


class UsageLogger:
    """Append one JSON line per LLM call to ``path``; usable in ``litellm.callbacks``.

    litellm dispatches only ``CustomLogger`` instances, and this module must not import litellm,
    so ``UsageLogger(...)`` returns an instance of a subclass that also inherits litellm's
    ``CustomLogger`` when litellm is already imported (``isinstance(x, UsageLogger)`` still
    holds). Created before ``import litellm`` it is a plain object that litellm would ignore.

    ``path`` is a public ``str`` on purpose: litellm de-duplicates loggers by class name plus
    public scalar attributes, so two loggers with different paths can both be registered.

    ``mode`` is the new file's mode (``0o600``; ``0o640``/``0o644`` so an exporter running as another user
    can read it), ``max_bytes``/``backups`` turn on size-based rotation (``writer/rotation.py``). Each left
    at ``None`` comes from ``LLM_USAGE_LOG_MODE``, ``LLM_USAGE_LOG_MAX_BYTES``, ``LLM_USAGE_LOG_BACKUPS``.
    """

    path: str
    tenant_key: str
    mode: int
    max_bytes: int
    backups: int
    label_keys: tuple[str, ...]
    static_labels: dict[str, str]
    errors: int
    lines_written: int

    def __new__(cls, *args: Any, **kwargs: Any) -> UsageLogger:
        return object.__new__(_variant_for(cls))

    def __init__(self, path: str | os.PathLike[str] | None = None, *, tenant_key: str = "tenant_id",
                 mode: int | str | None = None, max_bytes: int | str | None = None,
                 backups: int | str | None = None, labels: str | Sequence[str] | None = None) -> None:
        """``labels``: request metadata keys copied into each line's ``labels`` object, plus ``repo`` for
        the name of the git top-level directory of the working directory (None: ``$LLM_USAGE_LABELS``,
        comma-separated; ``off`` for none). The payload's own attribution (key and team alias, user,
        end user, requested and served model) is always recorded."""
        super().__init__()  # CustomLogger.__init__ when mixed in (sets its message_logging flags)
        raw = os.fsdecode(os.fspath(path)) if path is not None else _default_path()
        self.path = os.path.abspath(os.path.expanduser(raw))  # immune to later chdir()
        self.tenant_key = tenant_key
        names = parse_labels(os.environ.get(LABELS_ENV_VAR) if labels is None else labels)
        self.label_keys = tuple(name for name in names if name != REPO_LABEL)
        self.static_labels = {}
        if REPO_LABEL in names:
            repo = repo_name(os.getcwd())
            if repo:
                self.static_labels[REPO_LABEL] = repo
        self.errors = 0
        self.lines_written = 0
        self._lock = threading.Lock()  # the error bookkeeping
        self.mode = resolve(mode, MODE_ENV_VAR, parse_mode, DEFAULT_MODE)
        self.max_bytes = resolve(max_bytes, MAX_BYTES_ENV_VAR, parse_size, 0)
        self.backups = resolve(backups, BACKUPS_ENV_VAR, parse_backups, DEFAULT_BACKUPS)
        rotation = Rotation(self.max_bytes, self.backups, self.mode) if self.max_bytes else None
        self._file = LogFile(self.path, self.mode, rotation)
        self._seen_errors: set[str] = set()
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        _instances.add(self)
        _instrument_router()

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
        """Before each attempt: a held failure of the same router call was retried; and before a streaming
        call, ``stream_start`` so the exporter can count active streams."""
        self._pre_call(kwargs)

    async def async_log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Async twin; an attempt seen by both hooks is written once."""
        self._pre_call(kwargs)

    async def async_post_call_failure_hook(self, request_data: Any, original_exception: Any, user_api_key_dict: Any,
                                           traceback_str: Any = None) -> None:
        """LiteLLM proxy: once per failed client request. The line is usually written already (by the router
        call or the failure hooks, same call id); this one covers failures no hook reported (a pre-call check)."""
        try:
            if isinstance(request_data, dict) and isinstance(original_exception, BaseException):
                self.write_request(self.failure_event(request_data, original_exception))
        except Exception as exc:
            self._record_error(exc)

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
                kwargs, response_obj, start_time, end_time, status=status, tenant_key=self.tenant_key,
                cache_consulted=_cache_consulted(kwargs),
                label_keys=self.label_keys, static_labels=self.static_labels,
            )
            calls.name_requested(event, kwargs)  # a router call's fallback: the group the caller asked for
            if event["status"] == "failure" and event["provider"]:
                exc = kwargs.get("exception") if isinstance(kwargs, Mapping) else None
                if calls.hold_failure(self, event, exc if exc is not None else response_obj):
                    return  # inside a router call: an attempt until the call ends or goes on
            self.write_request(event)
        except Exception as exc:
            self._record_error(exc)

    def _pre_call(self, kwargs: Any) -> None:
        try:
            calls.next_attempt(self)
            event = build_stream_start_event(kwargs, tenant_key=self.tenant_key)
            if event is not None:
                calls.name_requested(event, kwargs)
                self._write(encode_event(event), (event["call_id"], "stream_start"))
        except Exception as exc:
            self._record_error(exc)

    def write_request(self, event: Mapping[str, Any]) -> None:
        """A call's one ``request`` line; the same call (id and status) reported twice is written once."""
        self._write(encode_event(event), (event["call_id"], event["status"]))

    def write_attempt(self, request: Mapping[str, Any]) -> None:
        """A failed request event that the call went on from, as an ``attempt`` line."""
        try:
            self._write(encode_event(attempt_event(request)), None)
            with self._file.lock:  # its next attempt starts a stream of its own
                self._recent.pop((request["call_id"], "stream_start"), None)
        except Exception as exc:
            self._record_error(exc)

    def failure_event(self, data: Mapping[str, Any], exc: BaseException) -> dict[str, Any]:
        """A failed request event from a call's parameters, for failures no LiteLLM hook reported."""
        return build_failure_event(data, exc, tenant_key=self.tenant_key)

    def write_event(self, event: Mapping[str, Any]) -> None:
        """Append an already-built event (for other producers). Never raises."""
        try:
            self._write(encode_event(event), None)
        except Exception as exc:
            self._record_error(exc)

    def _write(self, data: bytes, key: tuple[str, str] | None) -> None:
        with self._file.lock:  # one lock per line: the de-duplication memory, the write and the count
            if key is not None and key[0]:
                # The same call reported twice (e.g. both sync and async failure functions
                # registered, or a stream chunk racing the final event) is written once.
                if key in self._recent:
                    return
                self._recent[key] = None
                if len(self._recent) > _DEDUP_SIZE:
                    self._recent.popitem(last=False)
            self._file.append_locked(data)
            self.lines_written += 1

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
        self._file.close()

    def __enter__(self) -> UsageLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _after_fork_in_child(self) -> None:
        # The parent's locks may have been held by another thread at fork time.
        self._lock = threading.Lock()
        self._file.after_fork_in_child()


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
