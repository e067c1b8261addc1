"""--format auto on a file mixing every format: each line counted once, by the right parser."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llm_log_exporter.parsers import FORMATS, get_parser
from tests.helpers import FIXTURES, ExporterProcess, metrics_for_files, value

SOURCES = {
    "native": FIXTURES / "sample.jsonl",
    "litellm": FIXTURES / "litellm-1.81.10_slo.jsonl",
    "openai_batch": FIXTURES / "openai-batch_output.jsonl",
    "anthropic_batch": FIXTURES / "anthropic-batch_results.jsonl",
    "aider": FIXTURES / "aider-0.86.2_analytics.jsonl",
}
EXTRA = [FIXTURES / "litellm-1.109.1_slo.trimmed.jsonl", FIXTURES / "aider-0.86.2_usage.jsonl"]
PRICES = str(FIXTURES / "prices.json")
FAMILIES = ["llm_requests_total", "llm_tokens_total", "llm_cost_usd_total", "llm_cached_tokens_total",
            "llm_cache_write_tokens_total", "llm_reasoning_tokens_total", "llm_request_duration_seconds_count",
            "llm_time_to_first_token_seconds_count", "llm_exporter_cost_unknown_total"]


def all_lines() -> list[bytes]:
    return [line for path in [*SOURCES.values(), *EXTRA] for line in path.read_bytes().splitlines(keepends=True)]


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_every_sample_line_is_claimed_by_exactly_one_format(fmt: str) -> None:
    for line in SOURCES[fmt].read_text().splitlines():
        obj = json.loads(line)
        claimed = [name for name, module in FORMATS.items() if module.detect(obj)]
        assert claimed == [fmt], (claimed, line[:80])


def test_mixed_file_equals_the_sum_of_its_parts(tmp_path: Path) -> None:
    lines = all_lines()
    random.Random(8).shuffle(lines)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(lines))
    together = metrics_for_files([mixed], prices=PRICES)
    for path in [*SOURCES.values(), *EXTRA]:
        assert value(metrics_for_files([path], prices=PRICES), "llm_exporter_lines_total", result="invalid") == 0
    apart = metrics_for_files([*SOURCES.values(), *EXTRA], prices=PRICES)  # same lines, one file per format
    for family in FAMILIES:
        assert value(together, family) == pytest.approx(value(apart, family), rel=1e-12), family
    assert value(together, "llm_exporter_lines_total", result="invalid") == 0
    assert value(together, "llm_exporter_lines_total") == len(lines)
    assert value(together, "llm_requests_total") == 60 + 10 + 5 + 5 + 3 + 5 + 4


def test_each_format_alone_matches_its_share_of_the_mixed_file(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(all_lines()))
    together = metrics_for_files([mixed], prices=PRICES)
    per_format = {fmt: metrics_for_files([path], format=fmt, prices=PRICES) for fmt, path in SOURCES.items()}
    # a format forced on the other formats' lines rejects them instead of miscounting
    forced = metrics_for_files([mixed], format="openai_batch", prices=PRICES)
    assert value(forced, "llm_requests_total") == value(per_format["openai_batch"], "llm_requests_total")
    assert value(forced, "llm_exporter_lines_total", result="parsed") == 5
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}  # only the Anthropic batch has it
    for family in ("llm_requests_total", "llm_tokens_total", "llm_cached_tokens_total", "llm_cost_usd_total"):
        assert value(together, family, **sonnet) == value(per_format["anthropic_batch"], family, **sonnet)


def test_unknown_shape_is_counted_as_unknown_format() -> None:
    from llm_log_exporter.events import InvalidLine

    with pytest.raises(InvalidLine) as err:
        get_parser("auto")({"hello": "world"})
    assert err.value.reason == "unknown_format"


def test_real_daemon_reads_a_mixed_file_live(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(all_lines()))
    expected = value(metrics_for_files([mixed], prices=PRICES), "llm_requests_total")
    with ExporterProcess(["--file", str(mixed), "--prices", PRICES, "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        assert value(exp.scrape(), "llm_requests_total") == expected
        with mixed.open("ab") as f:
            f.write((FIXTURES / "anthropic-batch_results.jsonl").read_bytes())
        exp.wait_value("llm_requests_total", expected + 5)
