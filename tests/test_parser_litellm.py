"""LiteLLM StandardLoggingPayload: golden metric values from real payloads of litellm 1.81.10 and
1.109.1, and every trap of the format. Expected numbers are read off the fixture lines by hand
(see tests/fixtures/make_litellm_fixtures.py for what each line is)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_log_exporter.events import CallPart, Event, InvalidLine
from llm_log_exporter.parsers import get_parser, litellm
from llm_log_exporter.parsers.options import ParserOptions
from tests.helpers import FIXTURES, metrics_for_files, value

V181 = FIXTURES / "litellm-1.81.10_slo.jsonl"
V109 = FIXTURES / "litellm-1.109.1_slo.trimmed.jsonl"
PRICES = str(FIXTURES / "prices.json")


def slos(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def parse(obj: dict[str, Any], parser: Any = litellm.parse) -> list[Event]:
    """The parser's events with each payload's request unwrapped (a payload is a part of its call)."""
    return [e.request if type(e) is CallPart else e for e in parser(obj)]


def test_golden_litellm_1_81_10() -> None:
    s = metrics_for_files([V181], format="litellm", prices=PRICES)
    team1 = {"tenant_id": "team-1", "provider": "openai", "model": "gpt-4o-mini"}
    assert value(s, "llm_requests_total", **team1, status="success") == 3  # lines 1, 5 (stream), 10 (async)
    assert value(s, "llm_requests_total", **team1, status="failure") == 1  # line 4, the 500
    assert value(s, "llm_tokens_total", **team1, type="input") == 10 + 9 + 10
    assert value(s, "llm_tokens_total", **team1, type="output") == 20 + 3 + 20
    assert value(s, "llm_cost_usd_total", **team1) == pytest.approx(1.35e-05 + 3.15e-06 + 1.35e-05, abs=1e-15)
    assert value(s, "llm_request_duration_seconds_count", **team1) == 4
    assert value(s, "llm_time_to_first_token_seconds_count", **team1) == 1  # only the stream
    assert value(s, "llm_time_to_first_token_seconds_sum", **team1) == pytest.approx(0.12519097328186035)
    acme = {"tenant_id": "acme", "provider": "openai", "model": "gpt-4o-mini"}
    # line 2 (tag beats team), 8 (cache miss), 9 (cache hit: model "openai/gpt-4o-mini", provider null)
    assert value(s, "llm_requests_total", **acme, status="success") == 3
    assert value(s, "llm_tokens_total", **acme, type="input") == 30
    assert value(s, "llm_cost_usd_total", **acme) == pytest.approx(3 * 1.35e-05, abs=1e-15)
    assert value(s, "llm_requests_total", tenant_id="user-7", status="failure") == 1  # 429, end-user id
    claude = {"tenant_id": "team-2", "provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert value(s, "llm_tokens_total", **claude, type="input") == 1200
    assert value(s, "llm_tokens_total", **claude, type="output") == 50
    assert value(s, "llm_cached_tokens_total", **claude) == 800
    assert value(s, "llm_cache_write_tokens_total", **claude) == 300
    assert value(s, "llm_reasoning_tokens_total", **claude) == 20
    assert value(s, "llm_cost_usd_total", **claude) == pytest.approx(0.0024150000000000005, abs=1e-15)
    private = {"tenant_id": "team-2", "provider": "openai", "model": "my-private-model"}
    assert value(s, "llm_requests_total", **private) == 1
    assert value(s, "llm_cost_usd_total", **private) == 0  # unknown, not priced at zero...
    assert value(s, "llm_exporter_cost_unknown_total", model="my-private-model") == 1  # ...but counted
    assert value(s, "llm_requests_total") == 10
    assert value(s, "llm_requests_total", status="failure") == 2
    assert value(s, "llm_exporter_lines_total", result="parsed") == 10
    assert value(s, "llm_exporter_lines_total", result="invalid") == 0


def test_golden_litellm_1_109_1() -> None:
    s = metrics_for_files([V109], format="litellm", prices=PRICES)
    team1 = {"tenant_id": "team-1", "provider": "openai", "model": "gpt-4o-mini"}
    assert value(s, "llm_requests_total", **team1, status="success") == 2
    assert value(s, "llm_requests_total", **team1, status="failure") == 2  # 500 and 429
    assert value(s, "llm_tokens_total", **team1, type="input") == 19
    assert value(s, "llm_tokens_total", **team1, type="output") == 23
    assert value(s, "llm_cost_usd_total", **team1) == pytest.approx(1.35e-05 + 3.15e-06, abs=1e-15)
    assert value(s, "llm_time_to_first_token_seconds_sum", **team1) == pytest.approx(0.6744320392608643)
    assert value(s, "llm_request_duration_seconds_sum", **team1) == pytest.approx(
        0.15729808807373047 + 0.17815804481506348 + 0.004616975784301758 + 0.7067141532897949)
    # claude-3-5-haiku: response_cost 0.0 + response_cost_failure_debug_info = unknown; the table prices it
    haiku = {"tenant_id": "team-1", "provider": "anthropic", "model": "claude-3-5-haiku-20241022"}
    assert value(s, "llm_cost_usd_total", **haiku) == pytest.approx(10 * 8e-07 + 20 * 4e-06, abs=1e-15)
    assert ("llm_exporter_cost_unknown_total", frozenset({("model", "claude-3-5-haiku-20241022")})) not in s


def test_both_versions_map_through_auto_detection_too() -> None:
    assert metrics_for_files([V181, V109], prices=PRICES)[("llm_requests_total", frozenset(
        {("tenant_id", "team-1"), ("provider", "openai"), ("model", "gpt-4o-mini"), ("status", "failure")}))] == 3


def test_parser_agrees_with_the_callback_event() -> None:
    """The SLO path and the callback path must label and count a call identically."""
    from llm_log_exporter.callback import build_request_event

    for slo in slos(V181):
        [ev] = parse(slo)
        built = build_request_event({"standard_logging_object": slo}, None, None, None, status=slo["status"])
        assert (ev.prompt_tokens, ev.completion_tokens, ev.cost_usd, ev.duration_s, ev.ttft_s, ev.error_type) == (
            built["prompt_tokens"], built["completion_tokens"], built["cost_usd"], built["duration_s"],
            built["ttft_s"], built["error_type"])


# --- traps ---------------------------------------------------------------------------------


def test_stream_null_is_not_streaming_and_has_no_ttft() -> None:
    first = slos(V181)[0]
    assert first["stream"] is None and first["completionStartTime"] == first["endTime"]
    [ev] = parse(first)
    assert ev.stream is False and ev.ttft_s is None


def test_ttft_only_when_stream_is_true() -> None:
    stream = slos(V181)[4]
    [ev] = parse(stream)
    assert ev.stream is True
    assert ev.ttft_s == pytest.approx(stream["completionStartTime"] - stream["startTime"])
    [forced] = parse({**stream, "stream": None, "model_parameters": {}})
    assert forced.stream is False and forced.ttft_s is None


def test_empty_error_information_on_success_is_not_an_error() -> None:
    first = slos(V181)[0]
    assert first["error_information"]["error_class"] == ""
    [ev] = parse(first)
    assert ev.status == "success" and ev.error_type is None


def test_error_type_from_error_class_and_code() -> None:
    lines = slos(V181)
    assert parse(lines[2])[0].error_type == "rate_limit"  # RateLimitError / "429"
    assert parse(lines[3])[0].error_type == "server_error"  # InternalServerError / "500"
    by_code = {**lines[2], "error_information": {"error_class": "", "error_code": "401"}}
    assert parse(by_code)[0].error_type == "auth"


def test_zero_cost_with_debug_info_is_unknown_but_plain_zero_is_zero() -> None:
    unmapped = slos(V181)[5]
    assert unmapped["response_cost"] == 0.0 and unmapped["response_cost_failure_debug_info"]
    assert parse(unmapped)[0].cost_usd is None
    assert parse({**unmapped, "response_cost_failure_debug_info": None})[0].cost_usd == 0.0


def test_epoch_float_times() -> None:
    first = slos(V109)[0]
    [ev] = parse(first)
    assert ev.ts == first["endTime"] == 1795342584.603492
    assert ev.duration_s == pytest.approx(0.15729808807373047)


def test_cached_and_reasoning_tokens_from_usage_object_or_response() -> None:
    claude = slos(V181)[6]
    [ev] = parse(claude)
    assert (ev.cached_tokens, ev.cache_write_tokens, ev.reasoning_tokens) == (800, 300, 20)
    only_response = {**claude, "metadata": {**claude["metadata"], "usage_object": None}}
    [ev] = parse(only_response)
    assert (ev.cached_tokens, ev.cache_write_tokens, ev.reasoning_tokens) == (800, 300, 20)


@pytest.mark.parametrize(
    ("order", "line", "tenant"),
    [
        (("tag", "team_id"), 1, "acme"),
        (("team_id", "tag"), 1, "team-1"),
        (("team_id",), 7, ""),  # cache miss with a tag only
        (("end_user_id",), 2, "user-7"),
        (("end_user",), 2, "user-7"),
        (("team_id", "end_user"), 2, "user-7"),
    ],
)
def test_tenant_lookup_order_is_configurable(order: tuple[str, ...], line: int, tenant: str) -> None:
    parser = get_parser("litellm", ParserOptions(tenant_from=order))
    assert parse(slos(V181)[line], parser)[0].tenant_id == tenant


def test_tenant_from_flag_reaches_the_parser() -> None:
    s = metrics_for_files([V181], format="litellm", prices=PRICES, tenant_from=("team_id",))
    assert value(s, "llm_requests_total", tenant_id="team-1") == 5  # line 2 now counts for its team
    assert value(s, "llm_requests_total", tenant_id="") == 3  # the 429 and the two tag-only lines


def test_newer_fields_absent_or_present() -> None:
    new = slos(V109)[0]
    assert "session_id" in new and "cost_finalized" in new
    old = {k: v for k, v in new.items() if k not in ("session_id", "cost_finalized", "litellm_call_id")}
    assert parse(old)[0]._replace(call_id="") == parse(new)[0]._replace(call_id="")


@pytest.mark.parametrize(
    "patch",
    [
        {"prompt_tokens": "10"},
        {"prompt_tokens": -1},
        {"prompt_tokens": 1.5},
        {"completion_tokens": True},
        {"response_cost": "0.1"},
        {"response_cost": -1.0},
        {"startTime": "yesterday"},
        {"stream": "yes"},
        {"status": "ok"},
        {"metadata": []},
        {"request_tags": "tenant:acme"},
        {"custom_llm_provider": 7},
    ],
)
def test_wrong_types_reject_the_line(patch: dict[str, Any]) -> None:
    with pytest.raises(InvalidLine) as err:
        parse({**slos(V181)[0], **patch})
    assert err.value.reason == "bad_field"


def test_nested_usage_with_wrong_types_rejects_the_line() -> None:
    claude = slos(V181)[6]
    usage = {**claude["metadata"]["usage_object"], "prompt_tokens_details": {"cached_tokens": "800"}}
    with pytest.raises(InvalidLine):
        parse({**claude, "metadata": {**claude["metadata"], "usage_object": usage}})


def test_missing_model_is_rejected() -> None:
    with pytest.raises(InvalidLine) as err:
        parse({**slos(V181)[0], "model": ""})
    assert err.value.reason == "missing_model"


def test_bad_slo_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    lines = V181.read_text().splitlines()
    broken = json.loads(lines[0])
    broken["prompt_tokens"] = "ten"
    path = tmp_path / "slo.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(broken), lines[1]]) + "\n")
    s = metrics_for_files([path], prices=PRICES)
    assert value(s, "llm_requests_total") == 2
    assert value(s, "llm_exporter_invalid_lines_total", reason="bad_field") == 1


def test_tenant_from_env_var_in_the_real_daemon() -> None:
    from tests.helpers import ExporterProcess

    with ExporterProcess(["--file", str(V181), "--prices", PRICES],
                         env={"LLM_LOG_EXPORTER_TENANT_FROM": "team_id"}) as exp:
        exp.wait_ready()
        assert value(exp.scrape(), "llm_requests_total", tenant_id="team-1") == 5


def test_bad_tenant_source_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from llm_log_exporter.cli import main

    result = CliRunner().invoke(main, ["--file", "x", "--tenant-from", "team_id,planet"])
    assert result.exit_code == 2 and "unknown tenant source(s) planet" in result.output
