"""A scrape never fails because one family does: the family is left out, logged and counted in
``llm_exporter_scrape_errors_total``, and every other family is served.

The exporter runs in-process with its real HTTP server on 127.0.0.1 so a fault can be planted in one
owner of values; the scrape goes over HTTP with Prometheus' own Accept header and in the text format.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_log_exporter.daemon import Config, Exporter
from tests.helpers import http_get, parse_exposition, request_line, value

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.fixture
def exporter(log: Path) -> Iterator[Exporter]:
    log.write_bytes(request_line("m", 7) + request_line("n", 5))
    exp = Exporter(Config(files=[str(log)], host="127.0.0.1", port=0, poll=True, poll_interval=0.05))
    exp.bind()
    thread = threading.Thread(target=exp.serve, daemon=True)
    thread.start()
    assert exp.store.ready.wait(10)
    yield exp
    exp.stop()
    thread.join(10)


def get(exp: Exporter, accept: str) -> tuple[int, str]:
    assert exp.server is not None
    host, port = exp.server.server_address[:2]
    return http_get(f"http://{host}:{port}/metrics", headers={"Accept": accept})


def broken(*_: object) -> None:
    raise RuntimeError("planted fault")


@pytest.mark.parametrize("accept", [PROMETHEUS_ACCEPT, "text/plain"], ids=["openmetrics", "text"])
def test_a_failing_owner_leaves_its_families_out_and_the_rest_is_served(exporter, accept, caplog,
                                                                       monkeypatch) -> None:
    monkeypatch.setattr(exporter.store.usage, "views", broken)  # the usage snapshot raises
    with caplog.at_level(logging.WARNING, logger="llm_log_exporter"):
        for _ in range(3):
            code, body = get(exporter, accept)
            assert code == 200  # the connection used to drop without a response
    text = body.replace("# EOF\n", "")
    samples = parse_exposition(text)
    assert "llm_requests_total" not in text and "llm_tokens_total" not in text
    assert value(samples, "llm_exporter_lines_total", result="parsed") == 2  # other owners are served
    assert value(samples, "llm_exporter_http_connections_accepted_total") >= 3
    assert value(samples, "process_cpu_seconds_total") > 0
    assert value(samples, "llm_exporter_scrape_errors_total", family="llm_requests") == 3
    assert value(samples, "llm_exporter_scrape_errors_total", family="llm_budget_usage_ratio") == 3
    errors = [r for r in caplog.records if "planted fault" in r.getMessage()]
    assert errors and errors[0].exc_info is not None  # the first time with its traceback
    assert len(errors) <= 2  # then at most once a second


def test_a_failing_family_of_another_owner_and_recovery(exporter, monkeypatch) -> None:
    monkeypatch.setattr(exporter.tailer, "lag_bytes", broken)
    code, body = get(exporter, "text/plain")
    samples = parse_exposition(body)
    assert code == 200 and value(samples, "llm_requests_total", model="m") == 1
    assert value(samples, "llm_exporter_scrape_errors_total", family="llm_exporter_lag_bytes") == 1
    monkeypatch.undo()
    code, body = get(exporter, "text/plain")
    samples = parse_exposition(body)
    assert value(samples, "llm_exporter_lag_bytes") == 0  # served again once it works
    assert value(samples, "llm_exporter_scrape_errors_total", family="llm_exporter_lag_bytes") == 1
