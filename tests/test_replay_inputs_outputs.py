"""Replay and report at the edges: no gaps at any step, LiteLLM bucket objects, directories with other
files, inputs that cannot be read, outputs that are not regular files, signals, the estimate and the
disk check, and TSDB blocks through promtool."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from llm_log_exporter.daemon import Config, replay_history
from llm_log_exporter.history import estimate as est
from llm_log_exporter.history.backfill import WindowSink
from llm_log_exporter.history.replay import ReplayOptions, tick_of
from llm_log_exporter.history.sources import expand
from tests.helpers import FIXTURES, ROOT, metrics_for_files
from tests.history import BUDGETS, HISTORY_FILES, T0, read_openmetrics, run_cli

SLO = FIXTURES / "litellm-1.81.10_slo.jsonl"
NOW = T0 + 30 * 86400


def replayed(paths, config: Config | None = None, **options) -> tuple[dict, object]:
    out = io.BytesIO()
    result = replay_history(config or Config(files=[]), expand([str(p) for p in paths]), out,
                            ReplayOptions(**options), now=NOW)
    return read_openmetrics(out.getvalue().decode())[1], result


def value_at(points: list[tuple[int, float]], when: float, lookback: int = 300) -> float | None:
    seen = [v for ts, v in points if when - lookback <= ts <= when]
    return seen[-1] if seen else None


@pytest.mark.parametrize(("step", "lookback"), [(60, 300), (3600, 300), (420, 300), (30, 120)])
def test_every_series_stays_visible_at_any_step(step: int, lookback: int) -> None:
    series, result = replayed(HISTORY_FILES, Config(files=[], budgets=str(BUDGETS)), step=step, lookback=lookback)
    ends = {points[-1][0] for points in series.values()}
    assert len(ends) == 1  # every series ends at the same last sample
    for key, points in series.items():
        times = [ts for ts, _ in points]
        gaps = [b - a for a, b in pairwise(times)]
        assert max(gaps, default=0) <= lookback, (key, gaps)
    per_series = (result.writer.last_ts - result.writer.first_ts) / tick_of(step, lookback) + 2
    if step < lookback:  # far fewer samples than one per step and series
        assert result.writer.samples < result.writer.series * per_series / 2
    else:  # never more than one per lookback period (the tick) and series
        assert result.writer.samples <= result.writer.series * per_series


class Windows(WindowSink):
    """The windows of a ``--tsdb`` replay, kept as text instead of going to promtool."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.texts: list[tuple[int, int, str]] = []

    def path(self, start: int) -> str:
        return str(self.where / f"window-{start}.om")

    def done(self, path: str, start: int, end: int) -> None:
        self.texts.append((start, end, Path(path).read_text()))
        os.unlink(path)


def test_tsdb_windows_hold_exactly_the_samples_of_one_file(tmp_path: Path) -> None:
    """Quiet series re-emitted across 2 h window boundaries land in the next window, never lost."""
    log = tmp_path / "sparse.jsonl"
    log.write_text("".join(json.dumps({"v": 1, "model": f"m{i % 3}", "tenant_id": f"t{i % 4}", "ts": T0 + i * 2821,
                                       "prompt_tokens": i, "cost_usd": 0.01 * i}) + "\n" for i in range(16)))
    single, result = replayed([log])
    sink = Windows(tmp_path)
    windowed = replay_history(Config(files=[]), expand([str(log)]), sink, ReplayOptions(),  # type: ignore[arg-type]
                              now=NOW)
    joined: dict = {}
    for start, end, text in sink.texts:
        for key, points in read_openmetrics(text)[1].items():
            assert all(start <= ts < end for ts, _ in points)
            joined.setdefault(key, []).extend(points)
    assert len(sink.texts) == windowed.writer.windows == 6  # 11.7 h of calls, one every 47 min
    assert joined == single
    assert sum(len(points) for points in joined.values()) == result.writer.samples


def test_sparse_samples_hold_what_the_live_exporter_serves_at_each_step(tmp_path: Path) -> None:
    """At a step time T every series shows what the daemon serves after reading the lines before T."""
    series, _ = replayed([HISTORY_FILES[0]], Config(files=[], budgets=str(BUDGETS)))
    placed = []  # (the time replay places a line at, the line)
    previous = None
    for line in HISTORY_FILES[0].read_text().splitlines(keepends=True):
        try:
            ts = json.loads(line).get("ts")
        except ValueError:
            continue
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        previous = ts if ts is not None else previous
        placed.append((previous, line))
    for when in (T0 + 1800, T0 + 3 * 3600 + 600, T0 + 5 * 3600 + 1200):
        before = tmp_path / f"before-{when}.jsonl"
        before.write_text("".join(line for ts, line in placed if ts < when))
        live = metrics_for_files([before], budgets=str(BUDGETS))
        usage = {k: v for k, v in live.items() if k[0].startswith("llm_") and not k[0].startswith("llm_exporter")
                 and "budget" not in k[0] and "breaker" not in k[0] and "active_streams" not in k[0]}
        seen = {k: value_at(points, when) for k, points in series.items() if k in usage}
        assert len(seen) > 20
        assert seen == pytest.approx({k: usage[k] for k in seen}, rel=1e-12)


def litellm_bucket(tmp_path: Path) -> tuple[Path, int]:
    """A directory as LiteLLM's s3 / gcs loggers leave it, plus files that are not usage logs."""
    slos = [json.loads(line) for line in SLO.read_text().splitlines()]
    bucket = tmp_path / "bucket"
    (bucket / "2026-11-23").mkdir(parents=True)
    for i, slo in enumerate(slos[:4]):  # s3_v2: one pretty payload per .json object
        (bucket / "2026-11-23" / f"time-{i}_{slo['id']}.json").write_text(json.dumps(slo, indent=2))
    (bucket / "2026-11-23" / "batch.json").write_text(json.dumps(slos[4:7]))  # an array
    with gzip.open(bucket / "2026-11-23" / "more.json.gz", "wt") as f:
        f.write(json.dumps(slos[7:9]))
    (bucket / "2026-11-23" / "chatcmpl-gcs-object").write_text(json.dumps(slos[9]))  # gcs: no suffix
    (bucket / "README.md").write_text("# not a log\n")
    (bucket / "budgets.toml").write_text("[default]\n")
    return bucket, len(slos)


def test_a_directory_of_litellm_bucket_objects_is_counted_exactly(tmp_path: Path) -> None:
    bucket, count = litellm_bucket(tmp_path)
    done = run_cli(["report", str(bucket), "--format", "json", "--prices", "off"])
    assert done.returncode == 0, done.stderr.decode()
    total = json.loads(done.stdout)["total"]
    slos = [json.loads(line) for line in SLO.read_text().splitlines()]
    assert total["requests"] == count
    assert total["failed"] == sum(s["status"] != "success" for s in slos)
    assert total["input_tokens"] == sum(s["prompt_tokens"] for s in slos)
    assert b"2 file(s) in the input directories are not usage logs" in done.stderr
    assert done.stderr.count(b"not usage logs") == 1 and b"invalid" not in done.stderr
    out = tmp_path / "o.om"
    done = run_cli(["replay", str(bucket), "-o", str(out), "--prices", "off", "--end", "2026-11-24T00:00:00Z"])
    assert done.returncode == 0, done.stderr.decode()
    _, series = read_openmetrics(out.read_text())
    requests = sum(points[-1][1] for (name, _), points in series.items() if name == "llm_requests_total")
    assert requests == count


def test_an_input_that_cannot_be_read_fails_report_and_replay(tmp_path: Path) -> None:
    # /proc/self/mem fails with EIO when read from its start: a real read error, even as root.
    for args in (["report", "/proc/self/mem"], ["replay", "/proc/self/mem", "-o", str(tmp_path / "o.om")]):
        done = run_cli(args)
        assert done.returncode != 0
        assert b"/proc/self/mem: cannot read: Input/output error" in done.stderr
    assert not list(tmp_path.iterdir())  # no backfill left behind
    if os.geteuid() != 0:  # root reads any file: permission denied is checked as a normal user only
        secret = tmp_path / "secret.jsonl"
        secret.write_text('{"v":1,"model":"m"}\n')
        secret.chmod(0)
        done = run_cli(["report", str(secret)])
        assert done.returncode != 0 and b"secret.jsonl: cannot read: Permission denied" in done.stderr


def test_outputs_that_are_not_regular_files_are_written_to_never_replaced(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(json.dumps({"v": 1, "model": "m", "ts": T0 + 5, "prompt_tokens": 3}) + "\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    done = run_cli(["replay", str(log), "-o", str(fifo), "-q", "--end", str(T0 + 600)])
    reader.join(60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode) and got[0].endswith(b"# EOF\n") and b"llm_tokens_total" in got[0]
    stdout = run_cli(["replay", str(log), "-o", "-", "-q", "--end", str(T0 + 600)])
    assert stdout.stdout == got[0]
    if os.geteuid() != 0:
        pytest.skip("character devices are made and /dev/null is checked as root")
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own first
    for target in (device, Path("/dev/null")):
        assert run_cli(["replay", str(log), "-o", str(target), "-q", "--end", str(T0 + 600)]).returncode == 0
        assert stat.S_ISCHR(target.stat().st_mode) and target.stat().st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "null", "u.jsonl"]  # no temporary left


def big_log(path: Path, lines: int = 60_000) -> Path:
    with open(path, "w") as f:
        for i in range(lines):
            f.write(json.dumps({"v": 1, "model": f"m{i % 40}", "tenant_id": f"t{i % 25}", "ts": T0 + i * 30,
                                "prompt_tokens": 5, "duration_s": 0.5}) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_removes_the_temporary_output_and_spool(tmp_path: Path, sig: signal.Signals) -> None:
    log = big_log(tmp_path / "u.jsonl")
    spool = tmp_path / "spool"
    spool.mkdir()
    out = tmp_path / "out" / "backfill.om"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "llm_log_exporter", "replay", str(log), "-o", str(out),
                             "--spool-dir", str(spool), "--buffer-mb", "1", "--step", "10s", "--lookback", "10s",
                             "--force"], env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(spool.rglob("run-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the replay ended before it spilled"
    assert list(out.parent.iterdir())  # the temporary output exists meanwhile
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert b"temporary files were removed" in err
    assert list(spool.iterdir()) == [] and list(out.parent.iterdir()) == []


def test_the_estimate_is_printed_and_a_backfill_that_does_not_fit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_log_exporter.daemon import build_history, build_usage
    from llm_log_exporter.history.commands import Refused, ReplayTarget, run_replay

    log = big_log(tmp_path / "u.jsonl", 3000)  # 25 hours, ~330 kB: probed whole
    with open(log, "a") as f:  # a model first seen near the end
        f.write(json.dumps({"v": 1, "model": "late", "ts": T0 + 3000 * 30 - 5, "prompt_tokens": 1}) + "\n")
    config = Config(files=[])

    def go(force: bool) -> object:
        store, ingestor, collector = build_history(config)
        target = ReplayTarget(output=str(tmp_path / "o.om"), force=force)
        return run_replay([str(log)], target, store, ingestor, collector, 1 << 20,
                          ReplayOptions(end=T0 + 3000 * 30), None, quiet=True,
                          scratch_usage=lambda: build_usage(config))

    monkeypatch.setattr(est.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**6, 10**6, 1000))
    with pytest.raises(Refused, match=r"need about .* MB, 1.0 kB free.*--force"):
        go(False)
    assert not (tmp_path / "o.om").exists()
    result = go(True)
    assert result.writer.samples > 0  # type: ignore[attr-defined]
    monkeypatch.undo()
    done = run_cli(["replay", str(log), "-o", str(tmp_path / "p.om"), "--end", str(T0 + 3000 * 30)])
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.decode().splitlines() if x.startswith("estimate:"))
    series = int(line.split()[1].replace(",", ""))
    written = next(x for x in done.stderr.decode().splitlines() if x.startswith("wrote "))
    assert f"of {series:,} series" in written  # the probes found every series
    estimated, samples = (int(text.split()[i].lstrip("~").replace(",", "")) for text, i in ((line, 3), (written, 2)))
    assert 0.8 < estimated / samples < 1.25, (line, written)
    assert "step 60 s" in line  # a day of history: the fine default step


def test_tsdb_windows_are_the_longest_block_range_whose_text_stays_small() -> None:
    day, hour = 86400, 3600
    assert est.window_for(10 << 20, 6 * hour) == 54 * hour  # one promtool run for a small backfill
    assert est.window_for(15 * 10**9, 90 * day) == 18 * hour  # 90 days of 5,000 series: ~125 MB windows
    assert est.window_for(10**12, 90 * day) == 2 * hour  # dense: promtool's own block length
    assert est.window_for(10**9, None) == 2 * hour


def test_the_default_step_suits_the_span() -> None:
    assert est.auto_step(6 * 3600, 300) == 60
    assert est.auto_step(30 * 86400, 300) == 300
    assert est.auto_step(None, 300) == 60


def test_tsdb_without_promtool_says_what_to_do(tmp_path: Path) -> None:
    log = big_log(tmp_path / "u.jsonl", 10)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "llm_log_exporter", "replay", str(log), "--tsdb",
                           str(tmp_path / "data")], capture_output=True, env=env, timeout=120, check=False)
    assert done.returncode == 1
    assert b"promtool was not found on PATH" in done.stderr and b"-o FILE" in done.stderr


@pytest.mark.parametrize("user_gogc", [None, "150"])
def test_promtool_runs_with_a_larger_gc_target_unless_the_user_sets_one(tmp_path: Path, user_gogc: str | None) -> None:
    """promtool is most of a backfill's CPU: replay gives it GOGC=400, and a GOGC of the user's wins."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian: prometheus) is installed by .ci/run"
    shim = tmp_path / "bin"
    shim.mkdir()
    seen = tmp_path / "gogc.txt"
    (shim / "promtool").write_text(f'#!/bin/sh\necho "${{GOGC-unset}}" >> {seen}\nexec {promtool} "$@"\n')
    (shim / "promtool").chmod(0o755)
    log = big_log(tmp_path / "u.jsonl", 200)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{shim}:{os.environ['PATH']}"}
    env.pop("GOGC", None)
    if user_gogc:
        env["GOGC"] = user_gogc
    done = subprocess.run([sys.executable, "-m", "llm_log_exporter", "replay", str(log), "--tsdb",
                           str(tmp_path / "data"), "--end", str(T0 + 200 * 30)], capture_output=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert seen.read_text().split() == [user_gogc or "400"]  # one window, one promtool
    assert [p for p in (tmp_path / "data").iterdir() if (p / "meta.json").exists()]  # the real promtool wrote it


@pytest.mark.slow
def test_tsdb_blocks_one_per_window_each_read_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "existing").mkdir()  # what was there stays
    done = run_cli(["replay", *map(str, HISTORY_FILES), "--tsdb", str(data), "--budgets", str(BUDGETS),
                    "--end", "2025-07-01T04:05:00Z", "--spool-dir", str(tmp_path)])
    assert done.returncode == 0, done.stderr.decode()
    blocks = sorted(p for p in data.iterdir() if p.name != "existing")
    meta = [json.loads((b / "meta.json").read_text()) for b in blocks]
    wrote = next(x for x in done.stderr.decode().splitlines() if x.startswith("wrote "))
    hours = int(wrote.split(" window(s) of ")[1].split()[0])
    assert hours == 54  # a small backfill: the longest window promtool writes in one pass
    window = hours * 3_600_000
    # 2025-06-30T22:01 .. 07-01T04:05 lies in one 54 h window (aligned to multiples of 54 h): one block
    assert len(blocks) == 1 == int(wrote.split(" window(s)")[0].split("(")[-1])
    for m in meta:
        assert m["minTime"] // window == (m["maxTime"] - 1) // window  # within one aligned window
    written = int(wrote.split()[5].replace(",", ""))
    assert sum(m["stats"]["numSamples"] for m in meta) == written
    assert sorted(os.listdir(tmp_path)) == ["data"]  # no window file, staging or promtool scratch left
    assert not [p for p in data.iterdir() if p.name.startswith(".")]
