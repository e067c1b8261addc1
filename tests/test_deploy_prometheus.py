"""Dashboard, design queries and rules against a real Prometheus scraping two exporters (two pods).

Every dashboard panel and template-variable query (Grafana macros substituted) and every PromQL
example of the source designs must return data; the recording rules must add the two instances up
exactly; the alert rules must load and evaluate against the real metric names. promtool checks and
unit-tests deploy/prometheus/rules.yml.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, ExporterProcess, event_line, http_get, value
from tests.prom import PrometheusServer

pytestmark = pytest.mark.slow

DASHBOARD = ROOT / "dashboards" / "llm-usage.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "rules_test.yml"
SPIKE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "spend_spike_test.yml"
RULE_COUNT = 35
DESIGNS = ROOT.parent / "shared" / "reference" / "source-designs.md"
PROMTOOL = shutil.which("promtool")
JOB = "llm-log-exporter"
T0 = 1_795_400_000.0
# Grafana's macros and our variables, for one instant query: "All" is the regex .*
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "${namespace}": "llm",
          "$job": ".*", "$tenant": ".*", "$provider": ".*", "$model": ".*"}


def ev(kind: str, **fields: Any) -> str:
    return event_line(kind, ts=T0, **fields)


def req(tenant: str, cost: float = 0.0, status: str = "success", provider: str = "openai", **fields: Any) -> str:
    fields = {"model": "gpt-4o", "cost_usd": cost, **fields}
    return ev("request", provider=provider, tenant_id=tenant, status=status, duration_s=0.7, prompt_tokens=100,
              completion_tokens=20, cached_tokens=40, cache_write_tokens=8, reasoning_tokens=5, **fields)


def initial(pod: str) -> str:
    """What each pod's file holds at start: budgets spent (acme 0.5 + 0.35 of $10), open streams."""
    acme, over = (5.0, 6.0) if pod == "a" else (3.5, 6.0)
    streams = 2 if pod == "a" else 1
    return "".join([
        req("acme", cost=acme), req("over", cost=over),
        *(ev("stream_start", call_id=f"{pod}-s{i}", tenant_id="acme", provider="openai", model="gpt-4o")
          for i in range(streams)),
        ev("circuit_breaker", provider="mistral", state="open" if pod == "a" else "closed"),
    ])


def traffic(pod: str, n: int) -> str:
    """Live traffic: every family moves, so rate() over the scrapes is non-zero."""
    return "".join([
        req("feed", cost=0.001, cache_hit=True),
        req("feed", cost=0.001, cache_hit=False, stream=True, ttft_s=0.2, call_id=f"{pod}-c{n}"),
        req("feed", status="failure", error_type="rate_limit", provider="anthropic"),
        req("feed", status="failure", error_type="server_error"),
        req("feed", model="no-price-model", cost_usd=None),  # tokens, no cost, no price: llm_exporter_cost_unknown
        ev("rate_limited", tenant_id="feed"),
        "this line is not JSON\n",
    ])


def substitute(expr: str) -> str:
    for macro, replacement in sorted(MACROS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(macro, replacement)
    assert "$" not in expr, expr
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(f"{p['title']} [{t['refId']}]", t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def variable_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(v["name"], v["query"]["query"]) for v in board["templating"]["list"] if v["type"] == "query"]


def design_queries() -> list[str]:
    """The design's example PromQL (as written there for aigateway_, with our default prefix)."""
    text = DESIGNS.read_text() if DESIGNS.exists() else (ROOT / "docs" / "gateway.md").read_text()
    block = re.search(r"```promql\n(.*?)```", text, re.S)
    assert block
    queries, current = [], ""
    for line in block.group(1).splitlines():
        if line.startswith("#") or not line.strip():
            if current:
                queries.append(current)
            current = ""
        else:
            current += line.strip() + " "
    if current:
        queries.append(current)
    assert len(queries) == 5, queries
    return [q.strip().replace("aigateway_", "llm_") for q in queries]


@pytest.fixture(scope="module")
def two_pods(tmp_path_factory: pytest.TempPathFactory, prometheus: PrometheusServer) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("pods")
    budgets = work / "budgets.toml"
    budgets.write_text('[default]\nlimit_usd = 10\nperiod = "month"\n')
    files = {pod: work / f"{pod}.jsonl" for pod in "ab"}
    for pod, path in files.items():
        path.write_text(initial(pod))
    exporters = {pod: ExporterProcess(["--file", str(path), "--budgets", str(budgets), "--poll-interval", "0.2"])
                 for pod, path in files.items()}
    try:
        for exp in exporters.values():
            exp.wait_ready()
        prometheus.reload([{"job_name": JOB, "static_configs": [
            {"targets": [f"127.0.0.1:{exp.port}" for exp in exporters.values()]}]}], rule_files=[str(RULES)])
        prometheus.wait_targets_up(2)
        before = {pod: exp.scrape() for pod, exp in exporters.items()}
        # ~8 s of traffic on both pods while Prometheus scrapes every second.
        for n in range(20):
            for pod, path in files.items():
                with open(path, "a") as f:
                    f.write(traffic(pod, n))
            time.sleep(0.4)
        for pod, exp in exporters.items():
            exp.wait_value("llm_exporter_lines_total", len(initial(pod).splitlines()) + 20 * 7, timeout=30)
        time.sleep(2.5)  # the last appends are scraped
        yield {"prometheus": prometheus, "exporters": exporters, "before": before}
    finally:
        for exp in exporters.values():
            exp.stop()
        prometheus.reload([])


def _has_finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


@pytest.mark.parametrize(("title", "expr"), dashboard_queries(), ids=[t for t, _ in dashboard_queries()])
def test_every_dashboard_panel_query_returns_data(two_pods: dict[str, Any], title: str, expr: str) -> None:
    result = two_pods["prometheus"].query(substitute(expr))
    assert result and _has_finite(result), (title, substitute(expr), result)


@pytest.mark.parametrize(("name", "query"), variable_queries(), ids=[n for n, _ in variable_queries()])
def test_every_dashboard_variable_query_returns_values(two_pods: dict[str, Any], name: str, query: str) -> None:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    assert match, query
    selector, label = substitute(match.group(1)), match.group(2)
    prom = two_pods["prometheus"]
    code, body = http_get(f"{prom.url}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": selector}))
    values = json.loads(body)["data"]
    assert code == 200 and values, (name, selector, body)
    if name == "tenant":
        assert {"acme", "over", "feed"} <= set(values)


@pytest.mark.parametrize("expr", design_queries())
def test_every_design_query_returns_data(two_pods: dict[str, Any], expr: str) -> None:
    result = two_pods["prometheus"].query(expr)
    assert result and _has_finite(result), (expr, result)


def test_sum_without_instance_adds_the_two_pods_exactly(two_pods: dict[str, Any]) -> None:
    prom: PrometheusServer = two_pods["prometheus"]
    before = two_pods["before"]
    # Gauges: streams open on a (2) and b (1); acme's budget 5/10 on a plus 3.5/10 on b.
    streams = prom.wait_query(f'job:llm_active_streams:sum{{job="{JOB}"}}')
    assert len(streams) == 1 and "instance" not in streams[0]["metric"]
    assert float(streams[0]["value"][1]) == 3 == sum(value(s, "llm_active_streams") for s in before.values())
    ratios = [value(before[pod], "llm_budget_usage_ratio", tenant_id="acme") for pod in "ab"]
    assert ratios == [0.5, 0.35]
    budget = prom.wait_query('tenant:llm_budget_usage_ratio:sum{tenant_id="acme"}')
    assert len(budget) == 1 and "instance" not in budget[0]["metric"]
    assert float(budget[0]["value"][1]) == ratios[0] + ratios[1]
    # A rate rule: at one evaluation time its value is the sum of the two instances' rates.
    rule = "tenant:llm_cost_usd:rate5m"
    end = time.time() - 3  # every scrape that started before this has been ingested
    # A range selector returns the recorded samples with their evaluation timestamps.
    series = prom.query(f'{rule}{{tenant_id="feed"}}[10s]', at=end)
    assert len(series) == 1 and "instance" not in series[0]["metric"] and series[0]["metric"]["job"] == JOB
    matches = []
    for at, recorded in series[0]["values"][-5:]:
        per_instance = prom.query('rate(llm_cost_usd_total{tenant_id="feed"}[5m])', at=at)
        by_instance: dict[str, float] = {}
        for r in per_instance:
            by_instance[r["metric"]["instance"]] = by_instance.get(r["metric"]["instance"], 0) + float(r["value"][1])
        assert len(by_instance) == 2 and all(v > 0 for v in by_instance.values()), by_instance  # both pods count
        direct = prom.scalar("sum without (instance, pod, provider, model) "
                             "(rate(llm_cost_usd_total{tenant_id='feed'}[5m]))", at=at)
        assert math.isclose(direct, sum(float(r["value"][1]) for r in per_instance), rel_tol=1e-12)
        matches.append(float(recorded) == direct)
    # Exact at an evaluation time (one evaluation may race a scrape that ends just after it).
    assert any(matches), matches


def test_rules_evaluate_and_the_summed_budget_alerts(two_pods: dict[str, Any]) -> None:
    prom: PrometheusServer = two_pods["prometheus"]
    deadline = time.monotonic() + 30
    while True:
        groups = prom.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        alerts = {(r["name"], a["labels"].get("tenant_id") or a["labels"].get("provider") or ""): a["state"]
                  for r in rules if r["type"] == "alerting" for a in r["alerts"]}
        if alerts.get(("LLMBudgetNearlyUsed", "acme")) == "firing" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(rules) == RULE_COUNT
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    # Neither pod alone spent 80 % of acme's budget; together they did (0.85). "over": 0.6 + 0.6.
    assert alerts[("LLMBudgetNearlyUsed", "acme")] == "firing"
    assert alerts[("LLMBudgetExceeded", "over")] == "firing"
    assert ("LLMBudgetNearlyUsed", "over") not in alerts
    assert alerts[("LLMCircuitBreakerOpen", "mistral")] == "pending"  # for: 1m
    assert alerts[("LLMProviderErrorRatioHigh", "openai")] == "pending"  # for: 10m
    invalid = [a for r in rules if r["name"] == "LLMLogExporterInvalidLines" for a in r["alerts"]]
    assert len(invalid) == 2 and {a["state"] for a in invalid} == {"firing"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool missing: it comes with the Debian prometheus package"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_promtool_check_and_unit_tests() -> None:
    check = _promtool("check", "rules", str(RULES))
    assert check.returncode == 0 and f"SUCCESS: {RULE_COUNT} rules found" in check.stdout, check.stdout + check.stderr
    unit = _promtool("test", "rules", str(RULE_TESTS), str(SPIKE_TESTS))
    assert unit.returncode == 0, unit.stdout + unit.stderr


# Mistakes the unit tests must catch: (what is broken, the text replaced, its replacement, the alert whose test
# then fails, the test file; only its groups naming that alert run, to keep this quick).
MUTATIONS = [
    ("no traffic floor on the provider error ratio",
     "provider:llm_provider_failure_ratio:rate5m > 0.05\n          and on (job, provider) sum without (instance, pod, "
     "tenant_id, model, status) (increase(llm_requests_total[10m])) >= 20",
     "provider:llm_provider_failure_ratio:rate5m > 0.05", "LLMProviderErrorRatioHigh", RULE_TESTS),
    ("client errors counted as provider failures",
     'error_type!~"bad_request|context_window|content_filter|budget_exceeded"', 'error_type!~"none"',
     "LLMProviderErrorRatioHigh", RULE_TESTS),
    ("a single window on the fast burn rate", "  and provider:llm_provider_failure_ratio:rate5m > 14.4 * 0.01\n",
     "\n", "LLMErrorBudgetBurnFast", RULE_TESTS),
    ("no floor on the spend spike", "(increase(llm_cost_usd_total[1h])) > 1\n",
     "(increase(llm_cost_usd_total[1h])) > 0\n", "LLMSpendSpike", SPIKE_TESTS),
]


@pytest.mark.parametrize(("what", "old", "new", "alert", "tests"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_promtool_unit_tests_catch_a_broken_alert(tmp_path: Path, what: str, old: str, new: str, alert: str,
                                                  tests: Path) -> None:
    text = RULES.read_text()
    assert old in text, what
    (tmp_path / "rules.yml").write_text(text.replace(old, new))
    (tmp_path / "tests").mkdir()
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(tests.read_text())
    doc["tests"] = [case for case in doc["tests"]
                    if any(t["alertname"] == alert for t in case.get("alert_rule_test", []))]
    assert doc["tests"]
    (tmp_path / "tests" / tests.name).write_text(json.dumps(doc))  # JSON is YAML
    unit = _promtool("test", "rules", str(tmp_path / "tests" / tests.name))
    assert unit.returncode != 0 and alert in unit.stdout + unit.stderr, what


def test_promtool_unit_tests_catch_a_wrong_aggregation(tmp_path: Path) -> None:
    """Control: summing budgets with max (a single pod's view) fails the unit tests."""
    broken = RULES.read_text().replace("expr: sum without (instance, pod) (llm_budget_usage_ratio)",
                                       "expr: max without (instance, pod) (llm_budget_usage_ratio)")
    assert broken != RULES.read_text()
    (tmp_path / "rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    shutil.copy(RULE_TESTS, tmp_path / "tests" / "rules_test.yml")
    unit = _promtool("test", "rules", str(tmp_path / "tests" / "rules_test.yml"))
    assert unit.returncode != 0 and "LLMBudgetNearlyUsed" in unit.stdout + unit.stderr


def test_dashboard_structure() -> None:
    board = json.loads(DASHBOARD.read_text())
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "tenant", "provider", "model"} <= names
    panels = [p for p in board["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert all(t["datasource"] == p["datasource"] and t["expr"] for t in p["targets"]), p["title"]
        assert {"h", "w", "x", "y"} <= set(p["gridPos"])
    text = " | ".join(p["title"].lower() for p in panels)
    for wanted in ("request rate", "error rate by provider", "latency p50 / p95 / p99", "time to first token",
                   "tokens per second by type", "cost per hour by tenant", "cache hit ratio", "rate-limit hits",
                   "circuit breaker", "active streams", "budget usage", "lag", "invalid lines"):
        assert wanted in text, wanted
