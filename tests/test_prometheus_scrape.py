"""A real Prometheus scrapes the real daemon; the design's example queries return the right data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess
from tests.prom import PrometheusServer

pytestmark = pytest.mark.slow


def test_prometheus_scrapes_and_answers_the_design_queries(tmp_path: Path, prometheus: PrometheusServer) -> None:
    log = tmp_path / "usage.jsonl"
    lines = [
        {"v": 1, "event": "request", "model": "gpt-4o", "provider": "openai", "tenant_id": "acme",
         "duration_s": 0.3, "prompt_tokens": 100, "completion_tokens": 7, "cost_usd": 0.25, "cache_hit": True},
        {"v": 1, "event": "request", "model": "gpt-4o", "provider": "openai", "tenant_id": "acme",
         "status": "failure", "error_type": "rate_limit", "duration_s": 0.1, "cache_hit": False},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with ExporterProcess(["--file", str(log), "--namespace", "aigateway"]) as exp:
        exp.wait_ready()
        prometheus.scrape("llm", [f"127.0.0.1:{exp.port}"])
        prometheus.wait_targets_up(1)
        result = prometheus.wait_query('aigateway_requests_total{status="success"}')
        assert float(result[0]["value"][1]) == 1
        assert prometheus.scalar("sum(aigateway_cost_usd_total)") == 0.25
        assert prometheus.scalar('sum(aigateway_provider_errors_total{error_type="rate_limit"})') == 1
        assert prometheus.scalar("sum(aigateway_cache_hits_total)") == 1
        assert prometheus.scalar("sum(aigateway_cache_misses_total)") == 1
        assert prometheus.scalar('aigateway_tokens_total{type="input"}') == 100
