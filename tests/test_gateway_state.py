"""Gateway state survives a restart with --state-file: restored + continued equals one full read."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.exposition import generate_latest

from llm_log_exporter.daemon import Config, Exporter
from tests.helpers import metrics_for_files, parse_exposition
from tests.test_gateway import T0, ev, req

GATEWAY = ("llm_circuit_breaker_state", "llm_active_streams", "llm_budget_usage_ratio", "llm_cache_hits_total",
           "llm_cache_misses_total", "llm_rate_limit_hits_total", "llm_provider_errors_total",
           "llm_exporter_expired_streams_total", "llm_requests_total", "llm_cost_usd_total")


def gateway_samples(samples: dict) -> dict:
    return {k: v for k, v in samples.items() if k[0] in GATEWAY}


def run_once(config: Config) -> dict:
    exporter = Exporter(config)
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        samples = parse_exposition(generate_latest(exporter.registry).decode())
        exporter.save_state()
        return samples
    finally:
        exporter.tailer.close()


def test_breakers_streams_budgets_resume_where_they_were(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[default]\nlimit_usd = 1\nperiod = "day"\n')
    log = tmp_path / "gw.jsonl"
    before = [req(T0 + i, provider="p", status="failure", error_type="server_error") for i in range(5)]
    before += [ev("stream_start", ts=T0 + 6, call_id="s1"), ev("stream_start", ts=T0 + 7, call_id="s2"),
               req(T0 + 8, cache_hit=True), ev("rate_limited", ts=T0 + 9, tenant_id="acme")]
    after = [req(T0 + 20, call_id="s1", stream=True), req(T0 + 40, provider="q"),  # p half-open by now
             req(T0 + 41, provider="p", status="failure", error_type="timeout"),  # and open again
             req(T0 + 700, cache_hit=False)]  # s2 expires on event time
    log.write_text("".join(before))
    config = dict(files=[str(log)], poll=True, budgets=str(budgets), state_file=str(tmp_path / "state.json"))
    first = run_once(Config(**config))
    assert first[("llm_circuit_breaker_state", frozenset({("provider", "p")}))] == 2
    with open(log, "a") as f:
        f.write("".join(after))
    resumed = gateway_samples(run_once(Config(**config)))
    full = gateway_samples(metrics_for_files([log], budgets=str(budgets)))
    assert resumed == full
    assert resumed[("llm_circuit_breaker_state", frozenset({("provider", "p")}))] == 1  # cooled down again
    assert resumed[("llm_active_streams", frozenset())] == 0
    assert resumed[("llm_exporter_expired_streams_total", frozenset())] == 1
