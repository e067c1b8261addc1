"""The real daemon as a subprocess, scraped over HTTP while its file changes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ROOT, ExporterProcess, append, http_get, value
from tests.helpers import request_line as line

pytestmark = pytest.mark.slow




def test_follow_append_partial_rotate_truncate(log: Path) -> None:
    append(log, line(tokens=1) * 3)
    with ExporterProcess(["--file", str(log), "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        exp.wait_value("llm_tokens_total", 3, type="input")
        append(log, line(tokens=10))
        exp.wait_value("llm_tokens_total", 13, type="input")
        # A partial line is held until its newline arrives, never parsed half-way.
        whole = line(tokens=100)
        append(log, whole[:15])
        exp.wait_value("llm_exporter_read_bytes_total", log.stat().st_size)
        assert value(exp.scrape(), "llm_exporter_lines_total", result="invalid") == 0
        append(log, whole[15:])
        exp.wait_value("llm_tokens_total", 113, type="input")
        # Rotation by rename + create: lines written to the old file after the rename still count.
        os.rename(log, log.with_name("usage.jsonl.1"))
        append(log.with_name("usage.jsonl.1"), line(tokens=1000))
        append(log, line(tokens=10000))
        exp.wait_value("llm_tokens_total", 11113, type="input")
        exp.wait_value("llm_exporter_rotations_total", 1)
        # Truncation in place: the file starts again from byte 0.
        with open(log, "wb"):
            pass
        append(log, line(tokens=100000))
        exp.wait_value("llm_tokens_total", 111113, type="input")
        assert value(exp.scrape(), "llm_exporter_truncations_total") >= 1
        assert value(exp.scrape(), "llm_requests_total") == 8
        assert value(exp.scrape(), "llm_exporter_lines_total", result="invalid") == 0
    assert exp.proc.returncode == 0, exp.stderr


def test_a_scrape_shows_every_line_written_before_it_began(log: Path) -> None:
    """Polling only, with a timer that never fires during the test: each line is read because a scrape
    asked for the files to be read up to its start (--scrape-catch-up); with 0 it is not there yet."""
    append(log, line(tokens=1))
    with ExporterProcess(["--file", str(log), "--poll", "--poll-interval", "600"]) as exp:
        exp.wait_ready()
        for tokens, total in ((10, 11), (100, 111), (1000, 1111)):
            append(log, line(tokens=tokens))
            assert value(exp.scrape(), "llm_tokens_total", type="input") == total  # the very next scrape
    log.write_bytes(line(tokens=1))
    with ExporterProcess(["--file", str(log), "--poll", "--poll-interval", "600", "--scrape-catch-up", "0"]) as exp:
        exp.wait_ready()
        append(log, line(tokens=10))
        time.sleep(0.5)
        assert value(exp.scrape(), "llm_tokens_total", type="input") == 1  # read at the next timer only


def test_bad_lines_counted_while_following(log: Path) -> None:
    log.write_bytes(b"")
    with ExporterProcess(["--file", str(log), "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        append(log, line(tokens=2) + b"not json\n" + line(tokens="3") + b"[]\n" + line(tokens=5))
        exp.wait_value("llm_tokens_total", 7, type="input")
        samples = exp.wait_value("llm_exporter_lines_total", 3, file=str(log), result="invalid")
        assert value(samples, "llm_requests_total") == 2
    assert f"{log}:2" in exp.stderr


def test_file_absent_at_start_is_waited_for(log: Path) -> None:
    with ExporterProcess(["--file", str(log), "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        log.write_bytes(line(tokens=4))
        exp.wait_value("llm_tokens_total", 4, type="input")


def test_from_end_skips_history(log: Path) -> None:
    log.write_bytes(line(tokens=1) * 5)
    with ExporterProcess(["--file", str(log), "--from-end", "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        append(log, line(tokens=9))
        exp.wait_value("llm_tokens_total", 9, type="input")


def test_100k_lines_ready_with_exact_sums(log: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import generate

    generate.write(str(log), 100_000, seed=3)
    want_in = want_out = 0
    want_cost = 0.0
    failures = 0

    for event in generate.events(100_000, seed=3):
        want_in += event["prompt_tokens"]
        want_out += event["completion_tokens"]
        want_cost += event["cost_usd"] or 0.0
        failures += event["status"] == "failure"
    # --prices off: the 1 % of lines without a cost stay unpriced, so the sum is the carried costs
    with ExporterProcess(["--file", str(log), "--prices", "off"]) as exp:
        exp.wait_ready(timeout=60)
        samples = exp.scrape()
        assert value(samples, "llm_requests_total") == 100_000
        assert value(samples, "llm_requests_total", status="failure") == failures
        assert value(samples, "llm_tokens_total", type="input") == want_in
        assert value(samples, "llm_tokens_total", type="output") == want_out
        assert abs(value(samples, "llm_cost_usd_total") - want_cost) < 1e-6
        assert value(samples, "llm_request_duration_seconds_count") == 100_000
        assert value(samples, "llm_exporter_ready") == 1


def test_endpoints_and_methods(log: Path) -> None:
    log.write_bytes(line())
    with ExporterProcess(["--file", str(log)]) as exp:
        exp.wait_ready()
        assert exp.get("/healthz") == (200, "ok\n")
        assert exp.get("/nope")[0] == 404
        code, body = http_get(exp.url + "/metrics", headers={"Accept": "application/openmetrics-text"})
        assert code == 200 and body.endswith("# EOF\n")
        request = urllib.request.Request(exp.url + "/metrics", method="POST", data=b"x")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=2)
        assert err.value.code == 405


def test_sigint_and_sigterm_exit_zero(log: Path) -> None:
    log.write_bytes(line())
    for sig in (signal.SIGTERM, signal.SIGINT):
        with ExporterProcess(["--file", str(log)]) as exp:
            exp.wait_ready()
            assert exp.stop(sig) == 0, exp.stderr


def test_shutdown_delay_serves_the_last_usage_then_exits_zero(log: Path) -> None:
    """After SIGTERM: /readyz 503, /metrics still served and still following the file for the delay."""
    log.write_bytes(line(tokens=1))
    delay = 4.0
    with ExporterProcess(["--file", str(log), "--shutdown-delay", str(delay)]) as exp:
        exp.wait_ready()
        signalled = time.monotonic()
        exp.proc.send_signal(signal.SIGTERM)
        exp.wait_until(lambda: exp.get("/readyz") == (503, "shutting down\n"), 5, "readyz 503 after SIGTERM")
        append(log, line(tokens=2))  # the app's last call, written after the exporter got SIGTERM
        exp.wait_value("llm_tokens_total", 3, timeout=delay, type="input")
        assert exp.get("/healthz") == (200, "ok\n")
        assert exp.proc.wait(delay + 10) == 0
        took = time.monotonic() - signalled
    assert delay <= took < delay + 8, took
    assert "serving /metrics for 4 more seconds" in exp.stderr


def test_second_signal_ends_the_shutdown_delay(log: Path) -> None:
    log.write_bytes(line())
    with ExporterProcess(["--file", str(log)], env={"LLM_LOG_EXPORTER_SHUTDOWN_DELAY": "600"}) as exp:
        exp.wait_ready()
        exp.proc.send_signal(signal.SIGTERM)
        exp.wait_until(lambda: exp.get("/readyz")[0] == 503, 5, "readyz 503 after SIGTERM")
        started = time.monotonic()
        exp.proc.send_signal(signal.SIGINT)
        assert exp.proc.wait(10) == 0
        assert time.monotonic() - started < 5


def test_env_vars_configure_every_option(log: Path) -> None:
    log.write_bytes(line(tokens=6))
    env = {"LLM_LOG_EXPORTER_FILE": str(log), "LLM_LOG_EXPORTER_NAMESPACE": "aigateway"}
    with ExporterProcess([], env=env) as exp:
        exp.wait_ready()
        assert value(exp.scrape(), "aigateway_tokens_total", type="input") == 6


def test_port_in_use_is_a_clear_one_line_error(log: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "llm_log_exporter", "--file", str(log), "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_option_is_a_clear_error(log: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "llm_log_exporter", "--file", str(log), "--buckets", "a,b"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert "--buckets" in proc.stderr and "Traceback" not in proc.stderr


def test_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "llm_log_exporter", "--version"], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    from llm_log_exporter import __version__

    assert proc.returncode == 0 and __version__ in proc.stdout


def test_a_stop_signal_during_the_first_read_ends_it_after_the_read_in_progress(tmp_path: Path) -> None:
    """A first read of a file written faster than it is read would never end, and SIGTERM waited for it
    (seen: 4 of 12 daemons started beside a fast writer ignored SIGTERM). The stop now ends the read."""
    from llm_log_exporter.daemon import Config, Exporter

    log = tmp_path / "usage.jsonl"
    log.write_bytes(line(tokens=1) * 20_000)  # several MiB: several reads of 1 MiB
    exporter = Exporter(Config(files=[str(log)], host="127.0.0.1", port=0, state_file=str(tmp_path / "state")))
    batches: list[int] = []
    on_lines = exporter.ingestor.on_lines

    def first_batch_then_stop(path: str, lines: list[bytes], first_lineno: int, first_offset: int) -> None:
        on_lines(path, lines, first_lineno, first_offset)
        batches.append(len(lines))
        if len(batches) == 1:
            exporter.request_stop("SIGTERM")  # what the signal handler calls, on the same thread

    exporter.ingestor.on_lines = first_batch_then_stop  # type: ignore[method-assign]
    exporter.serve()  # returns: the stop ended the first read, then the run
    assert len(batches) == 1 and 0 < batches[0] < 20_000
    assert exporter.store.usage.records  # what was read is counted
