"""The wake-only inotify watcher: wakes on every change a tailer cares about, merges bursts, stops cleanly."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from llm_log_exporter.tailer import Tailer
from llm_log_exporter.tailing import watches as watches_mod
from llm_log_exporter.tailing.inotify import InotifyWaker
from tests.test_tailer import Rec


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def dispatch(self, event: object) -> None:
        self.count += 1
        self.event.set()


@pytest.fixture
def waker():
    w = InotifyWaker(interval=0.01)
    w.start()
    yield w
    w.stop()
    w.join(5)


def expect_wake(counter: Counter, action, what: str) -> None:
    time.sleep(0.05)  # let earlier wakes settle
    counter.event.clear()
    action()
    assert counter.event.wait(5), f"no wake-up for {what}"


def test_wakes_on_every_change_a_tailer_needs(waker, tmp_path: Path) -> None:
    counter = Counter()
    waker.schedule(counter, str(tmp_path))
    log = tmp_path / "usage.jsonl"
    expect_wake(counter, lambda: log.write_bytes(b""), "create")
    expect_wake(counter, lambda: log.open("ab").write(b"x\n"), "append")
    expect_wake(counter, lambda: os.truncate(log, 0), "truncate")
    expect_wake(counter, lambda: log.rename(tmp_path / "usage.jsonl.1"), "rename away")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "new").write_bytes(b"y\n")
    expect_wake(counter, lambda: (tmp_path / "elsewhere" / "new").rename(log), "rename into place")
    expect_wake(counter, log.unlink, "delete")


def test_bursts_merge_into_few_wakes(waker, tmp_path: Path) -> None:
    """A writer opening/appending/closing per line: far fewer wakes than lines (kernel merges IN_MODIFY)."""
    counter = Counter()
    log = tmp_path / "usage.jsonl"
    log.write_bytes(b"")
    waker.schedule(counter, str(tmp_path))
    lines = 5_000
    started = time.monotonic()
    for _ in range(lines):
        with open(log, "ab") as f:
            f.write(b'{"v":1}\n')
    elapsed = time.monotonic() - started
    time.sleep(0.1)
    assert counter.count >= 1
    # at most one wake per interval (plus slack for scheduling), never one per line
    assert counter.count <= elapsed / 0.01 + 10 and counter.count < lines / 5, (counter.count, elapsed)


def test_unschedule_stops_wakes_and_tolerates_deleted_dirs(waker, tmp_path: Path) -> None:
    counter = Counter()
    gone = tmp_path / "gone"
    gone.mkdir()
    watch = waker.schedule(counter, str(tmp_path))
    gone_watch = waker.schedule(counter, str(gone))
    waker.unschedule(watch)
    gone.rmdir()  # the kernel drops this watch itself
    time.sleep(0.1)
    waker.unschedule(gone_watch)  # must not raise
    counter.event.clear()
    (tmp_path / "after").write_bytes(b"z\n")
    assert not counter.event.wait(0.3)


def test_schedule_missing_dir_raises_oserror(waker, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        waker.schedule(Counter(), str(tmp_path / "missing"))


def test_stop_ends_the_thread_promptly(tmp_path: Path) -> None:
    w = InotifyWaker()
    w.start()
    w.schedule(Counter(), str(tmp_path))
    started = time.monotonic()
    w.stop()
    w.join(5)
    assert not w._thread.is_alive() and time.monotonic() - started < 2


def test_tailer_falls_back_to_watchdog_without_inotify(monkeypatch, tmp_path: Path) -> None:
    def unavailable(*_: object) -> InotifyWaker:
        raise OSError(38, "inotify unavailable")

    monkeypatch.setattr(watches_mod, "InotifyWaker", unavailable)
    log = tmp_path / "usage.jsonl"
    log.write_bytes(b"")
    rec = Rec()
    t = Tailer([str(log)], rec, poll_interval=30)
    t.start_watching()
    stop = threading.Event()
    thread = threading.Thread(target=t.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert isinstance(t._watches._observer, watches_mod.BaseObserver)
        time.sleep(0.2)
        with open(log, "ab") as f:
            f.write(b"hello\n")
        assert rec.got_lines.wait(5), "watchdog's wake-up should deliver within 5 s (the timer is 30 s)"
        assert rec.texts() == [b"hello"]
    finally:
        stop.set()
        thread.join(5)
        t.close()
