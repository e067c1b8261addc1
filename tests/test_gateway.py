"""AI-gateway semantics: the aigateway family contract, cache, errors, breakers, streams, budgets."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ExporterProcess, event_line, metrics_for_files, value

# The contract of issue #3 / docs/metrics.md: family → (type, label names).
AIGATEWAY = {
    "aigateway_requests": ("counter", {"tenant_id", "provider", "model", "status"}),
    "aigateway_request_duration_seconds": ("histogram", {"tenant_id", "provider", "model"}),
    "aigateway_tokens": ("counter", {"tenant_id", "provider", "model", "type"}),
    "aigateway_cost_usd": ("counter", {"tenant_id", "provider", "model"}),
    "aigateway_cache_hits": ("counter", {"tenant_id"}),
    "aigateway_cache_misses": ("counter", {"tenant_id"}),
    "aigateway_rate_limit_hits": ("counter", {"tenant_id"}),
    "aigateway_circuit_breaker_state": ("gauge", {"provider"}),
    "aigateway_provider_errors": ("counter", {"provider", "error_type"}),
    "aigateway_active_streams": ("gauge", set()),
    "aigateway_budget_usage_ratio": ("gauge", {"tenant_id"}),
}
BUCKETS = ["0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "120.0", "+Inf"]
T0 = 1_795_400_000.0  # 2026-11-21T... UTC


ev = event_line


def req(ts: float, provider: str = "openai", tenant: str = "acme", status: str = "success", **fields: object) -> str:
    return ev("request", ts=ts, model="gpt-4o", provider=provider, tenant_id=tenant, status=status,
              duration_s=0.4, prompt_tokens=10, completion_tokens=5, cost_usd=0.01, **fields)


def every_family_lines() -> str:
    return "".join([
        req(T0, cache_hit=True),
        req(T0 + 1, cache_hit=False, call_id="s1", stream=True, ttft_s=0.1),
        req(T0 + 2, status="failure", error_type="rate_limit", provider="anthropic"),
        ev("stream_start", ts=T0 + 3, call_id="s2", tenant_id="acme", provider="openai", model="gpt-4o"),
        ev("rate_limited", ts=T0 + 4, tenant_id="beta"),
        ev("circuit_breaker", ts=T0 + 5, provider="mistral", state="open"),
        ev("budget", ts=T0 + 6, tenant_id="acme", spent_usd=25.0, limit_usd=100.0),
        ev("cache", ts=T0 + 7, tenant_id="beta", hit=True),
    ])


def test_aigateway_families_types_and_labels_exactly(tmp_path: Path) -> None:
    log = tmp_path / "gw.jsonl"
    log.write_text(every_family_lines())
    with ExporterProcess(["--file", str(log), "--namespace", "aigateway"]) as exp:
        exp.wait_ready()
        text = exp.get("/metrics")[1]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, labels) in AIGATEWAY.items():
        assert name in families, name
        family = families[name]
        assert family.type == kind, (name, family.type)
        assert family.samples, name
        for sample in family.samples:
            names = set(sample.labels) - {"le"} if kind == "histogram" else set(sample.labels)
            assert names == labels, (name, sample)
            if kind == "histogram" and sample.name.endswith("_bucket"):
                assert sample.labels["le"] in BUCKETS
    les = [s.labels["le"] for s in families["aigateway_request_duration_seconds"].samples
           if s.name.endswith("_bucket") and s.labels["provider"] == "openai"]
    assert les == BUCKETS
    assert not any(name.startswith("llm_") and not name.startswith("llm_exporter") for name in families)


def test_values_of_every_family(tmp_path: Path) -> None:
    log = tmp_path / "gw.jsonl"
    log.write_text(every_family_lines())
    s = metrics_for_files([log], namespace="aigateway")
    assert value(s, "aigateway_cache_hits_total", tenant_id="acme") == 1
    assert value(s, "aigateway_cache_misses_total", tenant_id="acme") == 1
    assert value(s, "aigateway_cache_hits_total", tenant_id="beta") == 1
    # A provider 429 counts as a provider error and as the tenant's rate-limit hit; the gateway's own
    # rejection counts as a rate-limit hit only.
    assert value(s, "aigateway_provider_errors_total", provider="anthropic", error_type="rate_limit") == 1
    assert value(s, "aigateway_rate_limit_hits_total", tenant_id="acme") == 1
    assert value(s, "aigateway_rate_limit_hits_total", tenant_id="beta") == 1
    assert value(s, "aigateway_circuit_breaker_state", provider="mistral") == 2
    assert value(s, "aigateway_circuit_breaker_state", provider="openai") == 0
    assert value(s, "aigateway_active_streams") == 1  # s1 never started here; s2 has no end yet
    assert value(s, "aigateway_budget_usage_ratio", tenant_id="acme") == 0.25


def test_cache_hit_null_counts_neither(tmp_path: Path) -> None:
    log = tmp_path / "c.jsonl"
    log.write_text(req(T0, cache_hit=None) + req(T0, cache_hit=True) + req(T0, cache_hit=True))
    s = metrics_for_files([log])
    assert value(s, "llm_cache_hits_total") == 2
    assert value(s, "llm_cache_misses_total") == 0


def test_error_types_bounded_to_the_vocabulary(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    log.write_text(req(T0, status="failure", error_type="timeout") + req(T0, status="failure", error_type="Weird!")
                   + req(T0, status="failure") + req(T0, status="failure", error_type="server_error"))
    s = metrics_for_files([log])
    assert value(s, "llm_provider_errors_total", error_type="timeout") == 1
    assert value(s, "llm_provider_errors_total", error_type="server_error") == 1
    assert value(s, "llm_provider_errors_total", error_type="other") == 2
    assert not any(name == "llm_rate_limit_hits_total" for name, _ in s)  # no 429 among them


def breaker_lines() -> list[str]:
    out = []
    for i in range(6):  # 5 consecutive server errors open the breaker at T0+4
        out.append(req(T0 + i, provider="p", status="failure", error_type="server_error"))
    out.append(req(T0 + 20, provider="q"))  # other traffic moves event time past the cooldown
    out.append(req(T0 + 45, provider="q"))
    out.append(req(T0 + 46, provider="p", status="failure", error_type="timeout"))  # half-open → open
    out.append(req(T0 + 80, provider="q"))  # cooldown over again: half-open
    out.append(req(T0 + 81, provider="p"))  # half-open → closed
    return out


def test_breaker_transitions_live_equal_replay(tmp_path: Path) -> None:
    lines = breaker_lines()
    # Replay: each prefix of the file read from scratch.
    replayed = []
    for n in range(1, len(lines) + 1):
        part = tmp_path / f"prefix{n}.jsonl"
        part.write_text("".join(lines[:n]))
        replayed.append(value(metrics_for_files([part]), "llm_circuit_breaker_state", provider="p"))
    assert replayed == [0, 0, 0, 0, 2, 2, 2, 1, 2, 1, 0]
    # Live: the real daemon follows the file while the same lines are appended one by one.
    log = tmp_path / "live.jsonl"
    log.write_text("")
    live = []
    with ExporterProcess(["--file", str(log), "--poll-interval", "0.1"]) as exp:
        exp.wait_ready()
        for n, line in enumerate(lines, 1):
            with open(log, "a") as f:
                f.write(line)
            samples = exp.wait_value("llm_requests_total", n)
            live.append(value(samples, "llm_circuit_breaker_state", provider="p"))
    assert live == replayed


def test_breaker_flags(tmp_path: Path) -> None:
    log = tmp_path / "b.jsonl"
    log.write_text("".join(breaker_lines()[:3]))
    assert value(metrics_for_files([log], breaker_failures=3), "llm_circuit_breaker_state", provider="p") == 2
    s = metrics_for_files([log], derived_breaker=False)
    assert not any(n == "llm_circuit_breaker_state" for n, _ in s)


def test_streams_start_end_and_expiry_on_event_time(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    lines = [
        ev("stream_start", ts=T0, call_id="a"),
        ev("stream_start", ts=T0 + 1, call_id="b"),
        ev("stream_start", ts=T0 + 2, call_id="c"),
        req(T0 + 3, call_id="b", stream=True, ttft_s=0.2),
    ]
    log.write_text("".join(lines))
    s = metrics_for_files([log], stream_timeout=60)
    assert value(s, "llm_active_streams") == 2
    assert value(s, "llm_exporter_expired_streams_total") == 0
    # Event time moves on past a's and c's timeout: both expire and are counted.
    with open(log, "a") as f:
        f.write(req(T0 + 62.5))
    s = metrics_for_files([log], stream_timeout=60)
    assert value(s, "llm_active_streams") == 0
    assert value(s, "llm_exporter_expired_streams_total") == 2
    # An end whose start was never seen (e.g. --from-end) does not drive the gauge below zero.
    log.write_text(req(T0, call_id="zzz", stream=True))
    assert value(metrics_for_files([log]), "llm_active_streams") == 0


def test_stream_table_bounded(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_text("".join(ev("stream_start", ts=T0, call_id=f"c{i}") for i in range(50)))
    s = metrics_for_files([log], max_streams=10)
    assert value(s, "llm_active_streams") == 10
    assert value(s, "llm_exporter_expired_streams_total") == 40


def test_restart_rebuilds_the_stream_gauge(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_text(ev("stream_start", ts=T0, call_id="a") + ev("stream_start", ts=T0, call_id="b")
                   + req(T0 + 1, call_id="a", stream=True))
    for _ in range(2):  # the same answer after a restart: the file is read again from the start
        with ExporterProcess(["--file", str(log)]) as exp:
            exp.wait_ready()
            assert value(exp.scrape(), "llm_active_streams") == 1


def test_budget_period_rollover(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[default]\nlimit_usd = 0.04\nperiod = "day"\n\n[tenants.idle]\nlimit_usd = 5\n')
    day = 1_795_392_000.0  # 2026-11-21T00:00:00Z
    log = tmp_path / "b.jsonl"
    log.write_text(req(day + 100) + req(day + 86_000) + req(day + 86_300, tenant="other"))
    s = metrics_for_files([log], budgets=str(budgets))
    assert abs(value(s, "llm_budget_usage_ratio", tenant_id="acme") - 0.5) < 1e-12
    assert value(s, "llm_budget_usage_ratio", tenant_id="idle") == 0
    with open(log, "a") as f:  # past midnight UTC: acme's day starts again at 0
        f.write(req(day + 86_400, tenant="other"))
    s = metrics_for_files([log], budgets=str(budgets))
    assert value(s, "llm_budget_usage_ratio", tenant_id="acme") == 0
    with open(log, "a") as f:
        f.write(req(day + 90_000) * 5)
    s = metrics_for_files([log], budgets=str(budgets))
    assert abs(value(s, "llm_budget_usage_ratio", tenant_id="acme") - 1.25) < 1e-12  # over budget > 1


def test_bad_budgets_file_is_a_clear_error(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text("[tenants.a]\nlimit_usd = -1\n")
    import subprocess
    import sys

    from tests.helpers import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "llm_log_exporter", "--file", str(tmp_path / "x"), "--budgets", str(budgets)],
        capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2 and "limit_usd must be a positive number" in proc.stderr


def test_gateway_events_validated(tmp_path: Path) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_text(
        ev("circuit_breaker", provider="p", state="melted") + ev("circuit_breaker", state=2)
        + ev("budget", tenant_id="a", spent_usd=1, limit_usd=0) + ev("cache", tenant_id="a", hit="yes")
        + ev("stream_start") + ev("future_kind", x=1)
    )
    s = metrics_for_files([log])
    assert value(s, "llm_exporter_lines_total", result="invalid") == 5
    assert value(s, "llm_exporter_lines_total", result="skipped") == 1
    assert value(s, "llm_active_streams") == 0


def test_tenant_limit_applies_to_gateway_families(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    log.write_text("".join(ev("rate_limited", tenant_id=f"t{i}") for i in range(5)))
    s = metrics_for_files([log], max_tenants=2)
    assert value(s, "llm_rate_limit_hits_total", tenant_id="__other__") == 3
    assert value(s, "llm_exporter_label_overflow_total", label="tenant_id") == 3
