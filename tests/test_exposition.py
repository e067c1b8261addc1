"""Exact metric values from files read through the real tailer, parser and collector (in-process)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from tests.helpers import FIXTURES, metrics_for_files, parse_exposition, value

BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def expected_from(path: Path) -> dict:
    """An independent plain-Python reading of a native file, to compare the exporter against."""
    out: dict = defaultdict(float)
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        key = (ev["tenant_id"] or "", ev["provider"], ev["model"])
        out[("requests", *key, ev["status"])] += 1
        out[("input", *key)] += ev["prompt_tokens"]
        out[("output", *key)] += ev["completion_tokens"]
        out[("cached", *key)] += ev["cached_tokens"]
        out[("reasoning", *key)] += ev["reasoning_tokens"]
        if ev["cost_usd"] is not None:
            out[("cost", *key)] += ev["cost_usd"]
        out[("dur_count", *key)] += 1
        out[("dur_sum", *key)] += ev["duration_s"]
        for bound in BUCKETS:
            if ev["duration_s"] <= bound:
                out[("le", *key, bound)] += 1
    return out


def test_sample_file_exact_values() -> None:
    path = FIXTURES / "sample.jsonl"
    samples = metrics_for_files([path])
    want = expected_from(path)
    keys = {k[1:4] for k in want if k[0] == "input"}
    assert len(keys) > 10
    for tenant, provider, model in keys:
        labels = {"tenant_id": tenant, "provider": provider, "model": model}
        for status in ("success", "failure"):
            assert value(samples, "llm_requests_total", status=status, **labels) == want[
                ("requests", tenant, provider, model, status)]
        assert value(samples, "llm_tokens_total", type="input", **labels) == want[("input", tenant, provider, model)]
        assert value(samples, "llm_tokens_total", type="output", **labels) == want[("output", tenant, provider, model)]
        assert value(samples, "llm_cached_tokens_total", **labels) == want[("cached", tenant, provider, model)]
        assert value(samples, "llm_reasoning_tokens_total", **labels) == want[("reasoning", tenant, provider, model)]
        assert math.isclose(value(samples, "llm_cost_usd_total", **labels), want[("cost", tenant, provider, model)],
                            rel_tol=1e-12, abs_tol=1e-15)
        assert value(samples, "llm_request_duration_seconds_count", **labels) == want[
            ("dur_count", tenant, provider, model)]
        for bound in BUCKETS:
            le = str(float(bound))
            assert value(samples, "llm_request_duration_seconds_bucket", le=le, **labels) == want[
                ("le", tenant, provider, model, bound)], (labels, le)
    total_lines = len(path.read_text().splitlines())
    assert value(samples, "llm_exporter_lines_total", result="parsed") == total_lines
    assert value(samples, "llm_requests_total") == total_lines


def test_namespace_and_no_created_series(tmp_path: Path) -> None:
    samples = metrics_for_files([FIXTURES / "sample.jsonl"], namespace="aigateway")
    names = {name for name, _ in samples}
    assert "aigateway_requests_total" in names
    assert "aigateway_cost_usd_total" in names
    assert not any(name.startswith("llm_requests") for name in names)
    assert not any(name.endswith("_created") for name in names)
    assert "llm_exporter_build_info" in names


def test_ttft_histogram_only_for_streams(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(
        '{"v":1,"event":"request","model":"m","provider":"p","duration_s":2,"stream":true,"ttft_s":0.3}\n'
        '{"v":1,"event":"request","model":"m","provider":"p","duration_s":1,"stream":false,"ttft_s":0.2}\n'
    )
    samples = metrics_for_files([log])
    assert value(samples, "llm_time_to_first_token_seconds_count") == 1
    assert value(samples, "llm_time_to_first_token_seconds_sum") == 0.3
    assert value(samples, "llm_request_duration_seconds_count") == 2
    assert value(samples, "llm_request_duration_seconds_bucket", le="1.0") == 1
    assert value(samples, "llm_request_duration_seconds_bucket", le="+Inf") == 2


def test_unknown_cost_adds_nothing_and_missing_duration_not_observed(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(
        '{"v":1,"event":"request","model":"m","cost_usd":null,"prompt_tokens":5}\n'
        '{"v":1,"event":"request","model":"m","cost_usd":0.25}\n'
    )
    samples = metrics_for_files([log])
    assert value(samples, "llm_cost_usd_total", model="m") == 0.25
    assert value(samples, "llm_requests_total", model="m", status="success") == 2
    assert not any(name.startswith("llm_request_duration") for name, _ in samples)


def test_custom_buckets(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text('{"v":1,"event":"request","model":"m","duration_s":0.7}\n')
    samples = metrics_for_files([log], buckets=(0.5, 1.0))
    assert value(samples, "llm_request_duration_seconds_bucket", le="0.5") == 0
    assert value(samples, "llm_request_duration_seconds_bucket", le="1.0") == 1
    assert ("llm_request_duration_seconds_bucket", frozenset({("le", "0.1"), ("tenant_id", ""), ("provider", ""),
                                                            ("model", "m")})) not in samples


BAD_LINES = {
    "not_json": b'{"v":1,"event":"request","model":"m"',
    "not_json_garbage": b"hello world",
    "not_object": b"[1,2,3]",
    "tokens_as_string": b'{"v":1,"event":"request","model":"m","prompt_tokens":"5"}',
    "negative": b'{"v":1,"event":"request","model":"m","completion_tokens":-3}',
    "nan_cost": b'{"v":1,"event":"request","model":"m","cost_usd":NaN}',
    "inf_cost": b'{"v":1,"event":"request","model":"m","cost_usd":Infinity}',
    "huge_cost": b'{"v":1,"event":"request","model":"m","cost_usd":1e400}',
    "bool_tokens": b'{"v":1,"event":"request","model":"m","prompt_tokens":true}',
    "missing_model": b'{"v":1,"event":"request","prompt_tokens":5}',
    "invalid_utf8": b'{"v":1,"event":"request","model":"m\xff\xfe","prompt_tokens":5}',
    "oversized": b'{"v":1,"event":"request","model":"m","pad":"' + b"x" * 5000 + b'"}',
}


def test_every_bad_input_kind_is_counted_and_nothing_valid_lost(tmp_path: Path) -> None:
    good = b'{"v":1,"event":"request","model":"good","provider":"p","prompt_tokens":7,"cost_usd":0.5}'
    body = b"".join(good + b"\n" + bad + b"\n" for bad in BAD_LINES.values()) + good + b"\n"
    log = tmp_path / "bad.jsonl"
    log.write_bytes(body)
    samples = metrics_for_files([log], max_line_bytes=4096)
    assert value(samples, "llm_requests_total") == len(BAD_LINES) + 1
    assert value(samples, "llm_requests_total", model="good") == len(BAD_LINES) + 1
    assert value(samples, "llm_tokens_total", type="input") == 7 * (len(BAD_LINES) + 1)
    assert value(samples, "llm_cost_usd_total") == 0.5 * (len(BAD_LINES) + 1)
    assert value(samples, "llm_exporter_lines_total", file=str(log), result="invalid") == len(BAD_LINES)
    assert value(samples, "llm_exporter_invalid_lines_total", reason="oversized") == 1
    assert value(samples, "llm_exporter_invalid_lines_total", reason="not_json") == 6  # incl. NaN, 1e400, utf-8
    assert value(samples, "llm_exporter_invalid_lines_total", reason="missing_model") == 1
    assert value(samples, "llm_exporter_invalid_lines_total", reason="bad_field") == 3


def test_invalid_line_logged_with_file_and_line(tmp_path: Path, caplog) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_bytes(b'{"v":1,"model":"a"}\n{"v":1,"model":"b","prompt_tokens":"x"}\n')
    with caplog.at_level("WARNING", logger="llm_log_exporter"):
        metrics_for_files([log])
    assert f"{log}:2 (byte 20)" in caplog.text
    assert "bad_field" in caplog.text


def test_an_invalid_line_deep_in_a_large_read_is_logged_with_its_own_line_and_byte(tmp_path: Path, caplog) -> None:
    """One read of thousands of lines is applied in slices (the store's lock is let go between them): line
    numbers and byte offsets still count from the start of the file."""
    good = b'{"v":1,"model":"a","prompt_tokens":3}\n'
    bad_at = 1800  # 0-based line index, in the fourth slice of 512
    log = tmp_path / "big.jsonl"
    log.write_bytes(good * bad_at + b'{"v":1,"model":"b","prompt_tokens":"x"}\n' + good * 700)
    with caplog.at_level("WARNING", logger="llm_log_exporter"):
        samples = metrics_for_files([log])
    assert f"{log}:{bad_at + 1} (byte {len(good) * bad_at})" in caplog.text
    assert value(samples, "llm_requests_total") == bad_at + 700
    assert value(samples, "llm_exporter_lines_total", file=str(log), result="parsed") == bad_at + 700


def test_rejects_log_rate_limited(tmp_path: Path, caplog) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_bytes(b"nope\n" * 500)
    with caplog.at_level("WARNING", logger="llm_log_exporter"):
        samples = metrics_for_files([log])
    assert value(samples, "llm_exporter_lines_total", result="invalid") == 500
    assert len([r for r in caplog.records if "invalid line" in r.getMessage()]) == 1


def test_empty_and_crlf_lines(tmp_path: Path) -> None:
    log = tmp_path / "crlf.jsonl"
    log.write_bytes(b'{"v":1,"model":"m","prompt_tokens":1}\r\n\r\n\n{"v":1,"model":"m","prompt_tokens":2}\r\n')
    samples = metrics_for_files([log])
    assert value(samples, "llm_tokens_total", type="input") == 3
    assert value(samples, "llm_exporter_lines_total", result="skipped") == 2
    assert value(samples, "llm_exporter_lines_total", result="invalid") == 0


def test_openmetrics_and_text_agree(tmp_path: Path) -> None:
    from llm_log_exporter.daemon import Config, Exporter

    exporter = Exporter(Config(files=[str(FIXTURES / "sample.jsonl")], poll=True))
    exporter.tailer.poll_once()
    exporter.store.ready.set()
    text = generate_latest(exporter.registry).decode()
    om = generate_openmetrics(exporter.registry).decode()
    exporter.tailer.close()
    assert om.endswith("# EOF\n")
    assert "# TYPE llm_requests counter" in om
    assert value(parse_exposition(text), "llm_requests_total") == 60


def test_cardinality_fold(tmp_path: Path) -> None:
    log = tmp_path / "many.jsonl"
    log.write_text("".join(f'{{"v":1,"model":"m","tenant_id":"t{i}","prompt_tokens":1}}\n' for i in range(10)))
    samples = metrics_for_files([log], max_tenants=3)
    assert value(samples, "llm_tokens_total", tenant_id="__other__", type="input") == 7
    assert value(samples, "llm_exporter_label_overflow_total", label="tenant_id") == 7
    tenants = {dict(ls)["tenant_id"] for n, ls in samples if n == "llm_requests_total"}
    assert len(tenants) == 4


def test_label_values_sanitized(tmp_path: Path) -> None:
    log = tmp_path / "ctl.jsonl"
    log.write_text('{"v":1,"model":"m\\u0000x\\nz","tenant_id":"' + "t" * 300 + '"}\n')
    samples = metrics_for_files([log])
    [labels] = [dict(ls) for n, ls in samples if n == "llm_requests_total" and ("status", "success") in ls]
    assert labels["model"] == "mxz"
    assert labels["tenant_id"] == "t" * 128


def test_time_per_output_token_for_streams_with_two_or_more_output_tokens(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(
        # (2.3 - 0.3) / (41 - 1) = 0.05 s per token after the first
        '{"v":1,"event":"request","model":"m","duration_s":2.3,"stream":true,"ttft_s":0.3,"completion_tokens":41}\n'
        # one output token: no time per token
        '{"v":1,"event":"request","model":"m","duration_s":1.0,"stream":true,"ttft_s":0.2,"completion_tokens":1}\n'
        # not streamed: no time to first token, so none
        '{"v":1,"event":"request","model":"m","duration_s":4.0,"stream":false,"completion_tokens":100}\n'
        # (1.5 - 0.5) / (5 - 1) = 0.25
        '{"v":1,"event":"request","model":"m","duration_s":1.5,"stream":true,"ttft_s":0.5,"completion_tokens":5}\n'
    )
    samples = metrics_for_files([log])
    assert value(samples, "llm_time_per_output_token_seconds_count") == 2
    assert value(samples, "llm_time_per_output_token_seconds_sum") == pytest.approx(0.3)
    assert value(samples, "llm_time_per_output_token_seconds_bucket", le="0.05") == 1
    assert value(samples, "llm_time_per_output_token_seconds_bucket", le="0.2") == 1
    assert value(samples, "llm_time_per_output_token_seconds_bucket", le="0.3") == 2
    custom = metrics_for_files([log], tpot_buckets=(0.1,))
    assert value(custom, "llm_time_per_output_token_seconds_bucket", le="0.1") == 1
