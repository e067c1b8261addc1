"""More files than ``--max-open-files``: files read longest ago give their descriptor back and are
reopened by path (identity checked) when they change, so every line is counted once — through appends,
truncation, rotation inside and out of the patterns, and restarts from a state file.

The real pipeline in-process (``tests.pipeline``), ticked by hand, on real files.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from tests.pipeline import Pipeline, append, lines, once

BOUND = 3


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make(tmp_path: Path, n: int, prefix: str = "f") -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"{prefix}{i:02d}.jsonl"
        append(path, lines(f"{prefix}{i:02d}-a", 2))
        paths.append(path)
    return paths


def test_more_files_than_descriptors_each_line_once(tmp_path: Path) -> None:
    paths = make(tmp_path, 12)
    before = open_fds()
    p = Pipeline(str(tmp_path / "*.jsonl"), max_open_files=BOUND).tick()
    tailer = p.exp.tailer
    assert tailer.open_files <= BOUND and len(tailer.files) == 12
    assert open_fds() - before <= BOUND + 2  # the files, plus what the exporter itself holds
    expected = sum((once(f"f{i:02d}-a", 2) for i in range(12)), start=Counter())
    assert p.counted() == expected
    for round_ in range(3):  # every file grows, several times: each is reopened and read on
        for i, path in enumerate(paths):
            append(path, lines(f"f{i:02d}-r{round_}-", 1))
            expected += once(f"f{i:02d}-r{round_}-", 1)
        p.tick()
        assert p.counted() == expected and tailer.open_files <= BOUND
    assert p.total("llm_exporter_open_errors_total") == 0
    assert p.total("llm_exporter_watched_files") == 12
    assert p.total("llm_exporter_lag_bytes") == 0


def test_a_closed_file_truncated_and_regrown_is_read_again_from_the_start(tmp_path: Path) -> None:
    paths = make(tmp_path, 6)
    p = Pipeline(str(tmp_path / "*.jsonl"), max_open_files=BOUND).tick()
    first = paths[0]
    assert p.exp.tailer._streams[str(first)].parked  # read longest ago: closed
    first.write_bytes(lines("again", 3))  # copytruncate, then the writer goes on
    p.tick()
    assert p.total("llm_exporter_truncations_total", file=str(first)) == 1
    assert p.counted()["again0"] == 1 and p.counted()["f00-a0"] == 1


def test_a_closed_file_rotated_within_the_glob_is_not_read_twice(tmp_path: Path) -> None:
    paths = make(tmp_path, 5, prefix="usage")
    p = Pipeline(str(tmp_path / "usage*.jsonl*"), max_open_files=BOUND).tick()
    log = paths[0]
    assert p.exp.tailer._streams[str(log)].parked
    append(log, lines("late", 1))  # written before the rename, not read yet
    os.rename(log, f"{log}.1")
    append(log, lines("new", 2))
    p.tick()
    counted = p.counted()
    assert counted["late0"] == 1 and counted["new0"] == counted["new1"] == 1
    assert all(v == 1 for v in counted.values()), counted


def test_a_closed_file_rotated_out_of_the_patterns_is_finished_once(tmp_path: Path) -> None:
    paths = make(tmp_path, 5)
    p = Pipeline(*map(str, paths), max_open_files=BOUND).tick()  # exact paths: the rotated name is not followed
    log = paths[0]
    assert p.exp.tailer._streams[str(log)].parked
    append(log, lines("tail", 2))  # appended to the closed file, then it is rotated away
    os.rename(log, tmp_path / "old.1")
    append(log, lines("fresh", 1))
    p.tick()
    counted = p.counted()
    assert counted["tail0"] == counted["tail1"] == counted["fresh0"] == 1
    assert all(v == 1 for v in counted.values()), counted
    assert p.total("llm_exporter_rotations_total", file=str(log)) == 1


def test_restart_with_more_saved_files_than_descriptors_resumes_each_from_its_offset(tmp_path: Path) -> None:
    paths = make(tmp_path, 10)
    state = tmp_path / "state.json"
    pattern = str(tmp_path / "*.jsonl")
    p = Pipeline(pattern, state=state, max_open_files=BOUND).tick()
    p.stop()
    expected = sum((once(f"f{i:02d}-a", 2) for i in range(10)), start=Counter())
    for i, path in enumerate(paths):  # written while the exporter is down
        append(path, lines(f"f{i:02d}-down", 1))
        expected += once(f"f{i:02d}-down", 1)
    p.start()
    assert p.exp.tailer.open_files <= BOUND  # the saved files are resumed without a descriptor each
    p.tick()
    assert p.counted() == expected
    assert p.total("llm_exporter_lines_total", result="parsed") == 30
