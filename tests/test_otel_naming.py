"""--naming otel: the OpenTelemetry GenAI names, labels and buckets; cost and gateway families keep ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import event_line, metrics_for_files, value

OTEL = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o",
        "tenant_id": "acme"}


def calls(path: Path) -> Path:
    path.write_text(
        event_line(ts=1.0, model="gpt-4o", provider="openai", tenant_id="acme", duration_s=2.3, stream=True,
                   ttft_s=0.3, prompt_tokens=100, completion_tokens=41, cost_usd=0.5)
        + event_line(ts=2.0, model="gpt-4o", provider="openai", tenant_id="acme", duration_s=0.7,
                     prompt_tokens=3000, completion_tokens=5, cost_usd=0.25)
        + event_line(ts=3.0, model="gpt-4o", provider="openai", tenant_id="acme", status="failure",
                     error_type="rate_limit", duration_s=0.1)
    )
    return path


def test_otel_naming_serves_the_gen_ai_families(tmp_path: Path) -> None:
    s = metrics_for_files([calls(tmp_path / "u.jsonl")], naming="otel")
    ok, failed = {**OTEL, "error_type": ""}, {**OTEL, "error_type": "rate_limit"}
    assert value(s, "gen_ai_client_operation_duration_seconds_count", **ok) == 2
    assert value(s, "gen_ai_client_operation_duration_seconds_sum", **ok) == pytest.approx(3.0)
    assert value(s, "gen_ai_client_operation_duration_seconds_count", **failed) == 1
    assert value(s, "gen_ai_server_time_to_first_token_seconds_sum", **ok) == pytest.approx(0.3)
    assert value(s, "gen_ai_server_time_per_output_token_seconds_sum", **ok) == pytest.approx(0.05)
    # token usage per call, the convention's buckets (powers of 4)
    assert value(s, "gen_ai_client_token_usage_sum", **ok, gen_ai_token_type="input") == 3100
    assert value(s, "gen_ai_client_token_usage_count", **ok, gen_ai_token_type="input") == 2
    assert value(s, "gen_ai_client_token_usage_bucket", **ok, gen_ai_token_type="input", le="1024.0") == 1
    assert value(s, "gen_ai_client_token_usage_bucket", **ok, gen_ai_token_type="input", le="4096.0") == 2
    assert value(s, "gen_ai_client_token_usage_bucket", **ok, gen_ai_token_type="output", le="16.0") == 1
    assert ("gen_ai_client_token_usage_count", frozenset({**failed, "gen_ai_token_type": "input"}.items())) \
        not in s  # a failure without usage has no token usage
    # replaced families are gone; cost, requests and the gateway view keep our names and labels
    names = {name for name, _ in s}
    assert not names & {"llm_request_duration_seconds_count", "llm_tokens_total",
                        "llm_time_to_first_token_seconds_count", "llm_time_per_output_token_seconds_count"}
    mine = {"tenant_id": "acme", "provider": "openai", "model": "gpt-4o"}
    assert value(s, "llm_cost_usd_total", **mine) == 0.75
    assert value(s, "llm_requests_total", **mine, status="failure") == 1
    assert value(s, "llm_provider_errors_total", provider="openai", error_type="rate_limit") == 1
    # the default naming has none of them
    assert not any(name.startswith("gen_ai_") for name, _ in metrics_for_files([tmp_path / "u.jsonl"]))


def test_otel_naming_takes_extra_labels(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(event_line(model="m", provider="p", duration_s=1.0, prompt_tokens=5, labels={"repo": "shop"}))
    s = metrics_for_files([log], naming="otel", extra_label=("repo",))
    assert value(s, "gen_ai_client_operation_duration_seconds_count", gen_ai_request_model="m", repo="shop") == 1
    assert value(s, "llm_cost_usd_total", repo="shop") == 0


def test_otel_exposition_passes_promtool_check_metrics(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from prometheus_client.exposition import generate_latest

    from llm_log_exporter.daemon import Config, Exporter

    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install the Debian package 'prometheus'"
    exporter = Exporter(Config(files=[str(calls(tmp_path / "u.jsonl"))], poll=True, naming="otel"))
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        text = generate_latest(exporter.registry).decode()
    finally:
        exporter.tailer.close()
    assert "gen_ai_client_token_usage_bucket" in text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr


def test_otel_records_survive_the_state_file() -> None:
    import json

    from llm_log_exporter.aggregate.usage import Usage
    from llm_log_exporter.events import Request

    usage = Usage(naming="otel")
    usage.apply(Request(model="m", provider="p", duration_s=1.5, prompt_tokens=10, completion_tokens=3))
    restored = Usage(naming="otel")
    restored.load(json.loads(json.dumps(usage.dump())))
    assert restored.copy_otel_records() == usage.copy_otel_records() != []
