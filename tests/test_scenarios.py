"""Torture scenarios through the whole pipeline (tailer → parser → metrics), ticked by hand.

The tailer-level twins of most scenarios are in test_tailer.py; these check what reaches the metrics.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.helpers import ExporterProcess, value
from tests.pipeline import Pipeline, append, line, lines


def test_crlf_empty_and_invalid_utf8_lines(log):
    append(log, line("a").replace(b"\n", b"\r\n") + b"\n\r\n" + b'{"v":1,"model":"\xff\xfe"}\n' + line("b"))
    p = Pipeline(log).tick()
    assert p.counted() == {"a": 1, "b": 1}
    assert p.total("llm_exporter_lines_total", result="skipped") == 2
    assert p.total("llm_exporter_invalid_lines_total", reason="not_json") == 1


def test_line_split_inside_multibyte_char_and_crlf_reaches_metrics_once(log):
    whole = '{"v":1,"model":"é-model"}\r\n'.encode()
    cut = whole.index("é".encode()) + 1
    p = Pipeline(log)
    for piece in (whole[:cut], whole[cut:-1], whole[-1:]):
        append(log, piece)
        p.tick()
        assert p.total("llm_exporter_lines_total", result="invalid") == 0
    assert p.counted() == {"é-model": 1}


def test_oversized_line_counted_and_dropped_to_next_newline(log):
    append(log, line("a") + b'{"v":1,"model":"big","pad":"' + b"x" * 500 + b'"}\n' + line("b"))
    p = Pipeline(log, max_line_bytes=100).tick()
    assert p.counted() == {"a": 1, "b": 1}
    assert p.total("llm_exporter_invalid_lines_total", reason="oversized") == 1


@pytest.mark.parametrize("how", ["truncate", "delete", "shutdown"])
def test_unterminated_final_line_never_parsed(log, how):
    append(log, line("a") + line("b")[:-5])
    p = Pipeline(log).tick()
    if how == "truncate":
        os.truncate(log, 0)
    elif how == "delete":
        os.unlink(log)
    else:
        p.restart()
    p.tick()
    assert p.counted() == {"a": 1}
    if how != "shutdown":  # at shutdown it is simply held (and resumed with --state-file)
        assert p.total("llm_exporter_invalid_lines_total", reason="incomplete") == 1
    assert p.total("llm_exporter_invalid_lines_total", reason="not_json") == 0


def test_lag_bytes_and_watched_files(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    append(a, lines("a", 1))
    p = Pipeline(tmp_path / "*.jsonl").tick()
    assert p.total("llm_exporter_watched_files") == 1
    append(a, b"0123456789")
    append(b, lines("b", 1))
    assert p.total("llm_exporter_lag_bytes", file=str(a)) == 10
    p.tick()
    assert p.total("llm_exporter_watched_files") == 2
    assert p.total("llm_exporter_lag_bytes", file=str(a)) == 0  # the partial line is read and held
    os.unlink(b)
    p.tick()
    assert p.total("llm_exporter_watched_files") == 1


def test_inotify_silent_timer_still_delivers(log):
    """Queue overflow, NFS or a bind mount: no events arrive; the periodic wake alone keeps us correct."""
    from llm_log_exporter.daemon import Config, Exporter

    append(log, b"")
    exp = Exporter(Config(files=[str(log)], poll=False, poll_interval=0.2))
    exp.tailer.start_watching()
    exp.tailer.poll_once()
    observer = exp.tailer._watches._observer
    assert observer is not None
    observer.unschedule_all()  # from now on inotify says nothing
    stop = threading.Event()
    thread = threading.Thread(target=exp.tailer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        append(log, lines("a", 3))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and exp.store.file(str(log)).lines["parsed"] < 3:
            time.sleep(0.05)
        assert exp.store.file(str(log)).lines["parsed"] == 3
    finally:
        stop.set()
        thread.join(5)
        exp.tailer.close()


@pytest.mark.slow
def test_poll_mode_daemon_follows_rotation_without_inotify(log, tmp_path):
    append(log, lines("a", 2))
    with ExporterProcess(["--file", f"{log}*", "--poll", "--poll-interval", "0.1"]) as exp:
        exp.wait_ready()
        assert value(exp.scrape(), "llm_exporter_watched_files") == 1
        os.rename(log, f"{log}.1")
        append(f"{log}.1", lines("a", 1, start=2))
        append(log, lines("b", 2))
        samples = exp.wait_value("llm_requests_total", 5)
        assert value(samples, "llm_exporter_watched_files") == 2
        assert value(samples, "llm_exporter_rotations_total", file=str(log)) == 1
