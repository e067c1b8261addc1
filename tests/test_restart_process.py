"""The real daemon killed mid-stream (SIGTERM, SIGKILL) while a writer keeps appending, then restarted with
the same --state-file: the final counters equal exactly what was written, no line lost or counted twice."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess, value

pytestmark = pytest.mark.slow


class Writer(threading.Thread):
    """Appends numbered lines, each in two writes (so kills land mid-line), and can rotate by rename."""

    def __init__(self, path: Path, rate: float = 2000.0) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.rate = rate
        self.n = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def run(self) -> None:
        started = time.monotonic()
        while not self.done.is_set():
            with self.lock:
                i = self.n + 1
                data = (json.dumps({"v": 1, "event": "request", "model": "m", "provider": "p",
                                    "prompt_tokens": i, "completion_tokens": i * i}) + "\n").encode()
                os.write(self.fd, data[:20])
                os.write(self.fd, data[20:])
                self.n = i
            ahead = self.n / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def rotate(self) -> None:
        """logrotate ``create``: rename, keep writing to the old fd a little, then reopen the path."""
        with self.lock:
            os.rename(self.path, f"{self.path}.1")
        time.sleep(0.05)
        with self.lock:
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def stop(self) -> tuple[int, int, int]:
        self.done.set()
        self.join()
        os.close(self.fd)
        n = self.n
        return n, n * (n + 1) // 2, n * (n + 1) * (2 * n + 1) // 6


def daemon(log: Path, state: Path) -> ExporterProcess:
    exp = ExporterProcess(["--file", str(log), "--state-file", str(state), "--state-interval", "0.2",
                           "--poll-interval", "0.1", "--log-level", "warning"])
    exp.wait_ready()
    return exp


def assert_exact(exp: ExporterProcess, n: int, sum_i: int, sum_sq: int) -> None:
    samples = exp.wait_value("llm_requests_total", n, timeout=30)
    assert value(samples, "llm_tokens_total", type="input") == sum_i
    assert value(samples, "llm_tokens_total", type="output") == sum_sq
    assert value(samples, "llm_exporter_lines_total", result="invalid") == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_kill_mid_stream_and_restart_counts_every_line_once(tmp_path: Path, sig: int) -> None:
    log, state = tmp_path / "usage.jsonl", tmp_path / "state.json"
    writer = Writer(log)
    writer.start()
    try:
        exp = daemon(log, state)
        exp.wait_until(lambda: value(exp.scrape(), "llm_exporter_state_saves_total", result="ok") >= 3, 10)
        exp.wait_until(lambda: value(exp.scrape(), "llm_requests_total") > 500, 10)
        code = exp.stop(sig)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), exp.stderr
        time.sleep(0.3)  # lines keep arriving while the exporter is down
        exp = daemon(log, state)
        with exp:
            assert value(exp.scrape(), "llm_exporter_state_load_info", result="restored") == 1
            time.sleep(0.5)
            assert_exact(exp, *writer.stop())
    finally:
        writer.done.set()


def test_sigkill_while_rotated_and_restart_counts_every_line_once(tmp_path: Path) -> None:
    log, state = tmp_path / "usage.jsonl", tmp_path / "state.json"
    writer = Writer(log)
    writer.start()
    try:
        exp = daemon(log, state)
        exp.wait_until(lambda: value(exp.scrape(), "llm_exporter_state_saves_total", result="ok") >= 3, 10)
        exp.stop(signal.SIGKILL)
        writer.rotate()  # the old file gets lines after the last save, then the writer moves on
        time.sleep(0.2)
        with daemon(log, state) as exp:
            time.sleep(0.3)
            assert_exact(exp, *writer.stop())
            assert value(exp.scrape(), "llm_exporter_rotations_total") == 1
    finally:
        writer.done.set()
