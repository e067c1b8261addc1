"""OpenAI Batch output/error lines and Anthropic Message Batches results: golden values and traps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_log_exporter.events import InvalidLine
from llm_log_exporter.parsers import anthropic_batch, openai_batch
from tests.helpers import FIXTURES, metrics_for_files, value

OPENAI = FIXTURES / "openai-batch_output.jsonl"
ANTHROPIC = FIXTURES / "anthropic-batch_results.jsonl"
PRICES = str(FIXTURES / "prices.json")


def lines(path) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_golden_openai_batch() -> None:
    s = metrics_for_files([OPENAI], format="openai_batch", prices=PRICES)
    mini = {"tenant_id": "", "provider": "openai", "model": "gpt-4o-mini-2024-07-18"}
    assert value(s, "llm_tokens_total", **mini, type="input") == 2048
    assert value(s, "llm_tokens_total", **mini, type="output") == 300
    assert value(s, "llm_cached_tokens_total", **mini) == 1024
    assert value(s, "llm_reasoning_tokens_total", **mini) == 128
    # batch rates (input 7.5e-08, output 3e-07); the table has no batch cache-read rate, so the
    # standard one (7.5e-08); reasoning at the output rate (no reasoning rate in the table)
    assert value(s, "llm_cost_usd_total", **mini) == pytest.approx(1024 * 7.5e-08 + 1024 * 7.5e-08 + 300 * 3e-07,
                                                                    abs=1e-15)
    assert value(s, "llm_tokens_total", model="gpt-3.5-turbo-0125", type="input") == 22
    assert value(s, "llm_tokens_total", model="text-embedding-3-small", type="input") == 8
    assert value(s, "llm_tokens_total", model="text-embedding-3-small", type="output") == 0
    # neither is in the price table: counted, not priced
    assert value(s, "llm_exporter_cost_unknown_total", model="gpt-3.5-turbo-0125") == 1
    assert value(s, "llm_exporter_cost_unknown_total", model="text-embedding-3-small") == 1
    assert value(s, "llm_requests_total", status="success") == 3
    assert value(s, "llm_requests_total", status="failure") == 2  # the 400 and the expired request
    # neither failure names its model (an error body has none; a null response has nothing)
    assert value(s, "llm_requests_total", model="", status="failure") == 2
    assert not any(name.startswith("llm_request_duration") for name, _ in s)  # batch lines carry no latency
    assert value(s, "llm_exporter_lines_total", result="parsed") == 5


def test_openai_batch_failures_are_classified() -> None:
    rows = lines(OPENAI)
    [too_long] = openai_batch.parse(rows[3])
    assert (too_long.status, too_long.error_type) == ("failure", "context_window")
    [expired] = openai_batch.parse(rows[4])
    assert (expired.status, expired.error_type, expired.model) == ("failure", "timeout", "")
    assert openai_batch.parse({**rows[4], "error": {"code": "3", "message": "boom"}})[0].error_type == "other"
    server = {**rows[3], "response": {"status_code": 500, "body": {"error": {"message": "x"}}}}
    assert openai_batch.parse(server)[0].error_type == "server_error"


def test_openai_batch_time_from_created() -> None:
    assert openai_batch.parse(lines(OPENAI)[0])[0].ts == 1711652795.0


def test_openai_responses_api_usage_spelling() -> None:
    body = {"id": "resp_1", "object": "response", "created_at": 1711652900, "model": "gpt-4o-mini",
            "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 9,
                      "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 59}}
    [ev] = openai_batch.parse({"id": "b", "custom_id": "c", "response": {"status_code": 200, "body": body},
                               "error": None})
    assert (ev.prompt_tokens, ev.completion_tokens, ev.cached_tokens, ev.reasoning_tokens) == (50, 9, 10, 4)


@pytest.mark.parametrize(
    "response",
    [
        {"status_code": "200", "body": {}},
        {"status_code": 200, "body": {"model": "m", "usage": {"prompt_tokens": "22"}}},
        {"status_code": 200, "body": {"model": "m"}},
        {"status_code": 200, "body": {"model": "m", "usage": {"prompt_tokens": 1, "prompt_tokens_details":
                                                              {"cached_tokens": 5}}}},
        {"status_code": 200, "body": {"usage": {"prompt_tokens": 1}}},
    ],
)
def test_openai_batch_bad_lines(response: dict[str, Any]) -> None:
    with pytest.raises(InvalidLine):
        openai_batch.parse({"id": "b", "custom_id": "c", "response": response, "error": None})


def test_golden_anthropic_batch() -> None:
    s = metrics_for_files([ANTHROPIC], format="anthropic_batch", prices=PRICES)
    sonnet = {"tenant_id": "", "provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}
    # Anthropic input_tokens exclude cache tokens: input = input + cache_creation + cache_read
    assert value(s, "llm_tokens_total", **sonnet, type="input") == 12 + (100 + 2000 + 5000)
    assert value(s, "llm_tokens_total", **sonnet, type="output") == 3 + 40
    assert value(s, "llm_cached_tokens_total", **sonnet) == 5000
    assert value(s, "llm_cache_write_tokens_total", **sonnet) == 2000
    # no *_batches rates for this model in the table: standard rates
    want = (12 * 3e-06 + 3 * 1.5e-05) + (100 * 3e-06 + 5000 * 3e-07 + 2000 * 3.75e-06 + 40 * 1.5e-05)
    assert value(s, "llm_cost_usd_total", **sonnet) == pytest.approx(want, abs=1e-15)
    assert value(s, "llm_requests_total", **sonnet, status="success") == 2
    assert value(s, "llm_requests_total", status="failure") == 3  # errored, canceled, expired


def test_anthropic_normalization_matches_litellm() -> None:
    """litellm's own Anthropic transformation gives the same prompt tokens (input + both cache kinds)."""
    litellm = pytest.importorskip("litellm")
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    usage = lines(ANTHROPIC)[1]["result"]["message"]["usage"]
    converted = AnthropicConfig().calculate_usage(usage_object=usage, reasoning_content=None)
    [ev] = anthropic_batch.parse(lines(ANTHROPIC)[1])
    assert ev.prompt_tokens == converted.prompt_tokens
    assert ev.cached_tokens == converted.prompt_tokens_details.cached_tokens
    assert litellm is not None


def test_anthropic_failures() -> None:
    rows = lines(ANTHROPIC)
    assert [anthropic_batch.parse(r)[0].error_type for r in rows[2:]] == ["bad_request", "other", "timeout"]
    with pytest.raises(InvalidLine):
        anthropic_batch.parse({"custom_id": "x", "result": {"type": "exploded"}})
    with pytest.raises(InvalidLine):
        anthropic_batch.parse({"custom_id": "x", "result": {"type": "succeeded", "message": {"model": "m"}}})
