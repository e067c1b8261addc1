"""SIGTERM as PID 1 (what `docker stop` / a pod deletion sends): the exporter exits 0 promptly.

The kernel drops a signal sent to a PID namespace's init unless init installed a handler for it,
so a Python PID 1 without a handler ignores SIGTERM and is SIGKILLed after the grace period. Here
the daemon runs as PID 1 of a new PID namespace (``unshare``, as root), exactly as in a container.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, http_get

pytestmark = pytest.mark.slow


def _can_unshare() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return False
    return subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode == 0


PID_NAMESPACE = _can_unshare()


def _child_of(pid: int, timeout: float = 10.0) -> int:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = path.read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.02)
    raise AssertionError("unshare never forked its child")


@contextmanager
def as_pid1(argv: Sequence[str]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run argv as PID 1 of a new PID namespace; yield the wrapper and the host pid of that PID 1."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Not root: a direct child, the closest setting available.
    wrap = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] if PID_NAMESPACE else []
    cmd = [*wrap, *argv]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        target = _child_of(proc.pid) if PID_NAMESPACE else proc.pid
        if PID_NAMESPACE:
            nspid = next(line for line in Path(f"/proc/{target}/status").read_text().splitlines()
                         if line.startswith("NSpid:"))
            assert nspid.split()[-1] == "1", nspid  # it really is PID 1 in its namespace
        yield proc, target
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not PID_NAMESPACE, reason="needs root and unshare (util-linux) for a PID namespace")
def test_the_setting_is_pid1_like() -> None:
    """Control: a PID 1 without a handler really ignores SIGTERM here, so the next test can fail."""
    with as_pid1([sys.executable, "-c", "import time; time.sleep(60)"]) as (proc, pid1):
        time.sleep(0.3)
        os.kill(pid1, signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(1.5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_exporter_as_pid1_stops_promptly_with_exit_0(tmp_path: Path, sig: int) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_text('{"v": 1, "event": "request", "model": "m"}\n')
    port = free_port()
    argv = [sys.executable, "-m", "llm_log_exporter", "--file", str(log), "--host", "127.0.0.1", "--port", str(port)]
    with as_pid1(argv) as (proc, pid1):
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_get(f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "exporter never became ready"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        started = time.monotonic()
        os.kill(pid1, sig)
        code = proc.wait(10)
        elapsed = time.monotonic() - started
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, stderr
    assert elapsed < 2.0, f"took {elapsed:.2f}s to stop"
