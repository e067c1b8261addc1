"""Exhausted resources do not silence the exporter: the real daemon under a real RLIMIT_NOFILE, many
files, idle and silent TCP connections on 127.0.0.1.

* 2,000 matched files under RLIMIT_NOFILE=1024: every file is read, each line once, with a bounded
  number of descriptors (--max-open-files), and the endpoints answer.
* Out of descriptors anyway: /metrics, /healthz and /readyz still answer (a reserved descriptor, idle
  connections closed first) and the accept loop backs off instead of spinning.
* 64 and 200 idle connections (the default --web.max-connections is 64): a scrape answers at once.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess, http_get, parse_exposition, value

pytestmark = pytest.mark.slow

LINE = (json.dumps({"v": 1, "event": "request", "model": "m", "provider": "p", "prompt_tokens": 1}) + "\n").encode()


def nofile(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def wait_requests(exp: ExporterProcess, n: int, timeout: float = 60.0) -> dict:
    """Poll until ``n`` requests are counted; the 2,000-file page is parsed once, at the end."""
    deadline = time.monotonic() + timeout
    want = f'status="success",tenant_id=""}} {float(n)}'
    while True:
        code, text = exp.get("/metrics")
        if (code == 200 and want in text) or time.monotonic() > deadline:
            samples = parse_exposition(text)
            assert value(samples, "llm_requests_total") == n
            return samples
        time.sleep(0.2)


def timed_get(exp: ExporterProcess, path: str, timeout: float = 20.0) -> tuple[int, str, float]:
    started = time.monotonic()
    code, body = http_get(exp.url + path, timeout=timeout)
    return code, body, time.monotonic() - started


@contextlib.contextmanager
def idle_connections(port: int, n: int) -> Iterator[list[socket.socket]]:
    """``n`` TCP connections that never send a byte (non-blocking connects: the backlog may be full)."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            socks.append(sock)
        time.sleep(0.5)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_2000_files_under_rlimit_1024_are_each_read_once_and_the_endpoints_answer(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(2000):
        (logs / f"f{i:04d}.jsonl").write_bytes(LINE)
    args = ["--file", str(logs / "*.jsonl"), "--poll-interval", "0.2", "--log-level", "warning"]
    with ExporterProcess(args, preexec_fn=nofile(1024)) as exp:
        started = time.monotonic()
        exp.wait_ready(120)
        print(f"2000 files read in {time.monotonic() - started:.1f} s")
        samples = wait_requests(exp, 2000)
        per_file = [v for (n, labels), v in samples.items()
                    if n == "llm_exporter_lines_total" and ("result", "parsed") in labels]
        assert len(per_file) == 2000 and set(per_file) == {1}  # every file, each line once
        assert value(samples, "process_open_fds") < 1024 // 2 + 64
        assert value(samples, "llm_exporter_file_state", state="following") == 1
        for path in ("/healthz", "/readyz"):
            assert exp.get(path)[0] == 200
        # Files closed while idle are reopened by path when they grow: the next line of each is read once.
        for i in range(2000):
            with open(logs / f"f{i:04d}.jsonl", "ab") as f:
                f.write(LINE)
        started = time.monotonic()
        samples = wait_requests(exp, 4000)
        print(f"2000 appended lines read in {time.monotonic() - started:.1f} s")
        assert value(samples, "llm_exporter_lines_total") == 4000
        assert value(samples, "process_open_fds") < 1024 // 2 + 64
        exp.stop()
        assert value(samples, "llm_exporter_open_errors_total") == 0, exp.stderr[-2000:]
        assert "Too many open files" not in exp.stderr, exp.stderr[-2000:]


def test_out_of_descriptors_the_endpoints_answer_and_the_loop_does_not_spin(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_bytes(LINE)
    # 48 descriptors: the interpreter and the exporter take about 15, 60 idle connections the rest.
    with ExporterProcess(["--file", str(log)], preexec_fn=nofile(48)) as exp:
        exp.wait_ready()
        with idle_connections(exp.port, 60):
            for path in ("/metrics", "/healthz", "/readyz", "/metrics"):
                code, body, took = timed_get(exp, path)
                assert code == 200 and took < 5, (path, code, took)
            samples = parse_exposition(body)
            assert value(samples, "llm_requests_total") == 1
            assert value(samples, "llm_exporter_http_connection_errors_total", reason="fd_exhausted") > 0
            before = cpu_seconds(exp.proc.pid)
            time.sleep(2)
            assert cpu_seconds(exp.proc.pid) - before < 0.5  # no busy loop on EMFILE
        exp.stop()
        assert exp.stderr.count("out of file descriptors") <= 2  # not ten lines a second


@pytest.mark.parametrize("idle", [64, 200])
def test_idle_connections_do_not_delay_a_scrape(tmp_path: Path, idle: int) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_bytes(LINE)
    with ExporterProcess(["--file", str(log)]) as exp:  # --web.max-connections 64, --web.read-timeout 10 s
        exp.wait_ready()
        with idle_connections(exp.port, idle):
            for _ in range(3):
                code, body, took = timed_get(exp, "/metrics")
                assert code == 200 and took < 2.5, took  # 10 s (64 idle) and 27 s (200 idle) before
            assert value(parse_exposition(body), "llm_exporter_http_connection_errors_total",
                         reason="evicted_idle") >= 1


def test_a_connection_that_sends_nothing_is_closed_within_seconds(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_bytes(LINE)
    with ExporterProcess(["--file", str(log), "--web.read-timeout", "30"]) as exp:
        exp.wait_ready()
        sock = socket.create_connection(("127.0.0.1", exp.port))
        sock.settimeout(20)
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        assert time.monotonic() - started < 6  # not --web.read-timeout
        sock.close()
        # A keep-alive client that has sent a request is not cut off by that deadline.
        accepted = "llm_exporter_http_connections_accepted_total"
        before = value(exp.scrape(), accepted)
        conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10)
        for pause in (2.5, 0):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"ok\n"
            time.sleep(pause)
        conn.close()
        assert value(exp.scrape(), accepted) == before + 2  # both requests on one connection, and this scrape
