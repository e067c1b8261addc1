"""The callback on a full disk: a write cut short never corrupts the next line, the lost call is counted
in ``UsageLogger.errors`` (not in ``lines_written``), and no exception reaches the application.

A real, small tmpfs (root only: mounting needs it) and real litellm calls; plus a file-size limit
(RLIMIT_FSIZE, any user) in a child process for the case where another writer appended after the
fragment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network here; must precede import litellm

from llm_log_exporter.callback import UsageLogger
from tests.helpers import ROOT, metrics_for_files, value

litellm = pytest.importorskip("litellm")
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

PAGE = 4096  # tmpfs allocates whole pages: a line crossing into a page that cannot be had is cut short


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE test below covers the same code)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


@pytest.fixture(autouse=True)
def clean_callbacks() -> Iterator[None]:
    litellm.logging_callback_manager._reset_all_callbacks()
    yield
    litellm.logging_callback_manager._reset_all_callbacks()


def call(n: int = 1) -> None:
    for _ in range(n):
        resp = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                  mock_response="hello")
        assert resp.choices[0].message.content == "hello"


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def fill(disk: Path) -> None:
    """Take every free page of the file system."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (PAGE, 1):
            try:
                while True:
                    os.write(fd, b"x" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_a_line_cut_short_by_a_full_disk_is_taken_back_and_the_next_line_is_whole(small_disk: Path) -> None:
    log = small_disk / "usage.jsonl"
    logger = UsageLogger(log)
    litellm.callbacks = [logger]
    call()
    wait_for(lambda: logger.lines_written == 1)
    length = log.stat().st_size  # one line's length (the next ones differ by a few bytes at most)
    # Lines until the next one cannot fit in the file's last page, then no page left.
    while not 0 < PAGE - log.stat().st_size % PAGE < length - 16:
        written = logger.lines_written
        call()
        wait_for(lambda: logger.lines_written == written + 1)  # noqa: B023
    size = log.stat().st_size
    fill(small_disk)
    call()  # no exception reaches the application
    wait_for(lambda: logger.errors == 1)
    assert log.stat().st_size == size  # the fragment was taken back
    lost_at = logger.lines_written
    os.remove(small_disk / "filler")
    call(2)
    wait_for(lambda: logger.lines_written == lost_at + 2)
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert all(json.loads(line)["event"] == "request" for line in lines[:-1])  # the next line is whole
    assert len(lines) - 1 == logger.lines_written == lost_at + 2
    samples = metrics_for_files([log])
    assert value(samples, "llm_requests_total") == logger.lines_written  # the lost call only is missing
    assert value(samples, "llm_exporter_lines_total", result="invalid") == 0


CHILD = textwrap.dedent("""
    import json, os, resource, signal, sys
    sys.path.insert(0, sys.argv[2])
    from llm_log_exporter.callback import UsageLogger

    path, case = sys.argv[1], sys.argv[3]
    event = {"v": 1, "event": "request", "model": "m", "provider": "p", "prompt_tokens": 1}
    ours, other = UsageLogger(path), UsageLogger(path)  # two writers of one file (two workers of a proxy)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def space_freed(signum, frame):
        # A write past the limit is cut short, the next one fails with EFBIG and raises SIGXFSZ. Its handler
        # runs between that failure and our writer's next step: room comes back and, in the race case,
        # another writer appends a line right after our fragment.
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        if case == "other-appends":
            other.write_event(event)

    signal.signal(signal.SIGXFSZ, space_freed)
    ours.write_event(event)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 20, hard))
    ours.write_event(event)  # cut short after 20 bytes: lost
    ours.write_event(event)
    print(json.dumps({"errors": ours.errors, "written": ours.lines_written + other.lines_written}))
""")


@pytest.mark.parametrize("case", ["alone", "other-appends"])
def test_a_short_write_never_glues_the_next_line(tmp_path: Path, case: str) -> None:
    log = tmp_path / "usage.jsonl"
    child = subprocess.run([sys.executable, "-c", CHILD, str(log), str(ROOT), case], capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == 0, child.stderr  # nothing reached the "application"
    result = json.loads(child.stdout)
    assert result["errors"] == 1  # the call cut short, counted as lost
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b"" and json.loads(lines[-2])["event"] == "request"  # our next line is whole
    samples = metrics_for_files([log])
    if case == "alone":
        assert len(lines) - 1 == result["written"] == 2  # the fragment was cut off at once
        assert value(samples, "llm_requests_total") == 2
        assert value(samples, "llm_exporter_lines_total", result="invalid") == 0
    else:
        # The other writer's line landed on our fragment before it could be cut: that line is lost (one
        # invalid line, the documented limit with several writers on a full disk); ours stays whole.
        assert value(samples, "llm_requests_total") == result["written"] - 1 == 2
        assert value(samples, "llm_exporter_invalid_lines_total", reason="not_json") == 1
