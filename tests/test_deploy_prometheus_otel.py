"""The dashboard works with --naming otel too: every panel and variable query returns data from a real
Prometheus scraping an exporter that serves the OpenTelemetry GenAI names (the default naming is
covered by tests/test_deploy_prometheus.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess
from tests.prom import PrometheusServer
from tests.test_deploy_prometheus import _has_finite, dashboard_queries, initial, substitute, traffic

pytestmark = pytest.mark.slow

JOB = "llm-otel-dashboard"


def test_every_dashboard_panel_works_with_otel_naming(tmp_path: Path, prometheus: PrometheusServer) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[default]\nlimit_usd = 10\nperiod = "month"\n')
    log = tmp_path / "a.jsonl"
    log.write_text(initial("a"))
    with ExporterProcess(["--file", str(log), "--budgets", str(budgets), "--poll-interval", "0.2",
                          "--naming", "otel"]) as exp:
        exp.wait_ready()
        assert any(name == "gen_ai_client_operation_duration_seconds_count" for name, _ in exp.scrape())
        try:
            prometheus.scrape(JOB, [f"127.0.0.1:{exp.port}"])
            prometheus.wait_targets_up(1)
            for n in range(12):  # every family moves while Prometheus scrapes every second
                with open(log, "a") as f:
                    f.write(traffic("a", n))
                time.sleep(0.4)
            time.sleep(2.5)
            missing = []
            for title, expr in dashboard_queries():
                query = substitute(expr.replace("$job", JOB))
                result = prometheus.query(query)
                if not (result and _has_finite(result)):
                    missing.append((title, query))
            assert not missing, missing
            # and the panels that read a replaced family really read the OTel one here
            assert prometheus.query(f'gen_ai_client_token_usage_sum{{job="{JOB}"}}')
            assert not prometheus.query(f'llm_tokens_total{{job="{JOB}"}}')
        finally:
            prometheus.reload([])
