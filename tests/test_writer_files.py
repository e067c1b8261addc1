"""The usage log as files: the mode the callback creates it with, and size-based rotation by its writers.

Rotation is checked the way it runs in a proxy: several real processes append through ``UsageLogger``
(fed LiteLLM's own StandardLoggingPayload lines from tests/fixtures), rename the file under their lock
file, and a real exporter that follows ``usage.jsonl*`` counts every line exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llm_log_exporter.callback import UsageLogger
from llm_log_exporter.writer import rotation
from llm_log_exporter.writer.rotation import lock_name, parse_backups, parse_size
from llm_log_exporter.writer.safe_open import dir_mode, parse_mode
from tests.helpers import FIXTURES, ROOT, ExporterProcess, value

SLO = FIXTURES / "litellm-1.81.10_slo.jsonl"


def slo_kwargs(call_id: str) -> dict[str, object]:
    """What litellm passes a CustomLogger, built around a recorded payload (first line of the fixture)."""
    slo = json.loads(SLO.read_text().splitlines()[0])
    slo["id"] = call_id
    return {"standard_logging_object": slo}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def lines_of(paths: list[Path]) -> list[dict[str, object]]:
    out = []
    for path in paths:
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), path  # whole lines only
        out += [json.loads(line) for line in data.splitlines()]
    return out


def log_files(directory: Path) -> list[Path]:
    """usage.jsonl and its backups, oldest first."""
    backups = sorted(directory.glob("usage.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    return [*backups, *directory.glob("usage.jsonl")]


# --------------------------------------------------------------------------------------------- mode


def test_default_mode_is_private(tmp_path: Path) -> None:
    with UsageLogger(tmp_path / "new" / "usage.jsonl") as logger:
        logger.log_success_event(slo_kwargs("a"), None, None, None)
    assert logger.mode == 0o600 and logger.errors == 0
    assert mode_of(tmp_path / "new" / "usage.jsonl") == 0o600
    assert mode_of(tmp_path / "new") == 0o700


def test_readable_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with UsageLogger(tmp_path / "aider" / "usage.jsonl", mode="0644") as logger:
            logger.log_success_event(slo_kwargs("a"), None, None, None)
    finally:
        os.umask(old)
    assert logger.mode == 0o644 and logger.errors == 0
    assert mode_of(tmp_path / "aider" / "usage.jsonl") == 0o644
    assert mode_of(tmp_path / "aider") == 0o755  # a reader of the file can reach it


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    path.write_bytes(b"")
    path.chmod(0o600)
    with UsageLogger(path, mode=0o640) as logger:
        logger.log_success_event(slo_kwargs("a"), None, None, None)
    assert mode_of(path) == 0o600 and len(lines_of([path])) == 1  # the owner's choice stands


def test_mode_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("LLM_USAGE_LOG_MODE", "640")
    assert UsageLogger(tmp_path / "a.jsonl").mode == 0o640
    assert UsageLogger(tmp_path / "b.jsonl", mode=0o600).mode == 0o600  # the argument wins
    monkeypatch.setenv("LLM_USAGE_LOG_MODE", "0666")  # others could write fake usage
    with caplog.at_level(logging.WARNING, logger="llm_log_exporter.callback"):
        assert UsageLogger(tmp_path / "c.jsonl").mode == 0o600
    assert "ignoring LLM_USAGE_LOG_MODE='0666'" in caplog.text


@pytest.mark.parametrize("text, expected", [("0640", 0o640), ("644", 0o644), ("0o660", 0o660), (0o600, 0o600)])
def test_parse_mode(text: str | int, expected: int) -> None:
    assert parse_mode(text) == expected


@pytest.mark.parametrize("bad", ["0666", "0400", "0755", "rw-r--r--", "", "0o1644", 420.0, True])
def test_parse_mode_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_mode(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        UsageLogger("/nonexistent/usage.jsonl", mode=bad)  # type: ignore[arg-type]


def test_dir_mode_follows_the_readers() -> None:
    assert [dir_mode(m) for m in (0o600, 0o640, 0o644, 0o660)] == [0o700, 0o750, 0o755, 0o770]


# ----------------------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("text, expected", [("0", 0), ("4096", 4096), ("16K", 16 << 10), ("100M", 100 << 20),
                                            ("100MiB", 100 << 20), ("2gb", 2 << 30), (7, 7)])
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["-1", "1.5M", "10X", "", "M", -3, True])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)  # type: ignore[arg-type]


def test_parse_backups() -> None:
    assert parse_backups("3") == 3 and parse_backups(1) == 1
    for bad in ("0", "-1", "x", 0):
        with pytest.raises(ValueError):
            parse_backups(bad)


def test_rotation_is_off_by_default(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    with UsageLogger(path) as logger:
        for i in range(200):
            logger.log_success_event(slo_kwargs(f"c{i}"), None, None, None)
    assert logger.max_bytes == 0 and log_files(tmp_path) == [path] and len(lines_of([path])) == 200


def test_rotation_keeps_backups_and_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    with UsageLogger(path, max_bytes=4096, backups=3) as logger:
        for i in range(100):
            logger.log_success_event(slo_kwargs(f"c{i:03d}"), None, None, None)
    files = log_files(tmp_path)
    assert [p.name for p in files] == ["usage.jsonl.3", "usage.jsonl.2", "usage.jsonl.1", "usage.jsonl"]
    assert all(0 < p.stat().st_size <= 4096 for p in files)
    kept = [line["call_id"] for line in lines_of(files)]
    # The newest lines, in order, none twice; the oldest were dropped with the 4th backup.
    assert kept == [f"c{i:03d}" for i in range(100 - len(kept), 100)] and 0 < len(kept) < 100
    assert logger._file.rotation is not None and logger._file.rotation.rotations > 3
    assert all(mode_of(p) == 0o600 for p in files) and (tmp_path / ".usage.jsonl.lock").exists()


def test_line_longer_than_the_limit_goes_to_a_fresh_file(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    with UsageLogger(path, max_bytes=64, backups=2) as logger:
        logger.log_success_event(slo_kwargs("first"), None, None, None)  # ~1 KB line into an empty file
        logger.log_success_event(slo_kwargs("second"), None, None, None)
    assert [line["call_id"] for line in lines_of([Path(f"{path}.1")])] == ["first"]
    assert [line["call_id"] for line in lines_of([path])] == ["second"]


def test_failed_rotation_loses_no_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "usage.jsonl"
    blocker = Path(f"{path}.1")
    blocker.mkdir()  # the rename target is a directory: rename fails
    (blocker / "x").write_text("x")
    with caplog.at_level(logging.WARNING, logger="llm_log_exporter.callback"), \
            UsageLogger(path, max_bytes=2048, backups=1) as logger:
        for i in range(10):
            logger.log_success_event(slo_kwargs(f"c{i}"), None, None, None)
    assert logger.errors == 0 and logger.lines_written == 10
    assert [line["call_id"] for line in lines_of([path])] == [f"c{i}" for i in range(10)]
    rot = logger._file.rotation
    assert rot is not None and rot.rotations == 0 and rot.errors == 1  # then it rests (RETRY_AFTER)
    assert caplog.text.count("cannot rotate") == 1


def test_rotation_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_USAGE_LOG_MAX_BYTES", "8K")
    monkeypatch.setenv("LLM_USAGE_LOG_BACKUPS", "2")
    logger = UsageLogger(tmp_path / "usage.jsonl")
    assert (logger.max_bytes, logger.backups) == (8192, 2)
    assert lock_name(str(tmp_path / "usage.jsonl")) == str(tmp_path / ".usage.jsonl.lock")


WRITER = textwrap.dedent("""
    import json, sys
    from llm_log_exporter.callback import UsageLogger
    path, name, count, fixture = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    slo = json.loads(open(fixture).readline())
    logger = UsageLogger(path)  # max bytes and backups from the environment, as the aider hook takes them
    for i in range(count):
        logger.log_success_event({"standard_logging_object": dict(slo, id=f"{name}-{i}")}, None, None, None)
    print(json.dumps({"lines": logger.lines_written, "errors": logger.errors,
                      "rotations": logger._file.rotation.rotations}))
""")


@pytest.mark.slow
def test_exporter_counts_every_line_across_rotations_by_several_processes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "usage.jsonl"
    writers, per_writer, max_bytes = 4, 250, 16384
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_USAGE_LOG_MAX_BYTES": str(max_bytes),
           "LLM_USAGE_LOG_BACKUPS": "500"}  # keep every file, so the files can be checked line by line too
    with ExporterProcess(["--file", f"{logs}/usage.jsonl*", "--poll-interval", "0.2"]) as exporter:
        exporter.wait_ready()
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", str(per_writer), str(SLO)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(writers)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out))
        total = writers * per_writer
        samples = exporter.wait_value("llm_requests_total", total, timeout=60)
        assert value(samples, "llm_exporter_lines_total", result="parsed") == total
        assert not [k for k, v in samples.items() if k[0] == "llm_exporter_invalid_lines_total" and v]
    assert [r["lines"] for r in results] == [per_writer] * writers and not any(r["errors"] for r in results)
    files = log_files(logs)
    rotations = sum(r["rotations"] for r in results)
    # Each rotation was done by exactly one process: one backup per rotation. A file passes the limit
    # by at most one line per other writer (those that checked the size just before the rename).
    assert rotations >= 10 and len(files) == rotations + 1, (rotations, [p.name for p in files])
    longest = max(len(line) for p in files for line in p.read_bytes().splitlines(keepends=True))
    assert all(p.stat().st_size <= max_bytes + (writers - 1) * longest for p in files)
    assert sum(1 for r in results if r["rotations"]) >= 2  # the processes really took turns
    ids = [line["call_id"] for line in lines_of(files)]
    assert sorted(ids) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(per_writer))
    for n in range(writers):  # each writer's lines stay in its order across the files
        mine = [i for i in ids if i.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(per_writer)]


def test_rotation_retries_after_its_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rotation, "RETRY_AFTER", 0.0)
    path = tmp_path / "usage.jsonl"
    blocker = Path(f"{path}.1")
    blocker.mkdir()
    with UsageLogger(path, max_bytes=1024, backups=1) as logger:
        for i in range(6):
            logger.log_success_event(slo_kwargs(f"a{i}"), None, None, None)
        blocker.rmdir()
        logger.log_success_event(slo_kwargs("b0"), None, None, None)
    rot = logger._file.rotation
    assert rot is not None and rot.errors >= 5 and rot.rotations == 1
    assert [line["call_id"] for line in lines_of([blocker])] == [f"a{i}" for i in range(6)]
    assert [line["call_id"] for line in lines_of([path])] == ["b0"]
