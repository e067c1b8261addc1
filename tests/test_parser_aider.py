"""aider --analytics-log: golden values from a real aider 0.86.2 run, and the format's traps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_log_exporter.events import InvalidLine
from llm_log_exporter.parsers import aider
from tests.helpers import FIXTURES, metrics_for_files, value

ANALYTICS = FIXTURES / "aider-0.86.2_analytics.jsonl"
USAGE = FIXTURES / "aider-0.86.2_usage.jsonl"
PRICES = str(FIXTURES / "prices.json")


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in ANALYTICS.read_text().splitlines()]


def message_sends() -> list[dict[str, Any]]:
    return [row for row in rows() if row["event"] == "message_send"]


def test_golden_aider_analytics() -> None:
    s = metrics_for_files([ANALYTICS], format="aider", prices=PRICES)
    mini = {"tenant_id": "", "provider": "openai", "model": "gpt-4o-mini"}
    assert value(s, "llm_requests_total", **mini, status="success") == 2
    assert value(s, "llm_tokens_total", **mini, type="input") == 674 + 321  # streamed (estimated) + usage
    assert value(s, "llm_tokens_total", **mini, type="output") == 6 + 12
    assert value(s, "llm_cost_usd_total", **mini) == pytest.approx(0.0001047 + 5.535e-05, abs=1e-15)
    # "openai/REDACTED" with cost 0 next to real tokens: aider had no price, so the cost is unknown
    redacted = {"tenant_id": "", "provider": "openai", "model": "REDACTED"}
    assert value(s, "llm_requests_total", **redacted, status="success") == 1
    assert value(s, "llm_cost_usd_total", **redacted) == 0
    assert value(s, "llm_exporter_cost_unknown_total", model="REDACTED") == 1
    assert value(s, "llm_requests_total", status="failure") == 0  # aider does not log litellm API errors
    assert not any(name.startswith("llm_request_duration") for name, _ in s)  # no latency in analytics
    assert value(s, "llm_exporter_lines_total", result="parsed") == 3
    assert value(s, "llm_exporter_lines_total", result="skipped") == len(rows()) - 3
    assert value(s, "llm_exporter_lines_total", result="invalid") == 0


def test_same_run_through_the_hook_agrees_on_successful_requests() -> None:
    analytics = metrics_for_files([ANALYTICS], prices=PRICES)
    hook = metrics_for_files([USAGE], prices=PRICES)
    assert value(analytics, "llm_requests_total", status="success") == value(
        hook, "llm_requests_total", status="success") == 3
    assert value(hook, "llm_requests_total", status="failure") == 1  # the HTTP 400 only the hook sees
    assert value(hook, "llm_request_duration_seconds_count") == 4  # the hook has latency...
    assert value(hook, "llm_time_to_first_token_seconds_count") == 1  # ...and TTFT of the streamed call


def test_total_cost_is_never_added() -> None:
    line = {**message_sends()[1]}
    line["properties"] = {**line["properties"], "total_cost": 99.0}
    assert aider.parse(line)[0].cost_usd == 5.535e-05


def test_string_none_values() -> None:
    props = {**message_sends()[0]["properties"], "cost": "None", "completion_tokens": "None",
             "editor_model": "None"}
    [ev] = aider.parse({**message_sends()[0], "properties": props})
    assert (ev.cost_usd, ev.completion_tokens, ev.prompt_tokens) == (None, 0, 674)
    no_model = {**message_sends()[0]["properties"], "main_model": "None"}
    [ev] = aider.parse({**message_sends()[0], "properties": no_model})
    assert (ev.model, ev.provider, ev.prompt_tokens) == ("", "", 674)  # tokens kept, model unknown


def test_redacted_model_keeps_its_provider() -> None:
    [ev] = aider.parse(message_sends()[2])
    assert (ev.provider, ev.model) == ("openai", "REDACTED")


def test_message_send_exception_counts_a_failure() -> None:
    line = {"event": "message_send_exception", "properties": {"exception": "litellm.RateLimitError: slow down"},
            "user_id": "u", "time": 1795342939}
    [ev] = aider.parse(line)
    assert (ev.status, ev.error_type, ev.ts, ev.duration_s) == ("failure", "rate_limit", 1795342939.0, None)
    weird = {**line, "properties": {"exception": "KeyError('x')"}}
    assert aider.parse(weird)[0].error_type == "other"


def test_other_events_are_skipped() -> None:
    assert aider.parse(rows()[0]) == []  # launched
    assert aider.parse({"event": "command_add", "properties": {}, "user_id": "u", "time": 1}) == []


@pytest.mark.parametrize(
    "props",
    [{"prompt_tokens": "12"}, {"prompt_tokens": -1}, {"cost": "free"}, {"cost": -0.5}, {"main_model": 7}],
)
def test_bad_values_reject_the_line(props: dict[str, Any]) -> None:
    line = message_sends()[1]
    with pytest.raises(InvalidLine):
        aider.parse({**line, "properties": {**line["properties"], **props}})
    with pytest.raises(InvalidLine):
        aider.parse({**line, "time": "noon"})
