"""Backfill end to end: ``replay --tsdb DATA_DIR`` (CLI; promtool per window) → a real Prometheus on
that data directory → exact values from /api/v1/query at past timestamps, equal to ``report --end``;
recording rules backfilled with ``promtool tsdb create-blocks-from rules`` against it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.history import BUDGETS, HISTORY_FILES, T0, fixture_events, prometheus_quantile, requests, run_cli
from tests.prom import PrometheusServer

pytestmark = pytest.mark.slow

PROMTOOL = shutil.which("promtool")
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, math.inf)
STEP = 60


@dataclass
class Backfill:
    server: PrometheusServer
    events: list
    replay_stderr: str


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfill]:
    if PROMTOOL is None:
        raise RuntimeError("promtool is missing: install the Debian package 'prometheus'")
    tmp = Path(tmp_path_factory.mktemp("backfill"))
    done = run_cli(["replay", *map(str, HISTORY_FILES), "--tsdb", str(tmp / "data"), "--budgets", str(BUDGETS),
                    "--prices", "off", "--label", "job=history", "--step", str(STEP)])
    assert done.returncode == 0, done.stderr.decode()
    server = PrometheusServer(tmp / "prometheus", data_dir=tmp / "data")
    try:
        yield Backfill(server, fixture_events(), done.stderr.decode())
    finally:
        server.stop()


def sample_time(at: float) -> int:
    """The newest sample at or before ``at``; it holds the events before it."""
    return int(at // STEP * STEP)


QUERY_TIMES = [T0 + 1800 + 17, T0 + 5500, T0 + 6700, T0 + 7230, T0 + 7390, T0 + 5 * 3600 + 3540]


@pytest.mark.parametrize("at", QUERY_TIMES)
def test_counters_are_exact(backfill: Backfill, at: float) -> None:
    before = sample_time(at)
    labels = {"tenant_id": "acme", "provider": "openai", "model": "gpt-4o"}
    calls = requests(backfill.events, before, **labels)
    expr = 'llm_tokens_total{type="input",tenant_id="acme",provider="openai",model="gpt-4o",job="history"}'
    assert backfill.server.scalar(expr, at=at) == sum(c["prompt_tokens"] for c in calls)
    cost = 0.0
    for call in calls:
        if call["cost_usd"] is not None:
            cost += call["cost_usd"]
    assert backfill.server.scalar('llm_cost_usd_total{tenant_id="acme",provider="openai",model="gpt-4o"}', at) == cost
    failures = requests(backfill.events, before, status="failure")
    assert backfill.server.scalar('sum(llm_requests_total{status="failure"})', at) == len(failures)
    limited = [obj for ts, obj in backfill.events if ts < before and obj.get("event") == "rate_limited"]
    provider_429 = [c for c in requests(backfill.events, before, tenant_id="globex") if c["error_type"] == "rate_limit"]
    assert backfill.server.scalar('llm_rate_limit_hits_total{tenant_id="globex"}', at) == len(limited) + len(
        provider_429)


@pytest.mark.parametrize("at", QUERY_TIMES)
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_histogram_quantile_is_exact(backfill: Backfill, at: float, q: float) -> None:
    durations = [c["duration_s"] for c in requests(backfill.events, sample_time(at))]
    counts = [sum(1 for d in durations if d <= bound) for bound in BUCKETS]
    want = prometheus_quantile(q, BUCKETS, counts)
    got = backfill.server.scalar(f"histogram_quantile({q}, sum by (le) (llm_request_duration_seconds_bucket))", at)
    assert got == pytest.approx(want, rel=1e-12)
    assert backfill.server.scalar("sum(llm_request_duration_seconds_count)", at) == len(durations)


@pytest.mark.parametrize(("at", "state"), [(T0 + 3600, 0), (T0 + 5500, 2), (T0 + 6700, 1), (T0 + 7000, 0)])
def test_breaker_gauge_follows_explicit_events(backfill: Backfill, at: float, state: int) -> None:
    assert backfill.server.scalar('llm_circuit_breaker_state{provider="anthropic"}', at) == state


def budget_spend(events: list, tenant: str, since: float, before: float) -> float:
    """Known cost of the tenant's requests in [since, before). A request without ts has no budget
    period, so (live and replayed alike) it is not charged to a budget."""
    spent = 0.0
    for ts, obj in events:
        if (since <= ts < before and obj.get("event", "request") == "request" and obj["tenant_id"] == tenant
                and obj["cost_usd"] is not None and not obj.get("_borrowed")):
            spent += obj["cost_usd"]
    return spent


@pytest.mark.parametrize("at", QUERY_TIMES)
@pytest.mark.parametrize(("tenant", "limit"), [("acme", 0.5), ("globex", 2.0)])
def test_budget_gauge_follows_event_time_periods(backfill: Backfill, at: float, tenant: str, limit: float) -> None:
    # acme: $0.5 a UTC day; globex (the [default]): $2 a month. Both roll over at 2025-07-01T00:00Z.
    before = sample_time(at)
    clock = max(ts for ts, _ in backfill.events if ts < before)  # event time: the newest ts seen
    midnight = T0 + 7200
    since = midnight if clock >= midnight else T0 - 86400
    want = budget_spend(backfill.events, tenant, since, before) / limit
    assert backfill.server.scalar(f'llm_budget_usage_ratio{{tenant_id="{tenant}"}}', at) == want


def test_budget_ratio_drops_to_zero_when_event_time_enters_a_new_month(backfill: Backfill) -> None:
    midnight = T0 + 7200
    after = [(ts, obj) for ts, obj in backfill.events if ts >= midnight]
    first_spend = next(ts for ts, obj in after if obj.get("tenant_id") == "globex" and obj.get("cost_usd"))
    at = sample_time(first_spend)
    assert after[0][0] < at  # this sample has seen July, and no globex spend in it yet
    assert backfill.server.scalar('llm_budget_usage_ratio{tenant_id="globex"}', midnight) > 0
    assert backfill.server.scalar('llm_budget_usage_ratio{tenant_id="globex"}', at) == 0


def test_series_start_from_zero_and_carry_the_job_label(backfill: Backfill) -> None:
    first = min(ts for ts, _ in backfill.events)
    first_sample = (int(first) // STEP + 1) * STEP
    assert backfill.server.scalar("sum(llm_requests_total)", first_sample - STEP) == 0  # the leading 0 point
    assert backfill.server.query("sum(llm_requests_total)", first_sample - STEP - 1) == []
    result = backfill.server.query('count(llm_requests_total{job="history"})', T0 + 3600)
    assert float(result[0]["value"][1]) > 0
    # Self-metrics describe the replaying process, not history: none are backfilled.
    assert backfill.server.query('{__name__=~"llm_exporter_.+"}', T0 + 3600) == []


def test_replay_reported_its_work(backfill: Backfill) -> None:
    err = backfill.replay_stderr
    assert "lines/s" in err
    assert "2 invalid line(s) skipped (bad_field 1, not_json 1)" in err
    assert "1 without ts placed at a borrowed time" in err
    assert "next: restart Prometheus on that data directory" in err


@pytest.mark.parametrize("hours", [1, 3.5, 6])
def test_cost_at_any_time_equals_report_end(backfill: Backfill, hours: float) -> None:
    at = T0 + int(hours * 3600)
    done = run_cli(["report", *map(str, HISTORY_FILES), "--end", str(at), "--prices", "off", "-f", "json"])
    assert done.returncode == 0, done.stderr.decode()
    expected = json.loads(done.stdout)["total"]["cost_usd"]
    assert expected > 0
    assert backfill.server.scalar('sum(llm_cost_usd_total{job="history"})', at) == pytest.approx(expected, abs=1e-9)


def test_recording_rules_are_backfilled_with_promtool(backfill: Backfill, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: llm\n  interval: 60s\n  rules:\n"
                     "  - record: job:llm_cost_usd:sum\n    expr: sum by (job) (llm_cost_usd_total)\n")
    out = tmp_path / "rule-blocks"
    done = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "rules", "--url", backfill.server.url,
                           "--start", str(T0), "--end", str(T0 + 6 * 3600), "--eval-interval", "60s",
                           "--output-dir", str(out), str(rules)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (out / "wal").mkdir()  # promtool 2.42's dump opens the directory as a database, which has a WAL
    dump = subprocess.run([PROMTOOL, "tsdb", "dump", str(out)], capture_output=True, text=True, timeout=300,
                          check=True).stdout
    values = {int(line.rsplit(" ", 2)[2]) / 1000: float(line.rsplit(" ", 2)[1])
              for line in dump.splitlines() if 'job:llm_cost_usd:sum' in line}
    assert len(values) > 300  # one per minute over the history (at the group's own offset in the minute)
    for after in (T0 + 1800, T0 + 3 * 3600 + 600, T0 + 5 * 3600 + 1200):
        at = min(t for t in values if t >= after)
        calls = requests(backfill.events, sample_time(at))
        assert values[at] == pytest.approx(sum(c.get("cost_usd") or 0.0 for c in calls), abs=1e-9)
