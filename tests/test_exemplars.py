"""Exemplars: the OpenMetrics exposition links the duration buckets and the cost to a recent call.

A real Prometheus (the session fixture, started with ``--enable-feature=exemplar-storage``) scrapes
the exporter with its own Accept header (OpenMetrics first) and gives the exemplars back through
``/api/v1/query_exemplars``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess, event_line, http_get
from tests.prom import PrometheusServer

pytestmark = pytest.mark.slow

JOB = "llm-exemplars"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_prometheus_stores_the_call_behind_a_latency_bucket_and_the_cost(
        tmp_path: Path, prometheus: PrometheusServer) -> None:
    log = tmp_path / "u.jsonl"
    now = time.time()
    log.write_text(
        event_line(ts=now - 2, call_id="call-fast", trace_id=TRACE, model="gpt-4o", provider="openai",
                   duration_s=0.7, cost_usd=0.5)
        + event_line(ts=now - 1, call_id="call-slow", model="gpt-4o", provider="openai", duration_s=40.0,
                     cost_usd=0.25)
    )
    with ExporterProcess(["--file", str(log), "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        code, text = http_get(exp.url + "/metrics", headers={"Accept": "text/plain"})
        assert code == 200 and "call_id" not in text  # the text format has no exemplars
        try:
            prometheus.scrape(JOB, [f"127.0.0.1:{exp.port}"])
            prometheus.wait_targets_up(1)
            selector = f'{{job="{JOB}"}}'
            deadline = time.monotonic() + 30
            found: dict[str, list] = {}
            while time.monotonic() < deadline:
                found = {
                    name: prometheus.api("query_exemplars", query=name + selector, start=now - 3600, end=time.time())
                    for name in ("llm_request_duration_seconds_bucket", "llm_cost_usd_total")}
                if all(found.values()):
                    break
                time.sleep(0.5)
            buckets = {series["seriesLabels"]["le"]: [e["labels"] for e in series["exemplars"]]
                       for series in found["llm_request_duration_seconds_bucket"]}
            assert buckets.get("1.0") == [{"call_id": "call-fast", "trace_id": TRACE}], buckets
            assert buckets.get("60.0") == [{"call_id": "call-slow"}], buckets
            (cost,) = found["llm_cost_usd_total"]
            latest = cost["exemplars"][-1]
            assert latest["labels"] == {"call_id": "call-slow"} and float(latest["value"]) == 0.25
            assert abs(float(latest["timestamp"]) - (now - 1)) < 0.01
        finally:
            prometheus.reload([])
