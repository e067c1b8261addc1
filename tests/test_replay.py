"""Replay: the OpenMetrics layout, equality with the live exporter, windows, ordering, the guard,
progress output and the command line."""

from __future__ import annotations

import gzip
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_log_exporter.daemon import Config, replay_history
from llm_log_exporter.history.replay import ReplayOptions
from llm_log_exporter.history.sources import expand
from tests.helpers import ROOT, metrics_for_files
from tests.history import BUDGETS, HISTORY_FILES, T0, read_openmetrics, run_cli

NOW = T0 + 30 * 86400  # a wall clock well after the fixture


def run(paths, config: Config | None = None, now: float = NOW, **options) -> tuple[str, object]:
    out = io.BytesIO()
    result = replay_history(config or Config(files=[]), expand([str(p) for p in paths]), out, ReplayOptions(**options),
                    now=now)
    return out.getvalue().decode(), result


def line(ts: float | None, tokens: int = 1, model: str = "m", **extra: object) -> str:
    obj = {"v": 1, "event": "request", "model": model, "provider": "p", "prompt_tokens": tokens, **extra}
    if ts is not None:
        obj["ts"] = ts
    return json.dumps(obj) + "\n"


def last_values(series) -> dict:
    return {key: points[-1][1] for key, points in series.items()}


def at(points: list[tuple[int, float]], when: int, lookback: int = 300) -> float | None:
    """What an instant query at ``when`` sees: the newest sample at or before it, within the lookback."""
    seen = [value for ts, value in points if when - lookback <= ts <= when]
    return seen[-1] if seen else None


def test_layout_is_valid_and_spilling_changes_nothing() -> None:
    config = Config(files=[], budgets=str(BUDGETS))
    text, result = run(HISTORY_FILES, config)
    families, series = read_openmetrics(text)
    assert families[0] == "llm_requests"
    assert {"llm_request_duration_seconds", "llm_budget_usage_ratio", "llm_circuit_breaker_state"} <= set(families)
    assert result.writer.runs == 0
    spilled, spilled_result = run(HISTORY_FILES, config, run_bytes=200_000)
    assert spilled_result.writer.runs > 5  # the merge of many runs ...
    assert spilled == text  # ... writes the very same bytes
    steps = {ts for points in series.values() for ts, _ in points}
    assert all(ts % 60 == 0 for ts in steps)
    assert max(steps) - min(steps) > 5 * 3600


def test_bucket_counts_beyond_the_table_of_number_texts_are_written_alike(monkeypatch) -> None:
    from llm_log_exporter.history import render

    text, _ = run(HISTORY_FILES)
    monkeypatch.setattr(render, "MAX_NUMBER_TEXTS", 3)  # counts of 3 and more made by str() each time
    beyond, _ = run(HISTORY_FILES)
    assert beyond == text
    assert any(value >= 3 for name, points in read_openmetrics(text)[1].items() if "_bucket" in str(name)
               for _, value in points)


def test_a_first_step_with_thousands_of_calls_of_one_series(tmp_path: Path) -> None:
    log = tmp_path / "busy.jsonl"
    log.write_text("".join(line(T0 + i / 1000, duration_s=0.3) for i in range(3000)))
    text, _ = run([log])
    series = read_openmetrics(text)[1]
    counts = [points for name, points in series.items() if "llm_request_duration_seconds_count" in str(name)]
    assert [value for _, value in counts[0]][-1] == 3000


def test_last_samples_equal_the_live_exporter(tmp_path: Path) -> None:
    """The same code counts: a replay's final values are what the daemon serves for the files."""
    plain = tmp_path / "b.jsonl"
    plain.write_bytes(gzip.decompress(HISTORY_FILES[1].read_bytes()))
    files = [HISTORY_FILES[0], plain]
    options = {"budgets": str(BUDGETS), "namespace": "aigateway", "buckets": (0.5, 1.0, 3.0), "breaker_failures": 2}
    text, _ = run(files, Config(files=[], **options))
    _, series = read_openmetrics(text)
    live = metrics_for_files(files, **options)
    replayed = last_values(series)
    usage = {k: v for k, v in live.items() if k[0].startswith("aigateway_")}
    assert len(usage) > 50
    # Live reads file a, then file b; replay applies both in time order: the same sums, only the
    # order of float additions differs (counts, being integers, are exactly equal).
    assert replayed == pytest.approx(usage, rel=1e-12, abs=1e-15)
    assert {k: v for k, v in replayed.items() if v == int(v)} == {k: v for k, v in usage.items() if v == int(v)}


def test_label_limits_apply(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(line(T0 + 1, 1, model="a") + line(T0 + 2, 2, model="b") + line(T0 + 3, 4, model="c"))
    _, series = read_openmetrics(run([log], Config(files=[], max_models=2))[0])
    other = series[("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "__other__"),
                                                   ("type", "input")}))]
    assert other[-1][1] == 4


def test_sample_at_t_holds_events_before_t_and_series_start_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(line(T0 + 10, 1) + line(T0 + 60, 10) + line(T0 + 119.5, 100) + line(T0 + 600, 1000, model="n"))
    text, result = run([log])
    _, series = read_openmetrics(text)
    m = series[("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "m"),
                                               ("type", "input")}))]
    # Changes at their step; an unchanged series again only as often as the 5 min lookback needs.
    assert m[:4] == [(T0, 0.0), (T0 + 60, 1.0), (T0 + 120, 111.0), (T0 + 420, 111.0)]
    assert m[-1] == (T0 + 660, 111.0)  # every series ends at the step after the last event
    assert [at(m, T0 + 60 * i) for i in range(12)] == [0.0, 1.0] + [111.0] * 10
    n = series[("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "n"),
                                               ("type", "input")}))]
    assert n == [(T0 + 600, 0.0), (T0 + 660, 1000.0)]  # a 0 point where the series was absent before
    assert result.writer.first_ts == T0 and result.writer.last_ts == T0 + 660


def test_window_start_counts_history_but_samples_only_from_start(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text("".join(line(T0 + i * 60 + 1, 1) for i in range(60)))
    text, result = run([log], start=T0 + 1800, end=T0 + 2700 + 30)
    _, series = read_openmetrics(text)
    points = series[("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "m"),
                                                    ("type", "input")}))]
    assert points[0] == (T0 + 1800, 30.0)  # cumulative from the first line, no 0 point before it
    assert points[-2] == (T0 + 2700, 45.0)
    assert [at(points, T0 + 1800 + 60 * i) for i in range(16)] == [30.0 + i for i in range(16)]
    assert points[-1] == (T0 + 2730, 46.0)  # the last sample is clamped to --end and holds all before it
    assert result.after_end == 60 - 46
    assert result.warnings == []


def test_end_fills_samples_up_to_end_and_until_now_up_to_now(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(line(T0 + 1, 5))
    key = ("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "m"), ("type", "input")}))
    _, series = read_openmetrics(run([log], end=T0 + 600)[0])
    assert [ts for ts, _ in series[key]] == [T0, T0 + 60, T0 + 360, T0 + 600]
    _, series = read_openmetrics(run([log], end=T0 + 3600)[0])
    assert [ts for ts, _ in series[key]] == [T0, T0 + 60, *range(T0 + 360, T0 + 3600, 300), T0 + 3600]
    _, series = read_openmetrics(run([log], until_now=True, now=T0 + 300)[0])
    assert series[key][-1] == (T0 + 300, 5.0)


def test_out_of_order_lines_are_sorted_and_late_ones_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_log_exporter.history import sources as inputs

    monkeypatch.setattr(inputs, "CHUNK", 16)  # one line per read: lines are released one by one
    log = tmp_path / "u.jsonl"
    # +100 is 200 s behind +300: sorted in by the reorder buffer (300 s). +400 comes after +4000
    # was already released: late, so it is counted at the next sample instead of its own.
    log.write_text(line(T0 + 300, 1) + line(T0 + 100, 10) + line(T0 + 4000, 100) + line(T0 + 4400, 1000)
                   + line(T0 + 400, 10000) + line(T0 + 4500, 100000))
    text, result = run([log], max_reorder=300)
    _, series = read_openmetrics(text)
    samples = series[("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "m"),
                                                     ("type", "input")}))]
    points = {t: at(samples, t) for t in range(T0, T0 + 4561, 60)}
    assert points[T0 + 120] == 10 and points[T0 + 360] == 11
    assert points[T0 + 420] == 11 and points[T0 + 3960] == 11  # the line at +400 missed its own samples ...
    assert points[T0 + 4020] == 10111  # ... and was counted with the next one, not dropped
    assert points[T0 + 4440] == 11111
    assert samples[-1] == (T0 + 4560, 111111)
    assert result.late == 1
    assert any("--max-reorder" in w for w in result.warnings)


def test_files_are_merged_in_time_and_opened_only_when_needed(tmp_path: Path) -> None:
    """A directory of time-sliced dumps: 300 files, but only a couple open at any time."""
    folder = tmp_path / "dumps"
    folder.mkdir()
    for i in range(300):
        (folder / f"part-{i:04d}.jsonl").write_text(line(T0 + i * 30 + 5, 1) + line(T0 + i * 30 + 20, 1))
    fds = []  # open file descriptors each time another input is opened
    from llm_log_exporter.history import timeline

    original = timeline.Timeline._source_chunks

    def counting(self, source):
        fds.append(len(os.listdir("/proc/self/fd")))
        return original(self, source)

    timeline.Timeline._source_chunks = counting
    try:
        text, result = run([folder])
    finally:
        timeline.Timeline._source_chunks = original
    assert result.applied == 600 and result.timeline.files == 300
    assert max(fds) - min(fds) <= 3
    _, series = read_openmetrics(text)
    key = ("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "m"), ("type", "input")}))
    assert series[key][-1][1] == 600


def test_events_without_ts(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(line(None, 1) + line(T0 + 30, 10) + line(None, 100) + line(T0 + 200, 1000))
    nots = tmp_path / "batch.jsonl"
    nots.write_text(line(None, 7) * 3)
    os.utime(nots, (T0 + 90, T0 + 90))
    text, result = run([log, nots])
    _, series = read_openmetrics(text)
    samples = series[("llm_tokens_total", frozenset({("tenant_id", ""), ("provider", "p"), ("model", "m"),
                                                     ("type", "input")}))]
    points = {t: at(samples, t) for t in range(T0, T0 + 301, 60)}
    # The first line takes the first time of its file, the third its predecessor's; the file
    # without any ts sits at its modification time.
    assert points[T0 + 60] == 111 and points[T0 + 120] == 132 and points[T0 + 240] == 1132
    assert result.timeline.without_ts == 5


def test_stdin_without_any_ts_is_skipped_and_reported() -> None:
    done = run_cli(["replay", "-", "-o", "-", "--quiet"], stdin=line(None, 3).encode() * 2)
    assert done.returncode == 0
    assert done.stdout == b"# EOF\n"
    assert b"2 event(s) without ts on stdin could not be placed" in done.stderr


def test_guard_warns_about_recent_events_unless_told(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(line(T0, 1) + line(T0 + 3600, 1))
    _, result = run([log], now=T0 + 3600 + 600)
    assert any("double counts" in w and "--end" in w for w in result.warnings)
    assert not run([log], now=T0 + 3600 + 600, end=T0 + 1800)[1].warnings
    assert not run([log], now=T0 + 3600 + 600, until_now=True)[1].warnings
    assert not run([log], now=T0 + 3600 + 4 * 3600)[1].warnings


def test_cli_gz_stdin_labels_and_namespace(tmp_path: Path) -> None:
    out = tmp_path / "o.om"
    data = gzip.compress((line(T0 + 5, 2) + line(T0 + 70, 3)).encode())
    done = run_cli(["replay", "-", "-o", str(out), "--namespace", "aigateway", "--label", "job=llm",
                    "--label", 'instance=host "1"', "--step", "1m"], stdin=data)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert 'aigateway_tokens_total{tenant_id="",provider="p",model="m",type="input",job="llm",' \
           'instance="host \\"1\\""} 5.0 ' + str(T0 + 120) in text
    assert not list(tmp_path.glob(".replay-*"))  # the temporary output was renamed into place
    bad = run_cli(["replay", str(tmp_path / "missing.jsonl"), "-o", str(out)])
    assert bad.returncode == 2 and b"no such file" in bad.stderr
    bad = run_cli(["replay", "-", "-o", "-", "--label", "model=x"])
    assert bad.returncode == 2 and b"label of the exporter's own series" in bad.stderr
    bad = run_cli(["replay", "-", "-o", "-", "--end", "2025-01-01", "--until-now"])
    assert bad.returncode == 2
    bad = run_cli(["replay", "-", "-o", str(tmp_path / "no-such-dir" / "o.om")], stdin=data)
    assert bad.returncode == 1 and b"No such file or directory: " + str(tmp_path).encode() in bad.stderr


def test_shared_options_come_from_the_daemons_environment(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(line(T0 + 5, 2))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_LOG_EXPORTER_NAMESPACE": "gw"}
    done = subprocess.run([sys.executable, "-m", "llm_log_exporter", "replay", str(log), "-o", "-", "-q"],
                          capture_output=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert b"\ngw_tokens_total{" in done.stdout


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text("".join(line(T0 + i, 1) for i in range(20000)))
    out = tmp_path / "o.om"
    args = [sys.executable, "-m", "llm_log_exporter", "replay", str(log), "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=secondary, env=env)
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(primary)
    assert proc.returncode == 0
    assert b"ETA" in seen and b"events/s" in seen and b"/" in seen and b"\r" in seen
    assert b"lines/s" in seen  # the summary
    piped = subprocess.run(args, capture_output=True, env=env, timeout=120, check=False)
    assert b"\r" not in piped.stderr and b"ETA" not in piped.stderr and b"lines/s" in piped.stderr
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, env=env, timeout=120, check=False)
    assert quiet.stderr == b""


def test_promtool_accepts_a_spilled_backfill(tmp_path: Path) -> None:
    out = tmp_path / "o.om"
    done = run_cli(["replay", *map(str, HISTORY_FILES), "-o", str(out), "--buffer-mb", "1", "-q", "--step", "15s"])
    assert done.returncode == 0, done.stderr
    blocks = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(out), str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=300, check=False)
    assert blocks.returncode == 0, blocks.stderr
    assert list((tmp_path / "d").iterdir())
