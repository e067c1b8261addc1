"""Tests for the in-process LiteLLM callback, driven by real litellm calls with ``mock_response``.

litellm 1.81.10 logs sync successes on a thread pool and async ones on an event-loop worker, so
tests poll the file instead of assuming the line is there when ``completion()`` returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network here; must precede import litellm

from llm_log_exporter.callback import ERROR_TYPES, UsageLogger, classify_error
from llm_log_exporter.writer import callback as cb
from llm_log_exporter.writer import encode

try:
    import litellm
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # pragma: no cover - litellm is a test dependency
    litellm = None  # type: ignore[assignment]
    CustomLogger = object  # type: ignore[assignment,misc]

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
needs_litellm = pytest.mark.skipif(litellm is None, reason="litellm not installed")

REPO = Path(__file__).resolve().parents[1]
MODEL = "gpt-4o-mini"
SECRET = "s3cr3t-PROMPT-7f9a1c"
SECRET_OUT = "s3cr3t-ANSWER-b02e44"
KEYS = [
    "v", "event", "ts", "call_id", "model", "provider", "tenant_id", "status", "error_type",
    "duration_s", "ttft_s", "stream", "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd", "cache_hit", "served_model",
    "tokens_estimated", "labels",
]  # fmt: skip


def messages(text: str = "say hi") -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{text} {SECRET}"}]


class SLOCapture:
    """Keeps, per call id, the standard logging object a ``UsageLogger`` hook call was handed.

    That payload is what the line must project, so it is the truth the tests compare against. A second
    ``CustomLogger`` is not: LiteLLM builds the payload on its sync and on its async logging path and
    stores each in the kwargs it shares between callbacks, so a second logger may read a newer payload
    (an end time some tenths of a millisecond later, another cost) than the one handed to ours.
    """

    def __init__(self) -> None:
        self.slos: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def attach(self, logger: UsageLogger) -> UsageLogger:
        original = logger._handle

        def handle(kwargs: Any, response_obj: Any, start_time: Any, end_time: Any, status: str) -> None:
            pinned = dict(kwargs) if isinstance(kwargs, dict) else kwargs  # one payload for both readers
            slo = pinned.get("standard_logging_object") if isinstance(pinned, dict) else None
            if isinstance(slo, dict) and not (status == "success" and cb._is_stream_chunk(pinned, response_obj)):
                call_id = slo.get("litellm_call_id") or pinned.get("litellm_call_id") or slo.get("id")
                with self._lock:
                    self.slos.setdefault(call_id, slo)
            original(pinned, response_obj, start_time, end_time, status)

        logger._handle = handle  # type: ignore[method-assign]
        return logger

    def wait(self, call_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if call_id in self.slos:
                    return self.slos[call_id]
            time.sleep(0.01)
        raise AssertionError(f"no SLO captured for {call_id}")


def raw_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return text.splitlines(keepends=True)


STREAM_START_KEYS = ["v", "event", "ts", "call_id", "model", "provider", "tenant_id"]


def request_lines(path: Path) -> list[str]:
    """Complete request lines; ``stream_start`` lines are checked for shape and left out."""
    out = []
    for line in raw_lines(path):
        if not line.endswith("\n"):
            continue
        assert line.count("\n") == 1 and ", " not in line and '": ' not in line  # one compact line
        keys = list(json.loads(line))
        if json.loads(line)["event"] == "stream_start":
            assert keys == STREAM_START_KEYS
            continue
        assert keys == KEYS  # key order as specified
        out.append(line)
    return out


def stream_starts(path: Path) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, raw_lines(path)) if e["event"] == "stream_start"]


def wait_lines(path: Path, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Poll until ``path`` holds at least ``n`` complete request lines; return them parsed."""
    deadline = time.monotonic() + timeout
    while True:
        lines = request_lines(path)
        if len(lines) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert len(lines) >= n, f"expected {n} lines in {path}, got {len(lines)}"
    return [json.loads(x) for x in lines]


def settle_and_count(path: Path, expect: int, quiet: float = 0.4) -> list[dict[str, Any]]:
    """Wait for ``expect`` lines, then make sure no stray extra line follows."""
    events = wait_lines(path, expect)
    time.sleep(quiet)
    events = wait_lines(path, expect)
    assert len(events) == expect, events
    return events


async def await_lines(path: Path, n: int, timeout: float = 5.0) -> None:
    """Async poll: litellm's async logging worker needs the loop to run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(request_lines(path)) >= n:
            return
        await asyncio.sleep(0.01)


def reset_litellm_callbacks() -> None:
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm._async_input_callback.clear()
    # litellm initialises the helper that runs *function* callbacks (litellm_logging.customLogger)
    # only on the first call that sees callbacks, guarded by the process-global utils.callback_list
    # (utils.py:815-828, litellm_logging.py:3498). Emptying it makes every test start like a fresh
    # process; without it, function-style sync callbacks never fire after a CustomLogger-only test.
    litellm.utils.callback_list = []


@pytest.fixture(autouse=True)
def clean_litellm_callbacks() -> Iterator[None]:
    if litellm is not None:
        reset_litellm_callbacks()
    yield
    if litellm is not None:
        reset_litellm_callbacks()


@pytest.fixture
def capture() -> SLOCapture:
    return SLOCapture()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "not" / "yet" / "usage.jsonl"


def assert_matches_slo(event: dict[str, Any], slo: dict[str, Any]) -> None:
    assert event["v"] == 1 and event["event"] == "request"
    assert event["model"] == slo["model"]
    assert event["provider"] == slo["custom_llm_provider"]
    assert event["status"] == slo["status"]
    assert event["ts"] == pytest.approx(slo["endTime"], abs=1e-6)
    assert event["duration_s"] == pytest.approx(slo["endTime"] - slo["startTime"], abs=1e-6)
    assert event["prompt_tokens"] == slo["prompt_tokens"]
    assert event["completion_tokens"] == slo["completion_tokens"]
    assert event["total_tokens"] == slo["total_tokens"]
    # litellm says cache_hit false for streams and failures with no cache configured: only a hit is a hit
    assert event["cache_hit"] == (True if slo["cache_hit"] is True else None)


# ------------------------------------------------------------------------------------------
# Real litellm calls, CustomLogger style
# ------------------------------------------------------------------------------------------


@needs_litellm
def test_instance_is_a_litellm_custom_logger(tmp_path: Path) -> None:
    ul = UsageLogger(tmp_path / "u.jsonl")
    assert isinstance(ul, CustomLogger) and isinstance(ul, UsageLogger)
    assert type(ul).__name__ == "UsageLogger"
    # litellm's CustomLogger.__init__ ran (its redaction helpers read these flags)
    assert ul.turn_off_message_logging is False


@needs_litellm
def test_sync_success_line(log_path: Path, capture: SLOCapture) -> None:
    ul = capture.attach(UsageLogger(log_path))
    litellm.callbacks = [ul]
    resp = litellm.completion(
        model=MODEL, messages=messages(), mock_response=f"hi {SECRET_OUT}", metadata={"tenant_id": "acme"}
    )
    (event,) = settle_and_count(log_path, 1)
    slo = capture.wait(event["call_id"])
    assert_matches_slo(event, slo)
    assert event["model"] == MODEL and event["provider"] == "openai"
    assert event["tenant_id"] == "acme"
    assert event["status"] == "success" and event["error_type"] is None
    assert event["stream"] is False and event["ttft_s"] is None  # SLO stream is null, not false
    assert slo["stream"] is None
    assert event["prompt_tokens"] == resp.usage.prompt_tokens > 0
    assert event["completion_tokens"] == resp.usage.completion_tokens > 0
    assert event["total_tokens"] == resp.usage.total_tokens
    assert event["cached_tokens"] == event["cache_write_tokens"] == event["reasoning_tokens"] == 0
    assert event["cost_usd"] == slo["response_cost"] and event["cost_usd"] > 0
    assert event["cache_hit"] is None
    # file hygiene
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o700
    text = log_path.read_text()
    assert SECRET not in text and SECRET_OUT not in text and "say hi" not in text
    assert ul.errors == 0 and ul.lines_written == 1


@needs_litellm
def test_sync_rate_limit_failure(log_path: Path, capture: SLOCapture) -> None:
    ul = capture.attach(UsageLogger(log_path))
    litellm.callbacks = [ul]
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model=MODEL, messages=messages(), mock_response="litellm.RateLimitError")
    (event,) = settle_and_count(log_path, 1)
    slo = capture.wait(event["call_id"])
    assert_matches_slo(event, slo)
    assert slo["error_information"]["error_code"] == "429"
    assert event["status"] == "failure" and event["error_type"] == "rate_limit"
    assert event["prompt_tokens"] == event["completion_tokens"] == event["total_tokens"] == 0
    assert event["cost_usd"] == slo["response_cost"] == 0.0
    assert event["tenant_id"] is None and event["stream"] is False and event["ttft_s"] is None
    text = log_path.read_text()
    assert SECRET not in text and "mock rate limit" not in text  # no error_message


@needs_litellm
def test_sync_stream_one_line_with_ttft(log_path: Path, capture: SLOCapture) -> None:
    ul = capture.attach(UsageLogger(log_path))
    litellm.callbacks = [ul]
    chunks = list(
        litellm.completion(
            model=MODEL,
            messages=messages(),
            mock_response=f"hello there {SECRET_OUT}",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len(chunks) > 2
    (event,) = settle_and_count(log_path, 1)  # one line per call, not per chunk
    slo = capture.wait(event["call_id"])
    assert_matches_slo(event, slo)
    assert event["stream"] is True and slo["stream"] is True
    (start,) = stream_starts(log_path)  # written before the call, ended by the request's call_id
    assert start["call_id"] == event["call_id"] and start["model"] == MODEL and start["provider"] == "openai"
    assert start["ts"] <= event["ts"]
    assert event["ttft_s"] == pytest.approx(slo["completionStartTime"] - slo["startTime"], abs=1e-6)
    assert 0 <= event["ttft_s"] <= event["duration_s"]
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usage and event["prompt_tokens"] == usage[-1].prompt_tokens
    assert event["completion_tokens"] == usage[-1].completion_tokens
    # Exactly the SLO's cost; litellm's mock streams were seen (under load) to report 0.0 there
    # themselves, so only the mapping is asserted, not litellm's price.
    assert event["cost_usd"] == slo["response_cost"]
    assert SECRET_OUT not in log_path.read_text()


@needs_litellm
def test_async_success_and_failure(log_path: Path, capture: SLOCapture) -> None:
    ul = capture.attach(UsageLogger(log_path))
    litellm.callbacks = [ul]

    async def run() -> None:
        await litellm.acompletion(model=MODEL, messages=messages(), mock_response="hi")
        await await_lines(log_path, 1)
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model=MODEL, messages=messages(), mock_response="litellm.RateLimitError")
        await await_lines(log_path, 2)
        stream = await litellm.acompletion(
            model=MODEL, messages=messages(), mock_response="a b c", stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        async for _ in stream:
            pass
        await await_lines(log_path, 3)
        await asyncio.sleep(0.3)  # let any stray duplicate surface

    asyncio.run(run())
    ok, failed, streamed = settle_and_count(log_path, 3)
    assert ok["status"] == "success" and ok["error_type"] is None and ok["stream"] is False
    assert ok["cost_usd"] == capture.wait(ok["call_id"])["response_cost"] > 0
    assert_matches_slo(ok, capture.wait(ok["call_id"]))
    assert failed["status"] == "failure" and failed["error_type"] == "rate_limit"
    assert_matches_slo(failed, capture.wait(failed["call_id"]))
    assert streamed["stream"] is True and streamed["ttft_s"] is not None
    assert_matches_slo(streamed, capture.wait(streamed["call_id"]))
    assert len({ok["call_id"], failed["call_id"], streamed["call_id"]}) == 3


@needs_litellm
def test_tenant_from_tag_and_custom_key(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    litellm.callbacks = [UsageLogger(path)]
    litellm.completion(model=MODEL, messages=messages(), mock_response="x", metadata={"tags": ["a", "tenant:beta"]})
    (event,) = wait_lines(path, 1)
    assert event["tenant_id"] == "beta"

    reset_litellm_callbacks()
    path2 = tmp_path / "t2.jsonl"
    litellm.callbacks = [UsageLogger(path2, tenant_key="team")]
    metadata = {"team": 42, "tags": ["tenant:ignored"]}
    litellm.completion(model=MODEL, messages=messages(), mock_response="x", metadata=metadata)
    (event,) = wait_lines(path2, 1)
    assert event["tenant_id"] == "42"  # stringified, and metadata beats the tag


@needs_litellm
def test_unmapped_model_cost_is_null(log_path: Path, capture: SLOCapture) -> None:
    litellm.callbacks = [capture.attach(UsageLogger(log_path))]
    litellm.completion(model="openai/not-a-real-model-xyz", messages=messages(), mock_response="x")
    (event,) = wait_lines(log_path, 1)
    slo = capture.wait(event["call_id"])
    # what 1.81.10 does: 0.0 plus debug info, not None
    assert slo["response_cost"] == 0.0 and slo["response_cost_failure_debug_info"]
    assert event["cost_usd"] is None
    assert event["prompt_tokens"] == slo["prompt_tokens"] > 0


@needs_litellm
def test_cached_cache_write_and_reasoning_tokens(log_path: Path) -> None:
    usage = litellm.Usage(
        prompt_tokens=100,
        completion_tokens=50,
        total_tokens=150,
        prompt_tokens_details={"cached_tokens": 40},
        completion_tokens_details={"reasoning_tokens": 7},
        cache_creation_input_tokens=11,
    )
    mock = litellm.ModelResponse(
        model=MODEL,
        choices=[{"message": {"role": "assistant", "content": SECRET_OUT}, "finish_reason": "stop", "index": 0}],
        usage=usage,
    )
    litellm.callbacks = [UsageLogger(log_path)]
    litellm.completion(model=MODEL, messages=messages(), mock_response=mock)
    (event,) = wait_lines(log_path, 1)
    assert (event["prompt_tokens"], event["completion_tokens"], event["total_tokens"]) == (100, 50, 150)
    assert event["cached_tokens"] == 40
    assert event["cache_write_tokens"] == 11
    assert event["reasoning_tokens"] == 7
    assert SECRET_OUT not in log_path.read_text()


@needs_litellm
def test_rotation_rename_between_calls(log_path: Path) -> None:
    ul = UsageLogger(log_path)
    litellm.callbacks = [ul]
    litellm.completion(model=MODEL, messages=messages(), mock_response="one")
    (first,) = wait_lines(log_path, 1)
    rotated = log_path.with_name("usage.jsonl.1")
    log_path.rename(rotated)
    litellm.completion(model=MODEL, messages=messages(), mock_response="two")
    (second,) = wait_lines(log_path, 1)
    assert [e["call_id"] for e in wait_lines(rotated, 1)] == [first["call_id"]]
    assert second["call_id"] != first["call_id"]
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert ul.errors == 0


@needs_litellm
def test_unwritable_path_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "regular-file"
    blocker.write_text("")
    ul = UsageLogger(blocker / "usage.jsonl")  # parent is a regular file
    litellm.callbacks = [ul]
    with caplog.at_level("WARNING", logger="llm_log_exporter.callback"):
        resp = litellm.completion(model=MODEL, messages=messages(), mock_response="fine")
        assert resp.choices[0].message.content == "fine"
        with pytest.raises(litellm.RateLimitError):  # the caller still sees litellm's own error
            litellm.completion(model=MODEL, messages=messages(), mock_response="litellm.RateLimitError")
        deadline = time.monotonic() + 5

        def logged() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == "llm_log_exporter.callback"]

        # The error is counted before its warning is written, on litellm's callback thread: wait for both.
        while (ul.errors < 2 or not logged()) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # a second warning, if one were (wrongly) written, has time to arrive
    assert ul.errors == 2 and ul.lines_written == 0
    warnings = logged()
    assert len(warnings) == 1  # logged once per distinct error type
    assert SECRET not in caplog.text


# ------------------------------------------------------------------------------------------
# Function-style callbacks
# ------------------------------------------------------------------------------------------


@pytest.fixture
def default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "fn" / "usage.jsonl"
    monkeypatch.setenv(cb.PATH_ENV_VAR, str(path))
    monkeypatch.setattr(cb, "_default", None)
    yield path
    if cb._default is not None:
        cb._default.close()


def test_default_path_env_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cb.PATH_ENV_VAR, str(tmp_path / "env.jsonl"))
    assert UsageLogger().path == str(tmp_path / "env.jsonl")
    monkeypatch.delenv(cb.PATH_ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert UsageLogger().path == str(tmp_path / ".aider" / "usage.jsonl")
    assert UsageLogger("~/x.jsonl").path == str(tmp_path / "x.jsonl")


@needs_litellm
def test_function_style_sync(default_path: Path, capture: SLOCapture) -> None:
    capture.attach(cb.default_logger())
    litellm.success_callback = [cb.log_success, cb.async_log_success]
    litellm.failure_callback = [cb.log_failure, cb.async_log_failure]
    litellm.completion(model=MODEL, messages=messages(), mock_response="hi", metadata={"tenant_id": "acme"})
    wait_lines(default_path, 1)
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model=MODEL, messages=messages(), mock_response="litellm.RateLimitError")
    wait_lines(default_path, 2)
    # litellm 1.81.10 calls a plain success function once per chunk of a sync stream
    for _ in litellm.completion(
        model=MODEL, messages=messages(), mock_response="one two three four", stream=True,
        stream_options={"include_usage": True},
    ):  # fmt: skip
        pass
    ok, failed, streamed = settle_and_count(default_path, 3)
    assert ok["status"] == "success" and ok["tenant_id"] == "acme"
    assert ok["cost_usd"] == capture.wait(ok["call_id"])["response_cost"]
    assert_matches_slo(ok, capture.wait(ok["call_id"]))
    assert failed["error_type"] == "rate_limit"
    assert streamed["stream"] is True and streamed["ttft_s"] is not None
    assert_matches_slo(streamed, capture.wait(streamed["call_id"]))
    assert cb.default_logger().path == str(default_path)


@needs_litellm
def test_function_style_async(default_path: Path) -> None:
    litellm.success_callback = [cb.log_success, cb.async_log_success]
    litellm.failure_callback = [cb.log_failure, cb.async_log_failure]

    async def run() -> None:
        await litellm.acompletion(model=MODEL, messages=messages(), mock_response="hi")
        await await_lines(default_path, 1)
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model=MODEL, messages=messages(), mock_response="litellm.RateLimitError")
        await await_lines(default_path, 2)
        await asyncio.sleep(0.3)

    asyncio.run(run())
    # the failure reaches both log_failure and async_log_failure; it is written once
    ok, failed = settle_and_count(default_path, 2)
    assert ok["status"] == "success" and failed["status"] == "failure"
    assert failed["error_type"] == "rate_limit"


# ------------------------------------------------------------------------------------------
# Unit level: writer behaviour and event building without litellm
# ------------------------------------------------------------------------------------------


def synthetic_kwargs(call_id: str = "c-1", **slo_overrides: Any) -> dict[str, Any]:
    slo: dict[str, Any] = {
        "id": "chatcmpl-1", "call_type": "completion", "cache_hit": None, "stream": None,
        "status": "success", "custom_llm_provider": "openai", "startTime": 1000.0, "endTime": 1001.5,
        "completionStartTime": 1001.5, "model": MODEL, "response_cost": 1.35e-05,
        "prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30, "request_tags": [],
        "metadata": {"user_api_key_team_id": None, "usage_object": None},
        "messages": [{"role": "user", "content": SECRET}],
        "response": {"choices": [{"message": {"content": SECRET_OUT}}], "usage": None},
        "error_information": {"error_code": "", "error_class": "", "error_message": SECRET},
        "response_cost_failure_debug_info": None,
    }  # fmt: skip
    slo.update(slo_overrides)
    return {"litellm_call_id": call_id, "standard_logging_object": slo, "litellm_params": {"metadata": None}}


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in raw_lines(path)]


def test_build_event_from_synthetic_slo_tolerates_nones() -> None:
    event = cb.build_request_event(
        synthetic_kwargs(metadata=None, error_information=None, request_tags=None),
        None, None, None, status="success",
    )  # fmt: skip
    assert list(event) == KEYS
    assert event["call_id"] == "c-1" and event["ts"] == 1001.5 and event["duration_s"] == 1.5
    assert event["cached_tokens"] == 0 and event["tenant_id"] is None and event["stream"] is False


def test_build_event_team_id_fallback_and_failure_class() -> None:
    kwargs = synthetic_kwargs(
        status="failure",
        metadata={"user_api_key_team_id": "team-7"},
        error_information={"error_code": "500", "error_class": "APIConnectionError"},
    )
    event = cb.build_request_event(kwargs, None, None, None, status="failure")
    assert event["tenant_id"] == "team-7" and event["error_type"] == "connection"


def test_build_event_without_slo_uses_top_level_kwargs() -> None:
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    end = start + dt.timedelta(seconds=2)
    kwargs = {
        "litellm_call_id": "abc", "model": MODEL, "custom_llm_provider": "openai", "stream": False,
        "response_cost": None, "cache_hit": None, "litellm_params": {"metadata": {"tenant_id": 5}},
    }  # fmt: skip
    response = {"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": None}}
    event = cb.build_request_event(kwargs, response, start, end, status="success")
    assert event["ts"] == end.timestamp() and event["duration_s"] == 2.0
    assert (event["prompt_tokens"], event["completion_tokens"], event["total_tokens"]) == (3, 4, 7)
    assert event["cost_usd"] is None and event["tenant_id"] == "5"

    class Boom(Exception):
        status_code = 429

    failed = cb.build_request_event({"exception": Boom()}, Boom(), start, end, status="failure")
    assert failed["error_type"] == "rate_limit" and failed["call_id"] == ""


def test_stream_chunk_calls_are_skipped(tmp_path: Path) -> None:
    class ModelResponseStream:  # same name as litellm's chunk type
        pass

    ul = UsageLogger(tmp_path / "u.jsonl")
    kwargs = synthetic_kwargs()
    kwargs["stream"] = True
    ul.log_success_event(kwargs, ModelResponseStream(), None, None)
    ul.log_success_event({"stream": True, "litellm_call_id": "x"}, object(), None, None)
    assert not (tmp_path / "u.jsonl").exists()
    kwargs["complete_streaming_response"] = final = object()
    ul.log_success_event(kwargs, final, None, None)
    assert len(read_events(tmp_path / "u.jsonl")) == 1


def test_duplicate_event_written_once(tmp_path: Path) -> None:
    ul = UsageLogger(tmp_path / "u.jsonl")
    kwargs = synthetic_kwargs()
    ul.log_success_event(kwargs, None, None, None)
    ul.log_success_event(kwargs, None, None, None)
    ul.log_success_event(synthetic_kwargs("c-2"), None, None, None)
    assert [e["call_id"] for e in read_events(tmp_path / "u.jsonl")] == ["c-1", "c-2"]


def test_reopen_after_delete_and_close(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    ul = UsageLogger(path)
    ul.log_success_event(synthetic_kwargs("a"), None, None, None)
    path.unlink()
    ul.log_success_event(synthetic_kwargs("b"), None, None, None)
    ul.close()
    ul.log_success_event(synthetic_kwargs("c"), None, None, None)
    ul.close()
    assert [e["call_id"] for e in read_events(path)] == ["b", "c"]


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls = []

    def dribble(fd: int, data: Any) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    ul = UsageLogger(tmp_path / "u.jsonl")
    monkeypatch.setattr(os, "write", dribble)
    ul.log_success_event(synthetic_kwargs(), None, None, None)
    monkeypatch.undo()
    assert len(calls) > 10
    (event,) = read_events(tmp_path / "u.jsonl")
    assert event["call_id"] == "c-1" and ul.errors == 0


def test_errors_counted_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ul = UsageLogger(tmp_path / "u.jsonl")
    with caplog.at_level("WARNING", logger="llm_log_exporter.callback"):
        ul.log_success_event(None, None, None, None)  # AttributeError inside
        ul.log_failure_event(None, None, None, None)
        asyncio.run(ul.async_log_success_event(42, None, None, None))
    assert ul.errors == 3
    assert len(caplog.records) == 1
    ul.log_success_event(synthetic_kwargs(), None, None, None)  # still works afterwards
    assert ul.lines_written == 1


def test_concurrent_writers_produce_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    ul = UsageLogger(path)

    def work(t: int) -> None:
        for i in range(300):
            ul.log_success_event(synthetic_kwargs(f"{t}-{i}"), None, None, None)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [e["call_id"] for e in read_events(path)]
    assert len(ids) == len(set(ids)) == 2400 and ul.errors == 0


def test_copies_are_the_same_sink(tmp_path: Path) -> None:
    import copy

    ul = UsageLogger(tmp_path / "u.jsonl")
    assert copy.copy(ul) is ul and copy.deepcopy([ul])[0] is ul


def test_stdlib_encoder_matches_orjson() -> None:
    event = cb.build_request_event(synthetic_kwargs(model="modèle-ü"), None, None, None, status="success")
    line = encode._encode_stdlib(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b", " not in line
    assert json.loads(line) == json.loads(cb.encode_event(event)) == event


def test_non_finite_numbers_become_null() -> None:
    event = cb.build_request_event(
        synthetic_kwargs(response_cost=float("nan"), endTime=float("inf")), None, None, None, status="success"
    )
    assert event["cost_usd"] is None and event["duration_s"] is None
    assert isinstance(event["ts"], float)
    cb.encode_event(event)  # valid JSON, no NaN


def test_import_is_stdlib_only() -> None:
    code = (
        "import sys, llm_log_exporter.callback as c\n"
        "heavy = [m for m in ('litellm', 'prometheus_client', 'watchdog', 'click') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "u = c.UsageLogger('/tmp/x.jsonl')\n"
        "assert type(u) is c.UsageLogger and 'litellm' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------
# classify_error
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_class", "error_code", "expected"),
    [
        ("RateLimitError", "429", "rate_limit"),
        ("Timeout", "408", "timeout"),
        ("APITimeoutError", None, "timeout"),
        ("AuthenticationError", "401", "auth"),
        ("PermissionDeniedError", 403, "auth"),
        ("BadRequestError", "400", "bad_request"),
        ("UnprocessableEntityError", "422", "bad_request"),
        ("ContextWindowExceededError", "400", "context_window"),
        ("ContentPolicyViolationError", "400", "content_filter"),
        ("NotFoundError", "404", "not_found"),
        ("InternalServerError", "500", "server_error"),
        ("ServiceUnavailableError", "503", "server_error"),
        ("APIError", "500", "server_error"),
        ("APIError", None, "server_error"),
        ("APIError", "429", "rate_limit"),  # catch-all class: a specific code wins
        ("APIConnectionError", "500", "connection"),  # litellm gives it status 500
        ("BudgetExceededError", "", "budget_exceeded"),
        ("litellm.RateLimitError", None, "rate_limit"),
        ("openai.NotFoundError", None, "not_found"),
        ("rate_limit_error", None, "rate_limit"),  # Anthropic error.type
        ("overloaded_error", None, "server_error"),
        (None, "429", "rate_limit"),
        (None, 408, "timeout"),
        (None, "504", "timeout"),
        (None, "401", "auth"),
        (None, "403", "auth"),
        (None, "400", "bad_request"),
        (None, "422", "bad_request"),
        (None, "404", "not_found"),
        (None, "502", "server_error"),
        (None, " 599 ", "server_error"),
        (None, "context_length_exceeded", "context_window"),  # OpenAI string code
        ("", "", "other"),
        (None, None, "other"),
        ("SomethingElse", "418", "other"),
        ("SomethingElse", "503", "server_error"),
        ("MockException", "429", "rate_limit"),
        (None, True, "other"),
        (123, "oops", "other"),
    ],
)
def test_classify_error(error_class: Any, error_code: Any, expected: str) -> None:
    assert classify_error(error_class, error_code) == expected
    assert expected in ERROR_TYPES


def test_classify_error_covers_litellm_exceptions() -> None:
    if litellm is None:
        pytest.skip("litellm not installed")
    names = {
        "RateLimitError": "rate_limit", "Timeout": "timeout", "AuthenticationError": "auth",
        "PermissionDeniedError": "auth", "BadRequestError": "bad_request",
        "UnprocessableEntityError": "bad_request", "ContextWindowExceededError": "context_window",
        "ContentPolicyViolationError": "content_filter", "NotFoundError": "not_found",
        "InternalServerError": "server_error", "ServiceUnavailableError": "server_error",
        "APIError": "server_error", "APIConnectionError": "connection",
        "BudgetExceededError": "budget_exceeded", "BadGatewayError": "server_error",
        "UnsupportedParamsError": "bad_request",
    }  # fmt: skip
    for name, expected in names.items():
        assert hasattr(litellm.exceptions, name), name
        assert classify_error(name, None) == expected, name


@needs_litellm
def test_configured_metadata_keys_become_line_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l.jsonl"
    litellm.callbacks = [UsageLogger(path, labels="project,cost_center,missing")]
    long = "x" * 500
    litellm.completion(model=MODEL, messages=messages(), mock_response="x",
                       metadata={"project": "apollo", "cost_center": long, "secret_note": "not copied"})
    (event,) = wait_lines(path, 1)
    labels = event["labels"]
    assert labels["project"] == "apollo"
    assert labels["cost_center"] == "x" * 128  # values are bounded
    assert "missing" not in labels and "secret_note" not in labels  # only configured keys, only when set
    assert labels["request_model"] == MODEL and labels["response_model"].startswith(MODEL)

    reset_litellm_callbacks()
    monkeypatch.setenv("LLM_USAGE_LABELS", "project")  # the function-style and hook configuration
    path2 = tmp_path / "l2.jsonl"
    litellm.callbacks = [UsageLogger(path2)]
    litellm.completion(model=MODEL, messages=messages(), mock_response="x", metadata={"project": "gemini"})
    (event,) = wait_lines(path2, 1)
    assert event["labels"]["project"] == "gemini"


@needs_litellm
def test_repo_label_is_the_git_top_level_directory_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "webshop"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(repo / "src" / "deep")
    path = tmp_path / "r.jsonl"
    litellm.callbacks = [UsageLogger(path, labels="repo")]
    litellm.completion(model=MODEL, messages=messages(), mock_response="x")
    (event,) = wait_lines(path, 1)
    assert event["labels"]["repo"] == "webshop"  # the name only: no path, no remote, no branch
    assert str(tmp_path) not in path.read_text()

    monkeypatch.chdir(tmp_path)  # outside any repository: no repo label
    assert "repo" not in UsageLogger(tmp_path / "x.jsonl", labels="repo").static_labels
    monkeypatch.setenv("LLM_USAGE_LABELS", "off")
    monkeypatch.chdir(repo)
    assert UsageLogger(tmp_path / "y.jsonl").static_labels == {}
