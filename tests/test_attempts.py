"""Failed upstream attempts, one request per call, and the new line fields, on the exporter's side: ``attempt``
lines, LiteLLM payloads of one call (same trace id) settled into one request, ``served_model`` and
``tokens_estimated``, and model names of rejected calls held to --max-models."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llm_log_exporter.aggregate.calls import Calls, settle
from llm_log_exporter.aggregate.usage import Usage
from llm_log_exporter.events import Attempt, CallPart, InvalidLine, Request, StreamStart
from llm_log_exporter.parsers import native, parse_line
from tests.helpers import FIXTURES, event_line, metrics_for_files, value

PROXY_SLO = FIXTURES / "litellm-1.81.10_proxy_slo.jsonl"
PROXY_USAGE = FIXTURES / "litellm-1.81.10_proxy_usage.jsonl"


def request(**fields: Any) -> dict[str, Any]:
    base = {"v": 1, "event": "request", "ts": 100.0, "call_id": "c", "model": "m", "provider": "p", "tenant_id": "t",
            "status": "success", "error_type": None, "duration_s": 0.5, "ttft_s": None, "stream": False,
            "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cached_tokens": 0,
            "cache_write_tokens": 0, "reasoning_tokens": 0, "cost_usd": None, "cache_hit": None}
    return {**base, **fields}


# --- the native lines -------------------------------------------------------------------------


def test_served_model_and_tokens_estimated_parse_alike_on_both_paths() -> None:
    line = request(served_model="gpt-4o-mini", tokens_estimated=True)
    [fast] = native.parse(line)
    [slow] = native.parse({**line, "ts": 100})  # an int ts leaves the fast path
    assert fast == slow._replace(ts=100.0)
    assert (fast.served_model, fast.tokens_estimated) == ("gpt-4o-mini", True)
    [plain] = native.parse(request())
    assert (plain.served_model, plain.tokens_estimated) == (None, False)
    [nulls] = native.parse(request(served_model=None, tokens_estimated=None))
    assert (nulls.served_model, nulls.tokens_estimated) == (None, False)


@pytest.mark.parametrize("patch", [{"served_model": 7}, {"tokens_estimated": "yes"}, {"tokens_estimated": 1}])
def test_wrong_types_of_the_new_fields_reject_the_line(patch: dict[str, Any]) -> None:
    with pytest.raises(InvalidLine):
        native.parse(request(**patch))


def test_attempt_line() -> None:
    [ev] = native.parse({"v": 1, "event": "attempt", "ts": 5.0, "call_id": "c", "model": "chat", "provider": "openai",
                         "tenant_id": "acme", "error_type": "rate_limit", "stream": True, "served_model": "x"})
    assert ev == Attempt(5.0, "c", "acme", "openai", "chat", "rate_limit", True)
    [other] = native.parse({"v": 1, "event": "attempt", "error_type": "made-up"})
    assert other.error_type == "other"
    with pytest.raises(InvalidLine):
        native.parse({"v": 1, "event": "attempt", "error_type": 429})


def test_an_attempt_is_a_provider_error_and_a_retry_never_a_request() -> None:
    usage = Usage()
    usage.apply(StreamStart(1.0, "c", "acme", "openai", "chat"))
    usage.apply(Attempt(2.0, "c", "acme", "openai", "chat", "rate_limit", True))
    assert usage.tables["provider_errors"] == {("openai", "rate_limit"): [1]}
    assert usage.tables["retries"] == {("openai", "rate_limit"): [1]}
    assert usage.tables["rate_limits"] == {("acme",): [1]}
    assert usage.records == {}  # no request, no tokens
    assert usage.views()["active_streams"] == 0  # the next attempt writes its own stream_start


def test_estimated_tokens_count_in_both_families(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(event_line(**request(call_id="a", tokens_estimated=True)) + event_line(**request(call_id="b")))
    s = metrics_for_files([log])
    assert value(s, "llm_tokens_total", type="input") == 20
    assert value(s, "llm_exporter_estimated_tokens_total", model="m", type="input") == 10
    assert value(s, "llm_exporter_estimated_tokens_total", model="m", type="output") == 2


def test_rejected_model_names_are_held_to_max_models(tmp_path: Path) -> None:
    """A client sending a new model name on every call gets a rejection each time; the names are labels only
    up to --max-models, the rest fold into __other__ and the counts stay exact."""
    log = tmp_path / "u.jsonl"
    log.write_text("".join(event_line(**request(call_id=f"c{i}", model=f"made-up-{i}", provider="", status="failure",
                                                error_type="not_found", prompt_tokens=0, completion_tokens=0))
                           for i in range(50)))
    s = metrics_for_files([log], max_models=5)
    models = {dict(labels)["model"] for (name, labels), v in s.items() if name == "llm_requests_total" and v}
    assert len(models) == 6 and "__other__" in models  # five names, then __other__
    assert value(s, "llm_requests_total", status="failure") == 50
    assert value(s, "llm_exporter_label_overflow_total", label="model") == 45
    assert value(s, "llm_provider_errors_total", provider="", error_type="not_found") == 50


# --- LiteLLM payloads: one call, many payloads -------------------------------------------------


def part(key: str, ts: float, status: str = "failure", provider: str = "openai", error: str = "rate_limit",
         **extra: Any) -> CallPart:
    req = Request(ts=ts, call_id=key, model="chat", provider=provider, tenant_id="acme", status=status,
                  error_type=error if status == "failure" else None, prompt_tokens=0 if status == "failure" else 9,
                  **extra)
    return CallPart(ts, key, req)


def counts(usage: Usage) -> dict[str, Any]:
    rec = usage.records.get(("acme", "openai", "chat")) or usage.records.get(("acme", "", "chat"))
    return {"success": rec[0] if rec else 0, "failure": rec[1] if rec else 0,
            "retries": sum(r[0] for r in usage.tables["retries"].values()),
            "errors": sum(r[0] for r in usage.tables["provider_errors"].values())}


def test_a_failure_followed_by_its_calls_success_is_a_retried_attempt() -> None:
    usage = Usage(retry_window=60)
    usage.apply(part("t1", 100.0))
    assert counts(usage) == {"success": 0, "failure": 0, "retries": 0, "errors": 1}  # an error at once, no request
    usage.apply(part("t1", 103.0, "success"))
    assert counts(usage) == {"success": 1, "failure": 0, "retries": 1, "errors": 1}
    usage.apply(part("t1", 200.0, "success"))  # a later call that reuses the trace id (a session id): its own
    assert counts(usage)["success"] == 2 and counts(usage)["retries"] == 1


def test_a_fallback_payload_is_counted_under_the_model_first_asked_for() -> None:
    usage = Usage(retry_window=60)
    usage.apply(part("t8", 100.0))
    usage.apply(CallPart(101.0, "t8", part("t8", 101.0, "success").request._replace(model="backup")))
    assert counts(usage) == {"success": 1, "failure": 0, "retries": 1, "errors": 1}  # under "chat"
    assert ("acme", "openai", "backup") not in usage.records


def test_a_failure_nothing_follows_is_the_outcome_once_the_window_passes() -> None:
    usage = Usage(retry_window=60)
    usage.apply(part("t2", 100.0))
    usage.apply(part("t2", 101.0))  # the stream's second attempt
    usage.apply(part("other", 150.0, "success"))
    assert counts(usage)["failure"] == 0  # 101 + 60 not reached
    usage.apply(part("other2", 161.5, "success"))
    assert counts(usage) == {"success": 2, "failure": 1, "retries": 1, "errors": 2}


def test_a_failure_that_reached_no_provider_is_the_outcome_at_once() -> None:
    usage = Usage()
    usage.apply(part("t3", 100.0, provider="", error="auth"))
    assert counts(usage)["failure"] == 1 and usage.calls.held == {}


def test_the_daemon_settles_on_its_clock_and_replay_at_the_end() -> None:
    usage = Usage(retry_window=60)
    usage.apply(part("t4", 100.0))
    usage.settle_due(159.0)
    assert counts(usage)["failure"] == 0
    usage.settle_due(160.0)
    assert counts(usage)["failure"] == 1
    usage.apply(part("t5", 300.0))
    usage.settle_all()
    assert counts(usage)["failure"] == 2


def test_held_failures_survive_a_restart_through_the_state() -> None:
    usage = Usage(retry_window=60)
    usage.apply(part("t6", 100.0, stream=True, served_model="gpt-4o-mini"))
    restored = Usage(retry_window=60)
    restored.load(json.loads(json.dumps(usage.dump())))
    assert restored.calls.held == usage.calls.held
    restored.apply(part("t6", 102.0, "success"))
    assert counts(restored) == {"success": 1, "failure": 0, "retries": 1, "errors": 1}
    with pytest.raises((TypeError, ValueError)):
        Usage().load({**usage.dump(), "calls": [["t7", [1, 2, 3]]]})


def test_the_held_table_is_bounded() -> None:
    calls = Calls(window=60, max_held=2)
    settled = [calls.part(part(f"k{i}", 100.0 + i), 100.0 + i)[2] for i in range(4)]
    assert [len(s) for s in settled] == [0, 0, 1, 1] and len(calls.held) == 2


def test_report_settles_payload_parts_into_requests() -> None:
    items = [(100.0, 0, part("a", 100.0)), (101.0, 1, part("a", 101.0, "success")), (102.0, 2, part("b", 102.0))]
    out = [event for _, _, event in settle(items, window=60)]
    assert [(type(e).__name__, e.status) for e in out] == [("Request", "success"), ("Request", "failure")]


# --- a real proxy's lines and its own payloads (tests/fixtures/make_proxy_fixtures.py) ---------


def test_the_proxy_payload_and_the_callback_count_the_same_calls() -> None:
    from_usage = metrics_for_files([PROXY_USAGE])
    from_payload = metrics_for_files([PROXY_SLO], format="litellm")

    def requests(s: dict) -> dict:  # type: ignore[type-arg]
        out: Counter = Counter()
        for (name, labels), v in s.items():
            if name == "llm_requests_total" and v:
                out[tuple(dict(labels)[k] for k in ("model", "tenant_id", "status"))] += int(v)
        return dict(out)

    # calls the proxy rejected before routing (the wrong key, the model "nope") are model "unknown"
    expected = {("chat-default", "", "success"): 6, ("chat-default", "", "failure"): 5,
                ("chat-default", "acme", "success"): 1, ("chat-default", "t2", "success"): 1,
                ("chat-default", "t3", "success"): 1, ("unknown", "acme", "failure"): 1,  # the wrong key
                ("unknown", "", "failure"): 1}  # "nope"
    assert requests(from_usage) == expected
    # the payload of a call the proxy rejected for its key carries no tenant
    payload_requests = requests(from_payload)
    assert payload_requests.pop(("unknown", "", "failure")) == 2
    assert payload_requests == {k: v for k, v in expected.items() if k[0] != "unknown"}
    assert value(from_payload, "llm_requests_total") == 16
    for kind in ("input", "output"):
        assert value(from_payload, "llm_tokens_total", type=kind) == value(from_usage, "llm_tokens_total", type=kind)
    # p2 2, p3 1, p5 2, p6 1, p12 2 (one no LiteLLM hook reported), p13 1 (a timeout), p16 2
    assert value(from_usage, "llm_retries_total") == 11
    assert value(from_usage, "llm_retries_total") >= value(from_payload, "llm_retries_total")
    lines = [json.loads(line) for line in PROXY_USAGE.read_text().splitlines()]
    assert sum(line["event"] == "request" for line in lines) == 16


def test_payload_tenant_from_requester_metadata_and_both_tag_spellings() -> None:
    from llm_log_exporter.parsers import get_parser

    parse = get_parser("litellm")
    tenants = set()
    for line in PROXY_SLO.read_text().splitlines():
        for event in parse_line(parse, line.encode()):
            tenants.add(event.request.tenant_id)
    assert tenants == {"", "acme", "t2", "t3"}
