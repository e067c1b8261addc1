"""Event time that one line cannot poison: lines from the future are rejected (``future_ts``), the clock
that drives budgets, breakers and streams never jumps, a poisoned state file is repaired on load, and
the calendar code takes any time without raising.

Through the real pipeline in-process (``tests.pipeline``), and ``replay`` as the CLI runs it.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client.exposition import generate_latest

from llm_log_exporter.aggregate.budgets import Budget, Budgets
from llm_log_exporter.aggregate.periods import PERIODS, period_label, period_start
from tests.helpers import ROOT, event_line, parse_exposition, value
from tests.pipeline import Pipeline, append

NOW = time.time()
LAST_SECOND = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last second datetime holds
TEN_YEARS = 10 * 365 * 86400.0


def request(ts: float, cost: float = 1.0, tenant: str = "acme", **extra: object) -> bytes:
    return event_line(model="m", provider="p", tenant_id=tenant, prompt_tokens=10, cost_usd=cost, ts=ts,
                      **extra).encode()


def stream_start(ts: float, call_id: str) -> bytes:
    return event_line("stream_start", ts=ts, call_id=call_id, model="m", provider="p", tenant_id="acme").encode()


@pytest.fixture
def budgets(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text('[default]\nlimit_usd = 10\nperiod = "month"\n')
    return path


def scrape(p: Pipeline) -> dict:
    return parse_exposition(generate_latest(p.exp.registry).decode())


def test_a_timestamp_in_milliseconds_is_rejected_and_every_scrape_answers(log, budgets, caplog):
    append(log, request(NOW - 60, cost=2.5) + request(NOW * 1000, cost=1.0))  # the second one: milliseconds
    p = Pipeline(log, budgets=str(budgets))
    with caplog.at_level(logging.WARNING, logger="llm_log_exporter"):
        p.tick()
    samples = scrape(p)  # raised "year 58890 is out of range" before
    assert value(samples, "llm_exporter_invalid_lines_total", reason="future_ts") == 1
    assert value(samples, "llm_exporter_lines_total", result="parsed") == 1
    assert value(samples, "llm_requests_total") == 1
    assert value(samples, "llm_budget_usage_ratio", tenant_id="acme") == 0.25
    assert p.exp.store.usage.clock == NOW - 60
    assert "future_ts" in caplog.text and "milliseconds?" in caplog.text and f"{log}:2" in caplog.text


def test_one_line_ten_years_ahead_moves_no_clock(log, budgets):
    starts = b"".join(stream_start(NOW - 30, f"s{i}") for i in range(10))
    append(log, starts + request(NOW - 20, cost=4.0))
    p = Pipeline(log, budgets=str(budgets)).tick()
    before = scrape(p)
    assert value(before, "llm_active_streams") == 10 and value(before, "llm_budget_usage_ratio") == 0.4
    append(log, request(NOW + TEN_YEARS, cost=1.0) + stream_start(NOW + TEN_YEARS, "late"))
    p.tick()
    after = scrape(p)
    assert value(after, "llm_active_streams") == 10  # the clock did not jump past every stream's timeout
    assert value(after, "llm_budget_usage_ratio", tenant_id="acme") == 0.4  # nor into a later budget period
    assert value(after, "llm_exporter_invalid_lines_total", reason="future_ts") == 2
    assert p.exp.store.usage.clock == NOW - 20
    assert value(after, "llm_exporter_last_event_timestamp_seconds") == NOW - 20


def test_lines_within_the_skew_are_counted_and_the_skew_is_an_option(log):
    append(log, request(time.time() + 120))  # a writer whose clock is two minutes ahead
    p = Pipeline(log).tick()
    assert p.total("llm_requests_total") == 1
    strict = Pipeline(log, max_future_skew=10.0).tick()
    assert strict.total("llm_requests_total") == 0
    assert strict.total("llm_exporter_invalid_lines_total", reason="future_ts") == 1


def test_the_skew_flag_takes_durations(tmp_path):
    from llm_log_exporter.cli import main

    with main.make_context("llm-log-exporter", ["--max-future-skew", "90s"]) as ctx:
        assert ctx.params["max_future_skew"] == 90.0
    with main.make_context("llm-log-exporter", []) as ctx:
        assert ctx.params["max_future_skew"] == 300.0


def _poison(state: Path, ts: float) -> None:
    """What a state file written before future lines were rejected holds after one such line."""
    doc = orjson.loads(state.read_bytes())
    usage = doc["metrics"]["usage"]
    usage["clock"] = ts
    usage["budgets"]["windows"] = {"acme": [period_start(ts, "month"), 1.0]}
    usage["streams"]["starts"].append(["poisoned", ts])
    usage["breakers"]["p"][3] = ts  # opened_at
    for record in doc["metrics"]["files"]["files"].values():
        record[-1] = ts  # last_event_ts
    state.write_bytes(orjson.dumps(doc))


def test_a_state_file_with_a_poisoned_clock_is_repaired_on_load_and_says_so(log, budgets, tmp_path, caplog):
    state = tmp_path / "state.json"
    append(log, b"".join(stream_start(NOW - 30, f"s{i}") for i in range(3)) + request(NOW - 20, cost=4.0))
    p = Pipeline(log, state=state, budgets=str(budgets)).tick()
    p.stop()
    _poison(state, NOW * 1000)
    with caplog.at_level(logging.WARNING, logger="llm_log_exporter"):
        p.start().tick()
    samples = scrape(p)  # the poisoned budget window raised during every scrape before
    usage = p.exp.store.usage
    assert usage.clock == NOW - 30  # back at the newest sound time the state knows (the stream starts)
    assert value(samples, "llm_active_streams") == 4  # the poisoned start is kept, at the repaired clock
    assert usage.streams.starts["poisoned"] == NOW - 30
    assert usage.breakers.providers["p"].opened_at == NOW - 30
    assert "acme" not in usage.budgets.windows  # a window of a later period: its spend came from that line
    assert not [key for key in samples if key[0] == "llm_budget_usage_ratio"]  # no current spend known
    assert value(samples, "llm_exporter_state_repairs_total", part="clock") == 1
    assert value(samples, "llm_exporter_state_repairs_total", part="budgets") == 1
    assert value(samples, "llm_exporter_state_repairs_total", part="files") == 1
    assert value(samples, "llm_exporter_state_load_info", result="restored") == 1
    assert value(samples, "llm_requests_total") == 1  # nothing else is lost or counted twice
    assert "repaired" in caplog.text and str(state) in caplog.text
    # Lines after the restart count as usual, and the next save holds the repaired state.
    append(log, request(time.time(), cost=2.0))
    p.tick().save()
    assert p.total("llm_budget_usage_ratio", tenant_id="acme") == 0.2
    assert orjson.loads(state.read_bytes())["metrics"]["usage"]["clock"] <= time.time()


@pytest.mark.parametrize("ts", [-1e300, -1.0, 0.0, 1.7e12, 1e20, 1e300, math.inf, -math.inf, math.nan, LAST_SECOND])
def test_periods_and_budgets_take_any_time(ts):
    for period in PERIODS:
        assert period_start(ts, period) <= LAST_SECOND
        assert period_label(ts, period)
    budgets = Budgets({"acme": Budget(10.0)}, Budget(5.0, "day"))
    budgets.spend("acme", 1.0, ts)
    budgets.spend("other", 1.0, ts)
    budgets.windows["third"] = [ts, 1.0]  # whatever a state file held
    assert set(budgets.ratios(ts)) == {"acme", "other", "third"}
    assert budgets.ratios(NOW)["acme"] in (0.0, 0.1)


def test_replay_keeps_the_past_and_bounds_the_future_from_its_now(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_bytes(request(NOW - 365 * 86400, cost=1.0) + request(NOW - 3600, cost=2.0)
                        + request(NOW * 1000, cost=4.0) + request(NOW + 86400, cost=8.0))
    out = tmp_path / "out.om"
    proc = subprocess.run(  # a millisecond ts made replay sample every minute up to year 58890
        [sys.executable, "-m", "llm_log_exporter", "replay", str(history), "-o", str(out), "--step", "3600",
         "--until-now", "--prices", "off"],
        capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "future_ts 2" in proc.stderr
    last = [line for line in out.read_text().splitlines() if line.startswith("llm_cost_usd_total")][-1]
    assert float(last.split()[1]) == 3.0
    assert json.loads(history.read_text().splitlines()[0])["ts"] < NOW  # the past is history, not an error


def test_replay_does_not_order_an_input_by_a_line_from_the_future(tmp_path):
    early, later = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    early.write_bytes(request(NOW * 1000) + request(NOW - 7200) + request(NOW - 7100))  # first line: milliseconds
    later.write_bytes(request(NOW - 3600) + request(NOW - 3500))
    out = tmp_path / "out.om"
    proc = subprocess.run(
        [sys.executable, "-m", "llm_log_exporter", "replay", str(early), str(later), "-o", str(out), "--step", "60",
         "--until-now", "--prices", "off"],
        capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "max-reorder" not in proc.stderr  # a.jsonl's events come first, in time order, none late
    assert "future_ts 1" in proc.stderr
