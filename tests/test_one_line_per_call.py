"""One request line per client call through a real ``litellm.Router`` in the application (the SDK path), the
proxy's duplicate failure reports, caches that were (not) consulted, and streams that ask for usage.

The upstream is tests/openai_stub.py on 127.0.0.1; its ``[[stub: 429, ok]]`` scripts decide each attempt.
The router has two identical deployments and no cooldowns, so LiteLLM retries at once (with one
deployment it backs off 0.5-2 s) and a 429 does not take the model group out for the next test.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network here; must precede import litellm

import litellm

from llm_log_exporter.callback import UsageLogger, request_stream_usage
from llm_log_exporter.writer import calls
from tests.helpers import metrics_for_files, value
from tests.openai_stub import COMPLETION_TOKENS, PROMPT_TOKENS, OpenAIStub
from tests.test_callback import read_events, reset_litellm_callbacks, synthetic_kwargs

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_litellm() -> Iterator[None]:
    reset_litellm_callbacks()
    completion, acompletion, cache = litellm.completion, litellm.acompletion, litellm.cache
    yield
    litellm.completion, litellm.acompletion, litellm.cache = completion, acompletion, cache
    reset_litellm_callbacks()


def router(stub: OpenAIStub, **options: Any) -> litellm.Router:
    deployment = {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key": "sk-upstream"}
    return litellm.Router(model_list=[{"model_name": "chat", "litellm_params": dict(deployment)} for _ in range(2)],
                          num_retries=2, disable_cooldowns=True, **options)


def wait_events(path: Path, requests: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every line once ``requests`` request lines are there (success lines come from a logging worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_events(path) if path.exists() else []
        if sum(e["event"] == "request" for e in events) >= requests:
            time.sleep(0.3)  # a stray extra line would show now
            return read_events(path)
        time.sleep(0.02)
    raise AssertionError(f"fewer than {requests} request lines in {path}")


async def acall(r: litellm.Router, text: str, stream: bool = False, **kwargs: Any) -> str:
    try:
        response = await r.acompletion(model="chat", messages=[{"role": "user", "content": text}], stream=stream,
                                       metadata={"tenant_id": "acme"}, **kwargs)
        if stream:
            async for _ in response:
                pass
        return "ok"
    except Exception as exc:
        return type(exc).__name__


def test_router_retries_are_attempt_lines_and_one_request_per_call(tmp_path: Path, stub: OpenAIStub) -> None:
    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    r = router(stub)
    script = [  # (message, stream, what the client gets, the lines of the call)
        ("a [[stub: ok]]", False, "ok", [("request", "success")]),
        ("b [[stub: 429, ok]]", False, "ok", [("attempt", "rate_limit"), ("request", "success")]),
        ("c [[stub: 429]]", False, "RateLimitError",
         [("attempt", "rate_limit"), ("attempt", "rate_limit"), ("request", "rate_limit")]),
        ("d [[stub: 500, 429, ok]]", True, "ok", [("attempt", "server_error"), ("attempt", "rate_limit"),
                                                   ("request", "success")]),
        ("e [[stub: 500]]", True, "InternalServerError",
         [("attempt", "server_error"), ("attempt", "server_error"), ("request", "server_error")]),
        ("f [[stub: 400]]", False, "BadRequestError", [("request", "bad_request")]),  # not retried
    ]

    async def main() -> list[str]:
        got = [await acall(r, text, stream, stream_options={"include_usage": True} if stream else None)
               for text, stream, _, _ in script]
        await asyncio.sleep(0.5)  # let the logging worker write the successes
        return got

    assert asyncio.run(main()) == [outcome for _, _, outcome, _ in script]
    events = wait_events(log, len(script))
    # every attempt and request of a call carries that call's tenant and model; lines follow call order
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == len(script)
    assert {(e["model"], e["tenant_id"], e["provider"]) for e in events if e["event"] != "stream_start"} == {
        ("chat", "acme", "openai")}
    for text, _, _, expected in script:
        answers = [a.outcome for a in stub.attempts if a.key == text]
        assert len(answers) == len(expected), (text, answers)
    kinds = Counter((e["event"], e.get("error_type") or e.get("status"))
                    for e in events if e["event"] != "stream_start")
    assert kinds == Counter(line for *_, lines in script for line in lines)
    # a failed stream says stream: true; each retried stream attempt ended its own stream_start
    failed_stream = next(e for e in requests if e["error_type"] == "server_error")
    assert failed_stream["stream"] is True and failed_stream["ttft_s"] is None
    starts = Counter(e["call_id"] for e in events if e["event"] == "stream_start")
    ended = Counter(e["call_id"] for e in events if e["event"] in ("attempt", "request"))
    assert all(ended[call_id] >= n for call_id, n in starts.items())
    s = metrics_for_files([log])
    assert value(s, "llm_requests_total", status="success") == 3
    assert value(s, "llm_requests_total", status="failure") == 3
    assert value(s, "llm_retries_total", error_type="rate_limit") == 4  # b 1, c 2, d 1
    assert value(s, "llm_retries_total", error_type="server_error") == 3  # d 1, e 2
    assert value(s, "llm_provider_errors_total", error_type="rate_limit") == 5  # and c's last
    assert value(s, "llm_provider_errors_total", error_type="server_error") == 4  # and e's last
    assert value(s, "llm_rate_limit_hits_total", tenant_id="acme") == 5
    assert value(s, "llm_active_streams") == 0


def test_sync_router_follows_the_same_rule(tmp_path: Path, stub: OpenAIStub) -> None:
    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    r = router(stub)
    r.completion(model="chat", messages=[{"role": "user", "content": "sync [[stub: 429, ok]]"}])
    with pytest.raises(litellm.RateLimitError):
        r.completion(model="chat", messages=[{"role": "user", "content": "sync [[stub: 429]]"}])
    events = [e for e in wait_events(log, 2) if e["event"] != "stream_start"]
    assert [(e["event"], e.get("status")) for e in events] == [
        ("attempt", None), ("request", "success"), ("attempt", None), ("attempt", None), ("request", "failure")]


def test_a_fallback_is_an_attempt_and_the_call_keeps_the_name_asked_for(tmp_path: Path, stub: OpenAIStub) -> None:
    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    deployment = {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key": "sk-upstream"}
    r = litellm.Router(model_list=[{"model_name": name, "litellm_params": dict(deployment)}
                                   for name in ("chat", "backup")],
                       num_retries=0, fallbacks=[{"chat": ["backup"]}], disable_cooldowns=True)

    async def main() -> list[str]:
        got = [await acall(r, f"fallback {stream} [[stub: 500, ok]]", stream,
                           stream_options={"include_usage": True} if stream else None) for stream in (False, True)]
        await asyncio.sleep(0.5)
        return got

    assert asyncio.run(main()) == ["ok", "ok"]
    events = wait_events(log, 2)
    assert [(e["event"], e["model"]) for e in events if e["event"] != "stream_start"] == [
        ("attempt", "chat"), ("request", "chat"), ("attempt", "chat"), ("request", "chat")]
    assert {e["model"] for e in events if e["event"] == "stream_start"} == {"chat"}
    s = metrics_for_files([log])
    assert value(s, "llm_requests_total", model="chat", status="success") == 2
    assert value(s, "llm_retries_total", error_type="server_error") == 2
    assert ("llm_requests_total", frozenset({("model", "backup")})) not in s


def test_router_failure_no_hook_reported_is_still_one_line(tmp_path: Path, stub: OpenAIStub) -> None:
    """A model group the router does not have fails before any attempt: the router call itself says so."""
    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    r = router(stub)
    assert asyncio.run(_nope(r)) == "BadRequestError"
    (event,) = wait_events(log, 1)
    # a name the router has no model group for is not a label: "unknown"
    assert (event["model"], event["provider"], event["status"], event["tenant_id"]) == (
        "unknown", "", "failure", "acme")
    assert event["error_type"] == "bad_request" and event["served_model"] is None


async def _nope(r: litellm.Router) -> str:
    try:
        await r.acompletion(model="nope", messages=[{"role": "user", "content": "x"}], metadata={"tenant_id": "acme"})
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def test_router_wrappers_are_installed_once_and_transparent() -> None:
    UsageLogger(os.devnull)
    UsageLogger(os.devnull)
    for name in ("async_function_with_fallbacks", "function_with_fallbacks", "make_call"):
        method = getattr(litellm.Router, name)
        assert method.__name__ == name and method.__wrapped__.__name__ == name
        assert not hasattr(method.__wrapped__, "__wrapped__")  # wrapped once
    assert calls.current() is None


def test_proxy_error_reported_by_both_failure_hooks_is_written_once(tmp_path: Path) -> None:
    """The proxy hands its own errors (bad key, unknown model) to the async and, in a thread, the sync failure
    hook; the payloads differ only in their end times."""

    class ProxyException(Exception):  # litellm.proxy._types.ProxyException's name, type and code
        type = "no_db_connection"
        code = "400"

    log = tmp_path / "usage.jsonl"
    ul = UsageLogger(log)
    error = {"error_code": "400", "error_class": "ProxyException"}
    first = synthetic_kwargs("proxy-1", status="failure", endTime=1001.5, custom_llm_provider=None,
                             error_information=error)
    first["exception"] = ProxyException()
    second = {**first, "standard_logging_object": {**first["standard_logging_object"], "endTime": 1001.504}}
    asyncio.run(ul.async_log_failure_event(first, None, None, None))
    ul.log_failure_event(second, None, None, None)
    asyncio.run(ul.async_post_call_failure_hook({"litellm_call_id": "proxy-1", "model": "chat"}, ProxyException(),
                                                None))
    (event,) = read_events(log)
    assert event["error_type"] == "auth" and event["provider"] == "" and event["served_model"] is None


def test_post_call_failure_hook_writes_what_no_hook_reported(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    ul = UsageLogger(log)
    request = {"litellm_call_id": "p-9", "model": "chat-default", "stream": True, "tags": ["tenant:globex"],
               "metadata": {"requester_metadata": {}}}
    asyncio.run(ul.async_post_call_failure_hook(request, litellm.BudgetExceededError(1.0, 0.5), None))
    (event,) = read_events(log)
    # rejected before routing: the name the client sent is not a label
    assert (event["call_id"], event["model"], event["tenant_id"], event["stream"]) == ("p-9", "unknown",
                                                                                       "globex", True)
    assert event["error_type"] == "budget_exceeded" and event["prompt_tokens"] == 0


def test_cache_hit_and_miss_only_where_a_cache_was_consulted(tmp_path: Path, stub: OpenAIStub) -> None:
    from litellm.caching.caching import Cache

    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    kwargs = {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key": "sk-upstream"}

    async def main() -> None:
        response = await litellm.acompletion(messages=[{"role": "user", "content": "no cache [[stub: ok]]"}],
                                             stream=True, **kwargs)
        async for _ in response:
            pass
        while not log.exists() or '"event":"request"' not in log.read_text():  # logged before a cache exists
            await asyncio.sleep(0.02)
        litellm.cache = Cache()
        for _ in range(2):
            await litellm.acompletion(messages=[{"role": "user", "content": "cached [[stub: ok]]"}], **kwargs)
            await asyncio.sleep(0.3)

    asyncio.run(main())
    events = [e for e in wait_events(log, 3) if e["event"] == "request"]
    # LiteLLM itself says cache_hit false for the stream although no cache exists: not a miss
    assert [e["cache_hit"] for e in events] == [None, False, True]
    assert len([a for a in stub.attempts if a.key == "cached [[stub: ok]]"]) == 1
    s = metrics_for_files([log])
    assert value(s, "llm_cache_hits_total") == 1 and value(s, "llm_cache_misses_total") == 1


def test_streams_ask_for_usage_once_asked_to(tmp_path: Path, stub: OpenAIStub) -> None:
    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    kwargs = {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key": "sk-upstream", "stream": True}

    def stream(text: str) -> None:
        for _ in litellm.completion(messages=[{"role": "user", "content": text}], **kwargs):
            pass

    stream("estimated [[stub: ok]]")
    assert request_stream_usage(litellm) is True
    assert request_stream_usage(litellm) is True  # idempotent: wrapped once
    stream("asked [[stub: ok]]")
    estimated, asked = [e for e in wait_events(log, 2) if e["event"] == "request"]
    assert estimated["tokens_estimated"] is True and 0 < estimated["prompt_tokens"] < PROMPT_TOKENS
    assert asked["tokens_estimated"] is False
    assert (asked["prompt_tokens"], asked["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    sent = {a.key.split()[0]: a.include_usage for a in stub.attempts if a.key.split()[0] in ("estimated", "asked")}
    assert sent == {"estimated": False, "asked": True}
    s = metrics_for_files([log])
    assert value(s, "llm_exporter_estimated_tokens_total", type="input") == estimated["prompt_tokens"]
    assert value(s, "llm_tokens_total", type="input") == estimated["prompt_tokens"] + PROMPT_TOKENS


def test_usage_is_not_asked_of_providers_that_do_not_take_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(litellm, "completion", lambda *args, **kwargs: seen.append(kwargs))
    request_stream_usage(litellm)
    litellm.completion(model="anthropic/claude-3-5-haiku-20241022", messages=[], stream=True)
    litellm.completion(model="openai/gpt-4o-mini", messages=[], stream=True, stream_options={"include_usage": False})
    litellm.completion(model="openai/gpt-4o-mini", messages=[])
    litellm.completion(model="openai/gpt-4o-mini", messages=[], stream=True)
    assert [kwargs.get("stream_options") for kwargs in seen] == [None, {"include_usage": False}, None,
                                                               {"include_usage": True}]
    monkeypatch.setenv("LLM_USAGE_INCLUDE_USAGE", "off")
    monkeypatch.setattr(litellm, "completion", lambda *args, **kwargs: seen.append(kwargs))
    assert request_stream_usage(litellm) is False
    litellm.completion(model="openai/gpt-4o-mini", messages=[], stream=True)
    assert seen[-1].get("stream_options") is None


def test_lines_match_the_json_schema(tmp_path: Path, stub: OpenAIStub) -> None:
    import jsonschema

    from llm_log_exporter.schema import litellm as mapping

    schema = json.loads((Path(mapping.__file__).parent / "event-v1.schema.json").read_text())
    log = tmp_path / "usage.jsonl"
    litellm.callbacks = [UsageLogger(log)]
    r = router(stub)
    asyncio.run(acall(r, "schema [[stub: 429, ok]]", stream=True))
    events = wait_events(log, 1)
    assert {e["event"] for e in events} == {"attempt", "request", "stream_start"}
    for event in events:
        jsonschema.validate(event, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**events[-1], "event": "request", "tokens_estimated": "yes"}, schema)
