"""Both formats a scrape can negotiate carry the same samples, read back by Prometheus' own tools.

The real daemon, holding every family with data and hostile label values, is scraped the way Prometheus
scrapes (its own Accept header, gzip: OpenMetrics) and as plain text 0.0.4. Both bodies are parsed back
with prometheus-client's OpenMetrics and text parsers and must hold the same samples; ``promtool check
metrics`` lints the text body (promtool 2.42 reads only the text format: it takes an OpenMetrics body for
text and misses the ``_total`` of counter families); a real Prometheus then scrapes the daemon, negotiates
OpenMetrics, and stores exactly the samples of the OpenMetrics body, hostile label values included.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from llm_log_exporter.aggregate.labels import sanitize
from tests.helpers import ExporterProcess, request_line
from tests.history import BUDGETS, HISTORY_FILES
from tests.prom import PrometheusServer

pytestmark = pytest.mark.slow

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
HOSTILE = ['say "hi"', "back\\slash", "new\nline", "ünïcödé ✓", "a,b=c}{", "\\n", "# EOF", "x} 1\ny"]
SHOWN = {sanitize(tenant, 128) for tenant in HOSTILE}  # as the label guard admits them (no control characters)
# Values that move between two scrapes of the same state: the process' own figures and the HTTP counters.
_MOVING = ("process_", "llm_exporter_http_connections")


def _log(tmp_path: Path) -> Path:
    """The gateway history fixture (every usage and gateway family, an invalid line) plus hostile tenants."""
    log = tmp_path / "usage.jsonl"
    shutil.copyfile(HISTORY_FILES[0], log)
    with open(log, "ab") as f:
        for i, tenant in enumerate(HOSTILE):
            f.write(request_line(model=f"m-{i}", tokens=i + 1, tenant_id=tenant, duration_s=0.3, ttft_s=0.1,
                                 stream=True, cost_usd=0.5) + b"\n")
    return log


def _scrape(url: str, accept: str, gzip_ok: bool) -> tuple[dict[str, str], str]:
    headers = {"Accept": accept, **({"Accept-Encoding": "gzip"} if gzip_ok else {})}
    with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=headers), timeout=10) as reply:
        body = reply.read()
        info = {k.lower(): v for k, v in reply.headers.items()}
    if info.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return info, body.decode()


def _samples(families) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples
            if not s.name.startswith(_MOVING)}


def test_text_and_openmetrics_carry_the_same_samples(tmp_path: Path) -> None:
    with ExporterProcess(["--file", str(_log(tmp_path)), "--budgets", str(BUDGETS)]) as exp:
        exp.wait_ready()
        om_headers, om = _scrape(exp.url, PROMETHEUS_ACCEPT, gzip_ok=True)
        text_headers, text = _scrape(exp.url, "text/plain;version=0.0.4", gzip_ok=False)
    assert om_headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om_headers["content-encoding"] == "gzip"
    assert text_headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in text_headers
    assert om.endswith("# EOF\n") and "# EOF" not in text.replace('"# EOF"', "")
    from_om, from_text = _samples(parse_openmetrics(om)), _samples(parse_text(text))
    assert from_om == from_text
    tenants = {dict(labels).get("tenant_id") for name, labels in from_om if name == "llm_requests_total"}
    assert tenants >= SHOWN
    for name in ("llm_request_duration_seconds_bucket", "llm_time_to_first_token_seconds_sum",
                 "llm_cost_usd_total", "llm_budget_usage_ratio", "llm_exporter_invalid_lines_total"):
        assert any(sample_name == name for sample_name, _ in from_om), name
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install the Debian package 'prometheus'"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                           check=False)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def test_prometheus_negotiates_openmetrics_and_stores_every_sample(tmp_path: Path,
                                                                   prometheus: PrometheusServer) -> None:
    with ExporterProcess(["--file", str(_log(tmp_path))]) as exp:
        exp.wait_ready()
        _, om = _scrape(exp.url, PROMETHEUS_ACCEPT, gzip_ok=True)
        sample_lines = sum(1 for line in om.splitlines() if line and not line.startswith("#"))
        prometheus.scrape("formats", [f"127.0.0.1:{exp.port}"])
        prometheus.wait_targets_up(1)
        scraped = prometheus.wait_query('scrape_samples_scraped{job="formats"}')
        assert float(scraped[0]["value"][1]) == sample_lines
        # metadata keyed by the family name (not by the _total sample): Prometheus parsed OpenMetrics
        metadata = prometheus.api("targets/metadata", metric="llm_requests")
        assert metadata and metadata[0]["type"] == "counter", metadata
        assert not prometheus.api("targets/metadata", metric="llm_requests_total")  # what the text format keys
        stored = prometheus.query("group by (tenant_id) (llm_requests_total)")
        assert {series["metric"].get("tenant_id") for series in stored} >= SHOWN
        costs = prometheus.query("llm_cost_usd_total")
        by_tenant = {series["metric"].get("tenant_id"): float(series["value"][1]) for series in costs}
        assert all(by_tenant[tenant] == 0.5 for tenant in SHOWN), json.dumps(by_tenant)
